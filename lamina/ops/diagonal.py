"""Diagonals: ``diagonal``, ``diag_embed``, ``diag``, ``trace``.

``diagonal`` and ``diag_embed`` are each other's adjoint, so each one's backward is the other.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from ..autograd.function import Context, Function
from ..autograd.tensor import Tensor, register
from .common import check_tensor, normalize_dim

__all__ = ["diagonal", "diag_embed", "diag", "trace"]

xp = backend.xp


def _diag_index(rows: int, cols: int, offset: int) -> tuple[Any, Any]:
    n = max(0, min(rows, cols - offset) if offset >= 0 else min(rows + offset, cols))
    i = xp.arange(n)
    return (i, i + offset) if offset >= 0 else (i - offset, i)


class Diagonal(Function):
    is_view = True  # as torch's: x.diagonal().fill_(1) writes into x

    @staticmethod
    def forward(ctx: Context, x: Any, offset: int, dim1: int, dim2: int) -> Any:
        ctx.shape, ctx.opts = x.shape, (offset, dim1, dim2)
        if not isinstance(x, np.ndarray) or not x.flags.writeable:
            return xp.diagonal(x, offset, dim1, dim2)  # read-only: an in-place change raises, never lost
        sl = [slice(None)] * x.ndim
        sl[dim2 if offset >= 0 else dim1] = slice(abs(offset), None)
        start = x[tuple(sl)]
        d = np.diagonal(start, 0, dim1, dim2)
        # NumPy's diagonal is read-only; the same strides from the diagonal's first element give a writable view
        return np.lib.stride_tricks.as_strided(start, d.shape, d.strides, writeable=True)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        offset, dim1, dim2 = ctx.opts
        return DiagEmbed.apply(gy, offset=offset, dim1=dim1, dim2=dim2, shape=ctx.shape)


class DiagEmbed(Function):
    """Writes the last dim of ``x`` onto the ``offset`` diagonal of planes ``(dim1, dim2)`` of a
    zero array of ``shape``."""

    @staticmethod
    def forward(ctx: Context, x: Any, offset: int, dim1: int, dim2: int, shape: tuple[int, ...]) -> Any:
        ctx.opts = (offset, dim1, dim2)
        out = backend.get_array_module(x).zeros(shape, dtype=x.dtype)
        r, c = _diag_index(shape[dim1], shape[dim2], offset)
        view = xp.moveaxis(out, (dim1, dim2), (-2, -1))
        view[..., r, c] = x
        return out

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        offset, dim1, dim2 = ctx.opts
        return Diagonal.apply(gy, offset=offset, dim1=dim1, dim2=dim2)


def _dims(op: str, ndim: int, dim1: int, dim2: int) -> tuple[int, int]:
    d1, d2 = normalize_dim(dim1, ndim, op), normalize_dim(dim2, ndim, op)
    if d1 == d2:
        raise RuntimeError(f"{op}: dimensions cannot be identical {dim1}, {dim2}")
    return d1, d2


@register("diagonal")
def diagonal(input: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The ``offset``-th diagonal of the planes ``(dim1, dim2)``, as the last dim: a view, as torch's.

    Example:
        >>> import lamina
        >>> lamina.tensor([[1, 2], [3, 4]]).diagonal().tolist()
        [1, 4]
    """
    check_tensor(input, "diagonal")
    if input.ndim < 2:
        raise RuntimeError(f"diagonal: expected a tensor of at least 2 dimensions, got {input.ndim}")
    d1, d2 = _dims("diagonal", input.ndim, dim1, dim2)
    return Diagonal.apply(input, offset=int(offset), dim1=d1, dim2=d2)


@register("diag_embed")
def diag_embed(input: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """Square planes ``(dim1, dim2)`` with the last dim of ``input`` on their ``offset``-th diagonal."""
    check_tensor(input, "diag_embed")
    n = input.shape[-1] + abs(int(offset)) if input.ndim else 1 + abs(int(offset))
    ndim = max(input.ndim, 1) + 1
    d1, d2 = _dims("diag_embed", ndim, dim1, dim2)
    batch = list(input.shape[:-1])
    shape = []
    for k in range(ndim):
        shape.append(n if k in (d1, d2) else batch.pop(0))
    x = input if input.ndim else input.reshape(1)
    # the batch dims keep their order in the planes left over: move the diagonal dim last for DiagEmbed
    return DiagEmbed.apply(x, offset=int(offset), dim1=d1, dim2=d2, shape=tuple(shape))


@register("diag")
def diag(input: Tensor, diagonal: int = 0) -> Tensor:
    """A 1-D ``input`` as the ``diagonal``-th diagonal of a square matrix; a 2-D one's diagonal as 1-D."""
    check_tensor(input, "diag")
    if input.ndim == 1:
        return diag_embed(input, diagonal, 0, 1)
    if input.ndim == 2:
        return Diagonal.apply(input, offset=int(diagonal), dim1=0, dim2=1)
    raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {input.ndim}D")


@register("trace")
def trace(input: Tensor) -> Tensor:
    """The sum of the main diagonal of a 2-D matrix (rectangular allowed)."""
    check_tensor(input, "trace")
    if input.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {input.ndim}")
    return Diagonal.apply(input, offset=0, dim1=0, dim2=1).sum()
