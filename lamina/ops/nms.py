"""Non-maximum suppression with ``torchvision.ops``'s names, signatures and semantics: ``nms``
and ``batched_nms``. Not differentiable (the result is indices); the kernels are in
:mod:`lamina.ops.kernels.nms` (the plain loop :func:`~lamina.ops.kernels.nms.nms_reference`
beside them is the text to read).
"""

from __future__ import annotations

import math
from typing import Any

from .. import backend
from ..autograd.tensor import Tensor
from .boxes import check_boxes
from .common import check_tensor, const
from .kernels import nms as K

__all__ = ["nms", "batched_nms"]

xp = backend.xp


def _check(op: str, boxes: Any, scores: Any, iou_threshold: Any) -> tuple[Any, Any, float]:
    boxes = check_boxes(boxes, op)
    check_tensor(scores, op, "scores")
    n = boxes.shape[0]
    if scores.ndim != 1 or scores.shape[0] != n:
        raise ValueError(f"{op}: scores should be a Tensor[N] with one score per box (N = {n}), "
                         f"got shape {tuple(scores.shape)}")
    if scores.dtype.kind not in "fiu":
        raise TypeError(f"{op}: scores must hold real numbers, got dtype {scores.dtype}")
    if isinstance(iou_threshold, Tensor):
        iou_threshold = iou_threshold.item()
    if isinstance(iou_threshold, bool) or not isinstance(iou_threshold, (int, float, xp.integer, xp.floating)):
        raise TypeError(f"{op}: iou_threshold should be a number, got {type(iou_threshold).__name__}")
    iou_threshold = float(iou_threshold)
    if math.isnan(iou_threshold):
        raise ValueError(f"{op}: iou_threshold is nan")
    b, s = boxes.array, scores.array
    # torchvision's CPU kernel takes float32/float64; half precision would round the IoUs coarsely
    # and integers exactly fit float64, so those compute there
    if b.dtype != xp.float32 and b.dtype != xp.float64:
        b = b.astype(xp.float32 if b.dtype == xp.float16 else xp.float64)
    bad = ~xp.isfinite(b).all(axis=1)
    if bad.any():  # a nan box would suppress nothing and an infinite one give nan IoUs: never what was meant
        i = int(xp.nonzero(bad)[0][0])
        raise ValueError(f"{op}: boxes must be finite, but box {i} is {b[i].tolist()}")
    if s.dtype.kind == "f" and xp.isnan(s).any():
        raise ValueError(f"{op}: scores contain nan (score {int(xp.nonzero(xp.isnan(s))[0][0])}), "
                         "which has no place in the order by score")
    return b, s, iou_threshold


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression: visit the boxes by decreasing score and keep each one
    unless a box already kept overlaps it with IoU **greater than** ``iou_threshold``.

    Matches ``torchvision.ops.nms`` (its CPU kernel): equal scores are visited by increasing
    index (a stable sort; torchvision's GPU kernel may break such ties otherwise), an IoU equal to
    the threshold keeps the box, IoUs are computed in the boxes' dtype with the areas as given
    (an inverted box has a negative area; torchvision does not check either). Beyond torchvision:
    float16 and integer boxes work (computed in float32 / float64), and boxes that are not
    finite or scores that are nan raise instead of giving an arbitrary selection.

    The plain loop of :func:`lamina.ops.kernels.nms.nms_reference` is the reference; the kernel
    (numba where installed, else NumPy) gives the same indices.

    Args:
        boxes: ``Tensor[N, 4]``, ``(x1, y1, x2, y2)`` with ``0 <= x1 < x2``, ``0 <= y1 < y2``.
        scores: ``Tensor[N]``.
        iou_threshold: boxes overlapping a kept box with IoU above it are discarded.

    Returns:
        int64 ``Tensor[K]``: the indices of the kept boxes, by decreasing score.

    Example:
        >>> import lamina
        >>> boxes = lamina.tensor([[0.0, 0.0, 2.0, 1.0], [0.0, 0.0, 1.0, 1.0], [5.0, 5.0, 6.0, 6.0]])
        >>> nms(boxes, lamina.tensor([0.9, 0.8, 0.7]), 0.5)  # IoU(0, 1) = 0.5 exactly: kept
        tensor([0, 1, 2])
        >>> nms(boxes, lamina.tensor([0.9, 0.8, 0.7]), 0.4)
        tensor([0, 2])
    """
    b, s, thr = _check("nms", boxes, scores, iou_threshold)
    return const(K.nms_keep(b, s, thr))


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """NMS within each category: boxes with different ``idxs`` never suppress each other.

    Matches ``torchvision.ops.batched_nms``: the kept indices of all categories, by decreasing
    score (equal scores by increasing index). torchvision gets there by shifting each category's
    boxes by ``idxs·(max coordinate + 1)`` so that categories cannot overlap, and running one
    :func:`nms` (or, for large inputs, one per category); lamina runs the greedy loop per category
    directly (one sorted pass over the categories in turn), so the result is exactly that of
    :func:`nms` per category, where the shift can round an IoU at the threshold to either side.

    Args:
        boxes: ``Tensor[N, 4]``, ``(x1, y1, x2, y2)``.
        scores: ``Tensor[N]``.
        idxs: integer ``Tensor[N]``, the category of each box.
        iou_threshold: as :func:`nms`.

    Returns:
        int64 ``Tensor[K]``: the indices of the kept boxes, by decreasing score.

    Example:
        >>> import lamina
        >>> boxes = lamina.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.1], [0.0, 0.0, 2.0, 2.0]])
        >>> batched_nms(boxes, lamina.tensor([0.9, 0.8, 0.7]), lamina.tensor([0, 0, 1]), 0.5)
        tensor([0, 2])
    """
    b, s, thr = _check("batched_nms", boxes, scores, iou_threshold)
    check_tensor(idxs, "batched_nms", "idxs")
    if idxs.ndim != 1 or idxs.shape[0] != b.shape[0]:
        raise ValueError(f"batched_nms: idxs should be a Tensor[N] with one category per box (N = {b.shape[0]}), "
                         f"got shape {tuple(idxs.shape)}")
    if idxs.dtype.kind not in "iu":
        raise TypeError(f"batched_nms: idxs must be integer categories, got dtype {idxs.dtype}")
    return const(K.nms_keep(b, s, thr, idxs.array))
