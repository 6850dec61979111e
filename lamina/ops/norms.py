"""Norms of ``torch.linalg``: ``vector_norm``, ``matrix_norm``, ``norm``.

``vector_norm`` is one primitive whose backward is torch's: at a zero vector the gradient is 0
(not the 0/0 that differentiating ``(Σ|x|ᵖ)^{1/p}`` gives), ``ord=inf`` shares the gradient evenly
among the tied largest entries, ``ord=0`` (the count of non-zeros) has none. ``matrix_norm``
composes: Frobenius from ``vector_norm``, nuclear and spectral from the singular values, 1/inf
from column/row sums.
"""

from __future__ import annotations

import math
from typing import Any

from .. import backend
from ..autograd.function import Context, Function
from ..autograd.tensor import Tensor
from .cast import to_dtype
from .common import check_tensor, const, normalize_dims
from .reduce import amax, amin, sum
from .selection import where

__all__ = ["vector_norm", "matrix_norm", "linalg_norm"]

xp = backend.xp


class VectorNorm(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, ord: float, axes: tuple[int, ...], keepdim: bool) -> Any:
        a = xp.abs(x)
        with xp.errstate(divide="ignore", over="ignore", invalid="ignore"):
            if ord == math.inf:
                y = a.max(axis=axes, keepdims=True) if a.size else xp.zeros_like(a.sum(axis=axes, keepdims=True))
            elif ord == -math.inf:
                y = a.min(axis=axes, keepdims=True)
            elif ord == 0:
                y = (a != 0).sum(axis=axes, keepdims=True).astype(x.dtype)
            elif ord == 1:
                y = a.sum(axis=axes, keepdims=True)
            elif ord == 2:
                y = xp.sqrt((a * a).sum(axis=axes, keepdims=True))
            else:
                y = (a ** ord).sum(axis=axes, keepdims=True) ** (1.0 / ord)
        y = y.astype(x.dtype, copy=False)
        ctx.ord, ctx.axes, ctx.kept = ord, axes, y.shape
        out = y if keepdim else y.reshape([s for i, s in enumerate(x.shape) if i not in axes])
        ctx.save_for_backward(x, out)  # the output itself: a double backward differentiates through it
        return out

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        x, y = ctx.saved_tensors
        p = ctx.ord
        y, gy = y.reshape(ctx.kept), gy.reshape(ctx.kept)
        if p == 0:
            return x * 0.0
        if p in (math.inf, -math.inf):
            hit = const(xp.abs(x.array) == y.array)
            count = const(hit.array.sum(axis=ctx.axes, keepdims=True).astype(x.dtype))
            return x.sign() * where(hit, gy / count, 0.0)
        if p == 1:
            return x.sign() * gy
        zero = const(y.array == 0)
        safe = where(zero, 1.0, y)
        with xp.errstate(divide="ignore", invalid="ignore"):
            if p == 2:
                return x * where(zero, 0.0, gy / safe)
            if p < 1:  # |x|^(p−1) is infinite at x = 0: torch takes the entry's gradient as 0 there
                xz = const(x.array == 0)
                scaled = x.sign() * where(xz, 0.0, where(xz, 1.0, x.abs()) ** (p - 1))
                return scaled * gy * y ** (1 - p)
            scaled = x.sign() * x.abs() ** (p - 1)
            return scaled * where(zero, 0.0, gy / safe ** (p - 1))


def _ord(op: str, ord: Any) -> float:
    if isinstance(ord, str) or isinstance(ord, bool) or not isinstance(ord, (int, float)):
        raise RuntimeError(f"{op}: ord must be a number (int, float, inf or -inf), got {ord!r}")
    return float(ord)


