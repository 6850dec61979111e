"""The second stage of Faster and Mask R-CNN, as ``torchvision.models.detection.roi_heads``.

Each proposal's features are pooled from the feature maps (RoI Align), a box head turns them
into one vector, and a predictor scores the classes and regresses one box per class. In training
the proposals (with the ground-truth boxes appended) are matched to the ground truth and a
balanced sample of them is scored (``fastrcnn_loss``); in eval the class-specific boxes are
decoded, filtered and de-duplicated per class (``postprocess_detections``). Mask R-CNN adds a
small FCN that predicts a 28 × 28 mask per positive RoI and class (``maskrcnn_loss``), pasted
into the image at inference (``paste_masks_in_image``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ... import nn
from ...autograd import no_grad
from ...autograd.tensor import Tensor
from ...nn import functional as F
from ...ops.boxes import box_iou
from ...ops.common import const
from ...ops.join import cat
from ...ops.nms import batched_nms
from ...ops.roi import roi_align
from ._utils import BalancedPositiveNegativeSampler, BoxCoder, Matcher

__all__ = ["RoIHeads", "fastrcnn_loss", "maskrcnn_loss", "maskrcnn_inference", "project_masks_on_boxes",
           "paste_masks_in_image", "expand_boxes", "expand_masks"]


def fastrcnn_loss(class_logits: Tensor, box_regression: Tensor, labels: Sequence[Tensor],
                  regression_targets: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """Fast R-CNN's losses: the cross-entropy of the class logits ``[R, K]`` over all sampled
    RoIs, and the smooth-L1 (``beta = 1/9``) of the positives' regression for their own class
    (``box_regression`` ``[R, 4K]``) summed and divided by the number of sampled RoIs ``R``."""
    labels_cat = cat(list(labels), 0)
    targets_cat = cat(list(regression_targets), 0)
    classification_loss = F.cross_entropy(class_logits, labels_cat)
    lab = labels_cat.array
    pos = np.flatnonzero(lab > 0)
    N = class_logits.shape[0]
    box_regression = box_regression.reshape(N, box_regression.shape[-1] // 4, 4)
    box_loss = F.smooth_l1_loss(box_regression[const(pos), const(lab[pos])], targets_cat[const(pos)],
                                beta=1 / 9, reduction="sum") / labels_cat.numel()
    return classification_loss, box_loss


def project_masks_on_boxes(gt_masks: Tensor, boxes: Tensor, matched_idxs: Tensor, M: int) -> Tensor:
    """The ground-truth mask of each box, cropped to the box and resampled to ``M × M`` by RoI Align
    (``spatial_scale = 1``, ``sampling_ratio = -1``, unaligned, as torchvision): ``[P, M, M]``."""
    dtype = boxes.dtype
    rois = np.concatenate([matched_idxs.array.astype(dtype)[:, None], boxes.detach().array], axis=1)
    masks = const(gt_masks.array[:, None].astype(dtype))
    return roi_align(masks, const(rois), (M, M), 1.0)[:, 0]


def maskrcnn_loss(mask_logits: Tensor, proposals: Sequence[Tensor], gt_masks: Sequence[Tensor],
                  gt_labels: Sequence[Tensor], mask_matched_idxs: Sequence[Tensor]) -> Tensor:
    """The mean binary cross-entropy (with logits) between each positive RoI's mask logits for its
    ground-truth class (``mask_logits`` ``[P, K, M, M]``) and its projected ground-truth mask;
    ``0·Σ logits`` when there is no positive RoI (so that the graph still reaches the head)."""
    M = mask_logits.shape[-1]
    labels = [g.array[i.array] for g, i in zip(gt_labels, mask_matched_idxs)]
    targets = [project_masks_on_boxes(m, p, i, M) for m, p, i in zip(gt_masks, proposals, mask_matched_idxs)
               if p.shape[0]]
    lab = np.concatenate(labels) if labels else np.zeros(0, np.int64)
    if lab.size == 0:
        return mask_logits.sum() * 0
    return F.binary_cross_entropy_with_logits(mask_logits[const(np.arange(lab.size)), const(lab)], cat(targets, 0))


def maskrcnn_inference(x: Tensor, labels: Sequence[Tensor]) -> list[Tensor]:
    """The sigmoid of each detection's mask logits for its predicted class: per image ``[M, 1, S, S]``."""
    prob = 1.0 / (1.0 + np.exp(-x.detach().array))
    lab = np.concatenate([t.array for t in labels]) if labels else np.zeros(0, np.int64)
    prob = prob[np.arange(lab.size), lab][:, None]
    counts = np.cumsum([t.shape[0] for t in labels])[:-1]
    return [const(np.ascontiguousarray(p)) for p in np.split(prob, counts, axis=0)]


