"""Faster R-CNN (Ren et al. 2015), as ``torchvision.models.detection.faster_rcnn``: a backbone, a
region proposal network on its feature maps, and RoI Align box heads; and a small variant that
trains on a laptop CPU in minutes (``fasterrcnn_small``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ... import nn
from ...autograd.tensor import Tensor
from ...nn import functional as F
from ...nn.modules.roi import MultiScaleRoIAlign
from .anchor_utils import AnchorGenerator
from .backbone_utils import resnet_fpn_backbone
from .generalized_rcnn import GeneralizedRCNN
from .roi_heads import RoIHeads
from .rpn import RegionProposalNetwork, RPNHead
from .transform import GeneralizedRCNNTransform

__all__ = ["FasterRCNN", "TwoMLPHead", "FastRCNNPredictor", "SmallBackbone", "fasterrcnn_small",
           "fasterrcnn_resnet50_fpn", "fasterrcnn_resnet18_fpn"]


def _check_num_classes(op: str, num_classes: Any) -> None:
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise ValueError(f"{op}: num_classes counts the background too, so it must be an int of at least 2, got "
                         f"{num_classes!r}")


class TwoMLPHead(nn.Module):
    """Two fully connected layers with ReLU on the flattened pooled features (``fc6``, ``fc7``), as
    torchvision's ``TwoMLPHead``: ``(R, C, S, S)`` → ``(R, representation_size)``."""

    def __init__(self, in_channels: int, representation_size: int) -> None:
        super().__init__()
        self.fc6 = nn.Linear(in_channels, representation_size)
        self.fc7 = nn.Linear(representation_size, representation_size)

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(1)
        return F.relu(self.fc7(F.relu(self.fc6(x))))


