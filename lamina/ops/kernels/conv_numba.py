"""Optional numba kernels for the convolutions (``pip install numba``).

When numba is importable, :data:`AVAILABLE` is True and these are compiled (on first call,
cached on disk): the channels-last col2im scatter-add :func:`col2im_cl3d`, the channels-last depthwise
forward / input-gradient / weight-gradient loops, and the NCHW → padded NHWC copy
:func:`to_channels_last` (the NCHW direct kernels are in :mod:`.direct_numba`, built with
:func:`compile_pair` here). Each comes in a parallel build and a serial one for small arrays
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
           "depthwise_gw_cl3d", "to_channels_last", "to_channels_last_wide", "WIDE_CHANNELS"]

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
