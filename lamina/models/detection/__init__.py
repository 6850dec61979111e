"""``lamina.models.detection``: the building blocks of detectors, as
``torchvision.models.detection`` (anchors, box coding, matching, sampling), and the detectors (YOLO v1)."""

from ._utils import BalancedPositiveNegativeSampler, BoxCoder, Matcher, SSDMatcher, encode_boxes
from .anchor_utils import AnchorGenerator, DefaultBoxGenerator
from .image_list import ImageList
from .yolo import YOLOv1, YOLOv1Backbone, yolov1
from .yolo_loss import yolov1_loss

__all__ = ["AnchorGenerator", "DefaultBoxGenerator", "BoxCoder", "Matcher", "SSDMatcher",
           "BalancedPositiveNegativeSampler", "ImageList", "encode_boxes",
           "YOLOv1", "YOLOv1Backbone", "yolov1", "yolov1_loss"]