class FastRCNNPredictor(nn.Module):
    """Class logits (``cls_score``) and class-specific box deltas (``bbox_pred``) from each RoI's
    vector, as torchvision's ``FastRCNNPredictor``: ``(R, in)`` → ``(R, K)``, ``(R, 4K)``."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.cls_score = nn.Linear(in_channels, num_classes)
        self.bbox_pred = nn.Linear(in_channels, num_classes * 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.ndim == 4:
            if tuple(x.shape[2:]) != (1, 1):
                raise ValueError(f"FastRCNNPredictor: x has the wrong shape, expecting the last two dimensions to be "
                                 f"[1,1] instead of {list(x.shape[2:])}")
        x = x.flatten(1)
        return self.cls_score(x), self.bbox_pred(x)


class FasterRCNN(GeneralizedRCNN):
    """Faster R-CNN with torchvision's constructor, defaults and module names
    (``torchvision.models.detection.FasterRCNN``).

    Args:
        backbone: returns one feature map or an ``OrderedDict`` of them; must have ``out_channels``.
        num_classes: including the background (labels ``1 … num_classes − 1``); ``None`` with a
            ``box_predictor`` of one's own.
        min_size, max_size, image_mean, image_std: the :class:`GeneralizedRCNNTransform`'s.
        rpn_*: the :class:`RegionProposalNetwork`'s (anchors default to sizes 32 … 512, ratios
            0.5, 1, 2, one size per feature map).
        box_*: the :class:`RoIHeads`' (``box_roi_pool`` defaults to a 7 × 7 ``MultiScaleRoIAlign`` over the
            maps ``'0' … '3'``, ``box_head`` to ``TwoMLPHead(C·49, 1024)``).
        **kwargs: ``size_divisible``, ``fixed_size`` of the transform.

    See :class:`GeneralizedRCNN` for what ``forward`` returns.
    """

    def __init__(self, backbone: nn.Module, num_classes: int | None = None, min_size: int | Sequence[int] = 800,
                 max_size: int = 1333, image_mean: Sequence[float] | None = None,
                 image_std: Sequence[float] | None = None, rpn_anchor_generator: AnchorGenerator | None = None,
                 rpn_head: nn.Module | None = None, rpn_pre_nms_top_n_train: int = 2000,
                 rpn_pre_nms_top_n_test: int = 1000, rpn_post_nms_top_n_train: int = 2000,
                 rpn_post_nms_top_n_test: int = 1000, rpn_nms_thresh: float = 0.7, rpn_fg_iou_thresh: float = 0.7,
                 rpn_bg_iou_thresh: float = 0.3, rpn_batch_size_per_image: int = 256,
                 rpn_positive_fraction: float = 0.5, rpn_score_thresh: float = 0.0,
                 box_roi_pool: nn.Module | None = None, box_head: nn.Module | None = None,
                 box_predictor: nn.Module | None = None, box_score_thresh: float = 0.05,
                 box_nms_thresh: float = 0.5, box_detections_per_img: int = 100, box_fg_iou_thresh: float = 0.5,
                 box_bg_iou_thresh: float = 0.5, box_batch_size_per_image: int = 512,
                 box_positive_fraction: float = 0.25, bbox_reg_weights: Sequence[float] | None = None,
                 **kwargs: Any) -> None:
        name = type(self).__name__
        if not hasattr(backbone, "out_channels"):
            raise ValueError(f"{name}: backbone should contain an attribute out_channels specifying the number of "
                             "output channels (assumed to be the same for all the levels)")
        if num_classes is not None and box_predictor is not None:
            raise ValueError(f"{name}: num_classes should be None when box_predictor is specified")
        if num_classes is None and box_predictor is None:
            raise ValueError(f"{name}: num_classes should not be None when box_predictor is not specified")
        if num_classes is not None:
            _check_num_classes(name, num_classes)
        out_channels = backbone.out_channels
        if rpn_anchor_generator is None:
            rpn_anchor_generator = AnchorGenerator(((32,), (64,), (128,), (256,), (512,)), ((0.5, 1.0, 2.0),) * 5)
        if rpn_head is None:
            rpn_head = RPNHead(out_channels, rpn_anchor_generator.num_anchors_per_location()[0])
        rpn = RegionProposalNetwork(rpn_anchor_generator, rpn_head, rpn_fg_iou_thresh, rpn_bg_iou_thresh,
                                    rpn_batch_size_per_image, rpn_positive_fraction,
                                    dict(training=rpn_pre_nms_top_n_train, testing=rpn_pre_nms_top_n_test),
                                    dict(training=rpn_post_nms_top_n_train, testing=rpn_post_nms_top_n_test),
                                    rpn_nms_thresh, score_thresh=rpn_score_thresh)
        if box_roi_pool is None:
            box_roi_pool = MultiScaleRoIAlign(featmap_names=["0", "1", "2", "3"], output_size=7, sampling_ratio=2)
        if box_head is None:
            resolution = box_roi_pool.output_size[0]
            box_head = TwoMLPHead(out_channels * resolution ** 2, 1024)
        if box_predictor is None:
            box_predictor = FastRCNNPredictor(1024, num_classes)  # type: ignore[arg-type]
        roi_heads = RoIHeads(box_roi_pool, box_head, box_predictor, box_fg_iou_thresh, box_bg_iou_thresh,
                             box_batch_size_per_image, box_positive_fraction, bbox_reg_weights, box_score_thresh,
                             box_nms_thresh, box_detections_per_img)
        if image_mean is None:
            image_mean = [0.485, 0.456, 0.406]
        if image_std is None:
            image_std = [0.229, 0.224, 0.225]
        transform = GeneralizedRCNNTransform(min_size, max_size, image_mean, image_std, **kwargs)
        super().__init__(backbone, rpn, roi_heads, transform)


class SmallBackbone(nn.Module):
    """A small conv backbone for tiny images: per stage a stride-2 3×3 conv-BN-ReLU and a 3×3
    conv-BN-ReLU (``body.<stage>``). Output stride ``2^len(channels)``, ``out_channels = channels[-1]``.

    Example:
        >>> import lamina
        >>> SmallBackbone(channels=(8, 16))(lamina.rand(1, 3, 32, 32)).shape
        (1, 16, 8, 8)
    """

    def __init__(self, in_channels: int = 3, channels: Sequence[int] = (32, 64, 128)) -> None:
        super().__init__()
        stages, c_in = [], in_channels
        for c in channels:
            stages.append(nn.Sequential(
                nn.Conv2d(c_in, c, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                nn.Conv2d(c, c, 3, stride=1, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)))
            c_in = c
        self.body = nn.Sequential(*stages)
        self.out_channels = int(channels[-1])
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


def _small_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The defaults of the small R-CNNs: 96–128 px images, anchors for 8–64 px objects on one map of
    stride 8, fewer proposals and RoIs than torchvision's (which are sized for COCO at 800 px).

    The anchor sizes step by √2 (torchvision's FPN steps by 2, one size per level, with five levels
    to share the work): on one map, octave steps leave a box midway between two sizes at IoU ≈ 0.5
    with both, below the RPN's foreground threshold 0.7 — on the synthetic shapes (8–50 px boxes in
    96 px images) only 21 % of the boxes had an anchor at 0.7 with (8, 16, 32, 64), 45 % with these."""
    defaults: dict[str, Any] = dict(
        min_size=96, max_size=128, size_divisible=32,
        rpn_anchor_generator=AnchorGenerator(((8, 11, 16, 23, 32, 45, 64),), ((0.5, 1.0, 2.0),)),
        rpn_pre_nms_top_n_train=600, rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_train=300,
        rpn_post_nms_top_n_test=100, rpn_batch_size_per_image=128, box_batch_size_per_image=128,
        box_roi_pool=MultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=2))
    defaults.update(kwargs)
    return defaults


