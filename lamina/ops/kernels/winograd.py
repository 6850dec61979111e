"""3×3 convolution with stride 1 by Winograd's minimal filtering F(2×2, 3×3) (numba only).

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (2016): each 2×2 block of
outputs comes from a 4×4 tile of the input with 16 multiplications per (input, output) channel
pair instead of 36. Per tile ``d`` (4×4) and filter ``g`` (3×3)::

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A

with the products summed over input channels, which makes them 16 independent GEMMs
``M[e] = V[e] @ U[e]`` of shapes ``(tiles, C) @ (C, K)`` — 2.25× fewer multiply-adds than the
im2col GEMM, which is where a 3×3 conv spends its time. The input transform ``V = Bᵀ d B`` and
the output transform ``Aᵀ M A`` are compiled loops over channels-last data (adds only); the
filter transform ``U = G g Gᵀ`` is a small NumPy product. Tiles are taken a few images at a
time, so ``V`` and ``M`` stay within :data:`CHUNK_BYTES` each, and the chunks are shared among
lamina's threads (:mod:`.threads`): each thread transforms, multiplies and transforms back its
own chunks (so the transforms, which are memory-bound, run on every core too).

Rounding: the transforms add and subtract at most four terms and scale by 1/2, so the error is
a small multiple of the direct sum's (tests compare against torch at float32 and float64).

The same routine gives the input gradient of a stride-1 3×3 conv: it is the convolution of the
output gradient with the flipped, transposed filter and padding ``2 − p``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import conv_numba, threads
from .im2col import pad_channels_last

__all__ = ["winograd_extent", "winograd_conv", "winograd_input_grad", "winograd_weight_grad",
           "CHUNK_BYTES", "MIN_CHANNELS", "MIN_CHANNELS_COLGEMM", "MIN_OUT"]

# tiles are transformed a few images at a time, so that V and M stay in the cache between the
# transforms and the GEMMs: at least one image per chunk, else at most this many bytes (about
# half an L2 per thread: larger chunks fall out of the cache and were slower on the resnet20 step)
CHUNK_BYTES = 512 * 2**10
# below this many input or output channels the 16 GEMMs are too thin to beat the im2col one
MIN_CHANNELS = 16
# ... and below this many where the im2col conv runs on colgemm_numba's kernels (a batch of
# several images, NumPy's OpenBLAS on one thread while lamina's kernels run): the fused column
# GEMM, which writes no column matrix, beats Winograd's transforms on 16- and 32-channel layers,
# while the 64-channel benchmark layer stays faster with Winograd
MIN_CHANNELS_COLGEMM = 64
# below this output size the overlapping 4×4 tiles read too much (a 4×4 output is slower than
# im2col; from 8×8 Winograd wins)
MIN_OUT = 8

_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
_KRON = np.kron(_G, _G)  # (16, 9): (G g Gᵀ)[i, j] = Σ_ab _KRON[4i + j, 3a + b] g[a, b]
_KRON_FLIP = _KRON[:, ::-1]  # the same for g turned by 180° (tap 3a + b -> 8 − (3a + b))

_input_tf: Any = None
_output_tf: Any = None
_grad_tf: Any = None

if conv_numba.AVAILABLE:
    from numba import prange

    # Both transforms take one tile per inner iteration and run over channels innermost (unsigned
    # indices, so the loops vectorize); ``v`` and ``m`` are laid out tile-major ``(tiles, 16, C)``
    # so that each tile's 16 rows are one contiguous block (16 separate planes made the input
    # transform 9× slower), and the GEMMs read them through a strided view.

    def _input_transform(xpad, v, t0, t1):  # pragma: no cover - compiled
        """``v[(n·t0 + a)·t1 + b, 4i + j, c] = (Bᵀ d B)[i, j]`` for the tile ``d`` of ``xpad (N, E0, E1, C)``
        at rows ``2a … 2a + 3``, columns ``2b … 2b + 3``
        (``Bᵀ = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]``)."""
        n_, _, _, c_ = xpad.shape
        for t in prange(n_ * t0):
            n = t // t0
            r = 2 * (t % t0)
            x0, x1, x2, x3 = xpad[n, r], xpad[n, r + 1], xpad[n, r + 2], xpad[n, r + 3]
            for b in range(t1):
                q = 2 * b
                vt = v[t * t1 + b]
                for cc in range(c_):
                    c = np.uint64(cc)
                    d00, d01, d02, d03 = x0[q, c], x0[q + 1, c], x0[q + 2, c], x0[q + 3, c]
                    d10, d11, d12, d13 = x1[q, c], x1[q + 1, c], x1[q + 2, c], x1[q + 3, c]
                    d20, d21, d22, d23 = x2[q, c], x2[q + 1, c], x2[q + 2, c], x2[q + 3, c]
                    d30, d31, d32, d33 = x3[q, c], x3[q + 1, c], x3[q + 2, c], x3[q + 3, c]
                    # rows: Bᵀ d
                    e00, e01, e02, e03 = d00 - d20, d01 - d21, d02 - d22, d03 - d23
                    e10, e11, e12, e13 = d10 + d20, d11 + d21, d12 + d22, d13 + d23
                    e20, e21, e22, e23 = d20 - d10, d21 - d11, d22 - d12, d23 - d13
                    e30, e31, e32, e33 = d10 - d30, d11 - d31, d12 - d32, d13 - d33
                    # columns: (Bᵀ d) B
                    vt[0, c], vt[1, c], vt[2, c], vt[3, c] = e00 - e02, e01 + e02, e02 - e01, e01 - e03
                    vt[4, c], vt[5, c], vt[6, c], vt[7, c] = e10 - e12, e11 + e12, e12 - e11, e11 - e13
                    vt[8, c], vt[9, c], vt[10, c], vt[11, c] = e20 - e22, e21 + e22, e22 - e21, e21 - e23
                    vt[12, c], vt[13, c], vt[14, c], vt[15, c] = e30 - e32, e31 + e32, e32 - e31, e31 - e33

    def _output_transform(m, bias, y, t0, t1):  # pragma: no cover - compiled
        """``y[n, 2a + i, 2b + j, k] = (Aᵀ m A)[i, j] + bias[k]`` for the tile ``(n, a, b)`` of
        ``m (tiles, 16, K)``, cropped to ``y (N, O0, O1, K)`` (``Aᵀ = [[1, 1, 1, 0], [0, 1, -1, -1]]``)."""
        n_, o0, o1, k_ = y.shape
        for t in prange(n_ * t0):
            n = t // t0
            r = 2 * (t % t0)
            two_rows = r + 1 < o0
            y0 = y[n, r]
            y1 = y[n, r + 1] if two_rows else y[n, r]
            for b in range(t1):
                q = 2 * b
                two_cols = q + 1 < o1
                mt = m[t * t1 + b]
                for kk in range(k_):
                    k = np.uint64(kk)
                    bk = bias[k]
                    # rows: Aᵀ m
                    r00 = mt[0, k] + mt[4, k] + mt[8, k]
                    r01 = mt[1, k] + mt[5, k] + mt[9, k]
                    r02 = mt[2, k] + mt[6, k] + mt[10, k]
                    r03 = mt[3, k] + mt[7, k] + mt[11, k]
                    r10 = mt[4, k] - mt[8, k] - mt[12, k]
                    r11 = mt[5, k] - mt[9, k] - mt[13, k]
                    r12 = mt[6, k] - mt[10, k] - mt[14, k]
                    r13 = mt[7, k] - mt[11, k] - mt[15, k]
                    # columns: (Aᵀ m) A
                    y0[q, k] = r00 + r01 + r02 + bk
                    if two_cols:
                        y0[q + 1, k] = r01 - r02 - r03 + bk
                    if two_rows:
                        y1[q, k] = r10 + r11 + r12 + bk
                        if two_cols:
                            y1[q + 1, k] = r11 - r12 - r13 + bk

    def _grad_transform(gy, z, t0, t1):  # pragma: no cover - compiled
        """``z[(n·t0 + a)·t1 + b] = A e Aᵀ`` (4×4) for the 2×2 block ``e`` of ``gy (N, O0, O1, K)`` at
        ``(2a, 2b)``, with zeros past the edge (the adjoint of the output transform)."""
        n_, o0, o1, k_ = gy.shape
        for t in prange(n_ * t0):
            n = t // t0
            r = 2 * (t % t0)
            two_rows = r + 1 < o0
            g0 = gy[n, r]
            g1 = gy[n, r + 1] if two_rows else gy[n, r]
            for b in range(t1):
                q = 2 * b
                two_cols = q + 1 < o1
                zt = z[t * t1 + b]
                for kk in range(k_):
                    k = np.uint64(kk)
                    e00 = g0[q, k]
                    e01 = g0[q + 1, k] if two_cols else e00 * 0
                    e10 = g1[q, k] if two_rows else e00 * 0
                    e11 = g1[q + 1, k] if two_rows and two_cols else e00 * 0
                    # rows: A e (A = [[1, 0], [1, 1], [1, -1], [0, -1]])
                    u0, v0 = e00, e01
                    u1, v1 = e00 + e10, e01 + e11
                    u2, v2 = e00 - e10, e01 - e11
                    u3, v3 = -e10, -e11
                    # columns: (A e) Aᵀ, each row (u, v) -> (u, u + v, u - v, -v)
                    zt[0, k], zt[1, k], zt[2, k], zt[3, k] = u0, u0 + v0, u0 - v0, -v0
                    zt[4, k], zt[5, k], zt[6, k], zt[7, k] = u1, u1 + v1, u1 - v1, -v1
                    zt[8, k], zt[9, k], zt[10, k], zt[11, k] = u2, u2 + v2, u2 - v2, -v2
                    zt[12, k], zt[13, k], zt[14, k], zt[15, k] = u3, u3 + v3, u3 - v3, -v3

    _input_tf = conv_numba.compile_pair(_input_transform)
    _output_tf = conv_numba.compile_pair(_output_transform)
    _grad_tf = conv_numba.compile_pair(_grad_transform)


def winograd_extent(size: Sequence[int], pad_lo: Sequence[int], out: Sequence[int]) -> tuple[int, int]:
    """The padded extent the tiles read: whole 4×4 tiles for ``ceil(out / 2)`` output blocks,
    and at least the padded input."""
    return tuple(max(2 * (-(-o // 2)) + 2, p + s) for s, p, o in zip(size, pad_lo, out))  # type: ignore[return-value]


def _filter_transform(w: Any, flip: bool = False) -> Any:
    """``U[4i + j, k, c] = (G g_kc Gᵀ)[i, j]`` for ``w (K, C, 3, 3)`` (``g`` turned by 180° with
    ``flip``), shape ``(16, K, C)``, in ``w``'s dtype: one GEMM with ``G ⊗ G``, whose output is
    already in this order (transposing a ``(K, C, 16)`` result would be a large strided copy)."""
    t = (_KRON_FLIP if flip else _KRON).astype(w.dtype)
    k_out, c = w.shape[:2]
    return np.dot(t, w.reshape(k_out * c, 9).T).reshape(16, k_out, c)  # (np.dot: 2× matmul's speed here)


def _padded(x: Any, pad_lo: Sequence[int], out: Sequence[int], xpad: Any) -> Any:
    """``xpad`` if it is the padded channels-last input with whole tiles, else that array made
    (the compiled transforms do not check bounds: a smaller array must never reach them)."""
    ext = winograd_extent(x.shape[2:], pad_lo, out)
    n, c = x.shape[:2]
    if (xpad is None or xpad.ndim != 4 or xpad.shape[0] != n or xpad.shape[3] != c or xpad.dtype != x.dtype
            or xpad.shape[1] < ext[0] or xpad.shape[2] < ext[1] or not xpad.flags.c_contiguous):
        return pad_channels_last(x, pad_lo, ext)
    return xpad


def _images_per_chunk(n: int, tiles_per_image: int, channels: int, itemsize: int) -> int:
    """Images per chunk so that a transformed-tile buffer stays within :data:`CHUNK_BYTES`."""
    return max(1, min(n, CHUNK_BYTES // (16 * tiles_per_image * channels * itemsize)))


def _winograd(x: Any, u: Any, pad_lo: Sequence[int], out: Sequence[int], xpad: Any, bias: Any) -> Any:
    """The conv of ``x (N, C, H, W)`` with the transformed filter ``u (16, C, K)`` (any strides)."""
    n, c = x.shape[:2]
    k_out = u.shape[2]
    t0, t1 = -(-out[0] // 2), -(-out[1] // 2)
    xpad = _padded(x, pad_lo, out, xpad)
    b = np.zeros(k_out, x.dtype) if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)
    y = np.empty((n, out[0], out[1], k_out), dtype=x.dtype)
    step = _images_per_chunk(n, t0 * t1, max(c, k_out), x.itemsize)
    starts = range(0, n, step)
    workers = threads.parallel_slots(len(starts))

    def part(j: int) -> None:
        v_buf = np.empty((step * t0 * t1, 16, c), dtype=x.dtype)  # reused by every chunk of this worker
        m_buf = np.empty((step * t0 * t1, 16, k_out), dtype=x.dtype)
        for n0 in starts[j::workers]:
            n1 = min(n, n0 + step)
            tiles = (n1 - n0) * t0 * t1
            v, m = v_buf[:tiles], m_buf[:tiles]
            _input_tf(xpad[n0:n1], v, t0, t1)
            threads.matmul(v.transpose(1, 0, 2), u, out=m.transpose(1, 0, 2))
            _output_tf(m, b, y[n0:n1], t0, t1)

    threads.run_parts(part, workers)
    return y.transpose(0, 3, 1, 2)


def winograd_conv(x: Any, w: Any, pad_lo: Sequence[int], out: Sequence[int], xpad: Any = None,
                  bias: Any = None) -> Any:
    """``y (N, K, *out)`` (channels-last underneath) = the stride-1 cross-correlation of ``x (N, C, H, W)``
    with ``w (K, C, 3, 3)``, zero padding ``pad_lo`` before each dim, plus ``bias (K,)`` if given
    (added in the output transform); ``xpad`` optionally gives the padded channels-last input
    ``(N, *E, C)`` with ``E >=`` :func:`winograd_extent`."""
    return _winograd(x, _filter_transform(w).transpose(0, 2, 1), pad_lo, out, xpad, bias)


def winograd_input_grad(gy: Any, w: Any, size: Sequence[int], pad_lo: Sequence[int]) -> Any | None:
    """The input gradient ``(N, C, *size)`` of a stride-1 3×3 conv with padding ``pad_lo``: the
    conv of ``gy`` with the flipped, transposed filter and padding ``2 − p``; None where that
    does not run here (a padding above 2, which :mod:`.conv_select` does not send here). The
    flipped filter's transform ``(16, K, C)`` is already the ``(in, out)`` matrix this conv
    needs: no transpose of ``w``."""
    if any(p > 2 for p in pad_lo):
        return None
    return _winograd(gy, _filter_transform(w, flip=True), tuple(2 - p for p in pad_lo), size, None, None)


def winograd_weight_grad(x: Any, gy: Any, pad_lo: Sequence[int], xpad: Any = None) -> Any:
    """The weight gradient ``(K, C, 3, 3)`` of :func:`winograd_conv` for the output gradient
    ``gy (N, K, *out)``: with ``Z = A e Aᵀ`` the transformed 2×2 gradient blocks, the gradient in
    ``U`` is ``Σ_tiles Z ⊙ V`` — 16 GEMMs ``Z[e]ᵀ @ V[e]`` of shapes ``(K, tiles) @ (tiles, C)`` —
    and the gradient in ``g`` is ``Gᵀ dU G``, one GEMM with ``G ⊗ G``."""
    n, c = x.shape[:2]
    k_out = gy.shape[1]
    out = gy.shape[2:]
    t0, t1 = -(-out[0] // 2), -(-out[1] // 2)
    xpad = _padded(x, pad_lo, out, xpad)
    gyc = pad_channels_last(gy, (0, 0), out)  # channels-last (no copy if it is already)
    step = _images_per_chunk(n, t0 * t1, max(c, k_out), x.itemsize)
    starts = range(0, n, step)
    workers = threads.parallel_slots(len(starts))
    dus = [np.zeros((16, k_out, c), dtype=x.dtype) for _ in range(workers)]

    def part(j: int) -> None:
        v_buf = np.empty((step * t0 * t1, 16, c), dtype=x.dtype)  # reused by every chunk of this worker
        z_buf = np.empty((step * t0 * t1, 16, k_out), dtype=x.dtype)
        du = dus[j]
        for n0 in starts[j::workers]:
            n1 = min(n, n0 + step)
            tiles = (n1 - n0) * t0 * t1
            v, z = v_buf[:tiles], z_buf[:tiles]
            _input_tf(xpad[n0:n1], v, t0, t1)
            _grad_tf(gyc[n0:n1], z, t0, t1)
            du += threads.matmul(z.transpose(1, 2, 0), v.transpose(1, 0, 2))

    threads.run_parts(part, workers)
    du = dus[0]
    for d in dus[1:]:
        du += d
    # gw[k, c, a, b] = Σ_ij G[i, a] dU[ij, k, c] G[j, b]: (K·C, 16) @ (G ⊗ G)
    return np.dot(du.reshape(16, k_out * c).T, _KRON.astype(x.dtype)).reshape(k_out, c, 3, 3)
