"""``lamina.vision.ops``: ``torchvision.ops`` in lamina — same names, signatures and semantics.

Each op has a plain-loop reference beside its fast kernel (the test oracle and the text to
read); the docstrings link them.
"""

# boxes
from ...nn.functional.detection_loss import (
    complete_box_iou_loss,
    distance_box_iou_loss,
    generalized_box_iou_loss,
    sigmoid_focal_loss,
)

# deformable convolution
from ...nn.modules.deform import DeformConv2d

# RoI pooling
from ...nn.modules.roi import MultiScaleRoIAlign, PSRoIAlign, PSRoIPool, RoIAlign, RoIPool
from ...ops.boxes import (
    box_area,
    box_convert,
    box_iou,
    clip_boxes_to_image,
    complete_box_iou,
    distance_box_iou,
    generalized_box_iou,
    masks_to_boxes,
    remove_small_boxes,
)
from ...ops.deform import deform_conv2d
from ...ops.nms import batched_nms, nms
from ...ops.roi import ps_roi_align, ps_roi_pool, roi_align, roi_pool
from . import poolers
from .feature_pyramid_network import ExtraFPNBlock, FeaturePyramidNetwork, LastLevelMaxPool

__all__: list[str] = [
    # boxes
    "box_convert", "box_area", "box_iou", "generalized_box_iou", "distance_box_iou", "complete_box_iou",
    "generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss", "clip_boxes_to_image",
    "remove_small_boxes", "masks_to_boxes", "nms", "batched_nms", "sigmoid_focal_loss",
]

# RoI pooling
__all__ += ["roi_align", "roi_pool", "ps_roi_align", "ps_roi_pool", "RoIAlign", "RoIPool", "PSRoIAlign", "PSRoIPool",
            "MultiScaleRoIAlign", "poolers"]

# deformable convolution
__all__ += ["deform_conv2d", "DeformConv2d"]

# feature pyramid
__all__ += ["FeaturePyramidNetwork", "ExtraFPNBlock", "LastLevelMaxPool"]
