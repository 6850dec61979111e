"""The evaluation engine of :class:`~lamina.train.detection_metrics.MeanAveragePrecision`: a
re-implementation of pycocotools' ``COCOeval`` (``computeIoU``, ``evaluateImg``, ``accumulate``,
``summarize``) on NumPy arrays, step for step, so that every number agrees with pycocotools.

The steps, per class ``k`` and image:

1. **IoU.** Detections sorted by score (a stable mergesort, so ties keep their input order) and
   cut to the largest ``maxDets``; the IoU of each detection with each ground truth. Against a
   *crowd* ground truth the "IoU" is ``intersection / area(detection)`` (a detection inside a
   crowd region is not wrong, whatever the region's size).
2. **Matching** (per area range and IoU threshold). Ground truths outside the area range or crowd
   are *ignored*; they are sorted last. Each detection, best score first, takes the still-free
   ground truth of highest IoU ≥ the threshold, preferring a regular (not ignored) one; a crowd
   ground truth stays free for more detections. A detection matched to an ignored ground truth,
   or unmatched and itself outside the area range, is ignored (neither TP nor FP).
3. **Accumulation** (per class, area range, maxDets). The detections of all images (each image
   cut to ``maxDets``) sorted by score; cumulative TP and FP give recall ``TP / #regular gt``
   and precision ``TP / (TP + FP)``; the precision is replaced by its envelope (the maximum to
   its right) and read at 101 recall levels (``searchsorted(side='left')``, 0 past the last
   recall). A cell without any regular ground truth stays −1 ("undefined").
4. **Summary.** Each stat is the mean of the cells > −1 of the selected slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["box_iou_xywh", "mask_iou", "match_detections", "evaluate_class", "accumulate", "ImageEval",
           "voc_ap", "COCO_AREA_RANGES", "REFERENCE_IMAGE_AREA"]

COCO_AREA_RANGES = {"all": (0.0, 1e5 ** 2), "small": (0.0, 32.0 ** 2), "medium": (32.0 ** 2, 96.0 ** 2),
                    "large": (96.0 ** 2, 1e5 ** 2)}
# the image area COCO's small/medium/large thresholds are relative to under area_ranges="relative"
REFERENCE_IMAGE_AREA = 640.0 * 480.0


def box_iou_xywh(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU ``[D, G]`` of ``(x, y, w, h)`` boxes, as pycocotools' ``bbIou`` (same operation order, float64);
    against a crowd ground truth the union is the detection's area."""
    dx, dy, dw, dh = (dt[:, i:i + 1] for i in range(4))
    gx, gy, gw, gh = (gt[None, :, i] for i in range(4))
    w = np.minimum(dw + dx, gw + gx) - np.maximum(dx, gx)
    h = np.minimum(dh + dy, gh + gy) - np.maximum(dy, gy)
    inter = np.where((w > 0) & (h > 0), w * h, 0.0)
    da, ga = dw * dh, gw * gh
    union = np.where(crowd[None, :], da, da + ga - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(inter > 0, inter / union, 0.0)


def mask_iou(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU ``[D, G]`` of binary masks flattened to ``[D, P]`` and ``[G, P]`` (pycocotools' ``rleIou``
    on dense masks: pixel counts, the union is the detection's area against a crowd)."""
    d, g = dt.astype(np.float64), gt.astype(np.float64)
    inter = d @ g.T
    da, ga = d.sum(1)[:, None], g.sum(1)[None, :]
    union = np.where(crowd[None, :], da, da + ga - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(inter > 0, inter / union, 0.0)


def _best_last(ious: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Per row of ``ok [T, G]``: the column of highest ``ious [G]`` among the allowed ones, the LAST
    on ties (pycocotools replaces its best match whenever ``iou >= best``), or −1."""
    scored = np.where(ok, ious[None, :], -np.inf)
    last = ious.size - 1 - scored[:, ::-1].argmax(1)
    return np.where(ok.any(1), last, -1)


def match_detections(ious: np.ndarray, gt_ignore: np.ndarray, gt_crowd: np.ndarray,
                     iou_thresholds: np.ndarray) -> np.ndarray:
    """Greedy matching of ``evaluateImg``, for all IoU thresholds at once.

    Args:
        ious: ``[D, G]``, detections sorted by score, ground truths sorted ignored-last.
        gt_ignore: ``[G]`` bool, ground truths that are crowd or outside the area range.
        gt_crowd: ``[G]`` bool; a crowd ground truth may be matched by several detections.
        iou_thresholds: ``[T]``.

    Returns:
        ``[T, D]`` int: the index of the ground truth each detection matched, −1 for none.
    """
    n_dt, n_gt = ious.shape
    thresholds = np.minimum(iou_thresholds, 1 - 1e-10)[:, None]
    taken = np.zeros((len(thresholds), n_gt), dtype=bool)
    match = np.full((len(thresholds), n_dt), -1, dtype=np.int64)
    if n_gt == 0:
        return match
    rows = np.arange(len(thresholds))
    for d in range(n_dt):
        ok = (~taken | gt_crowd[None, :]) & (ious[d][None, :] >= thresholds)
        regular = _best_last(ious[d], ok & ~gt_ignore[None, :])
        # an ignored ground truth only when no regular one qualifies (the `break` of evaluateImg)
        best = np.where(regular >= 0, regular, _best_last(ious[d], ok & gt_ignore[None, :]))
        hit = best >= 0
        taken[rows[hit], best[hit]] = True
        match[:, d] = best
    return match


@dataclass
class ImageEval:
    """``evaluateImg``'s record for one image, class and area range (detections sorted by score)."""

    scores: np.ndarray  # [D]
    matched: np.ndarray  # [T, D] bool
    ignored: np.ndarray  # [T, D] bool
    num_regular_gt: int


def evaluate_class(dt: dict[str, np.ndarray], gt: dict[str, np.ndarray], iou_fn: Any,
                   area_ranges: list[tuple[float, float]], iou_thresholds: np.ndarray,
                   max_det: int) -> list[ImageEval]:
    """``computeIoU`` + ``evaluateImg`` for one image and class over every area range.

    ``dt``: ``geom [D, ...]``, ``scores [D]``, ``areas [D]``; ``gt``: ``geom [G, ...]``,
    ``areas [G]``, ``crowd [G]`` bool. ``iou_fn(dt_geom, gt_geom, crowd)`` is the IoU matrix.
    """
    order = np.argsort(-dt["scores"], kind="mergesort")[:max_det]
    scores, dt_areas = dt["scores"][order], dt["areas"][order]
    ious = iou_fn(dt["geom"][order], gt["geom"], gt["crowd"])
    out = []
    for lo, hi in area_ranges:
        gt_ignore = gt["crowd"] | (gt["areas"] < lo) | (gt["areas"] > hi)
        g_order = np.argsort(gt_ignore, kind="mergesort")
        ig, crowd = gt_ignore[g_order], gt["crowd"][g_order]
        match = match_detections(ious[:, g_order], ig, crowd, iou_thresholds)
        matched = match >= 0
        ignored = matched & ig[np.maximum(match, 0)] if len(ig) else np.zeros_like(matched)
        outside = (dt_areas < lo) | (dt_areas > hi)
        ignored |= ~matched & outside[None, :]
        out.append(ImageEval(scores, matched, ignored, int((~ig).sum())))
    return out


def voc_ap(recall: np.ndarray, precision: np.ndarray, method: str) -> float:
    """VOC's average precision of one raw (not yet enveloped) PR curve.

    ``"voc11"`` (VOC2007): the mean over the recall levels ``0, 0.1, …, 1`` of the highest
    precision at a recall ≥ the level (0 where none). ``"continuous"`` (VOC2010+): the exact area
    under the precision envelope, a step function through every recall the detections reach.
    """
    if method == "voc11":
        levels = np.arange(11) / 10.0  # exact decimals: 3 / 10 == 0.3, while 0.1 * 3 == 0.30000000000000004
        return float(np.mean([precision[recall >= t].max() if (recall >= t).any() else 0.0 for t in levels]))
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def accumulate(evals: list[list[list[ImageEval]]], num_thresholds: int, rec_thresholds: np.ndarray,
               max_dets: list[int], num_areas: int, ap_method: str = "coco") -> dict[str, np.ndarray]:
    """``COCOeval.accumulate``: ``evals[k][a]`` is the list of image records of class ``k`` and area
    range ``a`` (images where the class has neither gt nor detection left out).

    Returns:
        ``precision [T, R, K, A, M]``, ``scores`` (same shape; the score at each recall level),
        ``recall [T, K, A, M]`` and ``ap [T, K, A, M]`` (the COCO 101-point mean, or VOC's AP for
        the other ``ap_method``); −1 where a class has no regular ground truth.
    """
    n_t, n_r, n_k, n_a, n_m = num_thresholds, len(rec_thresholds), len(evals), num_areas, len(max_dets)
    precision = -np.ones((n_t, n_r, n_k, n_a, n_m))
    scores = -np.ones((n_t, n_r, n_k, n_a, n_m))
    recall = -np.ones((n_t, n_k, n_a, n_m))
    ap = -np.ones((n_t, n_k, n_a, n_m))
    for k in range(n_k):
        for a in range(n_a):
            records = evals[k][a]
            npig = sum(e.num_regular_gt for e in records)
            if not records or npig == 0:
                continue
            for m, max_det in enumerate(max_dets):
                dt_scores = np.concatenate([e.scores[:max_det] for e in records])
                order = np.argsort(-dt_scores, kind="mergesort")
                dt_scores = dt_scores[order]
                matched = np.concatenate([e.matched[:, :max_det] for e in records], axis=1)[:, order]
                ignored = np.concatenate([e.ignored[:, :max_det] for e in records], axis=1)[:, order]
                tp = np.cumsum(matched & ~ignored, axis=1).astype(float)
                fp = np.cumsum(~matched & ~ignored, axis=1).astype(float)
                n_d = tp.shape[1]
                for t in range(n_t):
                    rc = tp[t] / npig
                    pr = tp[t] / (fp[t] + tp[t] + np.spacing(1))
                    recall[t, k, a, m] = rc[-1] if n_d else 0.0
                    envelope = np.maximum.accumulate(pr[::-1])[::-1]
                    at = np.searchsorted(rc, rec_thresholds, side="left")
                    inside = at < n_d
                    precision[t, :, k, a, m] = np.where(inside, envelope[np.minimum(at, n_d - 1)] if n_d else 0, 0)
                    scores[t, :, k, a, m] = np.where(inside, dt_scores[np.minimum(at, n_d - 1)] if n_d else 0, 0)
                    if ap_method == "coco":
                        ap[t, k, a, m] = precision[t, :, k, a, m].mean()
                    else:
                        ap[t, k, a, m] = voc_ap(rc, pr, ap_method)
    return {"precision": precision, "scores": scores, "recall": recall, "ap": ap}
