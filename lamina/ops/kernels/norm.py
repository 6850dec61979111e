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
from . import norm_numba
from .im2col import use_numba

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


def _fast_view(a: Any) -> tuple[str, Any] | None:
    """``a (N, C, *S)`` as the ``planes (N, C, S)`` or ``rows (M, C)`` view the numba kernels read
    (no copy), or None where they do not run (NumPy path, other dtypes, other memory orders)."""
    if not (use_numba() and a.dtype in (xp.float32, xp.float64) and a.ndim >= 2 and a.size):
        return None
    if a.flags.c_contiguous:
        return "planes", a.reshape(a.shape[0], a.shape[1], -1)
    cl = a.transpose(0, *range(2, a.ndim), 1)
    if cl.flags.c_contiguous:
        return "rows", cl.reshape(-1, a.shape[1])
    return None


def _empty_like_layout(kind: str, a: Any) -> tuple[Any, Any]:
    """An uninitialized array shaped and laid out as ``a``, and its kernel view."""
    if kind == "planes":
        out = xp.empty(a.shape, a.dtype)
        return out, out.reshape(a.shape[0], a.shape[1], -1)
    cl = xp.empty((a.shape[0], *a.shape[2:], a.shape[1]), a.dtype)
    return cl.transpose(0, a.ndim - 1, *range(1, a.ndim - 1)), cl.reshape(-1, a.shape[1])


def batch_norm_forward(x: Any, w: Any, b: Any, eps: float) -> tuple[Any, Any, Any, Any, Any]:
    """Training-mode batch norm over every axis but 1: ``(y, mean, var, r, d)`` with ``var``
    biased, ``r = 1/√(var + eps)`` and ``d = x − mean`` kept for the backward on the NumPy
    path (None with the numba kernels, which recompute it); y has x's memory order."""
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    fast = _fast_view(x)
    if fast is not None:
        kind, xv = fast
        c = x.shape[1]
        mean, var = xp.empty(c, xp.float64), xp.empty(c, xp.float64)
        (norm_numba.stats_rows if kind == "rows" else norm_numba.stats_planes)(xv, mean, var)
        r64 = 1.0 / xp.sqrt(var + eps)
        scale64 = r64 if w is None else r64 * w
        shift64 = -mean * scale64 if b is None else b - mean * scale64
        y, yv = _empty_like_layout(kind, x)
        (norm_numba.affine_rows if kind == "rows" else norm_numba.affine_planes)(
            xv, scale64.astype(x.dtype), shift64.astype(x.dtype), yv)
        dt = x.dtype
        return y, mean.astype(dt).reshape(shape), var.astype(dt).reshape(shape), r64.astype(dt).reshape(shape), None
    axes = (0,) + tuple(range(2, x.ndim))
    m = x.size // x.shape[1]
    mean = x.mean(axis=axes, keepdims=True)
    d = x - mean
    var = (_channel_dot(d, d) / m).reshape(shape)
    r = (1.0 / xp.sqrt(var + eps)).astype(x.dtype, copy=False)
    scale = r if w is None else r * w.reshape(shape)
    y = d * scale
    if b is not None:
        y += b.reshape(shape)
    return y, mean, var, r, d


def batch_norm_backward(gy: Any, x: Any, mean: Any, r: Any, w: Any, need: tuple[bool, bool, bool],
                        d: Any = None) -> tuple[Any, Any, Any]:
    """Gradients ``(gx, gw, gb)`` of :func:`batch_norm_forward` (None where not ``need``ed), with
    ``d = x − mean`` (recomputed when not given)::

        gb = Σ gy,  gw = r · Σ gy·d,  gx = w·r · (gy − gb/M − d · r² · Σ gy·d / M)
    """
    m = gy.size // gy.shape[1]
    rf = r.reshape(-1)
    fast = _fast_view(x) if d is None else None
    if fast is not None:
        kind, xv = fast
        c = x.shape[1]
        gv = (xp.ascontiguousarray(gy.transpose(0, *range(2, gy.ndim), 1)).reshape(-1, c) if kind == "rows"
              else xp.ascontiguousarray(gy).reshape(gy.shape[0], c, -1))  # exactly x's view (no bounds checks)
        gb, s_gd = xp.empty(c, xp.float64), xp.empty(c, xp.float64)
        mean64 = mean.reshape(-1).astype(xp.float64)
        (norm_numba.back_sums_rows if kind == "rows" else norm_numba.back_sums_planes)(gv, xv, mean64, gb, s_gd)
        r64 = rf.astype(xp.float64)
        gx = None
        if need[0]:
            a = r64 if w is None else r64 * w
            beta = -a * r64 * r64 * s_gd / m
            gamma = -a * gb / m - mean64 * beta
            gx, gxv = _empty_like_layout(kind, x)
            dt = x.dtype
            (norm_numba.affine2_rows if kind == "rows" else norm_numba.affine2_planes)(
                gv, xv, a.astype(dt), beta.astype(dt), gamma.astype(dt), gxv)
        gw = (s_gd * r64).astype(x.dtype) if need[1] else None
        return gx, gw, (gb.astype(x.dtype) if need[2] else None)
    axes = (0,) + tuple(range(2, gy.ndim))
    if d is None:
        d = x - mean
    gb = gy.sum(axis=axes)
    s_gd = _channel_dot(gy, d)
    gw = s_gd * rf if need[1] else None
    gx = None
    if need[0]:
        a = rf if w is None else rf * w
        shape = r.shape
        gx = gy * a.reshape(shape)
        gx -= d * (a * rf * rf * s_gd / m).reshape(shape)
        gx -= (a * gb / m).reshape(shape)
    return gx, gw, (gb if need[2] else None)
