"""Optional numba kernel for ``erf`` (:mod:`lamina.ops.activation`): the C library's ``erf`` on each
element, where NumPy has none. The series and continued fraction of ``activation.erf_series`` are
the reference (and the path without numba); they cost some 140 whole-array passes.

The ufunc is built on first use, not at import (building it loads numba's compiler)."""

from __future__ import annotations

import math
from typing import Any

from . import conv_numba

__all__ = ["AVAILABLE", "erf"]

AVAILABLE = conv_numba.AVAILABLE
_ufunc: list[Any] = []


def _erf(v):  # pragma: no cover - compiled
    return math.erf(v)


def erf(x: Any) -> Any:
    """``erf`` of a float32 or float64 array, element by element through ``math.erf``."""
    if not _ufunc:
        import numba

        _ufunc.append(numba.vectorize(["float32(float32)", "float64(float64)"], cache=True)(_erf))
    return _ufunc[0](x)
