"""Greedy non-maximum suppression on arrays (no autograd): the plain loop that a reader follows
and the tests trust (:func:`nms_reference`, :func:`batched_nms_reference`), a NumPy kernel, and
the one function that picks the kernel (:func:`select_kernel`; the numba kernel is in
:mod:`.nms_numba`).

Semantics (torchvision's CPU kernel, ``torchvision/csrc/ops/cpu/nms_kernel.cpp``): visit the
boxes by decreasing score, equal scores by increasing index (a stable sort); keep a box unless
an already kept box has IoU **greater** than the threshold with it (IoU equal to the threshold
keeps the box); the kept indices come out in the order they were kept. IoU is computed in the
boxes' dtype as ``inter / (area_i + area_j − inter)``, the areas as given (an inverted box has a
negative area), and compared with the threshold in float64 (C++ promotes the float to the
double threshold). A 0/0 IoU is nan, which suppresses nothing.

The kernels visit the same pairs in the same order with the same float operations, so they
agree with the reference exactly, bit for bit on every comparison.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import nms_numba
from .im2col import use_numba

__all__ = ["sort_order", "threshold_for", "nms_reference", "batched_nms_reference", "select_kernel", "KERNELS",
           "suppress", "nms_keep"]

KERNELS = ("numba", "numpy")


def sort_order(scores: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """Indices by decreasing score, equal scores by increasing index; with ``groups``, by group
    first (ascending), then so within each group."""
    s = scores if scores.dtype.kind == "f" else scores.astype(np.float64)
    if groups is None:
        return np.argsort(-s, kind="stable")
    return np.lexsort((np.arange(len(s)), -s, groups))


def threshold_for(iou_threshold: float, dtype: np.dtype) -> Any:
    """The threshold ``t`` of ``dtype`` with ``v > t`` exactly when ``float(v) > iou_threshold``, for
    every ``v`` of that dtype (the largest value of ``dtype`` not above the threshold), so that the
    comparison can stay in the boxes' dtype."""
    with np.errstate(over="ignore"):  # above the dtype's range: inf, and the largest finite value below
        t = dtype.type(iou_threshold)
    if float(t) > iou_threshold:  # rounded up: the next value below is the largest one not above
        t = np.nextafter(t, dtype.type(-np.inf))
    return t


def _iou(a: np.ndarray, b: np.ndarray, area_a: Any, area_b: Any) -> Any:
    """IoU of two boxes, in their dtype, with torchvision's operations in its order."""
    zero = a.dtype.type(0)
    w = max(zero, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(zero, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / (area_a + area_b - inter)


def nms_reference(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Greedy NMS, the plain loop: the oracle of the tests and the text to read.

    ``boxes (N, 4)`` float ``(x1, y1, x2, y2)``, ``scores (N,)``; returns the kept indices in the
    order they are kept (decreasing score).
    """
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order = sort_order(scores)
    suppressed = [False] * len(boxes)
    keep = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for a, i in enumerate(order):
            if suppressed[i]:
                continue
            keep.append(int(i))  # no kept box overlaps box i too much: keep it …
            for j in order[a + 1:]:  # … and suppress every later box that overlaps it too much
                if not suppressed[j] and float(_iou(boxes[i], boxes[j], areas[i], areas[j])) > iou_threshold:
                    suppressed[j] = True
    return keep


def batched_nms_reference(boxes: np.ndarray, scores: np.ndarray, idxs: np.ndarray,
                          iou_threshold: float) -> list[int]:
    """NMS within each category ``idxs[i]`` separately (boxes of different categories never
    suppress each other); all kept indices by decreasing score, ties by increasing index."""
    kept = []
    for c in np.unique(idxs):
        members = np.nonzero(idxs == c)[0]
        kept += [int(members[k]) for k in nms_reference(boxes[members], scores[members], iou_threshold)]
    kept.sort()
    return [kept[k] for k in sort_order(scores[kept])] if kept else []


def select_kernel(n: int, dtype: np.dtype) -> str:
    """The kernel for ``n`` boxes of ``dtype``: numba's compiled loop where it is installed and in
    use (``lamina.ops.kernels.im2col.use_numba``), else NumPy's."""
    if use_numba() and nms_numba.suppress is not None and dtype in (np.float32, np.float64):
        return "numba"
    return "numpy"


def _suppress_numpy(x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray, area: np.ndarray,
                    starts: np.ndarray, t: Any, keep: np.ndarray) -> None:
    """The NumPy kernel: per kept box, one vector pass over the candidates still alive in its group."""
    zero = x1.dtype.type(0)
    for s, e in zip(starts[:-1], starts[1:]):
        alive = np.arange(s, e)
        while alive.size:
            i, alive = alive[0], alive[1:]
            keep[i] = True
            w = np.maximum(zero, np.minimum(x2[i], x2[alive]) - np.maximum(x1[i], x1[alive]))
            h = np.maximum(zero, np.minimum(y2[i], y2[alive]) - np.maximum(y1[i], y1[alive]))
            inter = w * h
            alive = alive[~(inter / (area[i] + area[alive] - inter) > t)]  # nan IoU: not suppressed


def suppress(sorted_boxes: np.ndarray, starts: np.ndarray, iou_threshold: float, kernel: str | None = None) -> Any:
    """Which of ``sorted_boxes (N, 4)``, in visiting order, greedy NMS keeps: a bool ``(N,)``.

    ``starts`` (int64, ``starts[0] = 0``, ``starts[-1] = N``) splits the boxes into groups that
    are suppressed separately (one group for plain NMS). ``kernel`` forces ``'numba'`` or
    ``'numpy'`` (default: :func:`select_kernel`).
    """
    kernel = kernel or select_kernel(len(sorted_boxes), sorted_boxes.dtype)
    if kernel not in KERNELS:
        raise ValueError(f"nms: unknown kernel {kernel!r} (expected one of {KERNELS})")
    x1, y1, x2, y2 = (np.ascontiguousarray(sorted_boxes[:, k]) for k in range(4))
    area = (x2 - x1) * (y2 - y1)
    t = threshold_for(iou_threshold, sorted_boxes.dtype)
    keep = np.zeros(len(sorted_boxes), dtype=np.bool_)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if kernel == "numba":
            if nms_numba.suppress is None:
                raise RuntimeError("nms: the numba kernel is not available (numba is not installed, "
                                   "or LAMINA_NO_NUMBA is set)")
            nms_numba.suppress(x1, y1, x2, y2, area, starts, t, keep)
        else:
            _suppress_numpy(x1, y1, x2, y2, area, starts, t, keep)
    return keep


def nms_keep(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, idxs: np.ndarray | None = None,
             kernel: str | None = None) -> np.ndarray:
    """The indices (int64) that (batched, with ``idxs``) NMS keeps, by decreasing score, equal
    scores by increasing index. Arrays already checked: ``boxes (N, 4)`` float32/float64,
    finite; ``scores (N,)`` without nan; ``idxs (N,)`` integer."""
    n = len(boxes)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = sort_order(scores, idxs)
    if idxs is None:
        starts = np.array([0, n], dtype=np.int64)
    else:
        g = idxs[order]
        starts = np.concatenate(([0], np.nonzero(g[1:] != g[:-1])[0] + 1, [n])).astype(np.int64)
    kept = order[suppress(boxes[order], starts, iou_threshold, kernel)]
    if idxs is not None:  # the groups' kept boxes merged by score, ties by index
        kept = np.sort(kept)
        kept = kept[sort_order(scores[kept])]
    return kept.astype(np.int64)
