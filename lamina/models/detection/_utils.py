"""The pieces between anchors and losses, with torchvision's semantics
(``torchvision.models.detection._utils``): ``BoxCoder`` (box regression targets and their
inverse), ``Matcher`` / ``SSDMatcher`` (which ground-truth box each anchor or proposal is
responsible for) and ``BalancedPositiveNegativeSampler`` (which of them the loss sees).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ... import backend
from ...autograd.tensor import Tensor
from ...ops.join import cat, stack

__all__ = ["BoxCoder", "Matcher", "SSDMatcher", "BalancedPositiveNegativeSampler", "encode_boxes"]


def _check_boxes(op: str, what: str, b: Tensor, positive: bool) -> None:
    if not isinstance(b, Tensor):
        raise TypeError(f"{op}: {what} must be a Tensor, got {type(b).__name__}")
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"{op}: {what} must have shape [N, 4] (x1, y1, x2, y2), got {tuple(b.shape)}")
    a = b.array
    if not np.isfinite(a).all():
        raise ValueError(f"{op}: {what} hold non-finite coordinates")
    if positive and a.size and ((a[:, 2] <= a[:, 0]).any() or (a[:, 3] <= a[:, 1]).any()):
        k = int(np.flatnonzero((a[:, 2] <= a[:, 0]) | (a[:, 3] <= a[:, 1]))[0])
        raise ValueError(f"{op}: {what} must have positive width and height (x2 > x1, y2 > y1); box {k} is "
                         f"{a[k].tolist()}")


def encode_boxes(reference_boxes: Tensor, proposals: Tensor, weights: Sequence[float]) -> Tensor:
    """The regression targets that move each of ``proposals`` onto its ``reference_boxes`` row
    (Girshick et al., R-CNN): ``(wx·(x* − x)/w, wy·(y* − y)/h, ww·log(w*/w), wh·log(h*/h))`` of the
    centres ``x, y`` and sizes ``w, h``. Both ``[N, 4]`` xyxy; returns ``[N, 4]``."""
    wx, wy, ww, wh = (float(w) for w in weights)
    px1, py1, px2, py2 = (proposals[:, i:i + 1] for i in range(4))
    gx1, gy1, gx2, gy2 = (reference_boxes[:, i:i + 1] for i in range(4))
    ex_w, ex_h = px2 - px1, py2 - py1
    ex_cx, ex_cy = px1 + 0.5 * ex_w, py1 + 0.5 * ex_h
    gt_w, gt_h = gx2 - gx1, gy2 - gy1
    gt_cx, gt_cy = gx1 + 0.5 * gt_w, gy1 + 0.5 * gt_h
    return cat((wx * (gt_cx - ex_cx) / ex_w, wy * (gt_cy - ex_cy) / ex_h,
                ww * (gt_w / ex_w).log(), wh * (gt_h / ex_h).log()), dim=1)


class BoxCoder:
    """Encodes boxes as regression targets relative to reference boxes (anchors, proposals) and
    decodes predicted targets back into boxes, as ``torchvision.models.detection._utils.BoxCoder``.

    Args:
        weights: ``(wx, wy, ww, wh)`` that scale the four targets (Faster R-CNN's box head uses
            ``(10, 10, 5, 5)``, its RPN ``(1, 1, 1, 1)``).
        bbox_xform_clip: the largest ``dw``, ``dh`` fed to ``exp`` when decoding (default
            ``log(1000/16)``), so that a wild prediction cannot overflow.

    ``decode`` is differentiable in ``rel_codes`` (the box losses of some detectors go through it).
    Unlike torchvision, boxes of zero or negative width or height are refused with a clear error
    where they would give inf/NaN targets.

    Example:
        >>> import lamina
        >>> coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
        >>> anchors = lamina.tensor([[0.0, 0.0, 10.0, 10.0]])
        >>> gt = lamina.tensor([[5.0, 0.0, 15.0, 20.0]])
        >>> t = coder.encode_single(gt, anchors)
        >>> [round(v, 4) for v in t[0].tolist()]  # centre moved by (0.5 w, 0.5 h), height doubled
        [0.5, 0.5, 0.0, 0.6931]
        >>> coder.decode_single(t, anchors).tolist()
        [[5.0, 0.0, 15.0, 20.0]]
    """

    def __init__(self, weights: Sequence[float], bbox_xform_clip: float = math.log(1000.0 / 16)) -> None:
        if len(weights) != 4:
            raise ValueError(f"BoxCoder: weights must be four numbers (wx, wy, ww, wh), got {weights!r}")
        self.weights = tuple(float(w) for w in weights)
        self.bbox_xform_clip = float(bbox_xform_clip)

    def encode(self, reference_boxes: Sequence[Tensor], proposals: Sequence[Tensor]) -> tuple[Tensor, ...]:
        """Per image, the targets of ``proposals[i]`` towards ``reference_boxes[i]``."""
        if len(reference_boxes) != len(proposals):
            raise ValueError(f"BoxCoder.encode: {len(reference_boxes)} images of reference boxes but "
                             f"{len(proposals)} of proposals")
        counts = [len(b) for b in reference_boxes]
        targets = self.encode_single(cat(list(reference_boxes), 0), cat(list(proposals), 0))
        return tuple(targets.split(counts, 0))

    def encode_single(self, reference_boxes: Tensor, proposals: Tensor) -> Tensor:
        _check_boxes("BoxCoder.encode", "reference boxes", reference_boxes, True)
        _check_boxes("BoxCoder.encode", "proposals", proposals, True)
        if reference_boxes.shape != proposals.shape:
            raise ValueError(f"BoxCoder.encode: {reference_boxes.shape[0]} reference boxes for "
                             f"{proposals.shape[0]} proposals; give one per proposal")
        return encode_boxes(reference_boxes, proposals, self.weights)

    def decode(self, rel_codes: Tensor, boxes: Sequence[Tensor]) -> Tensor:
        """Decode ``rel_codes`` ``[ΣN, 4·k]`` against the images' reference boxes: ``[ΣN, k, 4]``."""
        if not isinstance(boxes, (list, tuple)):
            raise TypeError(f"BoxCoder.decode: boxes must be a list of Tensors (one per image), got "
                            f"{type(boxes).__name__}")
        total = sum(int(b.shape[0]) for b in boxes)
        ref = cat(list(boxes), 0)
        if total > 0:
            rel_codes = rel_codes.reshape(total, -1)
        out = self.decode_single(rel_codes, ref)
        return out.reshape(total, -1, 4) if total > 0 else out

    def decode_single(self, rel_codes: Tensor, boxes: Tensor) -> Tensor:
        """Boxes ``[N, 4·k]`` from the codes ``[N, 4·k]`` relative to ``boxes`` ``[N, 4]``."""
        _check_boxes("BoxCoder.decode", "reference boxes", boxes, False)
        if rel_codes.ndim != 2 or rel_codes.shape[0] != boxes.shape[0] or rel_codes.shape[1] % 4:
            raise ValueError(f"BoxCoder.decode: codes must have shape [{boxes.shape[0]}, 4·k] for "
                             f"{boxes.shape[0]} boxes, got {tuple(rel_codes.shape)}")
        boxes = boxes.to(rel_codes.dtype)
        widths = boxes[:, 2] - boxes[:, 0]
        heights = boxes[:, 3] - boxes[:, 1]
        ctr_x = boxes[:, 0] + 0.5 * widths
        ctr_y = boxes[:, 1] + 0.5 * heights
        wx, wy, ww, wh = self.weights
        dx, dy = rel_codes[:, 0::4] / wx, rel_codes[:, 1::4] / wy
        # trap: clamp before exp, or one wild prediction overflows to inf
        dw = (rel_codes[:, 2::4] / ww).clamp(max=self.bbox_xform_clip)
        dh = (rel_codes[:, 3::4] / wh).clamp(max=self.bbox_xform_clip)
        cx = dx * widths[:, None] + ctr_x[:, None]
        cy = dy * heights[:, None] + ctr_y[:, None]
        half_w = 0.5 * (dw.exp() * widths[:, None])
        half_h = 0.5 * (dh.exp() * heights[:, None])
        return stack((cx - half_w, cy - half_h, cx + half_w, cy + half_h), dim=2).flatten(1)


