"""Square-matrix functions: ``inv``, ``det``, ``slogdet``/``logdet``, ``solve``, ``solve_triangular``,
``cholesky`` — batched over leading dims, with torch's backward formulas.

Each backward is written with these same differentiable functions, so second derivatives work:
``inv``: ``gA = −Yᵀ gY Yᵀ``; ``det``: ``gA = g·det·A⁻ᵀ``; ``logdet``: ``gA = g·A⁻ᵀ``; ``solve``
(``AX = B``): ``gB = A⁻ᵀ gX``, ``gA = −gB Xᵀ``; ``cholesky`` (``A = LLᵀ``):
``gA = L⁻ᵀ Φ(Lᵀ gL) L⁻¹`` with Φ the symmetric part built from the lower triangle (torch's).
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from .. import backend
from ..autograd.function import Context, Function
from ..autograd.tensor import Tensor, register
from .common import check_tensor, const
from .indexing import tril, triu
from .linalg import matmul
from .shape import sum_to

__all__ = ["inv", "inverse", "det", "slogdet", "logdet", "solve", "solve_triangular", "cholesky"]

xp = backend.xp

SlogdetResult = namedtuple("slogdet", ["sign", "logabsdet"])


def check_square(op: str, A: Any, name: str = "A") -> None:
    check_tensor(A, op, name)
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"{op}: {name} must be batches of square matrices, but they are "
                           f"{A.shape[-2] if A.ndim > 1 else A.numel()} by {A.shape[-1] if A.ndim else 1} matrices")
    if A.dtype.kind != "f":
        raise RuntimeError(f"{op}: Expected a floating point tensor as input. Got {A.dtype}")


def _singular(op: str) -> RuntimeError:
    return RuntimeError(f"{op}: The diagonal element of the factorization is zero, the matrix is singular "
                        f"(it has no inverse)")


class Inv(Function):
    @staticmethod
    def forward(ctx: Context, a: Any) -> Any:
        try:
            y = xp.linalg.inv(a)
        except xp.linalg.LinAlgError:
            raise _singular("linalg.inv") from None
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        yt = y.mT
        return -matmul(matmul(yt, gy), yt)


@register("inverse")
def inv(A: Tensor) -> Tensor:
    """The inverse of each square matrix; a clear error where one is singular (as torch)."""
    check_square("linalg.inv", A)
    return Inv.apply(A)


inverse = inv


def _det_array(a: Any) -> Any:
    return xp.linalg.det(a) if a.size else xp.ones(a.shape[:-2], dtype=a.dtype)


class Det(Function):
    @staticmethod
    def forward(ctx: Context, a: Any) -> Any:
        d = xp.asarray(_det_array(a), dtype=a.dtype)
        ctx.save_for_backward(a, d)
        return d

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        a, d = ctx.saved_tensors
        if (d.array != 0).all():
            return (gy * d).unsqueeze(-1).unsqueeze(-1) * inv(a).mT
        # NOTE: where det is 0 the cofactor matrix still exists: det·A⁻ᵀ = U diag(∏_{j≠i} s_j) Vᵀ·det(U)det(V)
        # (from the SVD, as torch's); it is used as a constant there, so only first derivatives are exact
        u, s, vh = xp.linalg.svd(a.array)
        others = xp.stack([xp.prod(xp.delete(s, i, axis=-1), axis=-1) for i in range(s.shape[-1])], -1)
        sign = xp.linalg.det(u) * xp.linalg.det(vh)
        cof = (u * others[..., None, :]) @ vh * sign[..., None, None]
        return gy.unsqueeze(-1).unsqueeze(-1) * const(cof.astype(a.dtype))


@register("det")
def det(A: Tensor) -> Tensor:
    """The determinant of each square matrix (singular ones included, with their gradient)."""
    check_square("linalg.det", A)
    return Det.apply(A)


class LogAbsDet(Function):
    @staticmethod
    def forward(ctx: Context, a: Any) -> Any:
        _, lad = xp.linalg.slogdet(a)
        ctx.save_for_backward(a)
        return xp.asarray(lad, dtype=a.dtype)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        (a,) = ctx.saved_tensors
        return gy.unsqueeze(-1).unsqueeze(-1) * inv(a).mT


@register("slogdet")
def slogdet(A: Tensor) -> SlogdetResult:
    """``(sign, logabsdet)`` of each square matrix: ``det = sign·exp(logabsdet)``, without overflow.

    The sign carries no gradient; a singular matrix gives ``(0, -inf)``.
    """
    check_square("linalg.slogdet", A)
    sign, _ = xp.linalg.slogdet(A.array)
    return SlogdetResult(const(xp.asarray(sign, dtype=A.dtype)), LogAbsDet.apply(A))


@register("logdet")
def logdet(input: Tensor) -> Tensor:
    """``log(det(input))``: nan where the determinant is negative, -inf where it is 0 (as torch)."""
    check_square("logdet", input)
    sign, lad = slogdet(input)
    s = sign.array
    bad = xp.where(s < 0, xp.nan, 0.0).astype(input.dtype)
    return lad + const(bad)


def _is_vector_rhs(A: Tensor, B: Tensor) -> bool:
    """torch's rule: ``B`` is a (batch of) vector(s) when 1-D, or when it has one dim fewer than ``A``
    and matches A's batch."""
    return B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))


