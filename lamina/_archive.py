"""Reading ``.npy`` arrays and lamina's ``.npz`` archives safely (floor 3, under ``serialization``).

Every size a file declares is checked before anything is allocated: an ``.npy`` header's shape
against the bytes its member (or file) really holds, a zip member's declared size against its
compressed size (deflate expands at most about 1032-fold; other compressions are refused), and
the members' compressed sizes against the archive's size (so overlapping members, the trick of
"better" zip bombs, are refused). Each array is then read from the stream straight into its final
NumPy array, in pieces, so loading needs about as much memory as the arrays themselves. Object
arrays, structured dtypes and pickles are refused: nothing read here runs code.
"""

from __future__ import annotations

import math
import struct
import tokenize
import zipfile
import zlib
from typing import Any

import numpy as np

__all__ = ["SerializationError", "read_npy", "Archive", "DEFLATE_MAX_RATIO"]

DEFLATE_MAX_RATIO = 1032  # the most deflate can expand: 258 bytes from about 2 bits
_CHUNK = 1 << 20  # bytes read from a stream at a time (the only transient buffer)
_MAX_HEADER = 10_000  # bytes of an .npy header (NumPy's own default limit)

# what a damaged zip member or stream can raise while it is read (zlib: corrupt deflate data;
# EOFError: a stream that ends early; struct.error: a truncated local header; NotImplementedError:
# zipfile's answer to a damaged "version needed to extract" or an unknown feature)
STREAM_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error, struct.error, NotImplementedError,
                 UnicodeDecodeError)  # a damaged member name flagged as UTF-8


class SerializationError(ValueError):
    """A file is not a readable lamina file (missing, truncated, corrupt or foreign); the message names it."""


def read_npy(fp: Any, size: int, what: str, max_elements: int | None = None, limit_name: str = "") -> np.ndarray:
    """The array in the ``.npy`` stream ``fp``, which holds exactly ``size`` bytes from where it stands.

    The header is parsed (never unpickled) and checked: a numeric or boolean dtype, a shape whose
    byte count is exactly what the stream holds after the header, and at most ``max_elements``
    elements when given (``limit_name`` names that limit in the message). Only then is the array
    allocated and filled from the stream in pieces.

    Raises:
        SerializationError: naming ``what``, for any damaged, foreign or oversized content; the
            stream's own errors (``STREAM_ERRORS``) pass through for the caller to name.
    """
    start = fp.tell()
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp, max_header_size=_MAX_HEADER)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp, max_header_size=_MAX_HEADER)
        else:
            raise SerializationError(f"{what}: unsupported .npy format version {version[0]}.{version[1]}")
    except (ValueError, SyntaxError, tokenize.TokenError, RecursionError) as e:  # numpy's header parser
        if isinstance(e, SerializationError):
            raise
        raise SerializationError(f"{what}: not a valid .npy array ({e})") from None
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in "biufc":
        raise SerializationError(f"{what}: unreadable, it holds an array of dtype {dtype}; lamina reads only "
                                 "numeric and boolean arrays (never objects or pickles)")
    if not all(isinstance(n, int) and n >= 0 for n in shape):
        raise SerializationError(f"{what}: invalid shape {shape} in the .npy header")
    count = math.prod(shape)
    if max_elements is not None and count > max_elements:
        raise SerializationError(f"{what}: its header declares shape {shape} ({count:,} elements), more than "
                                 f"{limit_name or 'the limit'} of {max_elements:,}")
    held = size - (fp.tell() - start)
    if count * dtype.itemsize != held:
        raise SerializationError(f"{what}: its header declares shape {shape} of {dtype} ({count * dtype.itemsize:,} "
                                 f"bytes), but {max(held, 0):,} bytes follow it (truncated or damaged)")
    arr = np.empty(shape[::-1] if fortran else shape, dtype=dtype)
    view = memoryview(arr.reshape(-1).view(np.uint8)) if arr.size else memoryview(b"")
    pos = 0
    while pos < len(view):
        piece = fp.read(min(_CHUNK, len(view) - pos))
        if not piece:
            raise SerializationError(f"{what}: ends after {pos:,} of its {len(view):,} data bytes (truncated)")
        view[pos:pos + len(piece)] = piece
        pos += len(piece)
    if fp.read(1):  # also makes a zip member check its CRC
        raise SerializationError(f"{what}: holds more bytes than its header declares")
    if fortran:
        arr = arr.T
    if not dtype.isnative:
        arr = arr.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return arr


