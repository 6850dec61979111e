"""``lamina.vision``: the computer-vision operations of torchvision, with its names.

``lamina.vision.ops`` mirrors ``torchvision.ops`` (boxes, NMS, RoI pooling and RoI Align,
deformable convolution, detection losses). The differentiable primitives live on floor 2
(``lamina/ops/``), their modules on floor 3 (``lamina/nn/``); this package (floor 4) is their
one public home, so that ``from torchvision.ops import nms`` becomes
``from lamina.vision.ops import nms``. The detectors' building blocks (anchors, box coding,
matching, sampling) live where torchvision keeps them: ``lamina.models.detection``.
"""

from . import ops

__all__ = ["ops"]