class Solve(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        try:
            x = xp.linalg.solve(a, b)
        except xp.linalg.LinAlgError:
            raise _singular("linalg.solve") from None
        ctx.save_for_backward(a, x)
        return x

    @staticmethod
    def backward(ctx: Context, gx: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, x = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        gb = Solve.apply(a.mT, gx)
        ga = -matmul(gb, x.mT) if na else None
        return (sum_to(ga, a.shape) if na else None, gb if nb else None)


def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:
    """The solution ``X`` of ``AX = B`` (``left=False``: ``XA = B``), batched and broadcast.

    ``B`` may be a vector (or a batch of vectors, one dim fewer than ``A``), as torch's rule.
    """
    check_square("linalg.solve", A)
    check_tensor(B, "linalg.solve", "B")
    if A.dtype != B.dtype:
        raise RuntimeError(f"linalg.solve: Expected A and B to have the same dtype, but found A of type {A.dtype} "
                           f"and B of type {B.dtype} instead")
    if not left:
        return solve(A.mT, B.mT).mT
    vector = _is_vector_rhs(A, B)
    b = B.unsqueeze(-1) if vector else B
    if b.shape[-2] != A.shape[-1]:
        raise RuntimeError(f"linalg.solve: Incompatible shapes of A and B for the equation AX = B "
                           f"({A.shape[-2]}x{A.shape[-1]} and {b.shape[-2]}x{b.shape[-1]})")
    try:
        batch = xp.broadcast_shapes(A.shape[:-2], b.shape[:-2])
    except ValueError:
        raise RuntimeError(f"linalg.solve: batch dims of A {tuple(A.shape)} and B {tuple(B.shape)} cannot be "
                           f"broadcast") from None
    a = A.expand(*batch, *A.shape[-2:]) if tuple(A.shape[:-2]) != batch else A
    b = b.expand(*batch, *b.shape[-2:]) if tuple(b.shape[:-2]) != batch else b
    x = Solve.apply(a, b)
    return x.squeeze(-1) if vector else x


def solve_triangular(A: Tensor, B: Tensor, *, upper: bool, left: bool = True, unitriangular: bool = False) -> Tensor:
    """The solution of ``AX = B`` for triangular ``A`` (only its ``upper`` or lower triangle is read)."""
    check_square("linalg.solve_triangular", A)
    if B.ndim < 2:
        raise RuntimeError(f"linalg.solve_triangular: The input tensor B must have at least 2 dimensions, got "
                           f"{B.ndim}")
    T = triu(A) if upper else tril(A)
    if unitriangular:
        eye = const(xp.eye(A.shape[-1], dtype=bool))
        T = T.masked_fill(eye, 0.0) + const(xp.eye(A.shape[-1], dtype=A.dtype))
    return solve(T, B, left=left)


class Cholesky(Function):
    @staticmethod
    def forward(ctx: Context, a: Any) -> Any:
        try:
            low = xp.linalg.cholesky(a)
        except xp.linalg.LinAlgError:
            raise RuntimeError("linalg.cholesky: The factorization could not be completed because the input is not "
                               "positive-definite") from None
        ctx.save_for_backward(low)
        return low

    @staticmethod
    def backward(ctx: Context, gl: Tensor) -> Tensor:
        (low,) = ctx.saved_tensors
        g = tril(matmul(low.mT, gl))
        g = 0.5 * (g + tril(g, -1).mT)  # = ½(g + gᴴ − diag g): the symmetric matrix Φ
        lt = low.mT
        g = solve_triangular(lt, g, upper=True)
        return solve_triangular(low, g, upper=False, left=False)


def cholesky(A: Tensor, *, upper: bool = False) -> Tensor:
    """The Cholesky factor ``L`` (``A = LLᵀ``; ``upper=True``: ``U = Lᵀ``) of each symmetric
    positive-definite matrix; only the lower triangle of ``A`` is read, as LAPACK's."""
    check_square("linalg.cholesky", A)
    low = Cholesky.apply(A)
    return low.mT if upper else low
