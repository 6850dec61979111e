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
from ...ops.nms import batched_nms, nms

__all__: list[str] = [
    # boxes
    "box_convert", "box_area", "box_iou", "generalized_box_iou", "distance_box_iou", "complete_box_iou",
    "generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss", "clip_boxes_to_image",
    "remove_small_boxes", "masks_to_boxes", "nms", "batched_nms", "sigmoid_focal_loss",
]
