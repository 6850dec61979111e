"""Optional numba loops for deformable convolution (:mod:`.deform`): the deformable column
matrix and, in one pass over the column gradient, the gradients of the input, the offsets and
the mask. The NumPy path of :mod:`.deform` computes the same; the tests run both.

Both read the sampling plan of :func:`.deform.sampling_plan` — per (image, offset group, tap,
output pixel) the flat index ``base`` of the top-left of the 2×2 block around the sample in the
input padded by one ring of zeros, and the fractions ``lh, lw`` — so the corners are
``base, base + 1, base + Wp, base + Wp + 1`` with no bounds test, and the plan (one entry per
offset group, not per channel) is computed once for all the channels that share it. Indices are
cast to unsigned (no negative-index wraparound test per load) and ``one`` comes in the arrays'
dtype (with a literal 1 numba computes float32 data in float64, which is slower).
"""

from __future__ import annotations

from typing import Any

from . import conv_numba

__all__ = ["AVAILABLE", "deform_columns", "deform_grads", "PARALLEL_MIN_WORK"]

AVAILABLE = conv_numba.AVAILABLE
# column entries from which the parallel builds run (each entry is some 15 flops and 4 gathered
# loads; below this the hand-off to numba's team costs more than the second core gives)
PARALLEL_MIN_WORK = 1 << 17

deform_columns: Any = None
deform_grads: Any = None

if AVAILABLE:
    import numpy as np
    from numba import prange

    def _deform_columns(cols, xpad, base, lh, lw, mask, wp, one):  # pragma: no cover - compiled
        """``cols[n, c·K + k, l] = mask · bilinear(x[n, c], sample of (n, group(c), k, l))``;
        ``xpad (N, C, (H + 2)·(W + 2))`` is the input padded by one zero ring, ``wp = W + 2``, ``one``
        is 1 in the arrays' dtype."""
        n_, c_ = xpad.shape[0], xpad.shape[1]
        go, kk, length = base.shape[1], base.shape[2], base.shape[3]
        cg = c_ // go
        for t in prange(n_ * c_):  # one (image, channel) plane per task: it stays in cache
            n = t // c_
            c = t % c_
            g = c // cg
            xp = xpad[n, c]
            for k in range(kk):
                out = cols[n, c * kk + k]
                bk, ak, ek, mk = base[n, g, k], lh[n, g, k], lw[n, g, k], mask[n, g, k]
                for q in range(length):
                    b = bk[q]
                    a = ak[q]
                    e = ek[q]
                    top = (one - e) * xp[np.uint64(b)] + e * xp[np.uint64(b + 1)]
                    bottom = (one - e) * xp[np.uint64(b + wp)] + e * xp[np.uint64(b + wp + 1)]
                    out[q] = mk[q] * ((one - a) * top + a * bottom)

    def _deform_grads(gcols, xpad, base, lh, lw, mask, gxpad, goff, gmask, wp, one, need_x,
                      need_off, need_mask):  # pragma: no cover - compiled
        """From ``gcols`` (the gradient of the columns): scatter-add into ``gxpad`` (zeroed, as
        ``xpad``) with the bilinear weights times the mask, and accumulate into ``goff (N, Go, K,
        2, L)`` the mask times the derivative of the sample in y and x, and into ``gmask (N, Go,
        K, L)`` the sample itself (both zeroed), each times the column gradient."""
        n_, c_ = xpad.shape[0], xpad.shape[1]
        go, kk, length = base.shape[1], base.shape[2], base.shape[3]
        cg = c_ // go
        for u in prange(n_ * go):  # one (image, offset group) per task: no two write one place
            n = u // go
            g = u % go
            for cc in range(cg):
                c = g * cg + cc
                xp = xpad[n, c]
                gp = gxpad[n, c]
                for k in range(kk):
                    gc = gcols[n, c * kk + k]
                    bk, ak, ek, mk = base[n, g, k], lh[n, g, k], lw[n, g, k], mask[n, g, k]
                    gyk, gxk, gmk = goff[n, g, k, 0], goff[n, g, k, 1], gmask[n, g, k]
                    for q in range(length):
                        b = bk[q]
                        a = ak[q]
                        e = ek[q]
                        a1 = one - a
                        e1 = one - e
                        gv = gc[q]
                        gm = gv * mk[q]
                        i0, i1, i2, i3 = np.uint64(b), np.uint64(b + 1), np.uint64(b + wp), np.uint64(b + wp + 1)
                        if need_x:
                            gp[i0] += a1 * e1 * gm
                            gp[i1] += a1 * e * gm
                            gp[i2] += a * e1 * gm
                            gp[i3] += a * e * gm
                        if need_off or need_mask:
                            v1, v2, v3, v4 = xp[i0], xp[i1], xp[i2], xp[i3]
                            if need_off:
                                gyk[q] += gm * (e1 * (v3 - v1) + e * (v4 - v2))
                                gxk[q] += gm * (a1 * (v2 - v1) + a * (v4 - v3))
                            if need_mask:
                                gmk[q] += gv * (a1 * (e1 * v1 + e * v2) + a * (e1 * v3 + e * v4))

    deform_columns = conv_numba.compile_pair(_deform_columns, PARALLEL_MIN_WORK)
    deform_grads = conv_numba.compile_pair(_deform_grads, PARALLEL_MIN_WORK)
