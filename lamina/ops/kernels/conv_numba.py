"""Optional numba kernels for the convolutions (``pip install numba``).

When numba is importable, :data:`AVAILABLE` is True and these are compiled (on first call,
cached on disk): the channels-last col2im scatter-add :func:`col2im_cl3d`, the depthwise
forward / input-gradient / weight-gradient loops (channels-last, and NCHW with no padded copy),
and the NCHW → padded NHWC copy
:func:`to_channels_last`. Each comes in a parallel build and a serial one for small arrays
(below :data:`PARALLEL_MIN_SIZE` elements). Otherwise the pure-NumPy code in
:mod:`lamina.ops.kernels.im2col` and :mod:`lamina.ops.kernels.conv_depthwise` does the same
work; the tests run both paths against torch. Set ``LAMINA_NO_NUMBA=1`` to force NumPy.

Fork: numba's threading layers do not survive ``fork`` (a GNU OpenMP team started in the
parent terminates a child that starts a parallel kernel), so in a forked child
(:func:`lamina.runtime.in_forked_child`) every kernel runs its serial build.

(A numba im2col loop was measured too: the NumPy ``sliding_window_view`` copy from a
channels-last input is already at memory speed and was several times faster on the 3×3
benchmark layer. :mod:`.colgemm_numba` builds columns faster with one ``memcpy`` per run of
contiguous values, a few hundred rows at a time.)

The kernels work on zero-padded, channels-last arrays ``(N, E0, E1, E2, C)`` (1-D and 2-D data
come in with singleton dims added), so inner loops run over contiguous channels with no bounds
test. Column layout: ``cols[n, o0, o1, o2, k0, k1, k2, c]``.
"""

from __future__ import annotations

import os
import threading
import types
from typing import Any

import numpy as np

from ... import runtime
from . import numba_team, threads

__all__ = ["AVAILABLE", "start_threads", "compile_pair", "col2im_cl3d", "depthwise_fwd_cl3d", "depthwise_gx_cl3d",
           "depthwise_gw_cl3d", "depthwise_fwd_nc2d", "depthwise_gx_nc2d",
           "depthwise_gw_nc2d", "direct_fwd_nc2d", "direct_gx_nc2d", "direct_gw_nc2d",
           "flat_fwd", "flat_gx", "flat_gw", "to_channels_last", "to_channels_last_wide", "WIDE_CHANNELS"]

AVAILABLE = False
# elements of the first argument from which the parallel build runs (read at each call): below
# it, waking the pool costs more than the second core gives (chosen on bench/bench_models.py's
# resnet20 and resnet18 steps; smaller thresholds were slower or no better)
PARALLEL_MIN_SIZE = 1 << 22
# channels from which the NCHW → NHWC copy takes 16 channels at a time (to_channels_last_wide)
WIDE_CHANNELS = 64
col2im_cl3d: Any = None
depthwise_fwd_cl3d: Any = None
depthwise_gx_cl3d: Any = None
depthwise_gw_cl3d: Any = None
depthwise_fwd_nc2d: Any = None
depthwise_gx_nc2d: Any = None
depthwise_gw_nc2d: Any = None
direct_fwd_nc2d: Any = None
flat_fwd: Any = None
flat_gx: Any = None
flat_gw: Any = None
direct_gx_nc2d: Any = None
direct_gw_nc2d: Any = None
to_channels_last: Any = None
to_channels_last_wide: Any = None

compile_pair: Any = None
_to_channels_last_par: Any = None


def start_threads() -> None:
    """Start numba's thread pool now (a no-op without numba or in a forked child). A process
    that also uses torch calls this before ``import torch``: numba then runs on its own OpenMP
    runtime, with the wait policy :func:`lamina.runtime.tune` set, rather than on torch's (see
    ``bench/_harness.py``)."""
    if AVAILABLE and not runtime.in_forked_child():
        x = np.zeros((1, 1, 1, 2), np.float32)
        _to_channels_last_par(x, np.zeros((1, 1, 2, 1), np.float32), 0, 0)


if not os.environ.get("LAMINA_NO_NUMBA"):
    try:  # numba is an optional accelerator: any failure leaves the NumPy path in charge
        import numba as _nb
        from numba import prange

        AVAILABLE = True
    except Exception:  # pragma: no cover - depends on the environment
        AVAILABLE = False

