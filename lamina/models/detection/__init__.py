"""``lamina.models.detection``: the building blocks of detectors, as
``torchvision.models.detection`` (anchors, box coding, matching, sampling)."""

from ._utils import BalancedPositiveNegativeSampler, BoxCoder, Matcher, SSDMatcher, encode_boxes
from .anchor_utils import AnchorGenerator, DefaultBoxGenerator
from .image_list import ImageList

__all__ = ["AnchorGenerator", "DefaultBoxGenerator", "BoxCoder", "Matcher", "SSDMatcher",
           "BalancedPositiveNegativeSampler", "ImageList", "encode_boxes"]
