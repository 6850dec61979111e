"""Moments: variance and standard deviation (``var``, ``std``, ``var_mean``, ``std_mean``), two-pass
and guarded at the dtype's extremes."""

from __future__ import annotations

import builtins
from typing import Any

from .. import backend
from ..autograd.tensor import Tensor, register
from .cast import to_dtype
from .common import check_tensor, const, normalize_dims
from .reduce import SqrtZeroGradAtZero, mean, sum

__all__ = ["var", "std", "var_mean", "std_mean"]

xp = backend.xp


def _correction(op: str, correction: Any, unbiased: Any) -> float:
    if unbiased is not None:
        if correction is not None:
            raise RuntimeError(f"{op}: pass only one of 'unbiased' and 'correction'")
        return 1.0 if unbiased else 0.0
    return 1.0 if correction is None else float(correction)


_REFINE = 64  # as in kernels/norm.py: correct the mean where the spread is below _REFINE·eps·|mean|


def _squared_deviations(input: Tensor, axes: tuple[int, ...], n: int, keepdim: bool) -> Tensor:
    """``Σ (input − mean)²`` over ``axes``, two-pass, guarded at the dtype's extremes (as the
    normalization kernels: checks on the per-group statistics only). A mean whose running sum
    overflowed is summed again as ``Σ x/n``; where the spread is tiny against the mean (a
    constant group of 1e30, whose mean's rounding alone would square past float32), the mean is
    corrected once by ``mean(x − mean)``, so a constant group gives exactly 0."""
    m = mean(input, axes, keepdim=True)
    d = input - m
    ss = sum(d * d, axes, keepdim)
    fi = xp.finfo(ss.dtype)
    q = ss.array
    # one check, sufficient for every group (three reductions over the statistics): the ordinary case
    if not q.size or not n or (xp.sqrt(q.min() / n) >= _REFINE * fi.eps * xp.abs(m.array).max()
                               and q.max() <= fi.max):
        return ss
    if not xp.isfinite(m.array).all():
        m = sum(input * (1.0 / n), axes, keepdim=True)
        d = input - m
        ss = sum(d * d, axes, keepdim)
    spread = xp.sqrt(ss.array / builtins.max(n, 1))
    if ((spread < _REFINE * fi.eps * xp.abs(m.array).reshape(spread.shape)) | xp.isinf(spread)).any():
        # a constant shift (its gradient is nil: m already carries the 1/n of the mean), kept
        # finite where the deviations' own sum overflows
        c = d.array.mean(axis=axes, keepdims=True)
        d = input - (m + const(xp.where(xp.isfinite(c), c, 0).astype(c.dtype, copy=False)))
        ss = sum(d * d, axes, keepdim)
    return ss


@register("var")
def var(input: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False,
        *, correction: Any = None) -> Tensor:
    """Variance over ``dim`` with ``correction`` (1 = unbiased, Bessel's; 0 = biased).

    Two-pass (``Σ(x − mean)²``), exact for a constant input even near the dtype's largest
    numbers; ``inf`` where the variance overflows the dtype, as torch's."""
    check_tensor(input, "var")
    if input.dtype.kind != "f":
        raise RuntimeError(f"var: input must be floating point, got {input.dtype}")
    if isinstance(dim, bool):  # torch.var(x, unbiased) legacy positional form
        dim, unbiased = None, dim
    c = _correction("var", correction, unbiased)
    axes = normalize_dims(dim, input.ndim, "var")
    n = 1
    for a in axes:
        n *= input.shape[a]
    denom = builtins.max(0.0, n - c)
    with xp.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _squared_deviations(input, axes, n, keepdim) * (1.0 / denom if denom else float("inf"))


@register("std")
def std(input: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False,
        *, correction: Any = None) -> Tensor:
    """Standard deviation: ``sqrt(var(...))`` with the same arguments.

    Where the variance overflows the dtype but the standard deviation need not (float32 values
    beyond about 1.8e19), it is formed in float64 — for float64 input, of the group scaled exactly
    by a power of two — as torch's float32 std gives the finite answer."""
    v = var(input, dim, unbiased, keepdim, correction=correction)
    if xp.isinf(v.array).any() and input.numel():
        if input.dtype.itemsize < 8:  # in float64 the squares of any float32 fit: exact, then rounded once
            return to_dtype(std(to_dtype(input, xp.float64), dim, unbiased, keepdim, correction=correction),
                            input.dtype)
        axes = normalize_dims(dim if not isinstance(dim, bool) else None, input.ndim, "std")
        with xp.errstate(invalid="ignore", over="ignore"):
            # the overflowed groups are scaled by a power of two near their largest magnitude, which
            # is exact (no digit lost, whatever the offset): std(x) = s·std(x/s), s a constant
            top = xp.abs(input.array).max(axis=axes, keepdims=True)
            over = xp.isinf(v.array).reshape(top.shape) & xp.isfinite(top) & (top > 0)
            s = xp.where(over, xp.ldexp(1.0, xp.frexp(xp.where(over, top, 1.0))[1] - 1), 1.0).astype(input.dtype)
            scaled = var(input * const(1.0 / s), dim, unbiased, True, correction=correction)
            out = SqrtZeroGradAtZero.apply(scaled) * const(s)
        return out if keepdim else out.reshape(v.shape)
    return SqrtZeroGradAtZero.apply(v)


def var_mean(input: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False,
             *, correction: Any = None) -> tuple[Tensor, Tensor]:
    return (var(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim))


def std_mean(input: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False,
             *, correction: Any = None) -> tuple[Tensor, Tensor]:
    return (std(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim))
