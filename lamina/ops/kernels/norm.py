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

__all__ = ["normalize_forward", "normalize_backward", "batch_norm_forward", "batch_norm_backward"]

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


def _channel_dot(a: Any, b: Any) -> Any:
    """``Σ a·b`` over every axis but 1 (the channel axis), in one pass and no temporary."""
    letters = "abcdefghij"[:a.ndim]
    return xp.einsum(f"{letters},{letters}->{letters[1]}", a, b)


def batch_norm_forward(x: Any, w: Any, b: Any, eps: float) -> tuple[Any, Any, Any, Any, Any]:
    """Training-mode batch norm over every axis but 1: ``(y, d, mean, var, r)`` with ``d = x −
    mean`` (kept for backward), ``var`` biased and ``r = 1/√(var + eps)``; five passes."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    m = x.size // x.shape[1]
    mean = x.mean(axis=axes, keepdims=True)
    d = x - mean
    var = (_channel_dot(d, d) / m).reshape(shape)
    r = (1.0 / xp.sqrt(var + eps)).astype(x.dtype, copy=False)
    scale = r if w is None else r * w.reshape(shape)
    y = d * scale
    if b is not None:
        y += b.reshape(shape)
    return y, d, mean, var, r


def batch_norm_backward(gy: Any, d: Any, r: Any, w: Any, need: tuple[bool, bool, bool]) -> tuple[Any, Any, Any]:
    """Gradients ``(gx, gw, gb)`` of :func:`batch_norm_forward` (None where not ``need``ed)::

        gb = Σ gy,  gw = r · Σ gy·d,  gx = w·r · (gy − gb/M − d · r² · Σ gy·d / M)
    """
    axes = (0,) + tuple(range(2, gy.ndim))
    m = gy.size // gy.shape[1]
    gb = gy.sum(axis=axes)
    s_gd = _channel_dot(gy, d)
    rf = r.reshape(-1)
    gw = s_gd * rf if need[1] else None
    gx = None
    if need[0]:
        a = rf if w is None else rf * w
        shape = r.shape
        gx = gy * a.reshape(shape)
        gx -= d * (a * rf * rf * s_gd / m).reshape(shape)
        gx -= (a * gb / m).reshape(shape)
    return gx, gw, (gb if need[2] else None)
