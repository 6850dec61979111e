"""Normalization with ``torch.nn.functional``'s names and signatures (implemented in
``lamina.ops.normalization``), plus lamina's ``local_contrast_norm``."""

from __future__ import annotations

from ...ops.normalization import (
    batch_norm,
    group_norm,
    instance_norm,
    layer_norm,
    local_contrast_norm,
    local_response_norm,
)

__all__ = ["batch_norm", "instance_norm", "layer_norm", "group_norm", "local_response_norm",
           "local_contrast_norm"]
