"""Optional numba kernels for depthwise convolutions at stride 1 on NCHW arrays (one input and
one output channel per group; 1-D data comes in as ``(N, C, 1, W)``).

One plane at a time through flat zero-padded scratch planes (rows ``e1`` wide, and one row more
for the last taps' overrun into the garbage columns past each row): each kernel tap is one
contiguous multiply-add over the whole plane. The row-at-a-time kernels of :mod:`.direct_numba`
(which serve the strided depthwise convs) run each tap over one output row, 32 floats in
MobileNet-sized layers: shorter than the 64-float AVX-512 loop LLVM builds, so those rows ran
in its scalar remainder (the depthwise benchmark layer's forward runs over twice as fast here).
``chunks`` splits the planes among the threads, each chunk with scratch
planes of its own (allocated once per chunk; the padding stays zero, each plane fills the inside).
"""

from __future__ import annotations

from typing import Any

from . import conv_numba

__all__ = ["dw_flat_fwd", "dw_flat_gx", "dw_flat_gw"]

dw_flat_fwd: Any = None
dw_flat_gx: Any = None
dw_flat_gw: Any = None

if conv_numba.AVAILABLE:
    import numpy as np
    from numba import prange

    def _dw_flat_fwd(x, w, y, d0, d1, p0, p1, e0, e1, bias, chunks):  # pragma: no cover - compiled
        """``y[n, c, a, b] = bias[c] + Σ_ij x[n, c, a + i·d0 − p0, b + j·d1 − p1]·w[c, i, j]``
        (zeros outside x)."""
        n_, c_, S0, S1 = x.shape
        O0, O1 = y.shape[2], y.shape[3]
        K0, K1 = w.shape[1], w.shape[2]
        planes = n_ * c_
        ln = O0 * e1
        for ch in prange(chunks):
            xp = np.zeros((e0 + 1) * e1, dtype=x.dtype)  # the padding stays zero: planes fill the inside
            yf = np.empty(ln, dtype=y.dtype)
            for t in range(ch * planes // chunks, (ch + 1) * planes // chunks):
                n = t // c_
                c = t % c_
                for a in range(S0):
                    xr = x[n, c, a]
                    base = (a + p0) * e1 + p1
                    for b in range(S1):
                        xp[np.uint64(base + b)] = xr[np.uint64(b)]
                bv = bias[c]
                for q in range(ln):
                    yf[np.uint64(q)] = bv
                for i in range(K0):
                    for j in range(K1):
                        off = i * d0 * e1 + j * d1
                        wv = w[c, i, j]
                        for q in range(ln):
                            yf[np.uint64(q)] += xp[np.uint64(q + off)] * wv
                for a in range(O0):
                    yr = y[n, c, a]
                    for b in range(O1):
                        yr[np.uint64(b)] = yf[np.uint64(a * e1 + b)]

    def _dw_flat_gx(gy, w, gx, d0, d1, p0, p1, e0, e1, chunks):  # pragma: no cover - compiled
        """Adjoint of :func:`dw_flat_fwd` in ``x``: every element of ``gx`` written."""
        n_, c_, S0, S1 = gx.shape
        O0, O1 = gy.shape[2], gy.shape[3]
        K0, K1 = w.shape[1], w.shape[2]
        planes = n_ * c_
        ln = O0 * e1
        for ch in prange(chunks):
            gf = np.zeros(ln, dtype=gy.dtype)  # the garbage columns stay zero
            gp = np.empty((e0 + 1) * e1, dtype=gx.dtype)
            for t in range(ch * planes // chunks, (ch + 1) * planes // chunks):
                n = t // c_
                c = t % c_
                for a in range(O0):
                    gr = gy[n, c, a]
                    for b in range(O1):
                        gf[np.uint64(a * e1 + b)] = gr[np.uint64(b)]
                for q in range(gp.shape[0]):
                    gp[np.uint64(q)] = 0
                for i in range(K0):
                    for j in range(K1):
                        off = i * d0 * e1 + j * d1
                        wv = w[c, i, j]
                        for q in range(ln):
                            gp[np.uint64(q + off)] += gf[np.uint64(q)] * wv
                for a in range(S0):
                    xr = gx[n, c, a]
                    base = (a + p0) * e1 + p1
                    for b in range(S1):
                        xr[np.uint64(b)] = gp[np.uint64(base + b)]

    def _dw_flat_gw(x, gy, gw, d0, d1, p0, p1, e0, e1):  # pragma: no cover - compiled
        """Adjoint of :func:`dw_flat_fwd` in ``w``: ``gw[c, i, j] = Σ_nab x[…]·gy[n, c, a, b]``,
        one channel per task."""
        n_, c_, S0, S1 = x.shape
        O0, O1 = gy.shape[2], gy.shape[3]
        K0, K1 = gw.shape[1], gw.shape[2]
        ln = O0 * e1
        for c in prange(c_):
            xp = np.zeros((e0 + 1) * e1, dtype=x.dtype)
            gf = np.zeros(ln, dtype=gy.dtype)
            for i in range(K0):
                for j in range(K1):
                    gw[c, i, j] = 0
            for n in range(n_):
                for a in range(S0):
                    xr = x[n, c, a]
                    base = (a + p0) * e1 + p1
                    for b in range(S1):
                        xp[np.uint64(base + b)] = xr[np.uint64(b)]
                for a in range(O0):
                    gr = gy[n, c, a]
                    for b in range(O1):
                        gf[np.uint64(a * e1 + b)] = gr[np.uint64(b)]
                for i in range(K0):
                    for j in range(K1):
                        off = i * d0 * e1 + j * d1
                        acc = gw[c, i, j] * 0
                        for q in range(ln):
                            acc += xp[np.uint64(q + off)] * gf[np.uint64(q)]
                        gw[c, i, j] += acc

    dw_flat_fwd = conv_numba.compile_pair(_dw_flat_fwd)
    dw_flat_gx = conv_numba.compile_pair(_dw_flat_gx)
    dw_flat_gw = conv_numba.compile_pair(_dw_flat_gw, fastmath={"reassoc"})