def fasterrcnn_small(num_classes: int = 4, channels: Sequence[int] = (32, 64, 128), representation_size: int = 256,
                     **kwargs: Any) -> FasterRCNN:
    """A Faster R-CNN small enough to train on 2 CPU cores in minutes on 96 px images:
    :class:`SmallBackbone` (stride 8), one feature map, 21 anchors per cell (sizes 8–64 in steps
    of √2, ratios 0.5–2), a ``TwoMLPHead`` of ``representation_size``. ``kwargs`` go to :class:`FasterRCNN`.

    Example:
        >>> m = fasterrcnn_small(num_classes=3).eval()
        >>> import lamina
        >>> out = m([lamina.rand(3, 96, 96)])
        >>> sorted(out[0])
        ['boxes', 'labels', 'scores']
    """
    _check_num_classes("fasterrcnn_small", num_classes)
    backbone = SmallBackbone(channels=channels)
    kw = _small_kwargs(kwargs)
    res = kw["box_roi_pool"].output_size[0]
    kw.setdefault("box_head", TwoMLPHead(backbone.out_channels * res ** 2, representation_size))
    kw.setdefault("box_predictor", FastRCNNPredictor(representation_size, num_classes))
    return FasterRCNN(backbone, None, **kw)


def _fpn_backbone(op: str, backbone_name: str, weights: Any, weights_backbone: Any,
                  trainable_backbone_layers: int | None) -> nn.Module:
    if weights is not None or weights_backbone is not None:
        raise ValueError(f"{op}: lamina has no weight download; build with weights=None and load a state_dict")
    # untrained: every layer trains and batch norm is ordinary (torchvision's choice without weights)
    layers = 5 if trainable_backbone_layers is None else int(trainable_backbone_layers)
    return resnet_fpn_backbone(backbone_name=backbone_name, trainable_layers=layers)


def fasterrcnn_resnet50_fpn(*, weights: Any = None, num_classes: int = 91, weights_backbone: Any = None,
                            trainable_backbone_layers: int | None = None, **kwargs: Any) -> FasterRCNN:
    """torchvision's ``fasterrcnn_resnet50_fpn`` (ResNet-50 + FPN over ``layer1 … layer4`` and a
    pooled level, 41.8 M parameters at 91 classes); ``kwargs`` go to :class:`FasterRCNN`. Sized for
    800 px COCO images: for small ones pass ``min_size``, ``max_size`` and anchors.

    Unlike torchvision, which without pretrained weights ignores ``trainable_backbone_layers`` (with
    a warning) and trains all five, lamina freezes as asked (weights are loaded afterwards here).
    """
    backbone = _fpn_backbone("fasterrcnn_resnet50_fpn", "resnet50", weights, weights_backbone,
                             trainable_backbone_layers)
    return FasterRCNN(backbone, num_classes, **kwargs)


def fasterrcnn_resnet18_fpn(*, num_classes: int = 91, trainable_backbone_layers: int | None = None,
                            **kwargs: Any) -> FasterRCNN:
    """As :func:`fasterrcnn_resnet50_fpn` on ResNet-18 (FPN inputs 64, 128, 256, 512 channels)."""
    return FasterRCNN(_fpn_backbone("fasterrcnn_resnet18_fpn", "resnet18", None, None, trainable_backbone_layers),
                      num_classes, **kwargs)

