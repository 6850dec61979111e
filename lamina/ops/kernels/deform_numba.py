"""Optional numba loops for deformable convolution (:mod:`.deform`): the deformable column
matrix and, in one pass over the column gradient, the gradients of the input, the offsets and
the mask. The NumPy path of :mod:`.deform` computes the same; the tests run both.

Both read the input as a channels-last copy padded by one ring of zeros, ``xcl (N, Hp·Wp, C)``,
and the sampling plan of :func:`.deform.sampling_plan`: per (image, offset group, tap, output
pixel) the pixel ``base`` at the top-left of the 2×2 block around the sample and the fractions
``lh, lw``. The four neighbours are then the rows ``base, base + 1, base + Wp, base + Wp + 1``
of ``xcl``, and the innermost loops run over the contiguous channels of an offset group (and of
a weight group: the columns are ``cols (g, N, L, K·C/g)``, a row of (tap, channel) per output
pixel and weight group), which LLVM vectorizes. The loops index flat arrays with unsigned
indices (no array views made per sample, no negative-index wraparound test per element), and
``one`` comes in the arrays' dtype (with a literal 1 numba computes float32 data in float64).
"""

from __future__ import annotations

from typing import Any

from . import conv_numba

__all__ = ["AVAILABLE", "deform_columns", "deform_grads", "PARALLEL_MIN_WORK"]

AVAILABLE = conv_numba.AVAILABLE
# column entries from which the parallel builds run (below this the hand-off to numba's team
# costs more than the second core gives)
PARALLEL_MIN_WORK = 1 << 17

deform_columns: Any = None
deform_grads: Any = None

if AVAILABLE:
    import numpy as np
    from numba import prange

    def _deform_columns(cols, xcl, base, lh, lw, mask, wp, one):  # pragma: no cover - compiled
        """``cols[gw, n, l, k·Cg + c − gw·Cg] = mask · bilinear(x[n, c] at sample (n, og(c), k, l))``
        for every channel ``c`` of weight group ``gw``."""
        n_, length, width = cols.shape[1], cols.shape[2], cols.shape[3]
        pixels, c_ = xcl.shape[1], xcl.shape[2]
        go, kk = base.shape[1], base.shape[2]
        cg = width // kk
        cgo = c_ // go
        xf = xcl.reshape(-1)
        cf = cols.reshape(-1)
        for t in prange(n_ * length):  # one output pixel per task
            n = t // length
            q = t % length
            for og in range(go):
                c0 = og * cgo
                c1 = c0 + cgo
                for k in range(kk):
                    a = lh[n, og, k, q]
                    e = lw[n, og, k, q]
                    m = mask[n, og, k, q]
                    w1, w2, w3, w4 = m * (one - a) * (one - e), m * (one - a) * e, m * a * (one - e), m * a * e
                    r1 = (n * pixels + base[n, og, k, q]) * c_  # the four neighbours' channel rows
                    r2 = r1 + c_
                    r3 = r1 + wp * c_
                    r4 = r3 + c_
                    for gw in range(c0 // cg, (c1 - 1) // cg + 1):  # the weight groups this offset group meets
                        s0 = max(c0, gw * cg)
                        s1 = min(c1, gw * cg + cg)
                        d = ((gw * n_ + n) * length + q) * width + k * cg - gw * cg
                        for c in range(s0, s1):
                            cf[np.uint64(d + c)] = (w1 * xf[np.uint64(r1 + c)] + w2 * xf[np.uint64(r2 + c)]
                                                    + w3 * xf[np.uint64(r3 + c)] + w4 * xf[np.uint64(r4 + c)])

    def _deform_grads(gcols, xcl, base, lh, lw, mask, gxcl, goff, gmask, wp, one, need_x, need_off,
                      need_mask):  # pragma: no cover - compiled
        """From ``gcols`` (the gradient of the columns, laid out as ``cols``): scatter-add into
        ``gxcl`` (zeroed, laid out as ``xcl``) with the bilinear weights times the mask, and set
        ``goff (N, Go, K, 2, L)`` to the mask times the sample's derivatives in y and x, and
        ``gmask (N, Go, K, L)`` to the sample, each contracted with the column gradient over the
        offset group's channels."""
        n_, length, width = gcols.shape[1], gcols.shape[2], gcols.shape[3]
        pixels, c_ = xcl.shape[1], xcl.shape[2]
        go, kk = base.shape[1], base.shape[2]
        cg = width // kk
        cgo = c_ // go
        xf = xcl.reshape(-1)
        gf = gxcl.reshape(-1)
        cf = gcols.reshape(-1)
        zero = one - one
        for u in prange(n_ * go):  # one (image, offset group) per task: no two write one place
            n = u // go
            og = u % go
            c0 = og * cgo
            c1 = c0 + cgo
            for q in range(length):
                for k in range(kk):
                    a = lh[n, og, k, q]
                    e = lw[n, og, k, q]
                    m = mask[n, og, k, q]
                    a1 = one - a
                    e1 = one - e
                    r1 = (n * pixels + base[n, og, k, q]) * c_
                    r2 = r1 + c_
                    r3 = r1 + wp * c_
                    r4 = r3 + c_
                    sy = zero
                    sx = zero
                    sm = zero
                    for gw in range(c0 // cg, (c1 - 1) // cg + 1):
                        s0 = max(c0, gw * cg)
                        s1 = min(c1, gw * cg + cg)
                        d = ((gw * n_ + n) * length + q) * width + k * cg - gw * cg
                        if need_x:  # one loop per neighbour: one store stream each, which vectorizes
                            for r, wq in ((r1, m * a1 * e1), (r2, m * a1 * e), (r3, m * a * e1), (r4, m * a * e)):
                                for c in range(s0, s1):
                                    gf[np.uint64(r + c)] += wq * cf[np.uint64(d + c)]
                        if need_off or need_mask:
                            for c in range(s0, s1):
                                gv = cf[np.uint64(d + c)]
                                v1, v2 = xf[np.uint64(r1 + c)], xf[np.uint64(r2 + c)]
                                v3, v4 = xf[np.uint64(r3 + c)], xf[np.uint64(r4 + c)]
                                sy += gv * (e1 * (v3 - v1) + e * (v4 - v2))
                                sx += gv * (a1 * (v2 - v1) + a * (v4 - v3))
                                sm += gv * (a1 * (e1 * v1 + e * v2) + a * (e1 * v3 + e * v4))
                    if need_off:
                        goff[n, og, k, 0, q] = m * sy
                        goff[n, og, k, 1, q] = m * sx
                    if need_mask:
                        gmask[n, og, k, q] = sm

    deform_columns = conv_numba.compile_pair(_deform_columns, PARALLEL_MIN_WORK)
    # reassoc: the sums over channels vectorize
    deform_grads = conv_numba.compile_pair(_deform_grads, PARALLEL_MIN_WORK, fastmath={"reassoc"})
