"""Decompositions: ``qr``, ``eigh``/``eigvalsh``, ``svd``/``svdvals``, and what builds on them:
``pinv``, ``lstsq`` — batched, with torch's backward formulas.

A decomposition has several outputs; the autograd engine records one per node, so the primitive
returns them packed side by side in one array (per batch element, flattened and joined) and the
public function cuts the parts out differentiably. Each backward takes the packed gradient apart
the same way and applies the formula (for real matrices):

- ``qr`` (reduced, ``m ≥ n``): ``M = R gRᵀ − gQᵀ Q``, ``gA = (gQ + Q copyltu(M)) R⁻ᵀ``; for ``m < n``
  the columns beyond ``m`` are handled as torch does (``A = Q[U | D]``).
- ``eigh``: ``gA = V (diag(gL) + skew(Vᵀ gV)/2 ⊘ E) Vᵀ`` with ``E_ij = λ_j − λ_i``.
- ``svd``: ``gA = U [(skew(Uᵀ gU) S + S skew(Vᵀ gV)) ⊘ E + diag(gS)] Vᵀ`` with ``E_jk = s_k² − s_j²``,
  plus the terms for the part of a rectangular matrix outside U's or V's span.

As torch's, the gradients of U, V and the eigenvectors are well defined only where the singular
values (eigenvalues) are distinct, and only for losses that do not depend on the sign of a vector.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from .. import backend
from ..autograd.function import Context, Function
from ..autograd.tensor import Tensor, register
from .common import check_tensor, const
from .diagonal import diag_embed
from .indexing import tril
from .join import cat
from .linalg import matmul
from .matrix import solve_triangular

__all__ = ["qr", "eigh", "eigvalsh", "svd", "svdvals", "pinv", "lstsq"]

xp = backend.xp

QRResult = namedtuple("QRResult", ["Q", "R"])
EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])
SVDResult = namedtuple("SVDResult", ["U", "S", "Vh"])
LstsqResult = namedtuple("LstsqResult", ["solution", "residuals", "rank", "singular_values"])


def _check_matrix(op: str, A: Any) -> None:
    check_tensor(A, op, "A")
    if A.ndim < 2:
        raise RuntimeError(f"{op}: The input tensor A must have at least 2 dimensions.")
    if A.dtype.kind != "f":
        raise RuntimeError(f"{op}: Expected a floating point tensor as input. Got {A.dtype}")


def _pack(batch: tuple[int, ...], *arrays: Any) -> Any:
    n = len(batch)
    return xp.concatenate([a.reshape(batch + (int(xp.prod(a.shape[n:])),)) for a in arrays], axis=-1)


def _unpack(t: Tensor, batch: tuple[int, ...], shapes: list[tuple[int, ...]]) -> list[Tensor]:
    out, start = [], 0
    for s in shapes:
        size = 1
        for d in s:
            size *= d
        out.append(t[..., start:start + size].reshape(*batch, *s))
        start += size
    return out


def _skew(x: Tensor) -> Tensor:
    return x - x.mT


class QR(Function):
    @staticmethod
    def forward(ctx: Context, a: Any) -> Any:
        q, r = xp.linalg.qr(a, mode="reduced")
        ctx.batch, ctx.shapes = a.shape[:-2], [q.shape[-2:], r.shape[-2:]]
        out = _pack(ctx.batch, q, r)
        ctx.save_for_backward(a, out)
        return out

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        a, out = ctx.saved_tensors
        q, r = _unpack(out, ctx.batch, ctx.shapes)
        gq, gr = _unpack(gy, ctx.batch, ctx.shapes)
        m, n = a.shape[-2:]
        if m >= n:
            return _qr_grad(q, r, gq, gr)
        # A = Q [U | D]: U square, D = Qᵀ A[:, m:] (its gradient flows into Q too)
        u = r[..., :, :m]
        gu, gd = gr[..., :, :m], gr[..., :, m:]
        da = _qr_grad(q, u, gq + matmul(a[..., :, m:], gd.mT), gu)
        return cat([da, matmul(q, gd)], -1)


def _qr_grad(q: Tensor, r: Tensor, gq: Tensor, gr: Tensor) -> Tensor:
    mm = matmul(r, gr.mT) - matmul(gq.mT, q)
    copyltu = tril(mm) + tril(mm, -1).mT
    b = gq + matmul(q, copyltu)
    # b R⁻ᵀ: solve X Rᵀ = b, Rᵀ lower triangular
    return solve_triangular(r.mT, b, upper=False, left=False)


def qr(A: Tensor, mode: str = "reduced") -> QRResult:
    """``A = QR`` with orthonormal columns in ``Q`` and upper-triangular ``R``.

    Args:
        mode: ``'reduced'`` (``Q``: m×k, ``R``: k×n, k = min(m, n)), ``'complete'`` (``Q``: m×m) or
            ``'r'`` (only ``R``; ``Q`` is empty). Gradients as torch's: for ``'reduced'``, and for
            ``'complete'`` where ``m ≤ n``.
    """
    _check_matrix("linalg.qr", A)
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of 'reduced' (default), 'r', "
                           f"or 'complete'")
    m, n = A.shape[-2:]
    if mode == "complete" and m > n:
        q, r = xp.linalg.qr(A.array, mode="complete")
        if A.requires_grad:
            raise RuntimeError("linalg.qr: The derivative of linalg.qr is not implemented when mode='complete' "
                               "and nrows > ncols.")
        return QRResult(const(q), const(r))
    if mode == "r":
        r = xp.linalg.qr(A.array, mode="r")
        return QRResult(const(xp.zeros((0,), dtype=A.dtype)), const(xp.asarray(r)))
    k = min(m, n)
    batch = tuple(A.shape[:-2])
    q, r = _unpack(QR.apply(A), batch, [(m, k), (k, n)])
    return QRResult(q, r)


class Eigh(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, lower: bool) -> Any:
        w, v = xp.linalg.eigh(a, UPLO="L" if lower else "U")
        n = a.shape[-1]
        ctx.batch, ctx.shapes = a.shape[:-2], [(n,), (n, n)]
        out = _pack(ctx.batch, w, v)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        (out,) = ctx.saved_tensors
        w, v = _unpack(out, ctx.batch, ctx.shapes)
        gw, gv = _unpack(gy, ctx.batch, ctx.shapes)
        e = w.unsqueeze(-2) - w.unsqueeze(-1)  # E_ij = λ_j − λ_i
        eye = const(xp.eye(w.shape[-1], dtype=bool))
        inner = (0.5 * _skew(matmul(v.mT, gv))) / e.masked_fill(eye, 1.0)
        inner = inner.masked_fill(eye, 0.0) + diag_embed(gw)
        return matmul(matmul(v, inner), v.mT)


def eigh(A: Tensor, UPLO: str = "L") -> EighResult:
    """Eigenvalues (ascending) and orthonormal eigenvectors (columns) of symmetric matrices; only
    the ``UPLO`` (``'L'`` or ``'U'``) triangle is read."""
    _check_matrix("linalg.eigh", A)
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"linalg.eigh: Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    if A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"linalg.eigh: A must be batches of square matrices, but they are {A.shape[-2]} by "
                           f"{A.shape[-1]} matrices")
    n = A.shape[-1]
    w, v = _unpack(Eigh.apply(A, lower=UPLO == "L"), tuple(A.shape[:-2]), [(n,), (n, n)])
    return EighResult(w, v)


def eigvalsh(A: Tensor, UPLO: str = "L") -> Tensor:
    """The eigenvalues of symmetric matrices, ascending."""
    return eigh(A, UPLO).eigenvalues


class SVD(Function):
    @staticmethod
    def forward(ctx: Context, a: Any) -> Any:
        u, s, vh = xp.linalg.svd(a, full_matrices=False)
        ctx.batch, ctx.shapes = a.shape[:-2], [u.shape[-2:], s.shape[-1:], vh.shape[-2:]]
        out = _pack(ctx.batch, u, s, vh)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        (out,) = ctx.saved_tensors
        u, s, vh = _unpack(out, ctx.batch, ctx.shapes)
        gu, gs, gvh = _unpack(gy, ctx.batch, ctx.shapes)
        return _svd_grad(u, s, vh, gu, gs, gvh)


def _svd_grad(u: Tensor, s: Tensor, vh: Tensor, gu: Tensor, gs: Tensor, gvh: Tensor) -> Tensor:
    m, k, n = u.shape[-2], s.shape[-1], vh.shape[-1]
    v, gv = vh.mT, gvh.mT
    s2 = s * s
    eye = const(xp.eye(k, dtype=bool))
    e = (s2.unsqueeze(-2) - s2.unsqueeze(-1)).masked_fill(eye, 1.0)  # E_jk = s_k² − s_j²
    uhgu, vhgv = _skew(matmul(u.mT, gu)), _skew(matmul(v.mT, gv))
    ga = ((uhgu * s.unsqueeze(-2) + s.unsqueeze(-1) * vhgv) / e).masked_fill(eye, 0.0) + diag_embed(gs)
    if m > k:  # U's columns miss part of ℝᵐ: (I − UUᵀ) gU S⁻¹ joins
        ga = matmul(u, ga)
        gus = gu / s.unsqueeze(-2)
        ga = ga + gus - matmul(u, matmul(u.mT, gus))
        return matmul(ga, vh)
    if n > k:  # likewise for V: S⁻¹ gVᵀ (I − VVᵀ)
        ga = matmul(ga, vh)
        sgv = gv.mT / s.unsqueeze(-1)
        ga = ga + sgv - matmul(matmul(sgv, v), vh)
        return matmul(u, ga)
    return matmul(u, matmul(ga, vh))


def svd(A: Tensor, full_matrices: bool = True) -> SVDResult:
    """``A = U diag(S) Vh`` with singular values ``S`` descending.

    Args:
        full_matrices: ``U`` m×m and ``Vh`` n×n (as torch's default; only the reduced part carries
            gradients, and torch refuses a backward through the full one); ``False``: the reduced
            ``U`` m×k, ``Vh`` k×n.
    """
    _check_matrix("linalg.svd", A)
    m, n = A.shape[-2:]
    if full_matrices and m != n:
        if A.requires_grad:
            raise RuntimeError("linalg.svd: The derivative of linalg.svd is not implemented when full_matrices=True "
                               "and the matrix is not square; use full_matrices=False")
        u, s, vh = xp.linalg.svd(A.array, full_matrices=True)
        return SVDResult(const(u), const(s), const(vh))
    k = min(m, n)
    u, s, vh = _unpack(SVD.apply(A), tuple(A.shape[:-2]), [(m, k), (k,), (k, n)])
    return SVDResult(u, s, vh)


class SVDVals(Function):
    @staticmethod
    def forward(ctx: Context, a: Any) -> Any:
        ctx.save_for_backward(a)
        return xp.linalg.svd(a, compute_uv=False)

    @staticmethod
    def backward(ctx: Context, gs: Tensor) -> Tensor:
        (a,) = ctx.saved_tensors
        u, _, vh = svd(a, full_matrices=False)
        return matmul(u * gs.unsqueeze(-2), vh)  # U diag(gS) Vᵀ


def svdvals(A: Tensor) -> Tensor:
    """The singular values, descending; its gradient ``U diag(gS) Vᵀ`` needs no distinct values."""
    _check_matrix("linalg.svdvals", A)
    return SVDVals.apply(A)


def pinv(A: Tensor, *, atol: float | None = None, rtol: float | None = None, hermitian: bool = False) -> Tensor:
    """The Moore–Penrose pseudo-inverse ``V diag(1/s) Uᵀ``, singular values at or below
    ``max(atol, rtol·s_max)`` dropped (default ``rtol``: ``eps·max(m, n)``, as torch).

    Composed from :func:`svd` (``eigh`` when ``hermitian``), so its gradient is torch's wherever the
    kept singular values are distinct.
    """
    _check_matrix("linalg.pinv", A)
    m, n = A.shape[-2:]
    if rtol is None:
        rtol = 0.0 if atol is not None and atol > 0 else float(xp.finfo(A.dtype).eps) * max(m, n)
    if hermitian:
        w, v = eigh(A)
        s_abs = w.abs()
        top = s_abs.amax(-1, keepdim=True)
        keep = const(s_abs.array > xp.maximum(atol or 0.0, rtol * top.array))
        inv_s = (1.0 / w.masked_fill(~keep, 1.0)).masked_fill(~keep, 0.0)
        return matmul(v * inv_s.unsqueeze(-2), v.mT)
    u, s, vh = svd(A, full_matrices=False)
    top = s[..., :1] if s.shape[-1] else s
    keep = const(s.array > xp.maximum(atol or 0.0, rtol * top.array))
    inv_s = (1.0 / s.masked_fill(~keep, 1.0)).masked_fill(~keep, 0.0)
    return matmul(vh.mT * inv_s.unsqueeze(-2), u.mT)


def lstsq(A: Tensor, B: Tensor, rcond: float | None = None, *, driver: str | None = None) -> LstsqResult:
    """The least-squares solution of ``AX ≈ B`` (the minimum-norm one for rank-deficient ``A``),
    ``pinv(A) @ B`` with torch's defaults.

    Returns ``(solution, residuals, rank, singular_values)``: ``residuals`` (squared, per column)
    where ``m > n`` and every matrix has full rank, else empty; ``rank``; ``singular_values`` only for
    the drivers ``'gelsd'``/``'gelss'`` (empty otherwise, as torch's CPU default ``'gelsy'``).
    """
    _check_matrix("linalg.lstsq", A)
    check_tensor(B, "linalg.lstsq", "B")
    if driver not in (None, "gels", "gelsy", "gelsd", "gelss"):
        raise RuntimeError(f"torch.linalg.lstsq: parameter `driver` should be one of (gels, gelsy, gelsd, gelss), "
                           f"got {driver}")
    vector = B.ndim == A.ndim - 1
    b = B.unsqueeze(-1) if vector else B
    if b.shape[-2] != A.shape[-2]:
        raise RuntimeError(f"torch.linalg.lstsq: input.size(-2) should match other.size(-2), got {A.shape[-2]} "
                           f"and {b.shape[-2]}")
    m, n = A.shape[-2:]
    if rcond is None:
        rcond = float(xp.finfo(A.dtype).eps) * max(m, n)
    s_arr = xp.linalg.svd(A.array, compute_uv=False)
    top = s_arr[..., :1] if s_arr.shape[-1] else s_arr
    rank = (s_arr > rcond * top).sum(-1)
    full = bool((rank == min(m, n)).all())
    if full and m >= n:  # through QR, not the normal equations (which square the condition number)
        q, r = qr(A)
        x = solve_triangular(r, matmul(q.mT, b), upper=True)
    elif full:  # the minimum-norm solution of an underdetermined system: Aᵀ = QR, X = Q R⁻ᵀ B
        q, r = qr(A.mT)
        x = matmul(q, solve_triangular(r.mT, b, upper=False))
    else:
        x = matmul(pinv(A, rtol=rcond), b)
    if m > n and full and driver != "gelsy" and driver is not None:
        r = matmul(A, x) - b
        residuals = (r * r).sum(-2)
    else:
        residuals = const(xp.zeros((0,), dtype=A.dtype))
    sv = const(s_arr) if driver in ("gelsd", "gelss") else const(xp.zeros((0,), dtype=A.dtype))
    rank_t = const(rank.astype(xp.int64)) if driver != "gels" else const(xp.zeros((0,), dtype=xp.int64))
    return LstsqResult(x.squeeze(-1) if vector else x, residuals, rank_t, sv)


LegacySVD = namedtuple("svd", ["U", "S", "V"])


@register("svd")
def legacy_svd(input: Tensor, some: bool = True, compute_uv: bool = True) -> LegacySVD:
    """torch's older ``torch.svd``: ``(U, S, V)`` with ``V`` (not ``Vh``), reduced unless ``some=False``;
    with ``compute_uv=False``, U and V are zero-filled square matrices (m×m, n×n), as torch's."""
    if not compute_uv:
        m, n = input.shape[-2:]
        s = svdvals(input)
        shape_u, shape_v = tuple(input.shape[:-2]) + (m, m), tuple(input.shape[:-2]) + (n, n)
        return LegacySVD(const(xp.zeros(shape_u, dtype=input.dtype)), s, const(xp.zeros(shape_v, dtype=input.dtype)))
    u, s, vh = svd(input, full_matrices=not some)
    return LegacySVD(u, s, vh.mT)


@register("qr")
def legacy_qr(input: Tensor, some: bool = True) -> QRResult:
    """torch's older ``torch.qr``: :func:`qr` with ``mode='reduced'`` (``some``) or ``'complete'``."""
    return qr(input, "reduced" if some else "complete")


@register("cholesky")
def legacy_cholesky(input: Tensor, upper: bool = False) -> Tensor:
    """torch's older ``torch.cholesky``: :func:`lamina.linalg.cholesky`."""
    from .matrix import cholesky

    return cholesky(input, upper=upper)


@register("pinverse")
def pinverse(input: Tensor, rcond: float = 1e-15) -> Tensor:
    """``torch.pinverse``: :func:`pinv` with the relative cutoff ``rcond``."""
    return pinv(input, rtol=rcond)