class Matcher:
    """Assigns to each prediction (anchor, proposal) at most one ground-truth element from an
    ``[M, N]`` quality matrix (IoUs of M ground-truth boxes with N predictions), as
    ``torchvision.models.detection._utils.Matcher``.

    Returns an int64 ``Tensor[N]``: the matched ground-truth index where the best quality is
    ``≥ high_threshold``; ``BETWEEN_THRESHOLDS`` (−2) where it is in ``[low, high)``;
    ``BELOW_LOW_THRESHOLD`` (−1) below ``low_threshold``. With ``allow_low_quality_matches``, each
    ground truth also keeps the predictions of its highest quality (ties included), even below
    the thresholds, so that no object goes without an anchor (Faster R-CNN's RPN).

    Example:
        >>> import lamina
        >>> iou = lamina.tensor([[0.9, 0.4, 0.1, 0.0], [0.1, 0.5, 0.2, 0.35]])
        >>> Matcher(0.7, 0.3)(iou).tolist()
        [0, -2, -1, -2]
        >>> Matcher(0.7, 0.3, allow_low_quality_matches=True)(iou).tolist()
        [0, 1, -1, -2]
    """

    BELOW_LOW_THRESHOLD = -1
    BETWEEN_THRESHOLDS = -2

    def __init__(self, high_threshold: float, low_threshold: float, allow_low_quality_matches: bool = False) -> None:
        if low_threshold > high_threshold:
            raise ValueError(f"Matcher: low_threshold ({low_threshold}) must not exceed high_threshold "
                             f"({high_threshold})")
        self.high_threshold = float(high_threshold)
        self.low_threshold = float(low_threshold)
        self.allow_low_quality_matches = bool(allow_low_quality_matches)

    def __call__(self, match_quality_matrix: Tensor) -> Tensor:
        q = _quality("Matcher", match_quality_matrix)
        matched_vals = q.max(axis=0)
        matches = q.argmax(axis=0).astype(np.int64)  # the first of equal maxima, as torch.max
        all_matches = matches.copy() if self.allow_low_quality_matches else None
        matches[matched_vals < self.low_threshold] = self.BELOW_LOW_THRESHOLD
        matches[(matched_vals >= self.low_threshold) & (matched_vals < self.high_threshold)] = self.BETWEEN_THRESHOLDS
        if all_matches is not None:
            self.set_low_quality_matches_(matches, all_matches, q)
        return Tensor._wrap(matches)

    def set_low_quality_matches_(self, matches: np.ndarray, all_matches: np.ndarray, q: np.ndarray) -> None:
        """For each ground truth, the predictions of its highest quality (ties included) take their
        best ground truth back, whatever the thresholds said."""
        best_per_gt = q.max(axis=1)
        preds = np.nonzero(q == best_per_gt[:, None])[1]
        matches[preds] = all_matches[preds]


