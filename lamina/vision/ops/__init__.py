"""``lamina.vision.ops``: ``torchvision.ops`` in lamina — same names, signatures and semantics.

Each op has a plain-loop reference beside its fast kernel (the test oracle and the text to
read); the docstrings link them.
"""

# deformable convolution
from ...nn.modules.deform import DeformConv2d
from ...ops.deform import deform_conv2d

__all__: list[str] = []

# deformable convolution
__all__ += ["deform_conv2d", "DeformConv2d"]
