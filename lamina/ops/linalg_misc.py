"""More of ``torch.linalg``, composed from differentiable ops: ``cross``, ``vecdot``, ``multi_dot``,
``matrix_power``; and ``matrix_rank`` (an integer, no gradient)."""

from __future__ import annotations

from collections.abc import Sequence

from .. import backend
from ..autograd.tensor import Tensor, register
from .common import broadcast_shape, check_tensor, const, normalize_dim
from .join import stack
from .linalg import matmul
from .matrix import check_square, inv
from .selection import where

__all__ = ["cross", "linalg_cross", "vecdot", "multi_dot", "matrix_power", "matrix_rank"]

xp = backend.xp


def linalg_cross(input: Tensor, other: Tensor, *, dim: int = -1) -> Tensor:
    """The cross product of 3-vectors along ``dim`` (``torch.linalg.cross``), operands broadcast."""
    check_tensor(input, "linalg.cross")
    check_tensor(other, "linalg.cross", "other")
    if input.ndim != other.ndim:
        raise RuntimeError(f"linalg.cross: inputs must have the same number of dimensions, got {input.ndim} and "
                           f"{other.ndim}")
    shape = broadcast_shape("linalg.cross", input.shape, other.shape)
    d = normalize_dim(dim, len(shape), "linalg.cross")
    if input.shape[d] != 3 or other.shape[d] != 3:
        raise RuntimeError(f"linalg.cross: inputs dimension {dim} must have length 3. Got {input.shape[d]} and "
                           f"{other.shape[d]}")
    a, b = input.expand(*shape), other.expand(*shape)
    a0, a1, a2 = a.unbind(d)
    b0, b1, b2 = b.unbind(d)
    return stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], d)


@register("cross")
def cross(input: Tensor, other: Tensor, dim: int | None = None) -> Tensor:
    """``torch.cross``: as :func:`linalg_cross`, but ``dim=None`` takes the first dim of size 3."""
    if dim is None:
        shape = broadcast_shape("cross", input.shape, other.shape)
        sizes = [i for i, s in enumerate(shape) if s == 3]
        if not sizes:
            raise RuntimeError(f"no dimension of size 3 in input (shape {tuple(shape)})")
        dim = sizes[0]
    return linalg_cross(input, other, dim=dim)


def vecdot(x: Tensor, y: Tensor, *, dim: int = -1) -> Tensor:
    """The dot product of vectors along ``dim``, operands broadcast."""
    return (x * y).sum(dim)


def multi_dot(tensors: Sequence[Tensor]) -> Tensor:
    """The product of a chain of matrices; the first may be a 1-D row, the last a 1-D column."""
    ts = list(tensors)
    if len(ts) < 2:
        raise RuntimeError(f"multi_dot(): expected at least 2 tensors but got {len(ts)}")
    for i, t in enumerate(ts):
        check_tensor(t, "multi_dot", f"tensor {i}")
        if t.ndim != 2 and not (t.ndim == 1 and i in (0, len(ts) - 1)):
            raise RuntimeError(f"multi_dot(): tensor {i} must be 2D (or 1D if first or last), got {t.ndim}D")
    out = ts[0]
    for t in ts[1:]:
        out = matmul(out, t)
    return out


@register("matrix_power")
def matrix_power(A: Tensor, n: int) -> Tensor:
    """``Aⁿ`` by repeated squaring; ``n = 0`` the identity, ``n < 0`` powers of the inverse."""
    check_tensor(A, "linalg.matrix_power", "A")
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"linalg.matrix_power: A must be batches of square matrices, but they are "
                           f"{tuple(A.shape[-2:])} matrices")
    if n == 0:
        eye = xp.broadcast_to(xp.eye(A.shape[-1], dtype=A.dtype), A.shape).copy()
        return where(const(xp.ones(A.shape, dtype=bool)), const(eye), A)  # in A's graph, with a zero gradient
    base = inv(A) if n < 0 else A
    k, result = abs(int(n)), None
    while k:
        if k & 1:
            result = base if result is None else matmul(result, base)
        k >>= 1
        if k:
            base = matmul(base, base)
    return result


def matrix_rank(A: Tensor, *, atol: float | None = None, rtol: float | None = None,
                hermitian: bool = False) -> Tensor:
    """The number of singular values above ``max(atol, rtol·σ_max)`` (default ``rtol``: ``eps·max(m, n)``
    when ``atol`` is not positive, as torch)."""
    check_tensor(A, "linalg.matrix_rank", "A")
    if hermitian:
        check_square("linalg.matrix_rank", A)
    if A.ndim < 2 or A.dtype.kind != "f":
        raise RuntimeError(f"linalg.matrix_rank: expected a floating point tensor of at least 2 dims, got "
                           f"{A.ndim}-D {A.dtype}")
    m, n = A.shape[-2:]
    s = xp.abs(xp.linalg.eigvalsh(A.array)) if hermitian else xp.linalg.svd(A.array, compute_uv=False)
    if rtol is None:
        rtol = 0.0 if atol is not None and atol > 0 else float(xp.finfo(A.dtype).eps) * max(m, n)
    top = s.max(-1, keepdims=True) if s.shape[-1] else xp.zeros(s.shape[:-1] + (1,), dtype=s.dtype)
    tol = xp.maximum(atol or 0.0, rtol * top)
    return const((s > tol).sum(-1).astype(backend.int64))
