"""Reading users' data files safely: raw or gzip streams, sizes checked before reading, errors that name the file.

A reader first takes the small header of a file, checks the sizes it declares against what a
data set of that kind can be and against :data:`MAX_DATA_BYTES`, and only then allocates the
array and fills it from the stream, in pieces: a small gzip that would expand to gigabytes (a
"decompression bomb") is refused before it is expanded, and a stream holding more or less than
its header declares is an error.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["find_file", "DatasetFileError", "DataStream", "MAX_DATA_BYTES"]

MAX_DATA_BYTES = 1 << 30
"""The most bytes (after decompression) that one data file may hold: 1 GiB, about 20 times the
MNIST training images. Raise it (``lamina.datasets.files.MAX_DATA_BYTES = ...``) for larger files."""

_DEFLATE_MAX_RATIO = 1032  # the most deflate can expand: a gzip of n bytes never holds more than ~1032 n
_CHUNK = 1 << 20


class DatasetFileError(ValueError):
    """A data file is missing, corrupt, truncated, oversized or holds impossible values; the message names it."""


class DataStream:
    """A data file opened for reading, raw or gzip (told by its magic bytes ``1f 8b``).

    Use as a context manager. :meth:`read` takes exactly ``n`` bytes (a header), :meth:`expect`
    checks a declared payload size before it is read, :meth:`read_array` fills a new array from the
    stream and :meth:`end` checks that nothing follows.

    Args:
        path: the file.
        dataset: the name used in error messages.
    """

    def __init__(self, path: str, dataset: str) -> None:
        self.path, self.dataset = path, dataset
        try:
            self._raw = open(path, "rb")  # noqa: SIM115  (closed by close())
            self.disk_size = os.fstat(self._raw.fileno()).st_size
            magic = self._raw.read(2)
            self._raw.seek(0)
        except OSError as e:
            raise DatasetFileError(f"{dataset}: cannot read {path}: {e.strerror or e}") from None
        self.compressed = magic == b"\x1f\x8b"
        if not self.compressed and path.endswith(".gz"):
            self._raw.close()
            raise DatasetFileError(f"{dataset}: {path} has a .gz name but is not a gzip file (wrong magic bytes "
                                   f"{magic.hex() or 'none: empty file'})")
        self._f: Any = gzip.GzipFile(fileobj=self._raw, mode="rb") if self.compressed else self._raw
        self.pos = 0  # bytes read so far (decompressed)

    def __enter__(self) -> DataStream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._f is not self._raw:
            self._f.close()
        self._raw.close()

    def _piece(self, n: int) -> bytes:
        try:
            data = self._f.read(n)
        except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
            raise DatasetFileError(f"{self.dataset}: {self.path} is a corrupt or truncated gzip file ({e})") from None
        self.pos += len(data)
        return data

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes (fewer only at the end of the stream)."""
        parts, left = [], n
        while left:
            piece = self._piece(min(left, _CHUNK))
            if not piece:
                break
            parts.append(piece)
            left -= len(piece)
        return b"".join(parts)

    def expect(self, nbytes: int, what: str, limit: int | None = None, limit_name: str = "") -> None:
        """Check, before reading, that ``nbytes`` more bytes (``what``, as the header declares them)
        can be read: at most ``limit`` (default :data:`MAX_DATA_BYTES`), exactly what a raw file holds
        after the header, and no more than a gzip of this size can expand to."""
        limit = MAX_DATA_BYTES if limit is None else limit
        if nbytes > limit:
            raise DatasetFileError(f"{self.dataset}: {self.path}: {what} needs {nbytes:,} bytes, more than "
                                   f"{limit_name or 'lamina.datasets.files.MAX_DATA_BYTES'} = {limit:,}")
        if not self.compressed:
            held = self.disk_size - self.pos
            if held != nbytes:
                kind = "truncated" if held < nbytes else "longer than its header says"
                raise DatasetFileError(f"{self.dataset}: {self.path} is {kind}: {what} needs "
                                       f"{self.pos + nbytes} bytes, the file has {self.disk_size}")
        elif self.pos + nbytes > _DEFLATE_MAX_RATIO * self.disk_size + 1024:
            raise DatasetFileError(f"{self.dataset}: {self.path}: {what} needs {nbytes:,} bytes, more than a gzip "
                                   f"file of {self.disk_size:,} bytes can hold (crafted or damaged header)")

    def read_array(self, shape: tuple[int, ...], dtype: Any, what: str) -> Any:
        """A new array of ``shape`` and ``dtype`` filled from the stream (after :meth:`expect`)."""
        arr = np.empty(shape, dtype=dtype)
        view = memoryview(arr.reshape(-1).view(np.uint8)) if arr.size else memoryview(b"")
        done = 0
        while done < len(view):
            piece = self._piece(min(_CHUNK, len(view) - done))
            if not piece:
                raise DatasetFileError(f"{self.dataset}: {self.path} is truncated: {what} needs {len(view)} bytes "
                                       f"after the header, the stream ended after {done}")
            view[done:done + len(piece)] = piece
            done += len(piece)
        return arr

    def end(self, what: str) -> None:
        """Raise when the stream holds more than ``what``."""
        if self._piece(1):
            raise DatasetFileError(f"{self.dataset}: {self.path} is longer than its header says: it holds more "
                                   f"than {what}")


def find_file(folders: Sequence[str], names: Sequence[str], dataset: str, what: str) -> str:
    """The first ``folder/name`` that exists, or a FileNotFoundError listing every place looked at."""
    tried = []
    for folder in folders:
        for name in names:
            p = os.path.join(folder, name)
            if os.path.isfile(p):
                return p
            tried.append(p)
    raise FileNotFoundError(f"{dataset}: {what} not found; lamina downloads nothing, put the file in one of: "
                            + ", ".join(tried))


def check_labels(labels: Any, num_classes: int, path: str, dataset: str) -> None:
    """Raise when a label lies outside ``0 .. num_classes - 1``, naming the first bad record."""
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        i = int(bad.argmax())
        raise DatasetFileError(f"{dataset}: {path}: label {int(labels[i])} of record {i} is out of range "
                               f"0..{num_classes - 1}")
