"""``lamina.models.detection``: the building blocks of detectors, as
``torchvision.models.detection`` (anchors, box coding, matching, sampling), and the detectors: YOLO v1
and the two-stage Faster R-CNN and Mask R-CNN (``fasterrcnn_small``, ``maskrcnn_small`` train on a laptop)."""

from ._utils import BalancedPositiveNegativeSampler, BoxCoder, Matcher, SSDMatcher, encode_boxes
from .anchor_utils import AnchorGenerator, DefaultBoxGenerator
from .backbone_utils import BackboneWithFPN, IntermediateLayerGetter, resnet_fpn_backbone
from .faster_rcnn import (
    FasterRCNN,
    FastRCNNPredictor,
    SmallBackbone,
    TwoMLPHead,
    fasterrcnn_resnet18_fpn,
    fasterrcnn_resnet50_fpn,
    fasterrcnn_small,
)
from .generalized_rcnn import GeneralizedRCNN
from .image_list import ImageList
from .mask_rcnn import (
    MaskRCNN,
    MaskRCNNHeads,
    MaskRCNNPredictor,
    maskrcnn_resnet18_fpn,
    maskrcnn_resnet50_fpn,
    maskrcnn_small,
)
from .roi_heads import RoIHeads, paste_masks_in_image
from .rpn import RegionProposalNetwork, RPNHead
from .transform import GeneralizedRCNNTransform
from .yolo import YOLOv1, YOLOv1Backbone, yolov1
from .yolo_loss import yolov1_loss

__all__ = ["AnchorGenerator", "DefaultBoxGenerator", "BoxCoder", "Matcher", "SSDMatcher",
           "BalancedPositiveNegativeSampler", "ImageList", "encode_boxes",
           "YOLOv1", "YOLOv1Backbone", "yolov1", "yolov1_loss"]

# two-stage detectors (Faster / Mask R-CNN)
__all__ += ["GeneralizedRCNN", "GeneralizedRCNNTransform", "RPNHead", "RegionProposalNetwork", "RoIHeads",
            "TwoMLPHead", "FastRCNNPredictor", "MaskRCNNHeads", "MaskRCNNPredictor", "paste_masks_in_image",
            "FasterRCNN", "MaskRCNN", "SmallBackbone", "fasterrcnn_small", "maskrcnn_small",
            "fasterrcnn_resnet50_fpn", "fasterrcnn_resnet18_fpn", "maskrcnn_resnet50_fpn", "maskrcnn_resnet18_fpn",
            "BackboneWithFPN", "IntermediateLayerGetter", "resnet_fpn_backbone"]
