"""Array kernels for normalization (no autograd): standardize over some axes, and its
backward, with as few passes over the data as NumPy allows.

``xhat = (x − mean) · r`` with ``r = 1/√(var + eps)`` and the *biased* variance (divide by
the count ``M``); the backward of that map is

    gx = r · (g − mean(g) − xhat · mean(g · xhat))

with the means over the same axes.

At the ends of the dtype's range the statistics are guarded, by checks on the per-group
statistics only (the data is read again only where a check fires):

- a mean whose running sum overflows although the values are finite (all near the dtype's
  largest number) is summed again as ``Σ x/M``;
- where the spread is tiny against the mean (``std < 64·eps·|mean|``, e.g. a constant group of
  1e30), the mean's rounding error would dominate ``x − mean``: the mean is corrected once by
  ``mean(x − mean)`` (the corrected two-pass algorithm), so a constant group gives exactly 0;
- where the variance overflows the dtype (``|x − mean|`` beyond ``√max``, about 1.8e19 in
  float32), ``r = 1/√var`` would be 0 and the group silently all zeros: it is NaN instead, as
  torch's layer norm gives. NumPy's overflow warnings are silenced (torch is silent).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ... import backend
from . import norm_numba
from . import norm_select as sel

__all__ = ["normalize_forward", "normalize_backward", "batch_norm_forward", "batch_norm_backward"]

xp = backend.xp


_REFINE = 64  # the mean is corrected where the spread is below _REFINE·eps·|mean| (see the module docstring)


def _errstate() -> Any:
    return xp.errstate(over="ignore", invalid="ignore", divide="ignore")


_LIMITS: dict[Any, tuple[float, float]] = {}


def _limits(dtype: Any) -> tuple[float, float]:
    """``(_REFINE·eps, max)`` of a float dtype."""
    if dtype not in _LIMITS:
        fi = xp.finfo(dtype)
        _LIMITS[dtype] = (float(_REFINE * fi.eps), float(fi.max))
    return _LIMITS[dtype]


def _ordinary(mean: Any, var: Any) -> bool:
    """One check on the statistics, in three reductions over them (sufficient, not necessary:
    :func:`_guarded` looks group by group): every variance finite and none so small against the
    means that a mean's rounding shows in ``x − mean``. False also for NaN or infinite means."""
    if not var.size:
        return True
    k, vmax = _limits(var.dtype)
    return bool(xp.sqrt(var.min()) >= k * xp.abs(mean).max() and var.max() <= vmax)


def _guarded(x: Any, axes: tuple[int, ...], mean: Any, d: Any, var: Any,
             var_of: Callable[[Any], Any]) -> tuple[Any, Any, Any]:
    """``(mean, d, var)`` again where :func:`_ordinary` failed (the module docstring's guards)."""
    if not xp.isfinite(mean).all():  # the running sum overflowed: Σ x/M cannot
        m = math.prod(x.shape[a] for a in axes)
        mean = xp.where(xp.isfinite(mean), mean, (x / m).sum(axis=axes, keepdims=True))
        d = x - mean
        var = var_of(d)
    coarse = (xp.sqrt(var) < (_REFINE * xp.finfo(var.dtype).eps) * xp.abs(mean)) | xp.isinf(var)
    if coarse.any():  # the corrected two-pass mean: its rounding error measured on the deviations
        c = d.mean(axis=axes, keepdims=True)
        mean = mean + xp.where(xp.isfinite(c), c, 0).astype(c.dtype, copy=False)
        d = x - mean
        var = var_of(d)
    return mean, d, var


def _rsqrt(var: Any, eps: float) -> Any:
    """``1/√(var + eps)``, NaN where the variance overflowed (not the 0 that would zero the group)."""
    r = 1.0 / xp.sqrt(var + eps)
    if xp.isinf(var).any():
        r = xp.where(xp.isinf(var), xp.nan, r)
    return r


def normalize_forward(x: Any, axes: tuple[int, ...], eps: float) -> tuple[Any, Any, Any, Any]:
    """``(xhat, mean, var, r)``; ``mean``, ``var`` (biased) and ``r`` keep the reduced axes as 1s.

    The variance is the mean of squared deviations from the mean (two passes), not
    ``E[x²] − E[x]²``, which cancels catastrophically when the mean is large; the guards of the
    module docstring apply at the dtype's extremes.
    """
    def var_of(d: Any) -> Any:
        return xp.square(d).mean(axis=axes, keepdims=True)

    with _errstate():
        mean = x.mean(axis=axes, keepdims=True)
        d = x - mean
        var = var_of(d)
        if _ordinary(mean, var):
            r = 1.0 / xp.sqrt(var + eps)
        else:
            mean, d, var = _guarded(x, axes, mean, d, var, var_of)
            r = _rsqrt(var, eps)
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


