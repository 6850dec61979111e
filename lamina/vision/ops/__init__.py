"""``lamina.vision.ops``: ``torchvision.ops`` in lamina — same names, signatures and semantics.

Each op has a plain-loop reference beside its fast kernel (the test oracle and the text to
read); the docstrings link them.
"""

# RoI pooling
from ...nn.modules.roi import MultiScaleRoIAlign, PSRoIAlign, PSRoIPool, RoIAlign, RoIPool
from ...ops.roi import ps_roi_align, ps_roi_pool, roi_align, roi_pool
from . import poolers

__all__: list[str] = []

# RoI pooling
__all__ += ["roi_align", "roi_pool", "ps_roi_align", "ps_roi_pool", "RoIAlign", "RoIPool", "PSRoIAlign", "PSRoIPool",
            "MultiScaleRoIAlign", "poolers"]
