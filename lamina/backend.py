"""Floor 0: the array module, dtypes, devices and the global random generator.

Every array call in lamina goes through :data:`xp` (NumPy today; CuPy can take its place), so
that the floors above never name ``numpy`` for computation. Dtypes are NumPy dtypes, exported
under torch's names (``lamina.float32`` …).
"""

from __future__ import annotations

import builtins as _builtins
from typing import Any

import numpy

builtins_float, builtins_int, builtins_bool = _builtins.float, _builtins.int, _builtins.bool

__all__ = [
    "xp",
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "bool_",
    "half",
    "float",
    "double",
    "short",
    "int",
    "long",
    "get_default_dtype",
    "set_default_dtype",
    "to_dtype",
    "is_floating_dtype",
    "manual_seed",
    "default_generator",
    "Device",
    "to_device",
]

xp = numpy

float16 = numpy.dtype("float16")
float32 = numpy.dtype("float32")
float64 = numpy.dtype("float64")
int8 = numpy.dtype("int8")
int16 = numpy.dtype("int16")
int32 = numpy.dtype("int32")
int64 = numpy.dtype("int64")
uint8 = numpy.dtype("uint8")
bool_ = numpy.dtype("bool")
half, double, short, long = float16, float64, int16, int64
float = float32  # noqa: A001  (torch.float is float32)
int = int32  # noqa: A001  (torch.int is int32)

_default_dtype = float32

_DTYPE_NAMES = {
    "float16": float16, "half": float16, "float32": float32, "float": float32,
    "float64": float64, "double": float64, "int8": int8, "int16": int16, "short": int16,
    "int32": int32, "int": int32, "int64": int64, "long": int64, "uint8": uint8,
    "bool": bool_,
}


def to_dtype(dtype: Any) -> numpy.dtype:
    """Return the NumPy dtype for ``dtype`` (a dtype, a torch-style name such as ``'float32'``,
    a Python type ``float``/``int``/``bool``, or a ``torch.dtype``)."""
    if dtype is None:
        return _default_dtype
    if isinstance(dtype, numpy.dtype):
        return dtype
    if dtype is builtins_float:
        return _default_dtype
    if dtype is builtins_int:
        return int64
    if dtype is builtins_bool:
        return bool_
    name = str(dtype)
    if name.startswith("torch."):
        name = name[len("torch."):]
    if name in _DTYPE_NAMES:
        return _DTYPE_NAMES[name]
    try:
        return numpy.dtype(dtype)
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}") from None


def is_floating_dtype(dtype: numpy.dtype) -> bool:
    return dtype.kind == "f"


def get_default_dtype() -> numpy.dtype:
    """The floating dtype new tensors get from Python floats (float32 unless changed)."""
    return _default_dtype


def set_default_dtype(dtype: Any) -> None:
    """Set the default floating dtype (float32 or float64), as ``torch.set_default_dtype``."""
    global _default_dtype
    d = to_dtype(dtype)
    if d not in (float32, float64):
        raise TypeError(f"set_default_dtype: expected float32 or float64, got {d}")
    _default_dtype = d


# --- random numbers: one global generator, reseeded by manual_seed ---------------------------

default_generator = numpy.random.default_rng(0)


def manual_seed(seed: _builtins.int) -> numpy.random.Generator:
    """Seed lamina's global random generator (as ``torch.manual_seed``) and return it."""
    global default_generator
    if not isinstance(seed, (_builtins.int, numpy.integer)) or isinstance(seed, _builtins.bool):
        raise TypeError(f"manual_seed: expected an integer seed, got {type(seed).__name__}")
    default_generator = numpy.random.default_rng(_builtins.int(seed) & 0xFFFFFFFFFFFFFFFF)
    return default_generator


def generator() -> numpy.random.Generator:
    """The current global generator (after the latest ``manual_seed``)."""
    return default_generator


# --- devices ---------------------------------------------------------------------------------


class Device:
    """A device name as torch writes it; lamina runs on ``'cpu'`` (CuPy's ``'cuda'`` later)."""

    __slots__ = ("type", "index")

    def __init__(self, spec: Any = "cpu") -> None:
        if isinstance(spec, Device):
            self.type, self.index = spec.type, spec.index
            return
        s = str(spec)
        typ, _, idx = s.partition(":")
        if typ not in ("cpu", "cuda"):
            raise ValueError(f"device: expected 'cpu' or 'cuda[:N]', got {spec!r}")
        self.type = typ
        self.index = _builtins.int(idx) if idx else None

    def __eq__(self, other: object) -> _builtins.bool:
        try:
            o = Device(other)  # type: ignore[arg-type]
        except (ValueError, TypeError):
            return False
        return self.type == o.type and (self.index or 0) == (o.index or 0)

    def __hash__(self) -> _builtins.int:
        return hash((self.type, self.index or 0))

    def __repr__(self) -> str:
        return f"device(type='{self.type}'" + (f", index={self.index})" if self.index is not None else ")")

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


def to_device(spec: Any) -> Device:
    d = Device(spec)
    if d.type != "cpu":
        raise RuntimeError(f"device {d}: lamina has no CUDA backend installed yet (only 'cpu')")
    return d
