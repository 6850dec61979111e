"""PyTorch's checkpoint formats, read and written without the ``pickle`` module (floor 3, under
``serialization``).

Reading: ``torch.save``'s zip format (``<name>/data.pkl`` + ``<name>/data/<key>`` storages +
``byteorder``/``version`` records) and its legacy format (``_use_new_zipfile_serialization=False``:
a magic number, protocol, system info, the object, the storage keys and the raw storages, one
pickle after another). The pickles are interpreted by :mod:`lamina._pickle`, which resolves
globals only from the whitelist below — torch's ``weights_only=True`` set of tensor-rebuild and
container globals — mapped to lamina and NumPy constructors: a crafted file raises
:class:`SerializationError` naming the refused global, and nothing in it ever runs.

Tensors come back as lamina tensors (``nn.Parameter`` as lamina's ``Parameter``), copied out of
their storages: views and tensors that shared a storage in torch are independent tensors here.

Writing: the zip format that ``torch.load(f, weights_only=True)`` reads; tensors that are NumPy
views of one base array share one storage in the file, as torch's views do.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import numpy as np

from ._archive import Archive, SerializationError
from ._pickle import Allowed, unpickle
from .autograd.tensor import Tensor

__all__ = ["LEGACY_MAGIC", "is_legacy", "is_torch_zip", "load_torch_zip", "load_torch_legacy"]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
_LEGACY_HEAD = b"\x80\x02\x8a\x0a" + LEGACY_MAGIC.to_bytes(10, "little")
_VIEW_SLACK = 1 << 22  # elements a view may hold beyond its storage's (stride-0 "expanded" tensors)

# torch's storage classes and dtypes → NumPy dtypes (bfloat16 and the quantized ones have no NumPy dtype)
_STORAGES = {"HalfStorage": "float16", "FloatStorage": "float32", "DoubleStorage": "float64", "CharStorage": "int8",
             "ShortStorage": "int16", "IntStorage": "int32", "LongStorage": "int64", "ByteStorage": "uint8",
             "BoolStorage": "bool", "ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128"}
_DTYPES = {"float16": "float16", "half": "float16", "float32": "float32", "float": "float32", "float64": "float64",
           "double": "float64", "int8": "int8", "int16": "int16", "short": "int16", "int32": "int32", "int": "int32",
           "int64": "int64", "long": "int64", "uint8": "uint8", "bool": "bool", "complex64": "complex64",
           "cfloat": "complex64", "complex128": "complex128", "cdouble": "complex128"}
_UNSUPPORTED = {"BFloat16Storage": "bfloat16", "bfloat16": "bfloat16", "QInt8Storage": "qint8",
                "QUInt8Storage": "quint8", "QInt32Storage": "qint32", "float8_e4m3fn": "float8_e4m3fn",
                "float8_e5m2": "float8_e5m2", "complex32": "complex32", "uint16": "uint16",
                "uint32": "uint32", "uint64": "uint64"}


class _StorageType:
    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype: np.dtype) -> None:
        self.name, self.dtype = name, dtype


class _Storage:
    """A storage a tensor refers to; ``array`` (1-d, of ``dtype``) is filled once its bytes are read."""

    __slots__ = ("key", "dtype", "numel", "array")

    def __init__(self, key: str, dtype: np.dtype, numel: int) -> None:
        self.key, self.dtype, self.numel = key, dtype, numel
        self.array: np.ndarray | None = None


class _TensorRef:
    """A tensor to cut out of a storage once all storages are read (the legacy format stores them last)."""

    __slots__ = ("storage", "offset", "size", "stride", "requires_grad", "parameter")

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple, requires_grad: bool) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride
        self.requires_grad, self.parameter = requires_grad, False


class _Reader:
    """The whitelist and the rebuild functions for one file (``what`` names it in messages)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.storages: dict[str, _Storage] = {}
        self.allowed = {
            "collections.OrderedDict": Allowed("collections.OrderedDict", self._ordered_dict),
            "torch._utils._rebuild_tensor": Allowed("torch._utils._rebuild_tensor", self._rebuild_tensor),
            "torch._utils._rebuild_tensor_v2": Allowed("torch._utils._rebuild_tensor_v2", self._rebuild_tensor),
            "torch._utils._rebuild_parameter": Allowed("torch._utils._rebuild_parameter", self._rebuild_parameter),
            "torch._utils._rebuild_parameter_with_state": Allowed("torch._utils._rebuild_parameter_with_state",
                                                                  self._rebuild_parameter),
            "torch.Size": Allowed("torch.Size", self._size),
            "torch.device": Allowed("torch.device", lambda *a: ":".join(str(x) for x in a)),
            "builtins.set": Allowed("builtins.set", lambda items=(): set(self._plain(items, "set"))),
            "builtins.frozenset": Allowed("builtins.frozenset", lambda items=(): frozenset(self._plain(items, "set"))),
            "builtins.complex": Allowed("builtins.complex", self._complex),
            "_codecs.encode": Allowed("_codecs.encode", self._encode),
        }

    def error(self, problem: str) -> SerializationError:
        return SerializationError(f"{self.what}: {problem}")

    def find_class(self, module: str, name: str) -> Any:
        if module == "__builtin__":  # protocol 2 spells builtins as Python 2 did (pickle's fix_imports)
            module = "builtins"
        full = f"{module}.{name}"
        if full in self.allowed:
            return self.allowed[full]
        if module in ("torch", "torch.storage") and name in _STORAGES:
            return _StorageType(name, np.dtype(_STORAGES[name]))
        if module == "torch.storage" and name == "UntypedStorage":
            return _StorageType(name, np.dtype("uint8"))
        if module == "torch" and name in _DTYPES:
            return np.dtype(_DTYPES[name])
        if module in ("torch", "torch.storage") and name in _UNSUPPORTED:
            raise self.error(f"it holds {_UNSUPPORTED[name]} data ({full}), a dtype lamina has no kernels for "
                             "(convert it in torch first, e.g. to float32)")
        raise self.error(f"the global {full} is not allowed: lamina loads only tensors, containers and numbers "
                         "(the globals torch.load(weights_only=True) accepts), and never runs code from a file")

    # ---- the constructors REDUCE may call -------------------------------------------------------

    def _ordered_dict(self, items: Any = ()) -> OrderedDict:
        return OrderedDict(self._plain(items, "collections.OrderedDict"))

    def _plain(self, items: Any, name: str) -> Any:
        if not isinstance(items, (tuple, list, dict, set, frozenset)):
            raise self.error(f"{name} is given a {type(items).__name__}, not a container")
        return items

    def _size(self, dims: Any = ()) -> tuple:
        if not isinstance(dims, tuple) or not all(type(d) is int for d in dims):
            raise self.error(f"torch.Size of {dims!r}, not a tuple of integers")
        return dims

    def _complex(self, real: Any = 0.0, imag: Any = 0.0) -> complex:
        if not all(isinstance(v, (int, float)) for v in (real, imag)):
            raise self.error("builtins.complex of something other than two numbers")
        return complex(real, imag)

    def _encode(self, text: Any, encoding: Any = "utf-8") -> bytes:
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            raise self.error("_codecs.encode is allowed only as protocol 2's spelling of bytes (a str, 'latin1')")
        return text.encode("latin1")

    def _rebuild_tensor(self, storage: Any = None, offset: Any = None, size: Any = None, stride: Any = None,
                        requires_grad: Any = False, hooks: Any = None, metadata: Any = None) -> _TensorRef:
        if not isinstance(storage, _Storage):
            raise self.error(f"a tensor is rebuilt from a {type(storage).__name__}, not a storage")
        if type(offset) is not int or offset < 0:
            raise self.error(f"a tensor's storage offset is {offset!r}, not a non-negative integer")
        for label, dims in (("size", size), ("stride", stride)):
            if not isinstance(dims, tuple) or not all(type(d) is int and d >= 0 for d in dims):
                raise self.error(f"a tensor's {label} is {dims!r}, not a tuple of non-negative integers")
        if len(size) != len(stride):
            raise self.error(f"a tensor's size {size} and stride {stride} differ in length")
        if not isinstance(requires_grad, bool):
            raise self.error(f"a tensor's requires_grad is {requires_grad!r}, not a bool")
        if hooks:
            raise self.error("a tensor carries backward hooks, which lamina does not load (they are code)")
        return _TensorRef(storage, offset, size, stride, requires_grad)

    def _rebuild_parameter(self, data: Any = None, requires_grad: Any = True, hooks: Any = None,
                           state: Any = None) -> _TensorRef:
        if not isinstance(data, _TensorRef) or not isinstance(requires_grad, bool):
            raise self.error(f"a parameter is rebuilt from a {type(data).__name__}, not a tensor")
        if hooks:
            raise self.error("a parameter carries backward hooks, which lamina does not load (they are code)")
        if state:
            raise self.error("a parameter carries extra attributes, which lamina does not load")
        ref = _TensorRef(data.storage, data.offset, data.size, data.stride, requires_grad)
        ref.parameter = True
        return ref

    def build(self, obj: Any, state: Any) -> None:
        """BUILD: only a state_dict's ``_metadata`` (an OrderedDict's attributes) is accepted."""
        if not (type(obj) is OrderedDict and isinstance(state, dict) and set(state) <= {"_metadata"}):
            raise self.error(f"BUILD of a {type(obj).__name__} with a {type(state).__name__} state is not allowed "
                             "(only a state_dict's _metadata is)")
        obj._metadata = state.get("_metadata")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise self.error(f"a persistent id {str(pid)[:80]} is not a ('storage', type, key, location, numel) tuple")
        _, stype, key, _location, numel = pid[:5]
        if not isinstance(stype, _StorageType) or not isinstance(key, str) or type(numel) is not int or numel < 0:
            raise self.error(f"a malformed storage id {str(pid)[:80]}")
        if len(pid) == 6 and pid[5] is not None:
            raise self.error("it holds a legacy storage view (torch < 0.4), which lamina does not read")
        if key in self.storages:
            s = self.storages[key]
            if s.dtype != stype.dtype or s.numel != numel:
                raise self.error(f"storage {key!r} is declared twice, differently")
            return s
        s = self.storages[key] = _Storage(key, stype.dtype, numel)
        return s

    # ---- after the storages are read ------------------------------------------------------------

    def tensor(self, ref: _TensorRef) -> Tensor:
        s = ref.storage
        if s.array is None:
            raise self.error(f"storage {s.key!r} has no data in the file (truncated?)")
        count = math.prod(ref.size)
        if count == 0:
            arr = np.empty(ref.size, dtype=s.dtype)
        else:
            last = ref.offset + sum((n - 1) * st for n, st in zip(ref.size, ref.stride))
            if last >= s.numel:
                raise self.error(f"a tensor of size {ref.size}, stride {ref.stride} at offset {ref.offset} reaches "
                                 f"element {last:,} of storage {s.key!r}, which holds {s.numel:,}")
            if count > max(s.numel, _VIEW_SLACK):
                raise self.error(f"a tensor of size {ref.size} ({count:,} elements) expands storage {s.key!r} of "
                                 f"{s.numel:,}; lamina refuses views that large")
            item = s.dtype.itemsize
            view = np.lib.stride_tricks.as_strided(s.array[ref.offset:], ref.size, [st * item for st in ref.stride],
                                                   writeable=False)
            arr = np.array(view, order="C")
        t = Tensor._wrap(arr)
        grad = ref.requires_grad and arr.dtype.kind in "fc"
        if ref.parameter:
            from .nn.parameter import Parameter

            return Parameter(t, requires_grad=grad)
        if grad:
            t.requires_grad_()
        return t

    def resolve(self, obj: Any, memo: dict[int, Any] | None = None) -> Any:
        """``obj`` with every tensor reference replaced by its tensor (shared objects stay shared)."""
        memo = {} if memo is None else memo
        if id(obj) in memo:
            return memo[id(obj)]
        if isinstance(obj, _TensorRef):
            out: Any = self.tensor(obj)
        elif isinstance(obj, dict):
            out = OrderedDict() if type(obj) is OrderedDict else {}
            memo[id(obj)] = out
            for k, v in obj.items():
                out[k] = self.resolve(v, memo)
            if hasattr(obj, "_metadata"):
                out._metadata = obj._metadata
            return out
        elif isinstance(obj, list):
            out = []
            memo[id(obj)] = out
            out.extend(self.resolve(v, memo) for v in obj)
            return out
        elif isinstance(obj, tuple):
            out = tuple(self.resolve(v, memo) for v in obj)
        elif isinstance(obj, (set, frozenset)):
            out = type(obj)(self.resolve(v, memo) for v in obj)
        else:
            return obj
        memo[id(obj)] = out
        return out

    def finish(self, obj: Any) -> Any:
        try:
            return self.resolve(obj)
        except RecursionError:
            raise self.error("the structure is nested too deeply") from None


