"""``GeneralizedRCNN``: transform → backbone → RPN → RoI heads → postprocess, as
``torchvision.models.detection.generalized_rcnn``, with losses in eval on request."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ... import nn
from ...autograd.tensor import Tensor
from .transform import GeneralizedRCNNTransform

__all__ = ["GeneralizedRCNN"]


def _as_image_list(op: str, images: Any) -> list[Tensor]:
    if isinstance(images, Tensor):
        if images.ndim != 4:
            raise ValueError(f"{op}: a batched images Tensor must be [N, C, H, W], got shape {tuple(images.shape)}")
        return list(images.unbind(0))
    if not isinstance(images, (list, tuple)) or not images:
        raise TypeError(f"{op}: images must be a non-empty list of Tensor[C, H, W] or a Tensor[N, C, H, W], got "
                        f"{type(images).__name__}")
    for i, img in enumerate(images):
        if not isinstance(img, Tensor) or img.ndim != 3:
            raise ValueError(f"{op}: images[{i}] must be a Tensor[C, H, W], got "
                             f"{getattr(img, 'shape', type(img).__name__)}")
    return list(images)


def _check_targets(op: str, targets: Any, n: int) -> None:
    if not isinstance(targets, (list, tuple)) or len(targets) != n:
        raise ValueError(f"{op}: targets must be a list of {n} dicts (one per image), got "
                         f"{len(targets) if isinstance(targets, (list, tuple)) else type(targets).__name__}")
    for i, t in enumerate(targets):
        if not isinstance(t, Mapping) or "boxes" not in t or "labels" not in t:
            raise ValueError(f"{op}: target {i} must be a dict with 'boxes' and 'labels'")
        boxes, labels = t["boxes"], t["labels"]
        if not isinstance(boxes, Tensor) or boxes.ndim != 2 or boxes.shape[-1] != 4:
            raise ValueError(f"{op}: expected target boxes to be a tensor of shape [N, 4], got "
                             f"{getattr(boxes, 'shape', type(boxes).__name__)} (target {i})")
        if not isinstance(labels, Tensor) or labels.shape != (boxes.shape[0],):
            raise ValueError(f"{op}: target {i} has {boxes.shape[0]} boxes but labels of shape "
                             f"{getattr(labels, 'shape', type(labels).__name__)}")
        b = boxes.array
        if not np.isfinite(b).all():
            raise ValueError(f"{op}: target {i} has non-finite box coordinates")


class GeneralizedRCNN(nn.Module):
    """The two-stage detector's skeleton (``torchvision.models.detection.GeneralizedRCNN``).

    Args:
        backbone: images ``(N, 3, H, W)`` → a feature map or an ``OrderedDict`` of them.
        rpn: the region proposal network.
        roi_heads: the box (and mask) heads.
        transform: the :class:`GeneralizedRCNNTransform` applied before and after.

    ``forward(images, targets=None, return_losses=False)``: in training the loss dict; in eval the
    list of detections (``boxes`` in the input images' pixels, ``labels``, ``scores`` decreasing
    per image, ``masks`` for Mask R-CNN); in eval with ``targets`` and ``return_losses=True``,
    ``(losses, detections)`` (torchvision's ``eager_outputs`` order): the losses on proposals
    sampled as in training (from the eval proposals; the sampling draws from lamina's generator),
    the detections as in eval. ``images``: a list of ``Tensor[C, H, W]`` or a ``Tensor[N, C, H, W]``.
    """

    def __init__(self, backbone: nn.Module, rpn: nn.Module, roi_heads: nn.Module,
                 transform: GeneralizedRCNNTransform) -> None:
        super().__init__()
        self.transform = transform
        self.backbone = backbone
        self.rpn = rpn
        self.roi_heads = roi_heads

    def forward(self, images: Any, targets: Sequence[Mapping[str, Tensor]] | None = None,
                return_losses: bool = False) -> Any:
        op = type(self).__name__
        images = _as_image_list(op, images)
        compute = self.training or return_losses
        if compute and targets is None:
            raise ValueError(f"{op}: targets should not be None when in training mode"
                             if self.training else f"{op}: return_losses=True needs targets")
        if targets is not None:
            _check_targets(op, targets, len(images))
        original_image_sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        image_list, targets = self.transform(images, targets if compute else None)
        if targets is not None:
            for i, t in enumerate(targets):
                b = t["boxes"].array
                bad = (b[:, 2:] <= b[:, :2]).any(axis=1)
                if bad.any():
                    raise ValueError(f"{op}: all bounding boxes should have positive height and width. Found "
                                     f"invalid box {b[int(np.flatnonzero(bad)[0])].tolist()} for target at index {i}.")
        features = self.backbone(image_list.tensors)
        if isinstance(features, Tensor):
            features = OrderedDict([("0", features)])
        proposals, proposal_losses = self.rpn(image_list, features, targets, compute_losses=compute)
        detections, detector_losses = self.roi_heads(features, proposals, image_list.image_sizes, targets,
                                                     compute_losses=compute)
        detections = self.transform.postprocess(detections, image_list.image_sizes, original_image_sizes)
        losses = {**detector_losses, **proposal_losses}
        if self.training:
            return losses
        return (losses, detections) if return_losses else detections
