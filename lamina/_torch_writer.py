"""Writing PyTorch's zip checkpoint format without the ``pickle`` module (floor 3, under ``serialization``).

``lamina.save(obj, f, format="torch")`` writes what ``torch.load(f, weights_only=True)`` reads:
``archive/data.pkl`` (a protocol-2 pickle of the structure, written opcode by opcode by
:class:`lamina._pickle.PickleWriter`, whose tensors are ``torch._utils._rebuild_tensor_v2`` calls on
persistent storage ids), ``archive/data/<key>`` (the raw little-endian storages) and the
``byteorder``/``version`` records. Tensors whose arrays are NumPy views of one base array share one
storage in the file, with their offsets and strides, as torch's views do.
"""

from __future__ import annotations

import math
import sys
import zipfile
from collections import OrderedDict
from typing import Any

import numpy as np

from ._pickle import PickleWriter
from .autograd.tensor import Tensor

__all__ = ["save_torch"]

_STORAGE_OF = {np.dtype(k): v for k, v in {
    "float16": "HalfStorage", "float32": "FloatStorage", "float64": "DoubleStorage", "int8": "CharStorage",
    "int16": "ShortStorage", "int32": "IntStorage", "int64": "LongStorage", "uint8": "ByteStorage",
    "bool": "BoolStorage", "complex64": "ComplexFloatStorage", "complex128": "ComplexDoubleStorage"}.items()}
_DTYPE_NAME = {np.dtype(k): k for k in ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
                                        "bool", "complex64", "complex128")}


def _root(arr: np.ndarray) -> np.ndarray:
    while isinstance(arr.base, np.ndarray):
        arr = arr.base
    return arr


class _Writer:
    def __init__(self) -> None:
        self.w = PickleWriter()
        self.storages: dict[int, tuple[str, np.ndarray]] = {}  # id(base array) → (key, its bytes as a 1-d array)

    def storage_of(self, arr: np.ndarray) -> tuple[str, np.ndarray, int, tuple[int, ...]]:
        """The storage (key, 1-d array) holding ``arr``, ``arr``'s offset in it and its strides in elements."""
        root = _root(arr)
        item = arr.dtype.itemsize
        shareable = (root.dtype == arr.dtype and root.flags.c_contiguous and root.size > 0 and arr.size > 0
                     and all(s >= 0 and s % item == 0 for s in arr.strides))
        if shareable:
            start = arr.__array_interface__["data"][0] - root.__array_interface__["data"][0]
            if start % item == 0 and start >= 0:
                flat = root.reshape(-1)
                key = self.storages.setdefault(id(root), (str(len(self.storages)), flat))[0]
                return key, flat, start // item, tuple(s // item for s in arr.strides)
        flat = np.ascontiguousarray(arr).reshape(-1)
        key = str(len(self.storages))
        self.storages[id(flat)] = (key, flat)
        strides, acc = [], 1
        for n in reversed(arr.shape):
            strides.append(acc)
            acc *= max(n, 1)
        return key, flat, 0, tuple(reversed(strides))

    def ordered_dict(self) -> None:
        self.w.global_("collections", "OrderedDict")
        self.w.empty_tuple()
        self.w.reduce()

    def ints(self, values: tuple[int, ...]) -> None:
        self.w.mark()
        for v in values:
            self.w.int(int(v))
        self.w.tuple()

    def tensor(self, t: Tensor) -> None:
        arr = np.asarray(t.array)
        if arr.dtype not in _STORAGE_OF:
            raise TypeError(f"lamina.save(format='torch'): a tensor of dtype {arr.dtype} has no torch storage type")
        parameter = type(t).__name__ == "Parameter"
        if parameter:
            self.w.global_("torch._utils", "_rebuild_parameter")
            self.w.mark()
        key, flat, offset, strides = self.storage_of(arr)
        self.w.global_("torch._utils", "_rebuild_tensor_v2")
        self.w.mark()
        self.w.mark()
        self.w.str("storage")
        self.w.global_("torch", _STORAGE_OF[arr.dtype])
        self.w.str(key)
        self.w.str("cpu")
        self.w.int(flat.size)
        self.w.tuple()
        self.w.persid()
        self.w.int(offset)
        self.ints(arr.shape)
        self.ints(strides)
        self.w.bool(bool(t.requires_grad) and not parameter)
        self.ordered_dict()
        self.w.tuple()
        self.w.reduce()
        if parameter:
            self.w.bool(bool(t.requires_grad))
            self.ordered_dict()
            self.w.tuple()
            self.w.reduce()

    def write(self, obj: Any, path: str) -> None:
        if isinstance(obj, Tensor):
            self.tensor(obj)
        elif isinstance(obj, np.ndarray):
            raise TypeError(f"lamina.save(format='torch'): a NumPy array at {path or 'the top'}: torch.load("
                            "weights_only=True) refuses NumPy arrays; save it as a tensor (lamina.from_numpy)")
        elif isinstance(obj, np.dtype) and obj in _DTYPE_NAME:
            self.w.global_("torch", _DTYPE_NAME[obj])
        elif obj is None:
            self.w.none()
        elif isinstance(obj, (bool, np.bool_)):
            self.w.bool(bool(obj))
        elif isinstance(obj, (int, np.integer)):
            self.w.int(int(obj))
        elif isinstance(obj, (float, np.floating)):
            self.w.float(float(obj))
        elif isinstance(obj, str):
            self.w.str(obj)
        elif isinstance(obj, dict):
            if isinstance(obj, OrderedDict):
                self.ordered_dict()
            else:
                self.w.empty_dict()
            self.w.mark()
            for k, v in obj.items():
                if not (k is None or isinstance(k, (str, int, float, bool))):
                    raise TypeError(f"lamina.save(format='torch'): dict key {k!r} at {path or 'the top'} is not a "
                                    "str, int, float, bool or None")
                self.write(k, path)
                self.write(v, f"{path}[{k!r}]")
            self.w.setitems()
        elif isinstance(obj, (list, tuple)):
            is_list = isinstance(obj, list)
            if is_list:
                self.w.empty_list()
            self.w.mark()
            for i, v in enumerate(obj):
                self.write(v, f"{path}[{i}]")
            if is_list:
                self.w.appends()
            else:
                self.w.tuple()
        else:
            raise TypeError(f"lamina.save(format='torch'): cannot save an object of type {type(obj).__name__} at "
                            f"{path or 'the top'} (supported: dicts, lists, tuples, tensors, numbers, strings, "
                            "booleans and None)")


def save_torch(obj: Any, out: Any) -> None:
    """Write ``obj`` in torch's zip format to the binary file ``out``."""
    writer = _Writer()
    writer.write(obj, "")
    pickled = writer.w.getvalue()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickled)
        z.writestr("archive/byteorder", "little")
        for key, flat in writer.storages.values():
            data = flat if sys.byteorder == "little" else flat.astype(flat.dtype.newbyteorder("<"))
            z.writestr(f"archive/data/{key}", data.tobytes() if math.prod(flat.shape) else b"")
        z.writestr("archive/version", "3\n")