class SSDMatcher(Matcher):
    """SSD's matching: one threshold, and each ground truth takes its best prediction outright."""

    def __init__(self, threshold: float) -> None:
        super().__init__(threshold, threshold, allow_low_quality_matches=False)

    def __call__(self, match_quality_matrix: Tensor) -> Tensor:
        matches = super().__call__(match_quality_matrix).array
        best_pred = _quality("SSDMatcher", match_quality_matrix).argmax(axis=1)
        matches[best_pred] = np.arange(best_pred.shape[0], dtype=np.int64)
        return Tensor._wrap(matches)


def _quality(op: str, m: Any) -> np.ndarray:
    q = m.array if isinstance(m, Tensor) else np.asarray(m)
    if q.ndim != 2:
        raise ValueError(f"{op}: the match quality matrix must be [M ground truths, N predictions], got shape "
                         f"{tuple(q.shape)}")
    if q.size == 0:
        # torchvision's training-time errors: nothing to match against
        if q.shape[0] == 0:
            raise ValueError(f"{op}: no ground-truth boxes available for one of the images during training")
        raise ValueError(f"{op}: no proposal boxes available for one of the images during training")
    if np.isnan(q).any():
        raise ValueError(f"{op}: the match quality matrix holds NaN")
    return q


class BalancedPositiveNegativeSampler:
    """Picks ``batch_size_per_image`` elements per image, at most ``positive_fraction`` of them
    positive (``matched_idxs ≥ 1``), the rest negative (``== 0``); ``−1`` is ignored. Draws from
    lamina's global generator (``lamina.manual_seed``) as torchvision does from torch's.

    ``__call__(matched_idxs)`` returns two lists of uint8 masks, the positives and the negatives
    chosen in each image.

    Example:
        >>> import lamina
        >>> _ = lamina.manual_seed(0)
        >>> pos, neg = BalancedPositiveNegativeSampler(4, 0.25)([lamina.tensor([1, 0, 0, 2, -1, 0, 0])])
        >>> int(pos[0].sum()), int(neg[0].sum())
        (1, 3)
    """

    def __init__(self, batch_size_per_image: int, positive_fraction: float) -> None:
        if batch_size_per_image < 0 or not 0.0 <= positive_fraction <= 1.0:
            raise ValueError(f"BalancedPositiveNegativeSampler: needs batch_size_per_image ≥ 0 and positive_fraction "
                             f"in [0, 1], got {batch_size_per_image} and {positive_fraction}")
        self.batch_size_per_image = int(batch_size_per_image)
        self.positive_fraction = float(positive_fraction)

    def __call__(self, matched_idxs: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        rng = backend.generator()
        pos_masks, neg_masks = [], []
        for m in matched_idxs:
            a = m.array if isinstance(m, Tensor) else np.asarray(m)
            positive = np.flatnonzero(a >= 1)
            negative = np.flatnonzero(a == 0)
            num_pos = min(positive.size, int(self.batch_size_per_image * self.positive_fraction))
            num_neg = min(negative.size, self.batch_size_per_image - num_pos)
            pos = positive[rng.permutation(positive.size)[:num_pos]]
            neg = negative[rng.permutation(negative.size)[:num_neg]]
            pm, nm = np.zeros(a.shape, np.uint8), np.zeros(a.shape, np.uint8)
            pm[pos], nm[neg] = 1, 1
            pos_masks.append(Tensor._wrap(pm))
            neg_masks.append(Tensor._wrap(nm))
        return pos_masks, neg_masks
