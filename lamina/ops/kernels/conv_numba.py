"""Optional numba kernels for the convolutions (``pip install numba``).

When numba is importable, :data:`AVAILABLE` is True and these are compiled (on first call,
cached on disk): the channels-last col2im scatter-add :func:`col2im_cl3d`, the depthwise
forward / input-gradient / weight-gradient loops, and the NCHW → padded NHWC copy
:func:`to_channels_last`. Each comes in a parallel build and a serial one for small arrays
(below :data:`PARALLEL_MIN_SIZE` elements). Otherwise the pure-NumPy code in
:mod:`lamina.ops.kernels.im2col` and :mod:`lamina.ops.kernels.conv_depthwise` does the same
work; the tests run both paths against torch. Set ``LAMINA_NO_NUMBA=1`` to force NumPy.

(A numba im2col was measured too: the NumPy ``sliding_window_view`` copy from a channels-last
input is already at memory speed, 11 ms against numba's 58 ms for the 3×3 benchmark layer, so
it is not compiled.)

The kernels work on zero-padded, channels-last arrays ``(N, E0, E1, E2, C)`` (1-D and 2-D data
come in with singleton dims added), so inner loops run over contiguous channels with no bounds
test. Column layout: ``cols[n, o0, o1, o2, k0, k1, k2, c]``.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["AVAILABLE", "col2im_cl3d", "depthwise_fwd_cl3d", "depthwise_gx_cl3d", "depthwise_gw_cl3d",
           "to_channels_last"]

AVAILABLE = False
PARALLEL_MIN_SIZE = 1 << 16  # elements of the first argument from which the parallel build runs
col2im_cl3d: Any = None
depthwise_fwd_cl3d: Any = None
depthwise_gx_cl3d: Any = None
depthwise_gw_cl3d: Any = None
to_channels_last: Any = None

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

    def _to_channels_last(x, out, p0, p1):  # pragma: no cover - compiled
        """``out[n, p0 + h, p1 + w, c] = x[n, c, h, w]`` (the rest of ``out`` is left as it is):
        NCHW → zero-padded NHWC, one image row and 8 channels at a time (1.8× faster than
        channel-by-channel or pixel-by-pixel order, measured on 32×128×32×32)."""
        n_, c_, h_, w_ = x.shape
        for t in prange(n_ * h_):
            n = t // h_
            h = t % h_
            for c0 in range(0, c_, 8):
                c1 = min(c0 + 8, c_)
                for w in range(w_):
                    for c in range(c0, c1):
                        out[n, p0 + h, p1 + w, c] = x[n, c, h, w]

    def _compile(fn: Any) -> Any:
        """A parallel build for large arrays and a serial one for small ones (waking the
        thread pool costs more than a few thousand multiply-adds, more so on a busy machine)."""
        par = _nb.njit(parallel=True, cache=True, nogil=True)(fn)
        ser = _nb.njit(cache=True, nogil=True)(fn)

        def run(*args: Any) -> None:
            (par if args[0].size >= PARALLEL_MIN_SIZE else ser)(*args)

        run.__doc__ = fn.__doc__
        return run

    col2im_cl3d = _compile(_col2im_cl3d)
    depthwise_fwd_cl3d = _compile(_depthwise_fwd_cl3d)
    depthwise_gx_cl3d = _compile(_depthwise_gx_cl3d)
    depthwise_gw_cl3d = _compile(_depthwise_gw_cl3d)
    to_channels_last = _compile(_to_channels_last)