def vector_norm(x: Tensor, ord: Any = 2, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """The vector ``ord``-norm ``(Σ|x|^ord)^{1/ord}`` over ``dim`` (all dims by default); ``inf``: max|x|,
    ``-inf``: min|x|, ``0``: the count of non-zeros.

    Example:
        >>> import lamina
        >>> lamina.linalg.vector_norm(lamina.tensor([3.0, -4.0])).item()
        5.0
    """
    check_tensor(x, "linalg.vector_norm", "x")
    p = _ord("linalg.vector_norm", ord)
    if dtype is not None:
        x = to_dtype(x, backend.to_dtype(dtype))
    if x.dtype.kind != "f":
        raise RuntimeError(f"linalg.vector_norm: Expected a floating point or complex tensor as input. Got {x.dtype}")
    if isinstance(dim, int) and not isinstance(dim, bool):
        dim = (dim,)
    axes = normalize_dims(dim, x.ndim, "linalg.vector_norm")
    if p < 0 and x.numel() == 0 or (p == -math.inf and any(x.shape[a] == 0 for a in axes)):
        raise RuntimeError(f"linalg.vector_norm cannot compute the {ord} norm on an empty tensor because the "
                           f"operation does not have an identity")
    return VectorNorm.apply(x, ord=p, axes=axes, keepdim=keepdim)


def matrix_norm(A: Tensor, ord: Any = "fro", dim: Any = (-2, -1), keepdim: bool = False, *,
                dtype: Any = None) -> Tensor:
    """A matrix norm over the two ``dim``: ``'fro'`` (Frobenius), ``'nuc'`` (sum of singular values),
    ``2``/``-2`` (largest/smallest singular value), ``1``/``-1`` (max/min column sum of |A|),
    ``inf``/``-inf`` (max/min row sum of |A|)."""
    from .decomp import svdvals

    check_tensor(A, "linalg.matrix_norm", "A")
    if dtype is not None:
        A = to_dtype(A, backend.to_dtype(dtype))
    if A.ndim < 2:
        raise RuntimeError(f"linalg.matrix_norm: The input tensor A must have at least 2 dimensions, got {A.ndim}")
    if A.dtype.kind != "f":
        raise RuntimeError(f"linalg.matrix_norm: Expected a floating point or complex tensor as input. Got {A.dtype}")
    if not isinstance(dim, (tuple, list)) or len(dim) != 2:
        raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple. Got {dim}")
    d0, d1 = (normalize_dims(d, A.ndim, "linalg.matrix_norm")[0] for d in dim)
    if d0 == d1:
        raise RuntimeError(f"linalg.matrix_norm: dims must be different. Got ({dim[0]}, {dim[1]})")
    if ord == "fro":
        return vector_norm(A, 2, (d0, d1), keepdim)
    if ord not in ("nuc", 1, -1, 2, -2, math.inf, -math.inf):
        raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")
    if ord in ("nuc", 2, -2):
        s = svdvals(A.movedim((d0, d1), (-2, -1)))
        out = s.sum(-1) if ord == "nuc" else (amax(s, -1) if ord == 2 else amin(s, -1))
        if keepdim:
            for d in sorted((d0, d1)):
                out = out.unsqueeze(d)
        return out
    col, red = (d0, d1) if ord in (1, -1) else (d1, d0)  # 1: sum over rows (each column), then the extreme
    sums = sum(A.abs(), col, keepdim=True)
    out = (amax if ord > 0 else amin)(sums, red, keepdim=True)
    return out if keepdim else out.squeeze((d0, d1))


def linalg_norm(A: Tensor, ord: Any = None, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """``torch.linalg.norm``: a vector norm for ``dim`` an int (or a 1-D input), a matrix norm for
    a 2-tuple (or a 2-D input with ``ord`` given); with neither ``ord`` nor ``dim``, the 2-norm of
    the flattened input."""
    check_tensor(A, "linalg.norm", "A")
    if isinstance(dim, int) and not isinstance(dim, bool):
        dim = (dim,)
    if dim is not None and len(dim) not in (1, 2):
        raise RuntimeError(f"linalg.norm: If dim is specified, it must be of length 1 or 2. Got {dim}")
    if dim is None and ord is not None and A.ndim not in (1, 2):
        raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. Got "
                           f"{A.ndim}D.")
    if ord is None:
        return vector_norm(A, 2, dim, keepdim, dtype=dtype)
    matrix = (dim is not None and len(dim) == 2) or (dim is None and A.ndim == 2)
    if matrix:
        return matrix_norm(A, ord, tuple(dim) if dim is not None else (-2, -1), keepdim, dtype=dtype)
    return vector_norm(A, ord, dim, keepdim, dtype=dtype)