class Archive:
    """The ``.npy`` members of a zip archive, checked before any is read.

    Args:
        fileobj: a seekable binary file holding the archive.
        name: how messages name the file (its quoted path).
    """

    def __init__(self, fileobj: Any, name: str) -> None:
        self.name = name
        size = fileobj.seek(0, 2)
        fileobj.seek(0)
        head = fileobj.read(6)
        fileobj.seek(0)
        if head == b"\x93NUMPY":
            raise SerializationError(f"lamina.load: {name} holds a bare NumPy array, not a lamina file")
        try:
            self.zip = zipfile.ZipFile(fileobj)
            infos = self.zip.infolist()
        except (ValueError, *STREAM_ERRORS) as e:  # ValueError: an undecodable member name
            raise SerializationError(f"lamina.load: {name} is not a lamina file, or it is truncated or "
                                     f"corrupt ({e})") from None
        self.members: dict[str, zipfile.ZipInfo] = {}
        self.infos: dict[str, zipfile.ZipInfo] = {}  # every member by its full name (torch's archives)
        seen: set[str] = set()
        for info in infos:
            if info.filename in seen:
                self.close()
                raise SerializationError(f"lamina.load: {name}: the archive holds two members named "
                                         f"{info.filename!r} (crafted or damaged)")
            seen.add(info.filename)
            self.infos[info.filename] = info
            if info.filename.endswith(".npy"):
                self.members[info.filename[:-4]] = info
        packed = sum(info.compress_size for info in infos)
        if packed > size:
            self.close()
            raise SerializationError(f"lamina.load: {name}: its members claim {packed:,} compressed bytes, more "
                                     f"than the file's {size:,} (overlapping or crafted members)")
        self.taken: set[str] = set()

    def _check(self, key: str, what: str) -> zipfile.ZipInfo:
        return self.check_info(self.members[key], what)

    def check_info(self, info: zipfile.ZipInfo, what: str) -> zipfile.ZipInfo:
        """``info`` after its sizes, compression and encryption flag are checked (``what`` names it)."""
        if info.flag_bits & 0x1:
            raise SerializationError(f"{what}: the member is encrypted")
        if info.compress_type == zipfile.ZIP_STORED:
            if info.file_size != info.compress_size:
                raise SerializationError(f"{what}: the member is stored uncompressed but declares {info.file_size:,} "
                                         f"bytes in {info.compress_size:,}")
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            if info.file_size > DEFLATE_MAX_RATIO * info.compress_size + 64:
                raise SerializationError(f"{what}: the member declares {info.file_size:,} bytes from "
                                         f"{info.compress_size:,} compressed ones, more than deflate can expand "
                                         f"(at most {DEFLATE_MAX_RATIO}-fold)")
        else:
            raise SerializationError(f"{what}: the member uses compression method {info.compress_type}; lamina "
                                     "reads only stored or deflated members")
        return info

    def read(self, key: str, what: str) -> np.ndarray:
        """The array of member ``key + '.npy'`` (``what`` names it in messages)."""
        info = self._check(key, what)
        try:
            with self.zip.open(info) as fp:
                return read_npy(fp, info.file_size, what)
        except STREAM_ERRORS as e:
            raise SerializationError(f"{what}: unreadable, the file is truncated or corrupt ({e})") from None

    def read_bytes(self, filename: str, what: str) -> bytes:
        """The bytes of the member named ``filename`` (any member, checked as :meth:`read` does)."""
        info = self.check_info(self.infos[filename], what)
        try:
            with self.zip.open(info) as fp:
                data = fp.read(info.file_size + 1)
        except STREAM_ERRORS as e:
            raise SerializationError(f"{what}: unreadable, the file is truncated or corrupt ({e})") from None
        if len(data) != info.file_size:
            raise SerializationError(f"{what}: holds {len(data):,} bytes, but the archive declares {info.file_size:,}")
        return data

    def take(self, ref: str, where: str) -> np.ndarray:
        """The array that the structure entry at ``where`` refers to; each may be referred to once."""
        what = f"lamina.load: {self.name}: the array {ref!r} (at {where})"
        if ref not in self.members or ref.startswith("__"):
            raise SerializationError(f"{what} is missing (truncated file?)")
        if ref in self.taken:
            raise SerializationError(f"{what} is referred to twice (crafted or damaged structure)")
        self.taken.add(ref)
        return self.read(ref, what)

    def close(self) -> None:
        self.zip.close()
