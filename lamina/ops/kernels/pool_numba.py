"""Optional numba kernels for 2-D max pooling: one pass over a channels-last input for the
maxima and their kernel offsets, and one scatter for the gradient in either memory order (the
NumPy path makes about three passes per kernel offset, so memory traffic, not arithmetic,
decides).

Arrays are channels-last ``(N, H, W, C)`` (the forward and one scatter) or NCHW planes
``(N·C, H, W)`` (the other scatter). Each window is scanned in torch's order, starting from its first element
inside the input with the running maximum at −∞; an element replaces it if greater or NaN — so
ties keep the first, a NaN wins (the last one), and padding is never chosen.
"""

from __future__ import annotations

from typing import Any

from . import conv_numba

__all__ = ["max_pool2d_rows", "max_pool2d_rows_backward", "max_pool2d_planes_backward"]

max_pool2d_rows: Any = None
max_pool2d_rows_backward: Any = None
max_pool2d_planes_backward: Any = None

if conv_numba.AVAILABLE:
    import numpy as np
    from numba import prange

    def _max_pool2d_rows(x, y, arg, kh, kw, sh, sw, ph, pw, dh, dw):  # pragma: no cover - compiled
        """``y[a, o, p, b]`` = the max of the window at ``(o·sh − ph, p·sw − pw)``; ``arg`` its offset ``i·kw + j``."""
        a_, h_, w_, b_ = x.shape
        oh_, ow_ = y.shape[1], y.shape[2]
        for a in prange(a_):
            for o in range(oh_):
                for p in range(ow_):
                    yr = y[a, o, p]
                    ar = arg[a, o, p]
                    for bb in range(b_):  # a window wholly in the padding (dilation allows it): −∞ at offset 0
                        yr[np.uint64(bb)] = -np.inf
                        ar[np.uint64(bb)] = 0
                    first = True
                    for i in range(kh):
                        r = o * sh - ph + i * dh
                        if r < 0 or r >= h_:
                            continue
                        for j in range(kw):
                            q = p * sw - pw + j * dw
                            if q < 0 or q >= w_:
                                continue
                            xr = x[a, r, q]
                            t = i * kw + j
                            if first:
                                for bb in range(b_):
                                    b = np.uint64(bb)
                                    yr[b] = xr[b]
                                    ar[b] = t
                                first = False
                            else:
                                for bb in range(b_):
                                    b = np.uint64(bb)
                                    v = xr[b]
                                    if v > yr[b] or v != v:
                                        yr[b] = v
                                        ar[b] = t

    def _max_pool2d_rows_backward(gy, arg, gx, kw, sh, sw, ph, pw, dh, dw):  # pragma: no cover - compiled
        """``gx[a, r, q, b] += gy[a, o, p, b]`` at the element ``arg`` chose (``gx`` zeroed)."""
        a_, h_, w_, b_ = gx.shape
        oh_, ow_ = gy.shape[1], gy.shape[2]
        for a in prange(a_):
            for o in range(oh_):
                for p in range(ow_):
                    for bb in range(b_):
                        t = arg[a, o, p, bb]
                        r = o * sh - ph + (t // kw) * dh
                        q = p * sw - pw + (t % kw) * dw
                        if 0 <= r < h_ and 0 <= q < w_:
                            gx[a, r, q, bb] += gy[a, o, p, bb]

    def _max_pool2d_planes_backward(gy, arg, gx, kw, sh, sw, ph, pw, dh, dw):  # pragma: no cover - compiled
        """The same scatter for NCHW planes ``gy (A, O, P)``, ``gx (A, H, W)`` (no channel loop)."""
        a_, h_, w_ = gx.shape
        oh_, ow_ = gy.shape[1], gy.shape[2]
        for a in prange(a_):
            for o in range(oh_):
                for p in range(ow_):
                    t = arg[a, o, p]
                    r = o * sh - ph + (t // kw) * dh
                    q = p * sw - pw + (t % kw) * dw
                    if 0 <= r < h_ and 0 <= q < w_:
                        gx[a, r, q] += gy[a, o, p]

    max_pool2d_rows = conv_numba.compile_pair(_max_pool2d_rows)
    max_pool2d_planes_backward = conv_numba.compile_pair(_max_pool2d_planes_backward)
    max_pool2d_rows_backward = conv_numba.compile_pair(_max_pool2d_rows_backward)
