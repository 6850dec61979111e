"""Reading PyTorch's ``.pt``/``.pth`` files without executing code (floor 3, under ``serialization``).

A torch file is a pickle: left to ``pickle.load`` it can call any function. Here the pickle is read
by an unpickler whose ``find_class`` knows only the globals that ``torch.load(weights_only=True)``
allows for plain checkpoints — containers (``collections.OrderedDict``, ``builtins.set`` …), the
tensor-rebuild functions (``torch._utils._rebuild_tensor_v2``, ``_rebuild_parameter`` …), the
storage classes, ``torch.Size``, ``torch.device`` and the dtypes — each mapped to a lamina
stand-in that only records its arguments. Any other global is refused with a
:class:`SerializationError` before anything is called, so a crafted payload never runs. When the
pickle is read, every record is checked (offsets and strides inside their storage, storage sizes
against the bytes the file holds) and the result tree is checked to hold only containers,
numbers, strings and tensors.

Both layouts are read: the zip archive torch writes since 1.6 (``<name>/data.pkl`` and one
``<name>/data/<key>`` member per storage) and the legacy one (a run of pickles followed by the raw
storages).
"""

from __future__ import annotations

import io
import pickle
import struct
import sys
import zipfile
from collections import Counter, OrderedDict
from typing import Any

import numpy as np

from ._archive import DEFLATE_MAX_RATIO, STREAM_ERRORS, SerializationError

__all__ = ["is_torch_zip", "is_torch_legacy", "load_torch_zip", "load_torch_legacy", "STORAGE_DTYPES"]

STORAGE_DTYPES = {
    "DoubleStorage": np.dtype("float64"), "FloatStorage": np.dtype("float32"), "HalfStorage": np.dtype("float16"),
    "LongStorage": np.dtype("int64"), "IntStorage": np.dtype("int32"), "ShortStorage": np.dtype("int16"),
    "CharStorage": np.dtype("int8"), "ByteStorage": np.dtype("uint8"), "BoolStorage": np.dtype("bool"),
    "BFloat16Storage": np.dtype("uint16"),  # read as raw halves of float32, widened exactly below
    "UntypedStorage": np.dtype("uint8"),
}
_DTYPE_NAMES = {"float64": "float64", "double": "float64", "float32": "float32", "float": "float32",
                "float16": "float16", "half": "float16", "int64": "int64", "long": "int64", "int32": "int32",
                "int": "int32", "int16": "int16", "short": "int16", "int8": "int8", "uint8": "uint8", "bool": "bool",
                "bfloat16": "bfloat16"}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_MAX_PICKLE = 1 << 30  # bytes of data.pkl read into memory


class _StorageType:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class _Storage:
    """A storage a tensor points into: its element dtype, key, size, and (once read) its array."""

    __slots__ = ("name", "dtype", "key", "numel", "array")

    def __init__(self, name: str, key: str, numel: int) -> None:
        self.name, self.dtype, self.key, self.numel, self.array = name, STORAGE_DTYPES[name], key, numel, None


class _PendingTensor:
    """What ``_rebuild_tensor_v2`` stands for until the storages are read."""

    __slots__ = ("storage", "offset", "size", "stride", "requires_grad", "parameter")

    def __init__(self, storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride
        self.requires_grad, self.parameter = requires_grad, False


class _Dtype:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                       backward_hooks: Any = None, metadata: Any = None) -> _PendingTensor:
    return _PendingTensor(storage, storage_offset, size, stride, requires_grad)


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any) -> _PendingTensor:
    return _PendingTensor(storage, storage_offset, size, stride, False)


def _rebuild_parameter(data: Any, requires_grad: Any, backward_hooks: Any = None, state: Any = None) -> Any:
    if not isinstance(data, _PendingTensor):
        raise SerializationError(f"a parameter must wrap a tensor, got {type(data).__name__}")
    data.parameter, data.requires_grad = True, requires_grad
    return data


def _parameter(data: Any = None, requires_grad: Any = True) -> Any:
    return _rebuild_parameter(data, requires_grad)


def _size(*args: Any) -> tuple[Any, ...]:
    return tuple(*args)


def _device(*args: Any) -> str:
    return ":".join(str(a) for a in args)


def _bytearray(data: Any = b"") -> bytearray:
    if not isinstance(data, (bytes, bytearray)):  # bytearray(10**10) would allocate that much
        raise SerializationError(f"builtins.bytearray: expected bytes, got {type(data).__name__}")
    return bytearray(data)


