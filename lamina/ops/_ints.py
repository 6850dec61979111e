"""Integer arguments (sizes, strides, kernel sizes, shapes): ints, never truncated floats."""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd.tensor import Tensor

xp = backend.xp


def as_int(value: Any, name: str, op: str) -> int:
    """``value`` as an int when it is one (a Python or NumPy integer, or a 0-d integer tensor);
    a float, even a whole one, is refused as torch refuses it, never truncated."""
    if isinstance(value, Tensor):
        value = value.item() if value.ndim == 0 and value.dtype.kind in "iu" else value
    if isinstance(value, (int, xp.integer)) and not isinstance(value, (bool, xp.bool_)):
        return int(value)
    raise TypeError(f"{op}: {name} must be made of ints, got {value!r} ({type(value).__name__})")
