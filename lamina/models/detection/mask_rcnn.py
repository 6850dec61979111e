"""Mask R-CNN (He et al. 2017), as ``torchvision.models.detection.mask_rcnn``: Faster R-CNN with a
small FCN on RoI-Aligned features that predicts one mask per class for each detection; and a small
variant that trains on a laptop CPU (``maskrcnn_small``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from ... import nn
from ...nn.modules.roi import MultiScaleRoIAlign
from .faster_rcnn import (
    FasterRCNN,
    FastRCNNPredictor,
    SmallBackbone,
    TwoMLPHead,
    _check_num_classes,
    _fpn_backbone,
    _small_kwargs,
)

__all__ = ["MaskRCNN", "MaskRCNNHeads", "MaskRCNNPredictor", "maskrcnn_small", "maskrcnn_resnet50_fpn",
           "maskrcnn_resnet18_fpn"]


def _kaiming_fan_out(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class MaskRCNNHeads(nn.Sequential):
    """The mask branch's FCN: one 3×3 conv (+ norm) + ReLU per entry of ``layers`` (its channels),
    padding ``dilation`` so that the RoI's size is kept (torchvision's ``MaskRCNNHeads``: blocks
    ``0 … L−1``, each ``Conv2dNormActivation``; weights Kaiming-normal fan-out, biases 0).

    Args:
        in_channels: the pooled features' channels.
        layers: the channels of each layer.
        dilation: the convolutions' dilation (and padding).
        norm_layer: e.g. ``nn.BatchNorm2d``; ``None``: convs with a bias and no norm.
    """

    def __init__(self, in_channels: int, layers: Sequence[int], dilation: int,
                 norm_layer: Any | None = None) -> None:
        blocks = []
        c = in_channels
        for out in layers:
            conv = nn.Conv2d(c, out, 3, stride=1, padding=dilation, dilation=dilation, bias=norm_layer is None)
            parts = [conv] + ([norm_layer(out)] if norm_layer is not None else []) + [nn.ReLU(inplace=True)]
            blocks.append(nn.Sequential(*parts))
            c = out
        super().__init__(*blocks)
        _kaiming_fan_out(self)


class MaskRCNNPredictor(nn.Sequential):
    """A 2×2 stride-2 transposed conv (``conv5_mask``) + ReLU doubling the RoI's size, then a 1×1
    conv (``mask_fcn_logits``) to one mask logit map per class (torchvision's ``MaskRCNNPredictor``):
    ``(P, in_channels, S, S)`` → ``(P, num_classes, 2S, 2S)``."""

    def __init__(self, in_channels: int, dim_reduced: int, num_classes: int) -> None:
        super().__init__(OrderedDict([
            ("conv5_mask", nn.ConvTranspose2d(in_channels, dim_reduced, 2, 2, 0)),
            ("relu", nn.ReLU(inplace=True)),
            ("mask_fcn_logits", nn.Conv2d(dim_reduced, num_classes, 1, 1, 0)),
        ]))
        _kaiming_fan_out(self)


class MaskRCNN(FasterRCNN):
    """Mask R-CNN with torchvision's constructor (``torchvision.models.detection.MaskRCNN``): the
    arguments of :class:`FasterRCNN`, and

    Args:
        mask_roi_pool: pools each detection's features (default a 14 × 14 ``MultiScaleRoIAlign`` over
            ``'0' … '3'``).
        mask_head: default ``MaskRCNNHeads(out_channels, (256, 256, 256, 256), 1)``.
        mask_predictor: default ``MaskRCNNPredictor(256, 256, num_classes)``.

    Training adds ``loss_mask``; eval adds ``masks`` ``[M, 1, H, W]``: each detection's mask
    probabilities pasted into the input image.
    """

    def __init__(self, backbone: nn.Module, num_classes: int | None = None, *, mask_roi_pool: nn.Module | None = None,
                 mask_head: nn.Module | None = None, mask_predictor: nn.Module | None = None, **kwargs: Any) -> None:
        name = type(self).__name__
        if num_classes is not None and mask_predictor is not None:
            raise ValueError(f"{name}: num_classes should be None when mask_predictor is specified")
        super().__init__(backbone, num_classes, **kwargs)
        out_channels = backbone.out_channels
        if mask_roi_pool is None:
            mask_roi_pool = MultiScaleRoIAlign(featmap_names=["0", "1", "2", "3"], output_size=14, sampling_ratio=2)
        if mask_head is None:
            mask_head = MaskRCNNHeads(out_channels, (256, 256, 256, 256), 1)
        if mask_predictor is None:
            if num_classes is None:
                raise ValueError(f"{name}: num_classes should not be None when mask_predictor is not specified")
            mask_predictor = MaskRCNNPredictor(256, 256, num_classes)
        self.roi_heads.mask_roi_pool = mask_roi_pool
        self.roi_heads.mask_head = mask_head
        self.roi_heads.mask_predictor = mask_predictor


def maskrcnn_small(num_classes: int = 4, channels: Sequence[int] = (32, 64, 128), representation_size: int = 256,
                   mask_layers: Sequence[int] = (64, 64), **kwargs: Any) -> MaskRCNN:
    """A Mask R-CNN small enough to train on 2 CPU cores in minutes on 96 px images: the backbone,
    anchors and box head of :func:`fasterrcnn_small`, a 14 × 14 mask RoI Align, ``MaskRCNNHeads`` of
    ``mask_layers`` and a predictor to 28 × 28 masks. ``kwargs`` go to :class:`MaskRCNN`."""
    _check_num_classes("maskrcnn_small", num_classes)
    backbone = SmallBackbone(channels=channels)
    kw = _small_kwargs(kwargs)
    res = kw["box_roi_pool"].output_size[0]
    kw.setdefault("box_head", TwoMLPHead(backbone.out_channels * res ** 2, representation_size))
    kw.setdefault("box_predictor", FastRCNNPredictor(representation_size, num_classes))
    kw.setdefault("mask_roi_pool", MultiScaleRoIAlign(featmap_names=["0"], output_size=14, sampling_ratio=2))
    kw.setdefault("mask_head", MaskRCNNHeads(backbone.out_channels, mask_layers, 1))
    kw.setdefault("mask_predictor", MaskRCNNPredictor(mask_layers[-1], mask_layers[-1], num_classes))
    return MaskRCNN(backbone, None, **kw)


def maskrcnn_resnet50_fpn(*, weights: Any = None, num_classes: int = 91, weights_backbone: Any = None,
                          trainable_backbone_layers: int | None = None, **kwargs: Any) -> MaskRCNN:
    """torchvision's ``maskrcnn_resnet50_fpn`` (44.4 M parameters at 91 classes); ``kwargs`` go to
    :class:`MaskRCNN`."""
    backbone = _fpn_backbone("maskrcnn_resnet50_fpn", "resnet50", weights, weights_backbone,
                             trainable_backbone_layers)
    return MaskRCNN(backbone, num_classes, **kwargs)


def maskrcnn_resnet18_fpn(*, num_classes: int = 91, trainable_backbone_layers: int | None = None,
                          **kwargs: Any) -> MaskRCNN:
    """As :func:`maskrcnn_resnet50_fpn` on ResNet-18."""
    return MaskRCNN(_fpn_backbone("maskrcnn_resnet18_fpn", "resnet18", None, None, trainable_backbone_layers),
                    num_classes, **kwargs)

