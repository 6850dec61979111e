"""Optional numba kernels for RoI Align (and position-sensitive RoI Align), forward and backward.

They take the sampling taps that :func:`lamina.ops.kernels.roi_align.align_plan` computed
(one group of boxes with one sampling grid at a time) and a channels-last map
``x (N, H, W, P, C)``: ``P = 1`` for RoI Align, ``P = ph·pw`` for the position-sensitive op,
whose bin ``p`` reads the channels ``x[..., p, :]``. Every tap then reads, or adds into, ``C``
contiguous values, a loop the compiler vectorizes.

The forward runs one box per task (boxes write disjoint outputs); the backward one block of
channels per task (boxes of one image add into the same pixels, but never into the same
channels of another block), so neither needs atomics.
"""

from __future__ import annotations

from typing import Any

from . import conv_numba

__all__ = ["AVAILABLE", "align_forward", "align_backward", "team_size"]

AVAILABLE = conv_numba.AVAILABLE
align_forward: Any = None
align_backward: Any = None



def team_size() -> int:
    """Threads in numba's team (1 without numba)."""
    if not AVAILABLE:
        return 1
    import numba

    return int(numba.get_num_threads())


if AVAILABLE:
    from numba import prange

    def _align_forward(out, x, index, batch, ry, wy, cx, wx, count, ps):  # pragma: no cover - compiled
        """``out[index[k], p, q] = Σ_ij wy[k, p, i]·wx[k, q, j]·x[batch[k], ry[k, p, i], cx[k, q, j], bin] / count[k]``
        (``bin`` is ``p·pw + q`` for the position-sensitive op, else 0)."""
        kk_, ph_, ty_ = ry.shape
        pw_, tx_ = cx.shape[1], cx.shape[2]
        co_ = x.shape[4]
        for k in prange(kk_):
            o = index[k]
            b = batch[k]
            d = count[k]
            for p in range(ph_):
                for q in range(pw_):
                    acc = out[o, p, q]
                    for c in range(co_):
                        acc[c] = 0
                    pb = p * pw_ + q if ps else 0
                    for i in range(ty_):
                        a = wy[k, p, i]
                        if a == 0:  # a sample outside the map, or the unused upper neighbour on the border
                            continue
                        r = ry[k, p, i]
                        for j in range(tx_):
                            w = a * wx[k, q, j]
                            if w == 0:
                                continue
                            xr = x[b, r, cx[k, q, j], pb]
                            for c in range(co_):
                                acc[c] += w * xr[c]
                    for c in range(co_):
                        acc[c] /= d

    def _align_backward(gy, gx, index, batch, ry, wy, cx, wx, count, ps, blocks):  # pragma: no cover - compiled
        """The adjoint of :func:`_align_forward`: add each bin's ``gy / count`` into the zeroed ``gx``
        at its taps, with their weights; task ``blk`` of ``blocks`` owns a slice of the channels."""
        kk_, ph_, ty_ = ry.shape
        pw_, tx_ = cx.shape[1], cx.shape[2]
        co_ = gx.shape[4]
        for blk in prange(blocks):
            c0 = blk * co_ // blocks
            c1 = (blk + 1) * co_ // blocks
            for k in range(kk_):
                o = index[k]
                b = batch[k]
                d = count[k]
                for p in range(ph_):
                    for q in range(pw_):
                        g = gy[o, p, q, c0:c1]  # slices, not range(c0, c1): that loop stays scalar
                        pb = p * pw_ + q if ps else 0
                        for i in range(ty_):
                            a = wy[k, p, i]
                            if a == 0:
                                continue
                            r = ry[k, p, i]
                            for j in range(tx_):
                                w = a * wx[k, q, j] / d
                                if w == 0:
                                    continue
                                gr = gx[b, r, cx[k, q, j], pb, c0:c1]
                                for c in range(c1 - c0):
                                    gr[c] += w * g[c]

    align_forward = conv_numba.compile_pair(_align_forward)
    align_backward = conv_numba.compile_pair(_align_backward)