def _encode(text: Any, encoding: Any = "latin1") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise SerializationError("_codecs.encode: expected a str and 'latin1'")
    return text.encode("latin1")


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("collections", "Counter"): Counter,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "bytearray"): _bytearray,
    ("_codecs", "encode"): _encode,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.nn.parameter", "Parameter"): _parameter,
    ("torch", "Size"): _size,
    ("torch", "device"): _device,
}
_ALLOWED.update({("torch", n): _StorageType(n) for n in STORAGE_DTYPES})
_ALLOWED.update({("torch.storage", "UntypedStorage"): _StorageType("UntypedStorage")})
_ALLOWED.update({("torch", n): _Dtype(d) for n, d in _DTYPE_NAMES.items()})


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: Any, what: str, storages: dict[str, _Storage], legacy: bool) -> None:
        super().__init__(file, encoding="utf-8")
        self.what, self.storages, self.legacy = what, storages, legacy

    def find_class(self, module: str, name: str) -> Any:
        target = _ALLOWED.get((module, name))
        if target is None:
            raise SerializationError(
                f"{self.what}: the pickle asks for {module}.{name}, which is not a tensor, a container or a "
                "number (only the globals torch.load(weights_only=True) allows for plain checkpoints are read; "
                "nothing was executed)")
        return target

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str) and isinstance(pid[4], int)
                and not isinstance(pid[4], bool) and pid[4] >= 0):
            raise SerializationError(f"{self.what}: malformed storage reference {_short(pid)}")
        _, stype, key, _location, numel = pid[:5]
        if self.legacy and len(pid) == 6 and pid[5] is not None:
            raise SerializationError(f"{self.what}: storage views of the legacy format are not supported")
        s = self.storages.get(key)
        if s is None:
            s = self.storages[key] = _Storage(stype.name, key, numel)
        elif s.name != stype.name or s.numel != numel:
            raise SerializationError(f"{self.what}: storage {key!r} is declared twice with different types or sizes")
        return s


def _short(x: Any) -> str:
    text = repr(x)
    return text if len(text) <= 80 else text[:77] + "..."


# what a malformed pickle makes the unpickler raise (a stand-in called with wrong arguments: TypeError)
_PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError,
                  OverflowError, MemoryError, RecursionError, UnicodeDecodeError, struct.error)


def _unpickle(data: Any, what: str, storages: dict[str, _Storage], legacy: bool) -> Any:
    try:
        return _Unpickler(data, what, storages, legacy).load()
    except SerializationError:
        raise
    except _PICKLE_ERRORS as e:
        raise SerializationError(f"{what}: unreadable pickle ({type(e).__name__}: {e})") from None


def _ints(x: Any, what: str, field: str) -> tuple[int, ...]:
    if not isinstance(x, tuple) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in x):
        raise SerializationError(f"{what}: a tensor's {field} must be a tuple of non-negative integers, "
                                 f"got {_short(x)}")
    return x


def _tensor(p: _PendingTensor, what: str) -> Any:
    from .autograd.tensor import Tensor

    s = p.storage
    if not isinstance(s, _Storage) or s.array is None:
        raise SerializationError(f"{what}: a tensor refers to no storage (got {_short(s)})")
    size, stride = _ints(p.size, what, "size"), _ints(p.stride, what, "stride")
    offset = p.offset
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0 or len(size) != len(stride):
        raise SerializationError(f"{what}: bad tensor record (offset {_short(offset)}, size {size}, stride {stride})")
    if not isinstance(p.requires_grad, bool):
        raise SerializationError(f"{what}: requires_grad must be a bool, got {_short(p.requires_grad)}")
    n = int(np.prod(size, dtype=object))
    last = offset + sum((d - 1) * st for d, st in zip(size, stride)) if n else offset - 1
    if last >= s.numel:
        raise SerializationError(f"{what}: a tensor of size {size} (stride {stride}, offset {offset}) reaches element "
                                 f"{last} of storage {s.key!r}, which holds {s.numel}")
    arr = s.array
    if n:
        item = arr.itemsize
        arr = np.lib.stride_tricks.as_strided(arr[offset:], shape=size, strides=tuple(st * item for st in stride))
    else:
        arr = np.empty(size, dtype=arr.dtype)
    arr = np.array(arr)  # own memory, C-contiguous
    if s.name == "BFloat16Storage":  # bfloat16 is the top half of a float32: widening is exact
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    t = Tensor._wrap(arr)
    grad = p.requires_grad and arr.dtype.kind == "f"
    if p.parameter:
        from .nn.parameter import Parameter

        return Parameter(t, requires_grad=grad)
    return t.requires_grad_() if grad else t


def _resolve(obj: Any, what: str, depth: int = 0) -> Any:
    """The loaded tree with tensors built, checked to hold only what a checkpoint holds."""
    if depth > 200:
        raise SerializationError(f"{what}: the structure is nested too deeply")
    if isinstance(obj, _PendingTensor):
        return _tensor(obj, what)
    if obj is None or type(obj) in (bool, int, float, str, bytes):
        return obj
    if type(obj) in (dict, OrderedDict, Counter):
        out = OrderedDict() if type(obj) is OrderedDict else {}
        for k, v in obj.items():
            out[_resolve(k, what, depth + 1)] = _resolve(v, what, depth + 1)
        return out
    if type(obj) in (list, tuple, set, frozenset):
        return type(obj)(_resolve(v, what, depth + 1) for v in obj)
    if type(obj) is bytearray:
        return bytes(obj)
    if isinstance(obj, _Dtype):
        if obj.name == "bfloat16":
            raise SerializationError(f"{what}: holds the dtype torch.bfloat16, which lamina has not")
        return np.dtype(obj.name)
    raise SerializationError(f"{what}: holds a {type(obj).__name__} ({_short(obj)}), which lamina does not read "
                             "from a torch file")