def expand_boxes(boxes: np.ndarray, scale: float) -> np.ndarray:
    """Boxes grown about their centres by ``scale``."""
    w_half = (boxes[:, 2] - boxes[:, 0]) * 0.5 * scale
    h_half = (boxes[:, 3] - boxes[:, 1]) * 0.5 * scale
    x_c = (boxes[:, 2] + boxes[:, 0]) * 0.5
    y_c = (boxes[:, 3] + boxes[:, 1]) * 0.5
    return np.stack([x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half], axis=1).astype(boxes.dtype)


def expand_masks(mask: np.ndarray, padding: int) -> tuple[np.ndarray, float]:
    """``[N, 1, M, M]`` masks zero-padded by ``padding`` on each side, and the scale ``(M + 2p)/M``."""
    M = mask.shape[-1]
    scale = float(M + 2 * padding) / M
    return np.pad(mask, ((0, 0), (0, 0), (padding, padding), (padding, padding))), scale


def _paste_mask_in_image(mask: np.ndarray, box: np.ndarray, im_h: int, im_w: int) -> np.ndarray:
    # torchvision counts the pixels of an integer box inclusively (+1): x1..x2 are all covered
    w = max(int(box[2] - box[0] + 1), 1)
    h = max(int(box[3] - box[1] + 1), 1)
    resized = F.interpolate(const(np.ascontiguousarray(mask[None, None])), size=(h, w), mode="bilinear",
                            align_corners=False).array[0, 0]
    im_mask = np.zeros((im_h, im_w), dtype=mask.dtype)
    x_0, x_1 = max(int(box[0]), 0), min(int(box[2]) + 1, im_w)
    y_0, y_1 = max(int(box[1]), 0), min(int(box[3]) + 1, im_h)
    if x_1 > x_0 and y_1 > y_0:
        im_mask[y_0:y_1, x_0:x_1] = resized[y_0 - int(box[1]):y_1 - int(box[1]), x_0 - int(box[0]):x_1 - int(box[0])]
    return im_mask


def paste_masks_in_image(masks: Tensor, boxes: Tensor, img_shape: Sequence[int], padding: int = 1) -> Tensor:
    """Paste each ``S × S`` mask ``[N, 1, S, S]`` into an image of ``img_shape`` ``(h, w)`` at its box
    (``torchvision.models.detection.roi_heads.paste_masks_in_image``): mask padded by ``padding``
    zeros, box grown by the same ratio ``(S + 2p)/S`` and truncated to integers, mask resized
    bilinearly to the box's ``(x2 − x1 + 1) × (y2 − y1 + 1)`` pixels and written where it falls
    inside the image. Returns ``[N, 1, h, w]``."""
    im_h, im_w = (int(s) for s in img_shape)
    m = masks.detach().array
    if m.ndim != 4 or m.shape[1] != 1:
        raise ValueError(f"paste_masks_in_image: masks must be [N, 1, S, S], got {tuple(m.shape)}")
    if boxes.shape[0] != m.shape[0]:
        raise ValueError(f"paste_masks_in_image: {m.shape[0]} masks but {boxes.shape[0]} boxes")
    m, scale = expand_masks(m, padding)
    b = expand_boxes(boxes.detach().array, scale).astype(np.int64)  # truncation towards zero, as .to(int64)
    if m.shape[0] == 0:
        return const(np.zeros((0, 1, im_h, im_w), dtype=m.dtype))
    return const(np.stack([_paste_mask_in_image(mi[0], bi, im_h, im_w) for mi, bi in zip(m, b)])[:, None])


