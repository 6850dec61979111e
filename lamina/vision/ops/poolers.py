"""``lamina.vision.ops.poolers``, as ``torchvision.ops.poolers``: FPN's multi-scale RoI Align and
its level mapping (defined in :mod:`lamina.nn.modules.roi`)."""

from ...nn.modules.roi import LevelMapper, MultiScaleRoIAlign, infer_scale, setup_scales

__all__ = ["MultiScaleRoIAlign", "LevelMapper", "infer_scale", "setup_scales"]