def _from_little(data: bytes, dtype: np.dtype) -> np.ndarray:
    """The array in little-endian ``data``, in the native byte order (read-only until copied)."""
    arr = np.frombuffer(data, dtype=dtype.newbyteorder("<"))
    return arr.view(dtype) if sys.byteorder == "little" else arr.astype(dtype)


def is_torch_zip(zf: zipfile.ZipFile) -> bool:
    return any(n.endswith("/data.pkl") or n == "data.pkl" for n in zf.namelist())


def is_torch_legacy(head: bytes) -> bool:
    """Whether a file's first bytes open a pickle (the legacy torch format starts with one)."""
    return len(head) >= 2 and head[0] == 0x80 and head[1] in (2, 3, 4, 5)


def _member_bytes(zf: zipfile.ZipFile, info: zipfile.ZipInfo, archive_size: int, what: str) -> bytes:
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise SerializationError(f"{what}: member {info.filename!r} uses an unsupported compression")
    if info.compress_size > archive_size or (
            info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size) or (
            info.file_size > max(info.compress_size, 1) * DEFLATE_MAX_RATIO):
        raise SerializationError(f"{what}: member {info.filename!r} declares sizes its archive cannot hold")
    try:
        return zf.read(info)
    except STREAM_ERRORS as e:
        raise SerializationError(f"{what}: cannot read member {info.filename!r} ({e})") from None


def load_torch_zip(zf: zipfile.ZipFile, archive_size: int, what: str) -> Any:
    """The object in a torch zip checkpoint, read without executing code."""
    pkl = [i for i in zf.infolist() if i.filename.endswith("/data.pkl") or i.filename == "data.pkl"]
    if len(pkl) != 1:
        raise SerializationError(f"{what}: expected one data.pkl in the archive, found {len(pkl)}")
    prefix = pkl[0].filename[: -len("data.pkl")]
    byteorder = prefix + "byteorder"
    if byteorder in zf.namelist() and _member_bytes(zf, zf.getinfo(byteorder), archive_size, what) != b"little":
        raise SerializationError(f"{what}: big-endian torch files are not supported")
    if pkl[0].file_size > _MAX_PICKLE:
        raise SerializationError(f"{what}: data.pkl is larger than {_MAX_PICKLE} bytes")
    storages: dict[str, _Storage] = {}
    obj = _unpickle(io.BytesIO(_member_bytes(zf, pkl[0], archive_size, what)), what, storages, legacy=False)
    for key, s in storages.items():
        name = f"{prefix}data/{key}"
        try:
            info = zf.getinfo(name)
        except KeyError:
            raise SerializationError(f"{what}: storage {key!r} has no member {name!r}") from None
        need = s.numel * s.dtype.itemsize
        if info.file_size != need:
            raise SerializationError(f"{what}: storage {key!r} should hold {need} bytes ({s.numel} x {s.dtype}), "
                                     f"its member holds {info.file_size}")
        s.array = _from_little(_member_bytes(zf, info, archive_size, what), s.dtype)
    return _resolve(obj, what)


def load_torch_legacy(f: Any, size: int, what: str) -> Any:
    """The object in a legacy (pre-1.6) torch checkpoint: magic, protocol and system pickles, the
    object, the storage keys, then each storage's element count and bytes."""
    magic = _unpickle(f, what, {}, legacy=True)
    if magic != _LEGACY_MAGIC:
        raise SerializationError(f"{what}: not a torch file (a pickle without torch's magic number)")
    protocol = _unpickle(f, what, {}, legacy=True)
    if protocol != 1001:
        raise SerializationError(f"{what}: unsupported legacy torch protocol {_short(protocol)}")
    info = _unpickle(f, what, {}, legacy=True)
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise SerializationError(f"{what}: big-endian or unknown legacy torch files are not supported")
    storages: dict[str, _Storage] = {}
    obj = _unpickle(f, what, storages, legacy=True)
    keys = _unpickle(f, what, {}, legacy=True)
    if not isinstance(keys, list) or sorted(map(str, keys)) != sorted(storages):
        raise SerializationError(f"{what}: the storage list {_short(keys)} does not match the object's storages")
    for key in keys:
        s = storages[key]
        head = f.read(8)
        if len(head) != 8:
            raise SerializationError(f"{what}: the file ends before storage {key!r}")
        numel = int.from_bytes(head, "little", signed=True)
        need = numel * s.dtype.itemsize
        if numel != s.numel or need > size - f.tell():
            raise SerializationError(f"{what}: storage {key!r} declares {numel} elements ({s.numel} expected, "
                                     f"{size - f.tell()} bytes left)")
        data = f.read(need)
        s.array = _from_little(data, s.dtype)
    return _resolve(obj, what)