def _storage_array(data: bytes | memoryview, s: _Storage, big_endian: bool, what: str) -> np.ndarray:
    if len(data) != s.numel * s.dtype.itemsize:
        raise SerializationError(f"{what}: storage {s.key!r} holds {len(data):,} bytes, but {s.numel:,} elements of "
                                 f"{s.dtype} need {s.numel * s.dtype.itemsize:,}")
    arr = np.frombuffer(data, dtype=s.dtype.newbyteorder(">") if big_endian else s.dtype)
    return arr.astype(s.dtype) if big_endian else arr


def is_torch_zip(archive: Archive) -> str | None:
    """The folder name of the torch archive in ``archive`` (``'archive'`` …), or None if it is none."""
    tops = [n[:-len("/data.pkl")] for n in archive.infos if n.endswith("/data.pkl") and n.count("/") == 1]
    return tops[0] if len(tops) == 1 else None


def is_legacy(head: bytes) -> bool:
    """Whether ``head`` (a file's first 14 bytes) starts torch's legacy (pre-zip) format."""
    return head[:len(_LEGACY_HEAD)] == _LEGACY_HEAD


def load_torch_zip(archive: Archive, top: str, name: str) -> Any:
    """What ``torch.save`` wrote into the zip ``archive`` (its records under ``top/``)."""
    what = f"lamina.load: {name}"
    reader = _Reader(what)
    order = "little"
    if f"{top}/byteorder" in archive.infos:
        order = archive.read_bytes(f"{top}/byteorder", f"{what} ({top}/byteorder)").decode("ascii", "replace")
        if order not in ("little", "big"):
            raise SerializationError(f"{what}: its byteorder record says {order[:20]!r}, not 'little' or 'big'")
    data = archive.read_bytes(f"{top}/data.pkl", f"{what} ({top}/data.pkl)")
    obj, end = unpickle(data, f"{what} ({top}/data.pkl)", reader.find_class, reader.persistent_load, reader.build)
    if end != len(data):
        raise SerializationError(f"{what}: {top}/data.pkl holds {len(data) - end:,} bytes after its end")
    for key, s in reader.storages.items():
        record = f"{top}/data/{key}"
        if record not in archive.infos:
            raise SerializationError(f"{what}: the storage record {record!r} is missing (truncated file?)")
        s.array = _storage_array(archive.read_bytes(record, f"{what} ({record})"), s, order == "big", what)
    return reader.finish(obj)


