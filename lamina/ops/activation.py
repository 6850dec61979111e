"""Activation primitives that are not compositions: ``erf``, ``softplus``, ``hardswish``.

(Most activations are composed from other ops in ``lamina.nn.functional.activation``.)
"""

from __future__ import annotations

import math
from typing import Any

from .. import backend
from ..autograd.function import Context, Function
from ..autograd.tensor import Tensor, register
from .common import check_tensor, const
from .kernels import erf_numba
from .kernels.im2col import use_numba
from .selection import where

__all__ = ["erf", "softplus", "hardswish"]

xp = backend.xp

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def erf_array(x: Any) -> Any:
    """erf on an array: the C library's through numba where it is in use, else :func:`erf_series`."""
    if erf_numba.AVAILABLE and use_numba() and x.dtype in (xp.float32, xp.float64):
        return erf_numba.erf(x)
    return erf_series(x)


def erf_series(x: Any) -> Any:
    """erf on an array, to ~1e-15 absolute in float64 (NumPy has no erf).

    |x| < 2.5: the Maclaurin series ``2/√π Σ (−1)ⁿ x²ⁿ⁺¹ / (n!(2n+1))``; beyond: ``1 − erfc(x)``
    with erfc from its continued fraction ``e^(−x²)/√π · 1/(x + ½/(x + 1/(x + 3/2/(x + …))))``.
    """
    a = xp.abs(x.astype(xp.float64))
    out = xp.empty_like(a)
    small = a < 2.5
    xs = a[small]
    term, s, x2 = xs.copy(), xs.copy(), xs * xs
    for n in range(1, 60):
        term = term * (-x2) / n
        s = s + term / (2 * n + 1)
    out[small] = _TWO_OVER_SQRT_PI * s
    xl = a[~small]
    f = xp.zeros_like(xl)
    for k in range(80, 0, -1):
        f = (k / 2) / (xl + f)
    out[~small] = 1.0 - xp.exp(-xl * xl) / math.sqrt(math.pi) / (xl + f)
    return (xp.sign(x) * out).astype(x.dtype)


class Erf(Function):
    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        ctx.save_for_backward(x)
        return erf_array(x)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return gy * (x * x * -1.0).exp() * _TWO_OVER_SQRT_PI


@register("erf")
def erf(input: Tensor) -> Tensor:
    """The error function ``2/√π ∫₀ˣ e^(−t²) dt``."""
    check_tensor(input, "erf")
    return Erf.apply(input)


class Softplus(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, beta: float, threshold: float) -> Any:
        ctx.save_for_backward(x)
        ctx.beta, ctx.threshold = beta, threshold
        z = x * beta
        # log(1 + e^z) = max(z, 0) + log1p(e^(−|z|)): no overflow for any z
        y = (xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z)))) / beta
        return xp.where(z > threshold, x, y).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        z = x * ctx.beta
        # NOTE: above the threshold torch treats softplus as the identity (slope exactly 1)
        return where(const(z.array > ctx.threshold), gy, gy * z.sigmoid())


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``(1/β)·log(1 + exp(β·x))``, the identity where ``β·x > threshold`` (as torch)."""
    check_tensor(input, "softplus")
    return Softplus.apply(input, beta=beta, threshold=threshold)


class Hardswish(Function):
    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        ctx.save_for_backward(x)
        return (x * xp.clip(x + 3, 0, 6) / 6).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        # torch's piecewise slope: 0 up to −3, x/3 + 1/2 on (−3, 3), 1 from 3 on
        mid = where(const(x.array < 3), x * (1.0 / 3) + 0.5, 1.0)
        return gy * where(const(x.array <= -3), 0.0, mid)


def hardswish(input: Tensor) -> Tensor:
    """``x·relu6(x + 3)/6`` with torch's slopes at the kinks."""
    check_tensor(input, "hardswish")
    return Hardswish.apply(input)
