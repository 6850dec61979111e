"""Order statistics and running products: ``cumprod``, ``median``, ``mode``.

``cumprod``'s backward is torch's: where a slice has no zero, ``gx = revcumsum(gy·y) / x``; where it
has, the gradient of each entry is ``Σ_{j≥i} gy_j ∏_{l≤j, l≠i} x_l`` — formed by the same cumprod
over copies of the slice with the entry set to 1, so it stays exact (and differentiable) at zeros.
``median`` and ``mode`` select one element; their values come out through ``gather``, so the
gradient goes to that element.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from .. import backend
from ..autograd.function import Context, Function
from ..autograd.tensor import Tensor, register
from .common import check_tensor, const, normalize_dim
from .indexing import gather, triu
from .reduce import Cumsum, sum
from .selection import where

__all__ = ["cumprod", "median", "mode"]

xp = backend.xp

return_types_median = namedtuple("median", ["values", "indices"])
return_types_mode = namedtuple("mode", ["values", "indices"])


class Cumprod(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, dim: int) -> Any:
        ctx.dim = dim
        y = xp.cumprod(x, axis=dim)
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        x, y = ctx.saved_tensors
        d = ctx.dim
        if (x.array != 0).all():
            return Cumsum.apply((gy * y).flip(d), dim=d).flip(d) / x
        xm, gm = x.movedim(d, -1), gy.movedim(d, -1)
        n = xm.shape[-1]
        eye = const(xp.eye(n, dtype=bool))
        copies = where(eye, 1.0, xm.unsqueeze(-2))  # copies[..., i, l]: x_l, with x_i set to 1
        partial = Cumprod.apply(copies, dim=copies.ndim - 1)  # [..., i, j] = ∏_{l≤j, l≠i} x_l
        g = sum(triu(partial) * gm.unsqueeze(-2), -1)  # only j ≥ i
        return g.movedim(-1, d)


@register("cumprod")
def cumprod(input: Tensor, dim: int, *, dtype: Any = None) -> Tensor:
    """Cumulative product along ``dim``; integer and bool inputs give int64, as torch."""
    check_tensor(input, "cumprod")
    if dtype is not None:
        input = input.to(dtype)
    if input.ndim == 0:
        return input
    if input.dtype.kind in "biu" and input.dtype != backend.int64:
        input = const(input.array.astype(backend.int64))
    return Cumprod.apply(input, dim=normalize_dim(dim, input.ndim, "cumprod"))


def _reduced(op: str, input: Tensor, dim: Any) -> tuple[Tensor, int]:
    check_tensor(input, op)
    if input.ndim == 0:
        return input.reshape(1), 0
    return input, normalize_dim(dim, input.ndim, op)


@register("median")
def median(input: Tensor, dim: Any = None, keepdim: bool = False) -> Any:
    """The lower median (for an even count, the smaller of the two middle values), as torch.

    Without ``dim``: of all elements, one value. With ``dim``: ``(values, indices)`` along it.
    nan sorts last, so a slice holding nan gives nan (as torch's).
    """
    if dim is None:
        check_tensor(input, "median")
        if input.numel() == 0:
            return const(xp.asarray(xp.nan, dtype=input.dtype))
        flat = input.reshape(-1)
        vals, _ = median(flat, 0)
        return vals
    x, d = _reduced("median", input, dim)
    if x.shape[d] == 0:
        raise IndexError(f"median(): Expected reduction dim {dim} to have non-zero size.")
    a = x.array
    order = xp.argsort(a, axis=d, kind="stable")
    k = (a.shape[d] - 1) // 2
    has_nan = xp.isnan(a).any(axis=d, keepdims=True) if a.dtype.kind == "f" else None
    idx = xp.take(order, [k], axis=d)
    if has_nan is not None and has_nan.any():  # torch returns the (first) nan and its index
        first_nan = xp.argmax(xp.isnan(a), axis=d).reshape(idx.shape)
        idx = xp.where(has_nan, first_nan, idx)
    idx = idx.astype(backend.int64)
    vals = gather(x, d, const(idx))
    if not keepdim or input.ndim == 0:
        vals, idx = vals.squeeze(d), idx.squeeze(d)
    if input.ndim == 0:
        vals, idx = vals.reshape(()), idx.reshape(())
    return return_types_median(vals, const(idx))


@register("mode")
def mode(input: Tensor, dim: int = -1, keepdim: bool = False) -> Any:
    """``(values, indices)``: the most frequent value along ``dim`` (the smallest among equally
    frequent ones) and the index of its last occurrence, as torch's CPU kernel."""
    x, d = _reduced("mode", input, dim)
    if x.shape[d] == 0:
        raise IndexError(f"mode(): Expected reduction dim {dim} to have non-zero size.")
    a = xp.moveaxis(x.array, d, -1)
    n = a.shape[-1]
    flat = a.reshape(-1, n)
    out_i = backend.get_array_module(a).empty(flat.shape[0], dtype=backend.int64)
    for r, row in enumerate(flat):  # a plain loop per slice: unique's counts give the mode
        values, counts = xp.unique(row, return_counts=True)
        best = values[xp.argmax(counts)]  # unique is sorted: argmax takes the smallest of ties
        out_i[r] = n - 1 - xp.argmax((row == best)[::-1])
    idx = xp.moveaxis(out_i.reshape(a.shape[:-1] + (1,)), -1, d)
    vals = gather(x, d, const(idx))
    if not keepdim or input.ndim == 0:
        vals, idx = vals.squeeze(d), idx.squeeze(d)
    if input.ndim == 0:
        vals, idx = vals.reshape(()), idx.reshape(())
    return return_types_mode(vals, const(idx))
