"""Floor 0: ``finfo``, ``iinfo`` (a dtype's numeric limits) and ``Size``, as torch's."""

from __future__ import annotations

import math
from typing import Any

import numpy

from . import backend

__all__ = ["finfo", "iinfo", "Size"]


class finfo:  # noqa: N801  (torch's name)
    """The limits of a floating dtype (default: the default dtype), as ``torch.finfo``: ``bits``,
    ``eps``, ``max``, ``min``, ``tiny`` (= ``smallest_normal``), ``resolution``, ``dtype``.

    Example:
        >>> import lamina
        >>> lamina.finfo(lamina.float32).eps
        1.1920928955078125e-07
    """

    def __init__(self, type: Any = None) -> None:  # noqa: A002  (torch's argument name)
        d = backend.to_dtype(type)
        if d.kind != "f":
            raise TypeError(f"finfo() requires a floating point input type (got {d}); use lamina.iinfo for it")
        info = numpy.finfo(d)
        self.bits, self.dtype = int(info.bits), str(d)
        self.eps, self.max, self.min = float(info.eps), float(info.max), float(info.min)
        self.tiny = self.smallest_normal = float(info.smallest_normal)
        self.resolution = 10.0 ** -int(info.precision)  # torch gives the decimal power, not the dtype-rounded value

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, eps={self.eps:g}, "
                f"smallest_normal={self.smallest_normal:g}, tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:  # noqa: N801  (torch's name)
    """The limits of an integer dtype, as ``torch.iinfo``: ``bits``, ``max``, ``min``, ``dtype``."""

    def __init__(self, type: Any) -> None:  # noqa: A002
        d = backend.to_dtype(type)
        if d.kind not in "iu":
            raise TypeError(f"iinfo() requires an integer input type (got {d}); use lamina.finfo for it")
        info = numpy.iinfo(d)
        self.bits, self.max, self.min, self.dtype = int(info.bits), int(info.max), int(info.min), str(d)

    def __repr__(self) -> str:
        return f"iinfo(min={float(self.min):g}, max={float(self.max):g}, dtype={self.dtype})"  # torch writes %g


class Size(tuple):
    """A shape, as ``torch.Size``: a tuple of ints with ``numel()``. (``Tensor.shape`` itself is a
    plain tuple in lamina; a ``Size`` goes wherever a shape does.)"""

    def __new__(cls, sizes: Any = ()) -> Size:
        items = tuple(sizes)
        for s in items:
            if not isinstance(s, (int, numpy.integer)) or isinstance(s, bool):
                raise TypeError(f"Size: expected a sequence of integers, got an element of type {type(s).__name__}")
        return super().__new__(cls, (int(s) for s in items))

    def numel(self) -> int:
        return math.prod(self)

    def __repr__(self) -> str:
        return f"lamina.Size({list(self)})"
