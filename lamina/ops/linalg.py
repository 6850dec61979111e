"""Matrix products: ``matmul`` / ``@`` (1-D, 2-D, batched, broadcast), ``mm``, ``bmm``, ``dot``.

Backward is two more matrix products — ``gA = gY Bᵀ`` and ``gB = Aᵀ gY`` — summed over any
broadcast batch dims.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from ..autograd.function import Context, Function
from ..autograd.tensor import Tensor, register
from .common import binary_operands, into_out
from .kernels import threads
from .shape import reshape, sum_to

__all__ = ["matmul", "mm", "bmm", "dot", "mv", "outer"]

xp = backend.xp


class Matmul(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        ctx.save_for_backward(a, b)
        if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
            return threads.matmul(a, b)  # large products split over lamina's threads
        return xp.matmul(a, b)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        if a.ndim == 1 and b.ndim == 1:  # dot product: gy is a scalar
            return (gy * b if na else None, gy * a if nb else None)
        A = a if a.ndim > 1 else reshape(a, (1, a.shape[0]))
        B = b if b.ndim > 1 else reshape(b, (b.shape[0], 1))
        G = gy
        if a.ndim == 1:
            G = G.unsqueeze(-2)
        if b.ndim == 1:
            G = G.unsqueeze(-1)
        ga = gb = None
        if na:
            ga = reshape(sum_to(Matmul.apply(G, B.mT), A.shape), a.shape)
        if nb:
            gb = reshape(sum_to(Matmul.apply(A.mT, G), B.shape), b.shape)
        return ga, gb


@register("matmul", "__matmul__")
def matmul(input: Tensor, other: Tensor, *, out: Tensor | None = None) -> Tensor:
    """Matrix product with NumPy/torch semantics: 1-D operands are promoted (and the added dim
    removed), batch dims broadcast; ``out=`` writes the product into ``out``, as torch.

    Shape:
        ``(*, n, m) @ (*, m, p) → (*, n, p)``.
    """
    if out is not None:
        return into_out(matmul(input, other), out, "matmul", exact_dtype=True)
    a, b = binary_operands("matmul", input, other, promote=False) if not (
        isinstance(input, Tensor) and isinstance(other, Tensor) and input.dtype == other.dtype
    ) else (input, other)
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError("matmul: both arguments need at least 1 dimension, got 0-d tensor")
    ka = a.shape[-1]
    kb = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if ka != kb:
        raise RuntimeError(
            f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied "
            f"({ka} columns vs {kb} rows)"
        )
    try:
        xp.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise RuntimeError(
            f"matmul: batch dims of {tuple(a.shape)} and {tuple(b.shape)} cannot be broadcast"
        ) from None
    return Matmul.apply(a, b)


@register("__rmatmul__")
def _rmatmul(input: Tensor, other: Any) -> Tensor:
    return matmul(other, input)


@register("mm")
def mm(input: Tensor, mat2: Tensor, *, out: Tensor | None = None) -> Tensor:
    """Product of two 2-D matrices (``out=``: written into ``out``, as torch)."""
    if input.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError(f"mm: expected 2-D tensors, got {input.ndim}-D and {mat2.ndim}-D")
    return into_out(matmul(input, mat2), out, "mm", exact_dtype=True)


@register("bmm")
def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    """Batched product of 3-D tensors ``(b, n, m) @ (b, m, p)``."""
    if input.ndim != 3 or mat2.ndim != 3 or input.shape[0] != mat2.shape[0]:
        raise RuntimeError(
            f"bmm: expected 3-D tensors with equal batch size, got {tuple(input.shape)} and "
            f"{tuple(mat2.shape)}"
        )
    return matmul(input, mat2)


@register("dot")
def dot(input: Tensor, other: Tensor) -> Tensor:
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"dot: expected 1-D tensors, got {input.ndim}-D and {other.ndim}-D")
    return matmul(input, other)


@register("mv")
def mv(input: Tensor, vec: Tensor) -> Tensor:
    if input.ndim != 2 or vec.ndim != 1:
        raise RuntimeError(f"mv: expected a 2-D matrix and a 1-D vector, got {input.ndim}-D and {vec.ndim}-D")
    return matmul(input, vec)


@register("outer")
def outer(input: Tensor, vec2: Tensor) -> Tensor:
    return input.unsqueeze(1) * vec2.unsqueeze(0)
