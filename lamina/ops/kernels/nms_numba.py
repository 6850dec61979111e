"""Optional numba kernel for greedy NMS: the loop of :func:`.nms.nms_reference` compiled, over
boxes already in visiting order (decreasing score) as four coordinate columns and their areas.

For each kept box, one pass over all later boxes of its group that marks the ones it
suppresses. The pass has no branch (already suppressed boxes are computed too, and stay
suppressed) and ``error_model='numpy'`` lets a division by zero give nan instead of raising, so
LLVM vectorizes it over the contiguous columns; that is what makes it faster than skipping the
suppressed boxes or compacting the survivors (bench/README.md). The threshold comes in the
boxes' dtype (:func:`.nms.threshold_for`), so the comparison does not widen the vector either.
"""

from __future__ import annotations

from typing import Any

from . import conv_numba

__all__ = ["suppress"]

suppress: Any = None

if conv_numba.AVAILABLE:
    import numba
    import numpy as np

    def _suppress(x1, y1, x2, y2, area, starts, t, keep):  # pragma: no cover - compiled
        """``keep[a]`` for the boxes greedy NMS keeps, group ``[starts[g], starts[g + 1])`` by group."""
        suppressed = np.zeros(x1.shape[0], dtype=np.bool_)
        zero = np.zeros(1, dtype=x1.dtype)[0]  # a 0 of the boxes' dtype (a literal 0.0 would widen w to float64)
        for g in range(starts.shape[0] - 1):
            s, e = starts[g], starts[g + 1]
            for a in range(s, e):
                if suppressed[a]:
                    continue
                keep[a] = True
                ix1, iy1, ix2, iy2, ia = x1[a], y1[a], x2[a], y2[a], area[a]
                # the later boxes as slices indexed from 0: with an index that starts at a + 1,
                # numba's negative-index wraparound test stays in the loop and blocks vectorizing
                bx1, by1, bx2, by2, barea = x1[a + 1:e], y1[a + 1:e], x2[a + 1:e], y2[a + 1:e], area[a + 1:e]
                bsup = suppressed[a + 1:e]
                for q in range(bx1.shape[0]):
                    # as torchvision: w = max(0, min(x2) − max(x1)), in the boxes' dtype
                    xx1 = bx1[q] if ix1 < bx1[q] else ix1
                    yy1 = by1[q] if iy1 < by1[q] else iy1
                    xx2 = bx2[q] if bx2[q] < ix2 else ix2
                    yy2 = by2[q] if by2[q] < iy2 else iy2
                    w = xx2 - xx1
                    h = yy2 - yy1
                    w = w if zero < w else zero
                    h = h if zero < h else zero
                    inter = w * h
                    bsup[q] |= inter / (ia + barea[q] - inter) > t  # nan (0/0): False

    suppress = numba.njit(cache=True, nogil=True, error_model="numpy")(_suppress)
