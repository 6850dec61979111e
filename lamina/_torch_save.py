"""Writing PyTorch's zip checkpoint format (floor 3, under ``serialization``), without torch.

The pickle is emitted opcode by opcode (protocol 2, as torch writes), naming only the globals
that ``torch.load(weights_only=True)`` accepts: ``collections.OrderedDict``,
``torch._utils._rebuild_tensor_v2``, ``torch._utils._rebuild_parameter``, the storage classes
and ``_codecs.encode`` (for bytes). Each tensor gets its own storage member.
"""

from __future__ import annotations

import struct
import zipfile
from collections import OrderedDict
from typing import Any

import numpy as np

from .autograd.tensor import Tensor

__all__ = ["write_torch_zip"]

_STORAGE = {np.dtype("float64"): "DoubleStorage", np.dtype("float32"): "FloatStorage",
            np.dtype("float16"): "HalfStorage", np.dtype("int64"): "LongStorage", np.dtype("int32"): "IntStorage",
            np.dtype("int16"): "ShortStorage", np.dtype("int8"): "CharStorage", np.dtype("uint8"): "ByteStorage",
            np.dtype("bool"): "BoolStorage"}


class _Emitter:
    def __init__(self) -> None:
        self.out = bytearray(b"\x80\x02")
        self.storages: list[np.ndarray] = []

    def glob(self, module: str, name: str) -> None:
        self.out += b"c" + module.encode() + b"\n" + name.encode() + b"\n"

    def text(self, s: str) -> None:
        b = s.encode("utf-8")
        self.out += b"X" + struct.pack("<I", len(b)) + b

    def integer(self, v: int) -> None:
        if -(2**31) <= v < 2**31:
            self.out += b"J" + struct.pack("<i", v)
        else:
            b = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
            if len(b) > 255:
                raise TypeError(f"lamina.save(format='torch'): integer {v} is too large")
            self.out += b"\x8a" + bytes([len(b)]) + b

    def tuple_(self, items: Any, path: str) -> None:
        self.out += b"("
        for i, v in enumerate(items):
            self.value(v, f"{path}[{i}]")
        self.out += b"t"

    def empty_ordered_dict(self) -> None:
        self.glob("collections", "OrderedDict")
        self.out += b")R"

    def tensor(self, t: Tensor) -> None:
        arr = np.ascontiguousarray(t.array).reshape(t.array.shape)  # ascontiguousarray makes 0-d 1-d
        if arr.dtype not in _STORAGE:
            raise TypeError(f"lamina.save(format='torch'): no torch storage for dtype {arr.dtype}")
        param = type(t).__name__ == "Parameter"
        if param:
            self.glob("torch._utils", "_rebuild_parameter")
            self.out += b"("
        self.glob("torch._utils", "_rebuild_tensor_v2")
        self.out += b"(("  # the call's arguments, then the persistent id tuple
        self.text("storage")
        self.glob("torch", _STORAGE[arr.dtype])
        self.text(str(len(self.storages)))
        self.text("cpu")
        self.integer(int(arr.size))
        self.out += b"tQ"
        self.storages.append(arr)
        self.integer(0)
        self.tuple_(tuple(int(s) for s in arr.shape), "")
        stride, acc = [], 1
        for s in reversed(arr.shape):
            stride.append(acc)
            acc *= max(int(s), 1)
        self.tuple_(tuple(reversed(stride)), "")
        self.out += b"\x88" if (t.requires_grad and not param) else b"\x89"
        self.empty_ordered_dict()
        self.out += b"tR"
        if param:
            self.out += b"\x88" if t.requires_grad else b"\x89"
            self.empty_ordered_dict()
            self.out += b"tR"

    def value(self, obj: Any, path: str) -> None:
        if isinstance(obj, Tensor):
            self.tensor(obj)
        elif obj is None:
            self.out += b"N"
        elif obj is True or obj is False:
            self.out += b"\x88" if obj else b"\x89"
        elif isinstance(obj, (int, np.integer)) and not isinstance(obj, (bool, np.bool_)):
            self.integer(int(obj))
        elif isinstance(obj, (float, np.floating)):
            self.out += b"G" + struct.pack(">d", float(obj))
        elif isinstance(obj, np.bool_):
            self.value(bool(obj), path)
        elif isinstance(obj, str):
            self.text(obj)
        elif isinstance(obj, bytes):
            self.glob("_codecs", "encode")
            self.out += b"("
            self.text(obj.decode("latin1"))
            self.text("latin1")
            self.out += b"tR"
        elif isinstance(obj, dict):
            if isinstance(obj, OrderedDict):
                self.glob("collections", "OrderedDict")
                self.out += b")R"
            else:
                self.out += b"}"
            if obj:
                self.out += b"("
                for k, v in obj.items():
                    if not (k is None or isinstance(k, (str, int, float, bool))):
                        raise TypeError(f"lamina.save(format='torch'): dict key {k!r} at {path or 'the top'} is "
                                        f"not a str, int, float, bool or None")
                    self.value(k, path)
                    self.value(v, f"{path}[{k!r}]")
                self.out += b"u"
        elif isinstance(obj, list):
            self.out += b"]"
            if obj:
                self.out += b"("
                for i, v in enumerate(obj):
                    self.value(v, f"{path}[{i}]")
                self.out += b"e"
        elif isinstance(obj, tuple):
            self.tuple_(obj, path)
        else:
            hint = " (make it a tensor with lamina.from_numpy)" if isinstance(obj, np.ndarray) else ""
            raise TypeError(f"lamina.save(format='torch'): cannot save an object of type {type(obj).__name__} at "
                            f"{path or 'the top'}{hint} (supported: dicts, lists, tuples, tensors, numbers, strings, "
                            f"bytes, booleans and None)")


def write_torch_zip(obj: Any, out: Any) -> None:
    """Write ``obj`` to the binary file ``out`` in torch's zip checkpoint format."""
    e = _Emitter()
    e.value(obj, "")
    e.out += b"."
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", bytes(e.out))
        zf.writestr("archive/byteorder", b"little")
        for i, arr in enumerate(e.storages):
            zf.writestr(f"archive/data/{i}", arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes())
        zf.writestr("archive/version", b"3\n")
        zf.writestr("archive/.data/serialization_id", b"0")