def _fast_view(a: Any) -> tuple[str, Any, Any]:
    """``a (N, C, *S)`` as the ``planes (N, C, S)`` or ``rows (M, C)`` view the numba kernels read,
    and the array viewed: ``a`` itself where it lies NCHW or channels-last, else an NCHW copy."""
    if a.flags.c_contiguous:
        return "planes", a.reshape(a.shape[0], a.shape[1], -1), a
    cl = a.transpose(0, *range(2, a.ndim), 1)
    if cl.flags.c_contiguous:
        return "rows", cl.reshape(-1, a.shape[1]), a
    a = xp.ascontiguousarray(a)
    return "planes", a.reshape(a.shape[0], a.shape[1], -1), a


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
    path (None with the numba kernels, which recompute it); y lies as x does where x lies NCHW or
    channels-last. The guards of the module docstring apply at the dtype's extremes. The
    implementation is :func:`.norm_select.select`'s for ``"batch_norm_forward"``."""
    return sel.choose("batch_norm_forward", x).run(x, w, b, eps)


def _numba_bn_forward(x: Any, w: Any, b: Any, eps: float) -> tuple[Any, Any, Any, Any, Any]:
    """Float64 statistics and the affine map in two compiled passes over the planes or rows view
    (:func:`_fast_view`); the NumPy path where the statistics fail the check below."""
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    kind, xv, x = _fast_view(x)
    with _errstate():
        c = x.shape[1]
        mean, var = xp.empty(c, xp.float64), xp.empty(c, xp.float64)
        (norm_numba.stats_rows if kind == "rows" else norm_numba.stats_planes)(xv, mean, var)
        dt = x.dtype
        k, vmax = _limits(dt)
        r64 = 1.0 / xp.sqrt(var + eps)
        # one check on the (float64) statistics: the NumPy path below runs where Σ(x − mean)²
        # would overflow the dtype, where the float64 sums overflowed (or met NaN), and where
        # y = x·scale + shift would cancel (|mean|·r huge: a near-constant channel far from 0)
        if var.max() * (x.size // c) <= vmax and float((xp.abs(mean) * r64).max()) < 1 / k:
            scale64 = r64 if w is None else r64 * w
            shift64 = -mean * scale64 if b is None else b - mean * scale64
            y, yv = _empty_like_layout(kind, x)
            (norm_numba.affine_rows if kind == "rows" else norm_numba.affine_planes)(
                xv, scale64.astype(dt), shift64.astype(dt), yv)
            return (y, mean.astype(dt).reshape(shape), var.astype(dt).reshape(shape),
                    r64.astype(dt).reshape(shape), None)
    return _numpy_bn_forward(x, w, b, eps)


def _numpy_bn_forward(x: Any, w: Any, b: Any, eps: float) -> tuple[Any, Any, Any, Any, Any]:
    """Two passes for the statistics (guarded at the extremes), one for ``y = d·scale + b``."""
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    with _errstate():
        axes = (0,) + tuple(range(2, x.ndim))
        m = x.size // x.shape[1]

        def var_of(d: Any) -> Any:
            return (_channel_dot(d, d) / m).reshape(shape)

        mean = x.mean(axis=axes, keepdims=True)
        d = x - mean
        var = var_of(d)
        if _ordinary(mean, var):
            r = (1.0 / xp.sqrt(var + eps)).astype(x.dtype, copy=False)
        else:
            mean, d, var = _guarded(x, axes, mean, d, var, var_of)
            r = _rsqrt(var, eps).astype(x.dtype, copy=False)
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

    The implementation is :func:`.norm_select.select`'s for ``"batch_norm_backward"``.
    """
    return sel.choose("batch_norm_backward", x).run(gy, x, mean, r, w, need, d)


def _numba_bn_backward(gy: Any, x: Any, mean: Any, r: Any, w: Any, need: tuple[bool, bool, bool],
                       d: Any = None) -> tuple[Any, Any, Any]:
    """The sums in one compiled pass over ``gy`` and ``x`` (float64), ``gx`` in another; the NumPy
    path where the forward left ``d`` (its statistics failed the numba forward's check)."""
    if d is not None:
        return _numpy_bn_backward(gy, x, mean, r, w, need, d)
    m = gy.size // gy.shape[1]
    rf = r.reshape(-1)
    kind, xv, x = _fast_view(x)
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


def _numpy_bn_backward(gy: Any, x: Any, mean: Any, r: Any, w: Any, need: tuple[bool, bool, bool],
                       d: Any = None) -> tuple[Any, Any, Any]:
    """Two reductions (``Σ gy``, ``Σ gy·d``) and the elementwise ``gx``."""
    m = gy.size // gy.shape[1]
    rf = r.reshape(-1)
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
