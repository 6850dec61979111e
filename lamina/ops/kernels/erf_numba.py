"""Optional numba kernel for ``erf`` (:mod:`lamina.ops.activation`): the C library's ``erf`` on each
element, where NumPy has none. The series and continued fraction of ``activation.erf_array`` are
the reference (and the path without numba); they cost some 140 whole-array passes."""

from __future__ import annotations

from typing import Any

from . import conv_numba

__all__ = ["erf"]

erf: Any = None

if conv_numba.AVAILABLE:
    import math

    import numba

    @numba.vectorize(["float32(float32)", "float64(float64)"], cache=True)
    def erf(x):  # pragma: no cover - compiled
        return math.erf(x)