if AVAILABLE:

    def _col2im_cl3d(cols, gxpad, s0, s1, s2, d0, d1, d2):  # pragma: no cover - compiled
        """Add ``cols[n, a, b, e, i, j, k, :]`` into ``gxpad[n, a·s0 + i·d0, b·s1 + j·d1, e·s2 + k·d2, :]``."""
        n_ = gxpad.shape[0]
        c_ = gxpad.shape[4]
        O0, O1, O2 = cols.shape[1], cols.shape[2], cols.shape[3]
        K0, K1, K2 = cols.shape[4], cols.shape[5], cols.shape[6]
        for n in prange(n_):  # one image per task: no write races, gxpad[n] stays in cache
            for a in range(O0):
                for b in range(O1):
                    for e in range(O2):
                        for i in range(K0):
                            r0 = a * s0 + i * d0
                            for j in range(K1):
                                r1 = b * s1 + j * d1
                                for k in range(K2):
                                    r2 = e * s2 + k * d2
                                    for c in range(c_):
                                        gxpad[n, r0, r1, r2, c] += cols[n, a, b, e, i, j, k, c]

    def _depthwise_fwd_cl3d(xpad, w, y, s0, s1, s2, d0, d1, d2):  # pragma: no cover - compiled
        """Depthwise conv, channels-last: ``y[n, a, b, e, c] = Σ_ijk xpad[n, a·s0 + i·d0, …, c]·w[i, j, k, c]``."""
        n_ = y.shape[0]
        O0, O1, O2, c_ = y.shape[1], y.shape[2], y.shape[3], y.shape[4]
        K0, K1, K2 = w.shape[0], w.shape[1], w.shape[2]
        for t in prange(n_ * O0):
            n = t // O0
            a = t % O0
            for b in range(O1):
                for e in range(O2):
                    for c in range(c_):
                        y[n, a, b, e, c] = 0
                    for i in range(K0):
                        for j in range(K1):
                            for k in range(K2):
                                r0, r1, r2 = a * s0 + i * d0, b * s1 + j * d1, e * s2 + k * d2
                                for c in range(c_):
                                    y[n, a, b, e, c] += xpad[n, r0, r1, r2, c] * w[i, j, k, c]

    def _depthwise_gx_cl3d(gy, w, gxpad, s0, s1, s2, d0, d1, d2):  # pragma: no cover - compiled
        """Adjoint of :func:`depthwise_fwd_cl3d` in ``xpad``: scatter-add into the zeroed ``gxpad``."""
        n_ = gy.shape[0]
        O0, O1, O2, c_ = gy.shape[1], gy.shape[2], gy.shape[3], gy.shape[4]
        K0, K1, K2 = w.shape[0], w.shape[1], w.shape[2]
        for n in prange(n_):
            for a in range(O0):
                for b in range(O1):
                    for e in range(O2):
                        for i in range(K0):
                            for j in range(K1):
                                for k in range(K2):
                                    r0, r1, r2 = a * s0 + i * d0, b * s1 + j * d1, e * s2 + k * d2
                                    for c in range(c_):
                                        gxpad[n, r0, r1, r2, c] += gy[n, a, b, e, c] * w[i, j, k, c]

    def _depthwise_gw_cl3d(xpad, gy, gw_n, s0, s1, s2, d0, d1, d2):  # pragma: no cover - compiled
        """Adjoint of :func:`depthwise_fwd_cl3d` in ``w``, one partial sum per image:
        ``gw_n[n, i, j, k, c] = Σ_abe xpad[n, a·s0 + i·d0, …, c]·gy[n, a, b, e, c]``."""
        n_ = gy.shape[0]
        O0, O1, O2, c_ = gy.shape[1], gy.shape[2], gy.shape[3], gy.shape[4]
        K0, K1, K2 = gw_n.shape[1], gw_n.shape[2], gw_n.shape[3]
        for n in prange(n_):
            for i in range(K0):
                for j in range(K1):
                    for k in range(K2):
                        for c in range(c_):
                            gw_n[n, i, j, k, c] = 0
            for a in range(O0):
                for b in range(O1):
                    for e in range(O2):
                        for i in range(K0):
                            for j in range(K1):
                                for k in range(K2):
                                    r0, r1, r2 = a * s0 + i * d0, b * s1 + j * d1, e * s2 + k * d2
                                    for c in range(c_):
                                        gw_n[n, i, j, k, c] += xpad[n, r0, r1, r2, c] * gy[n, a, b, e, c]

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

    def _to_channels_last_wide(x, out, p0, p1):  # pragma: no cover - compiled
        """:func:`_to_channels_last` for 64+ channels: 16 channels at a time with the channel
        loop innermost (contiguous writes; 16 source rows stay in the cache). One image row of
        64 channels × 32 is 4 KB apart per channel, which makes the row-at-a-time loop thrash
        (about twice as slow at 64 and 128 channels); at 16–32 channels the rows fit the cache and
        this order is the slower one."""
        n_, c_, h_, w_ = x.shape
        for t in prange(n_ * h_):
            n = t // h_
            h = t % h_
            orow = out[n, p0 + h]
            xs = x[n, :, h, :]
            for c0 in range(0, c_, 16):
                c1 = min(c0 + 16, c_)
                for w in range(w_):
                    o = orow[p1 + w]
                    for c in range(c0, c1):
                        o[np.uint64(c)] = xs[np.uint64(c), np.uint64(w)]

    def _to_channels_last(x, out, p0, p1):  # pragma: no cover - compiled
        """``out[n, p0 + h, p1 + w, c] = x[n, c, h, w]`` (the rest of ``out`` is left as it is):
        NCHW → zero-padded NHWC, one image row and 8 channels at a time, reading each channel's
        row contiguously (unsigned indices, row views: 2× faster than indexing all four dims)."""
        n_, c_, h_, w_ = x.shape
        for t in prange(n_ * h_):
            n = t // h_
            h = t % h_
            orow = out[n, p0 + h]
            for c0 in range(0, c_, 8):
                for c in range(c0, min(c0 + 8, c_)):
                    xr = x[n, c, h]
                    for w in range(w_):
                        orow[np.uint64(p1 + w), np.uint64(c)] = xr[np.uint64(w)]

    runtime_state = runtime._state  # read at each call: a dict lookup, not a function call
    # LAMINA_NUM_THREADS sizes numba's teams too: numba's own size is read from NUMBA_NUM_THREADS
    # when numba is imported (lamina sets no variable), so each calling thread's team is cut to
    # lamina's count before its first parallel kernel (numba's setting is per calling thread)
    _size_from_env = bool(os.environ.get("LAMINA_NUM_THREADS"))
    _sized = threading.local()

    def _size_team() -> None:
        _nb.set_num_threads(min(threads.get_num_threads(), _nb.config.NUMBA_NUM_THREADS))
        _sized.done = True

    def compile_pair(fn: Any, min_size: int | None = None, **flags: Any) -> Any:
        """A parallel build for large arrays and a serial one for small ones (waking the
        thread pool costs more than a few thousand multiply-adds, more so on a busy machine):
        the parallel one runs where the first argument has ``min_size`` elements or more."""
        par = _nb.njit(parallel=True, cache=True, nogil=True, **flags)(fn)
        # numba's on-disk cache keys a function by its qualified name and line, not by the
        # ``parallel`` option: the serial build gets a copy of its own under another name, or
        # the two would load each other's machine code
        twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial", fn.__defaults__,
                                  fn.__closure__)
        twin.__qualname__ = fn.__qualname__ + "_serial"
        ser = _nb.njit(cache=True, nogil=True, **flags)(twin)
        def parallel(*args: Any) -> None:  # numba's team pinned away from this thread first
            if runtime_state["forked"]:  # the parent's threading layer is unusable here
                ser(*args)
                return
            if _size_from_env and not getattr(_sized, "done", False):
                _size_team()
            numba_team.pin_team()
            par(*args)

        def run(*args: Any) -> None:
            big = args[0].size >= (PARALLEL_MIN_SIZE if min_size is None else min_size)
            (parallel if big and not threads.busy() else ser)(*args)

        run.__doc__ = fn.__doc__
        run.parallel, run.serial = parallel, ser  # type: ignore[attr-defined]
        return run

    col2im_cl3d = compile_pair(_col2im_cl3d)
    depthwise_fwd_cl3d = compile_pair(_depthwise_fwd_cl3d)
    depthwise_gx_cl3d = compile_pair(_depthwise_gx_cl3d)
    depthwise_gw_cl3d = compile_pair(_depthwise_gw_cl3d)
    # the transposing copy runs at a fraction of memory speed on one thread, so it goes parallel
    # from a quarter of PARALLEL_MIN_SIZE (as set at import)
    to_channels_last = compile_pair(_to_channels_last, PARALLEL_MIN_SIZE // 4)
    to_channels_last_wide = compile_pair(_to_channels_last_wide, PARALLEL_MIN_SIZE // 4)
    _to_channels_last_par = to_channels_last.parallel
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
