"""Vector similarity with ``torch.nn.functional``'s names: ``normalize``, ``cosine_similarity``,
``pairwise_distance`` — composed from ``linalg.vector_norm``, whose gradient at a zero vector is 0."""

from __future__ import annotations

from ... import backend
from ...autograd.tensor import Tensor
from ...ops.common import binary_operands, check_tensor, const
from ...ops.norms import vector_norm

__all__ = ["normalize", "cosine_similarity", "pairwise_distance"]

xp = backend.xp


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out: Tensor | None = None) -> Tensor:
    """``input / max(‖input‖_p, eps)`` along ``dim``: unit vectors, a zero vector staying zero.

    Example:
        >>> import lamina
        >>> import lamina.nn.functional as F
        >>> F.normalize(lamina.tensor([[3.0, 4.0]])).tolist()
        [[0.6000000238418579, 0.800000011920929]]
    """
    check_tensor(input, "normalize")
    if out is not None:
        raise TypeError("normalize: lamina does not write into 'out'; use the returned tensor")
    denom = vector_norm(input, p, dim, keepdim=True).clamp_min(eps)
    return input / denom


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """``(x1 / max(‖x1‖, eps)) · (x2 / max(‖x2‖, eps))`` along ``dim``, the operands broadcast.

    As torch's: each norm is floored at ``eps`` in value only (the floor passes the norm's gradient
    through), so that a zero vector gives similarity 0.
    """
    a, b = binary_operands("cosine_similarity", x1, x2)
    shape = tuple(xp.broadcast_shapes(a.shape, b.shape))
    a, b = a.expand(*shape), b.expand(*shape)
    na = vector_norm(a, 2, dim, keepdim=True)
    nb = vector_norm(b, 2, dim, keepdim=True)
    na = na + const((xp.maximum(na.array, eps) - na.array).astype(na.dtype))
    nb = nb + const((xp.maximum(nb.array, eps) - nb.array).astype(nb.dtype))
    return ((a / na) * (b / nb)).sum(dim)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    """``‖x1 − x2 + eps‖_p`` over the last dim, as torch's (the ``eps`` keeps the norm's gradient finite)."""
    a, b = binary_operands("pairwise_distance", x1, x2)
    dim = -1 if max(a.ndim, b.ndim) > 0 else None
    return vector_norm(a - b + eps, p, dim, keepdim)