def _check_targets(targets: Sequence[Mapping[str, Any]], has_mask: bool) -> None:
    for i, t in enumerate(targets):
        if "boxes" not in t or "labels" not in t:
            raise ValueError(f"RoIHeads: target {i} needs 'boxes' and 'labels', got keys {sorted(t)}")
        if t["boxes"].dtype.kind != "f":
            raise TypeError(f"RoIHeads: target boxes must be of float type, got {t['boxes'].dtype}")
        if t["labels"].dtype != np.int64:
            raise TypeError(f"RoIHeads: target labels must be of int64 type, got {t['labels'].dtype}")
        if t["labels"].numel() and int(t["labels"].array.min()) < 0:
            raise ValueError(f"RoIHeads: target {i} has a negative label ({int(t['labels'].array.min())}); labels are "
                             "0 (background) … num_classes − 1")
        if has_mask and "masks" not in t:
            raise ValueError(f"RoIHeads: target {i} has no 'masks', which Mask R-CNN's loss needs")


class RoIHeads(nn.Module):
    """Box (and mask) heads on the proposals (``torchvision.models.detection.roi_heads.RoIHeads``).

    Args:
        box_roi_pool: pools each proposal's features (:class:`lamina.vision.ops.MultiScaleRoIAlign`).
        box_head: pooled features → one vector per RoI (``TwoMLPHead``).
        box_predictor: vector → class logits ``[R, K]`` and box deltas ``[R, 4K]`` (``FastRCNNPredictor``).
        fg_iou_thresh, bg_iou_thresh: a proposal with IoU ≥ fg is positive, < bg negative.
        batch_size_per_image, positive_fraction: the RoIs sampled per image for the losses.
        bbox_reg_weights: the box coder's weights (default ``(10, 10, 5, 5)``).
        score_thresh, nms_thresh, detections_per_img: eval's filter (score ``>``), per-class NMS, top-k.
        mask_roi_pool, mask_head, mask_predictor: Mask R-CNN's branch (all three or none).

    ``forward(features, proposals, image_shapes, targets=None)`` returns ``(result, losses)``: in
    training ``([], {loss_classifier, loss_box_reg(, loss_mask)})``; in eval one dict per image of
    ``boxes, labels, scores(, masks)`` and ``{}``. ``compute_losses=True`` in eval gives both (the
    losses on proposals sampled as in training, the detections as in eval; lamina's addition).
    """

    def __init__(self, box_roi_pool: nn.Module, box_head: nn.Module, box_predictor: nn.Module,
                 fg_iou_thresh: float, bg_iou_thresh: float, batch_size_per_image: int, positive_fraction: float,
                 bbox_reg_weights: Sequence[float] | None, score_thresh: float, nms_thresh: float,
                 detections_per_img: int, mask_roi_pool: nn.Module | None = None, mask_head: nn.Module | None = None,
                 mask_predictor: nn.Module | None = None) -> None:
        super().__init__()
        self.box_similarity = box_iou
        self.proposal_matcher = Matcher(fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches=False)
        self.fg_bg_sampler = BalancedPositiveNegativeSampler(batch_size_per_image, positive_fraction)
        self.box_coder = BoxCoder(bbox_reg_weights if bbox_reg_weights is not None else (10.0, 10.0, 5.0, 5.0))
        self.box_roi_pool = box_roi_pool
        self.box_head = box_head
        self.box_predictor = box_predictor
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.detections_per_img = detections_per_img
        self.mask_roi_pool = mask_roi_pool
        self.mask_head = mask_head
        self.mask_predictor = mask_predictor

    def has_mask(self) -> bool:
        return self.mask_roi_pool is not None and self.mask_head is not None and self.mask_predictor is not None

    def assign_targets_to_proposals(self, proposals: Sequence[Tensor], gt_boxes: Sequence[Tensor],
                                    gt_labels: Sequence[Tensor]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per image: each proposal's ground-truth index (clamped at 0) and label (0 background, −1 ignored)."""
        matched_idxs, labels = [], []
        for p, gt, gl in zip(proposals, gt_boxes, gt_labels):
            if gt.numel() == 0:
                idx = np.zeros(p.shape[0], np.int64)
                lab = np.zeros(p.shape[0], np.int64)
            else:
                m = self.proposal_matcher(self.box_similarity(gt, p)).array
                idx = np.maximum(m, 0)
                lab = gl.array[idx].astype(np.int64)
                lab[m == Matcher.BELOW_LOW_THRESHOLD] = 0
                lab[m == Matcher.BETWEEN_THRESHOLDS] = -1
            matched_idxs.append(idx)
            labels.append(lab)
        return matched_idxs, labels

    def subsample(self, labels: Sequence[np.ndarray]) -> list[np.ndarray]:
        pos, neg = self.fg_bg_sampler([const(x) for x in labels])
        return [np.flatnonzero(p.array | n.array) for p, n in zip(pos, neg)]

    def add_gt_proposals(self, proposals: Sequence[Tensor], gt_boxes: Sequence[Tensor]) -> list[Tensor]:
        return [cat((p, g), 0) for p, g in zip(proposals, gt_boxes)]

    def select_training_samples(self, proposals: Sequence[Tensor], targets: Sequence[Mapping[str, Tensor]]
                                ) -> tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor]]:
        """The sampled proposals (ground truth appended first), their matched indices, labels and
        regression targets, per image."""
        dtype = proposals[0].dtype
        gt_boxes = [t["boxes"].detach().to(dtype) for t in targets]
        gt_labels = [t["labels"] for t in targets]
        proposals = self.add_gt_proposals(proposals, gt_boxes)
        matched_idxs, labels = self.assign_targets_to_proposals(proposals, gt_boxes, gt_labels)
        sampled = self.subsample(labels)
        out_p, out_m, out_l, out_t = [], [], [], []
        for p, m, lab, s, gt in zip(proposals, matched_idxs, labels, sampled, gt_boxes):
            p = const(p.array[s])
            out_p.append(p)
            out_m.append(const(m[s]))
            out_l.append(const(lab[s]))
            if gt.numel() == 0:  # nothing to regress towards; no positive uses these
                out_t.append(const(np.zeros((len(s), 4), dtype)))
            else:
                out_t.append(self.box_coder.encode_single(gt[const(m[s])], p))
        return out_p, out_m, out_l, out_t

    def postprocess_detections(self, class_logits: Tensor, box_regression: Tensor, proposals: Sequence[Tensor],
                               image_shapes: Sequence[tuple[int, int]]
                               ) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """Softmax scores, class-specific boxes clipped to the image; without the background, scores
        ``≤ score_thresh``, boxes under 0.01 px; NMS per class; the ``detections_per_img`` best."""
        num_classes = class_logits.shape[-1]
        counts = [int(p.shape[0]) for p in proposals]
        pred_boxes = self.box_coder.decode(box_regression.detach(), list(proposals)).array
        logits = class_logits.detach().array
        e = np.exp(logits - logits.max(axis=-1, keepdims=True)) if logits.size else logits
        pred_scores = e / e.sum(axis=-1, keepdims=True) if logits.size else logits
        splits = np.cumsum(counts)[:-1]
        all_boxes, all_scores, all_labels = [], [], []
        for boxes, scores, (h, w) in zip(np.split(pred_boxes, splits), np.split(pred_scores, splits), image_shapes):
            boxes = boxes.reshape(-1, num_classes, 4).copy()
            boxes[..., 0::2] = boxes[..., 0::2].clip(0, w)
            boxes[..., 1::2] = boxes[..., 1::2].clip(0, h)
            labels = np.broadcast_to(np.arange(num_classes, dtype=np.int64), scores.shape)
            boxes, scores, labels = boxes[:, 1:].reshape(-1, 4), scores[:, 1:].reshape(-1), labels[:, 1:].reshape(-1)
            keep = scores > self.score_thresh
            keep &= ((boxes[:, 2] - boxes[:, 0]) >= 1e-2) & ((boxes[:, 3] - boxes[:, 1]) >= 1e-2)
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = batched_nms(const(boxes), const(scores), const(labels), self.nms_thresh).array
            keep = keep[: self.detections_per_img]
            all_boxes.append(const(np.ascontiguousarray(boxes[keep])))
            all_scores.append(const(np.ascontiguousarray(scores[keep])))
            all_labels.append(const(np.ascontiguousarray(labels[keep])))
        return all_boxes, all_scores, all_labels

    def _box_forward(self, features: Mapping[str, Tensor], proposals: Sequence[Tensor],
                     image_shapes: Sequence[tuple[int, int]]) -> tuple[Tensor, Tensor]:
        x = self.box_head(self.box_roi_pool(features, list(proposals), list(image_shapes)))
        return self.box_predictor(x)

    def _mask_logits(self, features: Mapping[str, Tensor], boxes: Sequence[Tensor],
                     image_shapes: Sequence[tuple[int, int]]) -> Tensor:
        assert self.mask_roi_pool is not None and self.mask_head is not None and self.mask_predictor is not None
        return self.mask_predictor(self.mask_head(self.mask_roi_pool(features, list(boxes), list(image_shapes))))

    def forward(self, features: Mapping[str, Tensor], proposals: Sequence[Tensor],
                image_shapes: Sequence[tuple[int, int]], targets: Sequence[Mapping[str, Tensor]] | None = None,
                compute_losses: bool | None = None) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        compute = self.training if compute_losses is None else compute_losses
        if targets is not None:
            _check_targets(targets, self.has_mask() and compute)
        result: list[dict[str, Tensor]] = []
        losses: dict[str, Tensor] = {}
        if compute:
            if targets is None:
                raise ValueError("RoIHeads: targets should not be None when computing the losses")
            props, matched_idxs, labels, regression_targets = self.select_training_samples(proposals, targets)
            class_logits, box_regression = self._box_forward(features, props, image_shapes)
            top = max((int(t["labels"].array.max()) for t in targets if t["labels"].numel()), default=0)
            if top >= class_logits.shape[-1]:
                raise ValueError(f"RoIHeads: a target has label {top}, but the box predictor scores "
                                 f"{class_logits.shape[-1]} classes (labels 0 … {class_logits.shape[-1] - 1}; "
                                 "num_classes counts the background)")
            loss_classifier, loss_box_reg = fastrcnn_loss(class_logits, box_regression, labels, regression_targets)
            losses = {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}
            if self.has_mask():
                pos = [np.flatnonzero(lab.array > 0) for lab in labels]
                mask_props = [const(p.array[i]) for p, i in zip(props, pos)]
                pos_idxs = [const(m.array[i]) for m, i in zip(matched_idxs, pos)]
                mask_logits = self._mask_logits(features, mask_props, image_shapes)
                losses["loss_mask"] = maskrcnn_loss(mask_logits, mask_props, [t["masks"] for t in targets],
                                                    [t["labels"] for t in targets], pos_idxs)
        if not self.training:
            with no_grad():
                class_logits, box_regression = self._box_forward(features, proposals, image_shapes)
                boxes, scores, labels = self.postprocess_detections(class_logits, box_regression, proposals,
                                                                    image_shapes)
                result = [{"boxes": b, "labels": lab, "scores": s} for b, s, lab in zip(boxes, scores, labels)]
                if self.has_mask():
                    mask_logits = self._mask_logits(features, boxes, image_shapes)
                    for prob, r in zip(maskrcnn_inference(mask_logits, labels), result):
                        r["masks"] = prob
        return result, losses
