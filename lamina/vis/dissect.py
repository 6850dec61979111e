"""Network dissection (Bau, Zhou, Khosla, Oliva & Torralba, 2017): how well does each unit of a
layer act as a detector of a concept? A unit's feature map is upsampled to the image size and
thresholded at the unit's top quantile over the data set (default: its top 0.5% of values);
its agreement with a concept's binary masks is the intersection over union, accumulated over
all images. Units whose best IoU passes ``iou_threshold`` are reported as detectors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from .. import backend, nn
from ..autograd import Tensor, no_grad
from ..nn import functional as F
from ._common import as_batch, model_dtype
from .features import activations

__all__ = ["Dissection", "dissect"]

xp = backend.xp


class Dissection(NamedTuple):
    """``iou`` ``(units, concepts)``; ``thresholds`` per unit; ``concepts`` their names;
    ``detectors``: ``(unit, concept, iou)`` for each unit whose best concept's IoU is at least
    the threshold, best first."""

    iou: Any
    thresholds: Any
    concepts: list[str]
    detectors: list[tuple[int, str, float]]

    def table(self) -> list[list[Any]]:
        """Rows ``unit, concept, IoU`` (with a header) for reports."""
        return [["unit", "concept", "IoU"]] + [[u, c, f"{v:.3f}"] for u, c, v in self.detectors]


def dissect(model: nn.Module, layer: Any, images: Any, concepts: Mapping[str, Any], quantile: float = 0.995,
            iou_threshold: float = 0.04, batch_size: int = 128) -> Dissection:
    """IoU between every unit of ``layer`` and every concept.

    Args:
        model: the network.
        layer: a layer (name or module) with ``(N, C, h, w)`` output.
        images: ``(N, C_in, H, W)``.
        concepts: name → binary masks ``(N, H, W)`` (a pixel shows the concept or not); a
            concept present in a whole image (a color, a class) is an all-true mask there.
        quantile: the per-unit activation quantile used as threshold (Bau et al.: 0.995).
        iou_threshold: the IoU from which a unit counts as a detector (Bau et al.: 0.04).

    Returns:
        :class:`Dissection`.
    """
    xb = as_batch(images, "dissect", model_dtype(model))
    n, _, h, w = xb.shape
    if not concepts:
        raise ValueError("dissect: need at least one concept")
    masks = {}
    for name, m in concepts.items():
        m = xp.asarray(m.array if isinstance(m, Tensor) else m).astype(bool)
        if m.shape != (n, h, w):
            raise ValueError(f"dissect: concept {name!r} masks must have shape {(n, h, w)}, got {m.shape}")
        masks[name] = m
    act = activations(model, xb, layer, batch_size)
    if act.ndim != 4:
        raise ValueError(f"dissect: layer output must be feature maps (N, C, h, w), got shape {act.shape}")
    with no_grad():
        up = F.interpolate(Tensor._wrap(act.astype(backend.float32)), size=(h, w), mode="bilinear",
                           align_corners=False).array
    units = up.shape[1]
    thresholds = xp.quantile(act.transpose(1, 0, 2, 3).reshape(units, -1), quantile, axis=1)
    names = list(masks)
    iou = xp.zeros((units, len(names)))
    for u in range(units):
        on = up[:, u] > thresholds[u]
        for j, name in enumerate(names):
            inter = xp.logical_and(on, masks[name]).sum()
            union = xp.logical_or(on, masks[name]).sum()
            iou[u, j] = inter / union if union else 0.0
    detectors = []
    for u in range(units):
        j = int(iou[u].argmax())
        if iou[u, j] >= iou_threshold:
            detectors.append((u, names[j], float(iou[u, j])))
    detectors.sort(key=lambda d: -d[2])
    return Dissection(iou, thresholds, names, detectors)
