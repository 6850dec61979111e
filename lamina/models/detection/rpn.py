"""The region proposal network of Faster R-CNN (Ren et al. 2015), as
``torchvision.models.detection.rpn``.

At every cell of every feature map a small conv head scores each anchor (object or not) and
predicts the box deltas that move the anchor onto the object. The best-scoring decoded anchors,
clipped, filtered and de-duplicated by NMS, are the proposals the RoI heads classify. Training
matches anchors to ground-truth boxes (IoU ≥ ``fg_iou_thresh`` positive, < ``bg_iou_thresh``
negative, each box's best anchors positive whatever their IoU), samples a balanced minibatch of
them, and scores it with a binary cross-entropy and a smooth-L1 box loss.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ... import nn
from ...autograd.tensor import Tensor
from ...nn import functional as F
from ...ops.boxes import box_iou
from ...ops.common import const
from ...ops.join import cat
from ...ops.nms import batched_nms
from ._utils import BalancedPositiveNegativeSampler, BoxCoder, Matcher
from .anchor_utils import AnchorGenerator
from .image_list import ImageList

__all__ = ["RPNHead", "RegionProposalNetwork", "concat_box_prediction_layers", "permute_and_flatten"]


class RPNHead(nn.Module):
    """The RPN's head: ``conv_depth`` 3×3 conv + ReLU layers shared by all feature maps, then a 1×1
    conv to ``num_anchors`` objectness logits and one to ``4·num_anchors`` box deltas per cell
    (``torchvision.models.detection.rpn.RPNHead``; weights ``N(0, 0.01²)``, biases 0).

    ``forward(x)`` takes a list of maps ``(N, in_channels, H_l, W_l)`` and returns the lists of
    logits ``(N, A, H_l, W_l)`` and of deltas ``(N, 4A, H_l, W_l)``.

    Example:
        >>> import lamina
        >>> head = RPNHead(8, 3)
        >>> logits, deltas = head([lamina.rand(1, 8, 5, 6)])
        >>> tuple(logits[0].shape), tuple(deltas[0].shape)
        ((1, 3, 5, 6), (1, 12, 5, 6))
    """

    def __init__(self, in_channels: int, num_anchors: int, conv_depth: int = 1) -> None:
        super().__init__()
        # torchvision's Conv2dNormActivation(norm_layer=None) per layer: conv (with bias) then ReLU
        self.conv = nn.Sequential(*[nn.Sequential(nn.Conv2d(in_channels, in_channels, 3, 1, 1), nn.ReLU(inplace=True))
                                    for _ in range(conv_depth)])
        self.cls_logits = nn.Conv2d(in_channels, num_anchors, kernel_size=1, stride=1)
        self.bbox_pred = nn.Conv2d(in_channels, num_anchors * 4, kernel_size=1, stride=1)
        for layer in self.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.normal_(layer.weight, std=0.01)
                if layer.bias is not None:
                    nn.init.constant_(layer.bias, 0.0)

    def forward(self, x: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        logits, bbox_reg = [], []
        for feature in x:
            t = self.conv(feature)
            logits.append(self.cls_logits(t))
            bbox_reg.append(self.bbox_pred(t))
        return logits, bbox_reg


def permute_and_flatten(layer: Tensor, N: int, A: int, C: int, H: int, W: int) -> Tensor:
    """``(N, A·C, H, W)`` → ``(N, H·W·A, C)``: the order in which the anchors are generated."""
    return layer.reshape(N, -1, C, H, W).permute(0, 3, 4, 1, 2).reshape(N, -1, C)


def concat_box_prediction_layers(box_cls: Sequence[Tensor], box_regression: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """All levels' logits ``[N·ΣHWA, C]`` and deltas ``[N·ΣHWA, 4]``, in the anchors' order."""
    cls_flat, reg_flat = [], []
    for c, r in zip(box_cls, box_regression):
        N, AxC, H, W = c.shape
        A = r.shape[1] // 4
        cls_flat.append(permute_and_flatten(c, N, A, AxC // A, H, W))
        reg_flat.append(permute_and_flatten(r, N, A, 4, H, W))
    box_cls_cat = cat(cls_flat, dim=1)
    return box_cls_cat.reshape(-1, box_cls_cat.shape[-1]), cat(reg_flat, dim=1).reshape(-1, 4)


class RegionProposalNetwork(nn.Module):
    """Region proposal network (``torchvision.models.detection.rpn.RegionProposalNetwork``).

    Args:
        anchor_generator: the anchors of each feature map (:class:`AnchorGenerator`).
        head: computes the objectness logits and the box deltas (:class:`RPNHead`).
        fg_iou_thresh: least IoU with a ground-truth box for an anchor to be positive in training.
        bg_iou_thresh: IoU below which an anchor is negative.
        batch_size_per_image: anchors sampled per image for the losses.
        positive_fraction: largest share of positives among them.
        pre_nms_top_n: ``{"training": n, "testing": n}``, proposals kept per level before NMS.
        post_nms_top_n: ``{"training": n, "testing": n}``, proposals kept per image after NMS.
        nms_thresh: NMS IoU threshold (per level).
        score_thresh: least objectness probability of a proposal (``≥``).

    ``forward(images, features, targets=None)`` returns ``(boxes, losses)``: one ``Tensor[P, 4]`` of
    proposals per image (by decreasing objectness within each level's NMS) and, in training, the
    dict ``loss_objectness`` (BCE with logits over the sampled anchors) and ``loss_rpn_box_reg``
    (smooth-L1 with ``beta = 1/9`` over the sampled positives, summed, divided by the number of
    sampled anchors). ``compute_losses=True`` computes the losses in eval too (lamina's addition).
    The proposals carry no gradient, as in torchvision.
    """

    def __init__(self, anchor_generator: AnchorGenerator, head: nn.Module, fg_iou_thresh: float, bg_iou_thresh: float,
                 batch_size_per_image: int, positive_fraction: float, pre_nms_top_n: Mapping[str, int],
                 post_nms_top_n: Mapping[str, int], nms_thresh: float, score_thresh: float = 0.0) -> None:
        super().__init__()
        for name, d in (("pre_nms_top_n", pre_nms_top_n), ("post_nms_top_n", post_nms_top_n)):
            if not isinstance(d, Mapping) or set(d) != {"training", "testing"}:
                raise ValueError(f"RegionProposalNetwork: {name} must be a dict with the keys 'training' and "
                                 f"'testing', got {d!r}")
        self.anchor_generator = anchor_generator
        self.head = head
        self.box_coder = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
        self.box_similarity = box_iou
        self.proposal_matcher = Matcher(fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches=True)
        self.fg_bg_sampler = BalancedPositiveNegativeSampler(batch_size_per_image, positive_fraction)
        self._pre_nms_top_n = dict(pre_nms_top_n)
        self._post_nms_top_n = dict(post_nms_top_n)
        self.nms_thresh = nms_thresh
        self.score_thresh = score_thresh
        self.min_size = 1e-3

    def pre_nms_top_n(self) -> int:
        return self._pre_nms_top_n["training" if self.training else "testing"]

    def post_nms_top_n(self) -> int:
        return self._post_nms_top_n["training" if self.training else "testing"]

    def assign_targets_to_anchors(self, anchors: Sequence[Tensor], targets: Sequence[Mapping[str, Tensor]]
                                  ) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """Per image: the label of every anchor (1 object, 0 background, −1 ignored), its matched
        ground-truth box and the regression targets towards it (zeros where nothing matches)."""
        labels, matched_gt_boxes, regression_targets = [], [], []
        for anchors_per_image, t in zip(anchors, targets):
            gt_boxes = t["boxes"].detach()
            n = anchors_per_image.shape[0]
            if gt_boxes.numel() == 0:  # a background image: every anchor negative
                lab = np.zeros((n,), np.float32)
                matched = const(np.zeros((n, 4), anchors_per_image.dtype))
                reg = matched
            else:
                gt_boxes = gt_boxes.to(anchors_per_image.dtype)
                matched_idxs = self.proposal_matcher(self.box_similarity(gt_boxes, anchors_per_image)).array
                matched = gt_boxes[const(np.maximum(matched_idxs, 0))]
                lab = (matched_idxs >= 0).astype(np.float32)
                lab[matched_idxs == Matcher.BELOW_LOW_THRESHOLD] = 0.0
                lab[matched_idxs == Matcher.BETWEEN_THRESHOLDS] = -1.0
                reg = self.box_coder.encode_single(matched, anchors_per_image)
            labels.append(const(lab))
            matched_gt_boxes.append(matched)
            regression_targets.append(reg)
        return labels, matched_gt_boxes, regression_targets

    def _get_top_n_idx(self, objectness: np.ndarray, num_anchors_per_level: Sequence[int]) -> np.ndarray:
        r, offset = [], 0
        for ob in np.split(objectness, np.cumsum(num_anchors_per_level)[:-1], axis=1):
            num_anchors = ob.shape[1]
            top_n = min(self.pre_nms_top_n(), num_anchors)
            # topk: the largest first, equal logits by index (a stable sort)
            r.append(np.argsort(-ob, axis=1, kind="stable")[:, :top_n] + offset)
            offset += num_anchors
        return np.concatenate(r, axis=1)

    def filter_proposals(self, proposals: Tensor, objectness: Tensor, image_shapes: Sequence[tuple[int, int]],
                         num_anchors_per_level: Sequence[int]) -> tuple[list[Tensor], list[Tensor]]:
        """Per image: the top ``pre_nms_top_n`` of each level, clipped, without boxes under
        ``min_size`` or scores under ``score_thresh``, NMS per level, the first ``post_nms_top_n``."""
        num_images = proposals.shape[0]
        ob = objectness.detach().array.reshape(num_images, -1)
        props = proposals.detach().array
        levels = np.concatenate([np.full((n,), i, np.int64) for i, n in enumerate(num_anchors_per_level)])
        top = self._get_top_n_idx(ob, num_anchors_per_level)
        rows = np.arange(num_images)[:, None]
        ob, props, lvls = ob[rows, top], props[rows, top], levels[top]
        prob = 1.0 / (1.0 + np.exp(-ob))
        final_boxes, final_scores = [], []
        for boxes, scores, lvl, (h, w) in zip(props, prob, lvls, image_shapes):
            boxes = boxes.copy()
            boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
            boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
            keep = ((boxes[:, 2] - boxes[:, 0]) >= self.min_size) & ((boxes[:, 3] - boxes[:, 1]) >= self.min_size)
            keep &= scores >= self.score_thresh  # ">=" as torchvision
            boxes, scores, lvl = boxes[keep], scores[keep], lvl[keep]
            keep = batched_nms(const(boxes), const(scores), const(lvl), self.nms_thresh).array[: self.post_nms_top_n()]
            final_boxes.append(const(np.ascontiguousarray(boxes[keep])))
            final_scores.append(const(np.ascontiguousarray(scores[keep])))
        return final_boxes, final_scores

    def compute_loss(self, objectness: Tensor, pred_bbox_deltas: Tensor, labels: Sequence[Tensor],
                     regression_targets: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """``(loss_objectness, loss_rpn_box_reg)`` over a balanced sample of the anchors."""
        pos, neg = self.fg_bg_sampler(labels)
        pos_inds = np.flatnonzero(np.concatenate([p.array for p in pos]))
        neg_inds = np.flatnonzero(np.concatenate([n.array for n in neg]))
        sampled = const(np.concatenate([pos_inds, neg_inds]))
        pos_t = const(pos_inds)
        objectness = objectness.flatten()
        labels_cat = cat(list(labels), 0)
        targets_cat = cat(list(regression_targets), 0)
        box_loss = F.smooth_l1_loss(pred_bbox_deltas[pos_t], targets_cat[pos_t].to(pred_bbox_deltas.dtype),
                                    beta=1 / 9, reduction="sum") / sampled.numel()
        objectness_loss = F.binary_cross_entropy_with_logits(objectness[sampled],
                                                             labels_cat[sampled].to(objectness.dtype))
        return objectness_loss, box_loss

    def forward(self, images: ImageList, features: Mapping[str, Tensor],
                targets: Sequence[Mapping[str, Any]] | None = None,
                compute_losses: bool | None = None) -> tuple[list[Tensor], dict[str, Tensor]]:
        feats = list(features.values())
        objectness, pred_bbox_deltas = self.head(feats)
        anchors = self.anchor_generator(images, feats)
        num_images = len(anchors)
        num_anchors_per_level = [int(o.shape[1] * o.shape[2] * o.shape[3]) for o in objectness]
        objectness, pred_bbox_deltas = concat_box_prediction_layers(objectness, pred_bbox_deltas)
        # the proposals carry no gradient: Faster R-CNN does not backpropagate through them
        proposals = self.box_coder.decode(pred_bbox_deltas.detach(), anchors).reshape(num_images, -1, 4)
        boxes, _ = self.filter_proposals(proposals, objectness, images.image_sizes, num_anchors_per_level)
        losses: dict[str, Tensor] = {}
        if self.training if compute_losses is None else compute_losses:
            if targets is None:
                raise ValueError("RegionProposalNetwork: targets should not be None when computing the losses")
            labels, _, regression_targets = self.assign_targets_to_anchors(anchors, targets)
            loss_objectness, loss_rpn_box_reg = self.compute_loss(objectness, pred_bbox_deltas, labels,
                                                                  regression_targets)
            losses = {"loss_objectness": loss_objectness, "loss_rpn_box_reg": loss_rpn_box_reg}
        return boxes, losses
