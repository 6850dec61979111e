"""Optional numba kernels of the direct convolutions on NCHW arrays (1-D comes in with H = 1),
:mod:`.conv_direct`'s compiled loops: row-at-a-time kernels for depthwise and grouped convs
(``depthwise_*_nc2d``, ``direct_*_nc2d``) and flat-plane kernels for stride-1 convs with short
windows (``flat_*``). Each has a parallel and a serial build (:func:`.conv_numba.compile_pair`);
without numba (or with ``LAMINA_NO_NUMBA=1``) they stay None and the selector never takes them.
"""

from __future__ import annotations

from typing import Any

from . import conv_numba

__all__ = ["depthwise_fwd_nc2d", "depthwise_gx_nc2d", "depthwise_gw_nc2d", "direct_fwd_nc2d", "direct_gx_nc2d",
           "direct_gw_nc2d", "flat_fwd", "flat_gx", "flat_gw"]

depthwise_fwd_nc2d: Any = None
depthwise_gx_nc2d: Any = None
depthwise_gw_nc2d: Any = None
direct_fwd_nc2d: Any = None
direct_gx_nc2d: Any = None
direct_gw_nc2d: Any = None
flat_fwd: Any = None
flat_gx: Any = None
flat_gw: Any = None

if conv_numba.AVAILABLE:
    import numba as _nb
    import numpy as np
    from numba import prange

    # Direct convolution, channels-first (NCHW; 1-D comes in with H = 1), no column matrix and no
    # padded copy, for depthwise and grouped convs and for convs with few input channels per
    # group (the first layer of a network), where im2col is a poor GEMM: per kernel tap, the range
    # of output columns whose input lies inside the image is computed once, so the innermost loop
    # runs over a contiguous row with no bounds test. Indices are cast to unsigned: with signed
    # ones numba adds a negative-index wraparound select per element, which stops LLVM from
    # vectorizing (several times slower on the depthwise benchmark layer). Weights are
    # ``w (K, C/g, k0, k1)``; the forward runs one (image, output channel) plane per task, the
    # input gradient one (image, input channel) plane, the weight gradient one (output channel,
    # input channel of its group) pair.

    def _col_spans(s1, d1, p1, S1, O1, K1):  # pragma: no cover - compiled
        """Per tap ``j``: output columns ``lo[j] <= b < hi[j]`` with ``0 <= b·s1 + j·d1 − p1 < S1``."""
        lo = np.empty(K1, np.int64)
        hi = np.empty(K1, np.int64)
        for j in range(K1):
            off = j * d1 - p1
            lo[j] = min(O1, max(0, -(off // s1)))
            hi[j] = max(lo[j], min(O1, (S1 - 1 - off) // s1 + 1))
        return lo, hi

    # Depthwise (one input and one output channel per group, ``w (C, k0, k1)``): the same loops
    # without the channel loops, which run about twice as fast as the general ones below on the
    # depthwise benchmark layer.

    def _depthwise_fwd_nc2d(x, w, y, s0, s1, d0, d1, p0, p1, bias):  # pragma: no cover - compiled
        """``y[n, c, a, b] = bias[c] + Σ_ij x[n, c, a·s0 + i·d0 − p0, b·s1 + j·d1 − p1]·w[c, i, j]``
        (zeros outside x)."""
        n_, c_, S0, S1 = x.shape
        O0, O1 = y.shape[2], y.shape[3]
        K0, K1 = w.shape[1], w.shape[2]
        lo, hi = _col_spans(s1, d1, p1, S1, O1, K1)
        for t in prange(n_ * c_):
            n = t // c_
            c = t % c_
            bv = bias[c]
            for a in range(O0):
                yr = y[n, c, a]
                for b in range(O1):
                    yr[np.uint64(b)] = bv
                for i in range(K0):
                    r0 = a * s0 + i * d0 - p0
                    if r0 < 0 or r0 >= S0:
                        continue
                    xr = x[n, c, r0]
                    for j in range(K1):
                        off = j * d1 - p1
                        wv = w[c, i, j]
                        for b in range(lo[j], hi[j]):
                            yr[np.uint64(b)] += xr[np.uint64(b * s1 + off)] * wv

    def _depthwise_gx_nc2d(gy, w, gx, s0, s1, d0, d1, p0, p1):  # pragma: no cover - compiled
        """Adjoint of :func:`depthwise_fwd_nc2d` in ``x``: scatter-add into the zeroed ``gx``."""
        n_, c_, S0, S1 = gx.shape
        O0, O1 = gy.shape[2], gy.shape[3]
        K0, K1 = w.shape[1], w.shape[2]
        lo, hi = _col_spans(s1, d1, p1, S1, O1, K1)
        for t in prange(n_ * c_):
            n = t // c_
            c = t % c_
            for a in range(O0):
                gr = gy[n, c, a]
                for i in range(K0):
                    r0 = a * s0 + i * d0 - p0
                    if r0 < 0 or r0 >= S0:
                        continue
                    xr = gx[n, c, r0]
                    for j in range(K1):
                        off = j * d1 - p1
                        wv = w[c, i, j]
                        for b in range(lo[j], hi[j]):
                            xr[np.uint64(b * s1 + off)] += gr[np.uint64(b)] * wv

    def _depthwise_gw_nc2d(x, gy, gw, s0, s1, d0, d1, p0, p1):  # pragma: no cover - compiled
        """Adjoint of :func:`depthwise_fwd_nc2d` in ``w``: ``gw[c, i, j] = Σ_nab x[…]·gy[n, c, a, b]``,
        one channel per task (each row's products summed in a local before they reach ``gw``)."""
        n_, c_, S0, S1 = x.shape
        O0, O1 = gy.shape[2], gy.shape[3]
        K0, K1 = gw.shape[1], gw.shape[2]
        lo, hi = _col_spans(s1, d1, p1, S1, O1, K1)
        for c in prange(c_):
            for i in range(K0):
                for j in range(K1):
                    gw[c, i, j] = 0
            for n in range(n_):
                for a in range(O0):
                    gr = gy[n, c, a]
                    for i in range(K0):
                        r0 = a * s0 + i * d0 - p0
                        if r0 < 0 or r0 >= S0:
                            continue
                        xr = x[n, c, r0]
                        for j in range(K1):
                            off = j * d1 - p1
                            acc = gw[c, i, j] * 0
                            for b in range(lo[j], hi[j]):
                                acc += xr[np.uint64(b * s1 + off)] * gr[np.uint64(b)]
                            gw[c, i, j] += acc

    def _direct_fwd_nc2d(x, w, y, s0, s1, d0, d1, p0, p1, bias):  # pragma: no cover - compiled
        """``y[n, k, a, b] = bias[k] + Σ_cij x[n, g·Cg + c, a·s0 + i·d0 − p0, b·s1 + j·d1 − p1]·w[k, c, i, j]``
        with ``g`` the group of ``k`` (zeros outside x)."""
        n_, _, S0, S1 = x.shape
        k_, O0, O1 = y.shape[1], y.shape[2], y.shape[3]
        cg, K0, K1 = w.shape[1], w.shape[2], w.shape[3]
        kg = k_ // (x.shape[1] // cg)
        lo, hi = _col_spans(s1, d1, p1, S1, O1, K1)
        for t in prange(n_ * k_):
            n = t // k_
            k = t % k_
            c0 = (k // kg) * cg
            bv = bias[k]
            for a in range(O0):
                yr = y[n, k, a]
                for b in range(O1):
                    yr[np.uint64(b)] = bv
                for c in range(cg):
                    for i in range(K0):
                        r0 = a * s0 + i * d0 - p0
                        if r0 < 0 or r0 >= S0:
                            continue
                        xr = x[n, c0 + c, r0]
                        for j in range(K1):
                            off = j * d1 - p1
                            wv = w[k, c, i, j]
                            for b in range(lo[j], hi[j]):
                                yr[np.uint64(b)] += xr[np.uint64(b * s1 + off)] * wv

    def _direct_gx_nc2d(gy, w, gx, s0, s1, d0, d1, p0, p1):  # pragma: no cover - compiled
        """Adjoint of :func:`direct_fwd_nc2d` in ``x``: scatter-add into the zeroed ``gx``."""
        n_, c_, S0, S1 = gx.shape
        k_, O0, O1 = gy.shape[1], gy.shape[2], gy.shape[3]
        cg, K0, K1 = w.shape[1], w.shape[2], w.shape[3]
        kg = k_ // (c_ // cg)
        lo, hi = _col_spans(s1, d1, p1, S1, O1, K1)
        for t in prange(n_ * c_):
            n = t // c_
            c = t % c_
            k0 = (c // cg) * kg
            ci = c % cg
            for k in range(k0, k0 + kg):
                for a in range(O0):
                    gr = gy[n, k, a]
                    for i in range(K0):
                        r0 = a * s0 + i * d0 - p0
                        if r0 < 0 or r0 >= S0:
                            continue
                        xr = gx[n, c, r0]
                        for j in range(K1):
                            off = j * d1 - p1
                            wv = w[k, ci, i, j]
                            for b in range(lo[j], hi[j]):
                                xr[np.uint64(b * s1 + off)] += gr[np.uint64(b)] * wv

    def _direct_gw_nc2d(x, gy, gw, s0, s1, d0, d1, p0, p1):  # pragma: no cover - compiled
        """Adjoint of :func:`direct_fwd_nc2d` in ``w``: ``gw[k, c, i, j] = Σ_nab x[…]·gy[n, k, a, b]``,
        each row's products summed in a local before they reach ``gw``."""
        n_, c_, S0, S1 = x.shape
        k_, O0, O1 = gy.shape[1], gy.shape[2], gy.shape[3]
        cg, K0, K1 = gw.shape[1], gw.shape[2], gw.shape[3]
        kg = k_ // (c_ // cg)
        lo, hi = _col_spans(s1, d1, p1, S1, O1, K1)
        for t in prange(k_ * cg):
            k = t // cg
            ci = t % cg
            c = (k // kg) * cg + ci
            for i in range(K0):
                for j in range(K1):
                    gw[k, ci, i, j] = 0
            for n in range(n_):
                for a in range(O0):
                    gr = gy[n, k, a]
                    for i in range(K0):
                        r0 = a * s0 + i * d0 - p0
                        if r0 < 0 or r0 >= S0:
                            continue
                        xr = x[n, c, r0]
                        for j in range(K1):
                            off = j * d1 - p1
                            acc = gw[k, ci, i, j] * 0
                            for b in range(lo[j], hi[j]):
                                acc += xr[np.uint64(b * s1 + off)] * gr[np.uint64(b)]
                            gw[k, ci, i, j] += acc

    # Stride 1: the same convolution on flattened, zero-padded planes ``xp (N, C, (E0 + 1)·E1)``
    # and "full-width" output planes ``yf (N, K, O0·E1)``: output position ``q = a·E1 + b`` reads
    # ``xp[q + i·d0·E1 + j·d1]``, so each tap is one long contiguous multiply-add over the whole
    # plane (the ``E1 − O1`` columns past each output row are garbage, cropped by the caller; the
    # extra input row keeps their reads inside the array). Few input channels (a network's first
    # layer) gain most: there the per-row loops above are too short to vectorize.

    def _flat_fwd(xp, w, yf, d0, d1, e1, bias):  # pragma: no cover - compiled
        """``yf[n, k, q] = bias[k] + Σ_cij xp[n, g·Cg + c, q + i·d0·e1 + j·d1]·w[k, c, i, j]``."""
        n_, c_, _ = xp.shape
        k_, ln = yf.shape[1], yf.shape[2]
        cg, K0, K1 = w.shape[1], w.shape[2], w.shape[3]
        kg = k_ // (c_ // cg)
        for t in prange(n_ * k_):
            n = t // k_
            k = t % k_
            c0 = (k // kg) * cg
            yr = yf[n, k]
            bv = bias[k]
            for q in range(ln):
                yr[np.uint64(q)] = bv
            for c in range(cg):
                xr = xp[n, c0 + c]
                for i in range(K0):
                    for j in range(K1):
                        off = i * d0 * e1 + j * d1
                        wv = w[k, c, i, j]
                        for q in range(ln):
                            yr[np.uint64(q)] += xr[np.uint64(q + off)] * wv

    def _flat_gx(gf, w, gxp, d0, d1, e1):  # pragma: no cover - compiled
        """Adjoint of :func:`flat_fwd` in ``xp`` (``gf`` zero in the garbage columns; ``gxp`` zeroed)."""
        n_, c_, _ = gxp.shape
        k_, ln = gf.shape[1], gf.shape[2]
        cg, K0, K1 = w.shape[1], w.shape[2], w.shape[3]
        kg = k_ // (c_ // cg)
        for t in prange(n_ * c_):
            n = t // c_
            c = t % c_
            k0 = (c // cg) * kg
            ci = c % cg
            xr = gxp[n, c]
            for k in range(k0, k0 + kg):
                gr = gf[n, k]
                for i in range(K0):
                    for j in range(K1):
                        off = i * d0 * e1 + j * d1
                        wv = w[k, ci, i, j]
                        for q in range(ln):
                            xr[np.uint64(q + off)] += gr[np.uint64(q)] * wv

    def _flat_gw(xp, gf, gw, d0, d1, e1):  # pragma: no cover - compiled
        """Adjoint of :func:`flat_fwd` in ``w`` (``gf`` zero in the garbage columns)."""
        n_, c_, _ = xp.shape
        k_, ln = gf.shape[1], gf.shape[2]
        cg, K0, K1 = gw.shape[1], gw.shape[2], gw.shape[3]
        kg = k_ // (c_ // cg)
        for t in prange(k_ * cg):
            k = t // cg
            ci = t % cg
            c = (k // kg) * cg + ci
            for i in range(K0):
                for j in range(K1):
                    off = i * d0 * e1 + j * d1
                    acc = gw[k, ci, i, j] * 0  # gw comes zeroed: this only fixes acc's dtype
                    for n in range(n_):
                        xr = xp[n, c]
                        gr = gf[n, k]
                        for q in range(ln):
                            acc += xr[np.uint64(q + off)] * gr[np.uint64(q)]
                    gw[k, ci, i, j] = acc

    compile_pair = conv_numba.compile_pair
    _col_spans = _nb.njit(cache=True)(_col_spans)
    depthwise_fwd_nc2d = compile_pair(_depthwise_fwd_nc2d)
    depthwise_gx_nc2d = compile_pair(_depthwise_gx_nc2d)
    depthwise_gw_nc2d = compile_pair(_depthwise_gw_nc2d, fastmath={"reassoc"})
    direct_fwd_nc2d = compile_pair(_direct_fwd_nc2d)
    flat_fwd = compile_pair(_flat_fwd)
    flat_gx = compile_pair(_flat_gx)
    flat_gw = compile_pair(_flat_gw, fastmath={"reassoc"})
    direct_gx_nc2d = compile_pair(_direct_gx_nc2d)
    direct_gw_nc2d = compile_pair(_direct_gw_nc2d, fastmath={"reassoc"})