def load_torch_legacy(fileobj: Any, name: str) -> Any:
    """What ``torch.save(..., _use_new_zipfile_serialization=False)`` wrote into ``fileobj``."""
    what = f"lamina.load: {name}"
    fileobj.seek(0)
    data = memoryview(fileobj.read())
    reader = _Reader(what)
    refuse = _refuse_globals(what)
    magic, pos = unpickle(data, what, refuse)
    protocol, pos = unpickle(data, what, refuse, start=pos)
    info, pos = unpickle(data, what, refuse, start=pos)
    if magic != LEGACY_MAGIC or protocol != 1001 or not isinstance(info, dict):
        raise SerializationError(f"{what}: not a torch file (bad legacy header)")
    big = info.get("little_endian") is False
    obj, pos = unpickle(data, what, reader.find_class, reader.persistent_load, reader.build, start=pos)
    keys, pos = unpickle(data, what, refuse, start=pos)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise SerializationError(f"{what}: the storage key list is malformed")
    for key in keys:
        if key not in reader.storages:
            raise SerializationError(f"{what}: the file stores storage {key!r}, which no tensor declared")
        s = reader.storages[key]
        if pos + 8 > len(data):
            raise SerializationError(f"{what}: ends before storage {key!r} (truncated)")
        numel = int.from_bytes(data[pos:pos + 8], "big" if big else "little", signed=True)
        pos += 8
        if numel != s.numel:
            raise SerializationError(f"{what}: storage {key!r} holds {numel:,} elements, but {s.numel:,} are declared")
        nbytes = numel * s.dtype.itemsize
        if pos + nbytes > len(data):
            raise SerializationError(f"{what}: ends inside storage {key!r} (truncated)")
        s.array = _storage_array(data[pos:pos + nbytes], s, big, what)
        pos += nbytes
    return reader.finish(obj)


def _refuse_globals(what: str) -> Any:
    """A ``find_class`` for the legacy format's header pickles, which hold plain values only."""
    def find_class(module: str, name: str) -> Any:
        raise SerializationError(f"{what}: the global {module}.{name} is not allowed in a legacy header")
    return find_class
