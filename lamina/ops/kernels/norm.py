"""Array kernels for normalization (no autograd): standardize over some axes, and its
backward, with as few passes over the data as NumPy allows.

``xhat = (x − mean) · r`` with ``r = 1/√(var + eps)`` and the *biased* variance (divide by
the count ``M``); the backward of that map is

    gx = r · (g − mean(g) − xhat · mean(g · xhat))

with the means over the same axes.
"""

from __future__ import annotations

import math
from typing import Any

from ... import backend

__all__ = ["normalize_forward", "normalize_backward"]

xp = backend.xp


def normalize_forward(x: Any, axes: tuple[int, ...], eps: float) -> tuple[Any, Any, Any, Any]:
    """``(xhat, mean, var, r)``; ``mean``, ``var`` (biased) and ``r`` keep the reduced axes as 1s.

    The variance is the mean of squared deviations from the mean (two passes), not
    ``E[x²] − E[x]²``, which cancels catastrophically when the mean is large.
    """
    mean = x.mean(axis=axes, keepdims=True)
    d = x - mean
    sq = xp.square(d)
    var = sq.mean(axis=axes, keepdims=True)
    del sq
    r = 1.0 / xp.sqrt(var + eps)
    d *= r
    return d, mean, var, r.astype(x.dtype, copy=False)


def normalize_backward(g: Any, xhat: Any, r: Any, axes: tuple[int, ...]) -> Any:
    """The input gradient of ``normalize_forward`` for an upstream gradient ``g``."""
    m = math.prod(g.shape[a] for a in axes)
    g_mean = g.sum(axis=axes, keepdims=True) / m
    gx_mean = xp.multiply(g, xhat).sum(axis=axes, keepdims=True) / m
    gx = xhat * gx_mean
    xp.subtract(g, gx, out=gx)
    gx -= g_mean
    gx *= r
    return gx
