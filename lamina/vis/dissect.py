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

__all__ = ["Dissection", "dissect", "shapes_concepts", "COLOR_NAMES"]

xp = backend.xp


COLOR_NAMES = {"black": (0, 0, 0), "white": (1, 1, 1), "red": (1, 0, 0), "green": (0, 1, 0), "blue": (0, 0, 1),
               "yellow": (1, 1, 0), "cyan": (0, 1, 1), "magenta": (1, 0, 1)}


def shapes_concepts(dataset: Any, colors: bool = True) -> dict[str, Any]:
    """Concept masks ``(N, H, W)`` of a ``lamina.datasets.Shapes`` data set (made with any
    options): one per shape class (its pixels), and with ``colors`` one per color name of
    :data:`COLOR_NAMES` (the shape's or the background's pixels whose clean color is nearest
    that name's RGB corner). Concepts that occur nowhere are left out."""
    masks = xp.asarray(dataset.masks)
    out = {name: masks == k + 1 for k, name in enumerate(dataset.classes)}
    if colors:
        names = list(COLOR_NAMES)
        corners = xp.asarray([COLOR_NAMES[n] for n in names], dtype=backend.float64)
        cols = xp.asarray(dataset.colors, dtype=backend.float64)  # (N, 2, 3): background, shape
        nearest = ((cols[:, :, None, :] - corners[None, None]) ** 2).sum(-1).argmin(-1)  # (N, 2)
        fg = masks > 0
        for j, name in enumerate(names):
            m = xp.where(fg, (nearest[:, 1] == j)[:, None, None], (nearest[:, 0] == j)[:, None, None])
            out[name] = m
    return {k: v for k, v in out.items() if v.any()}


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
