"""RoI pooling modules (``torchvision.ops.RoIAlign`` …) and FPN's ``MultiScaleRoIAlign``.

The four op modules are thin holders of their options over :mod:`lamina.ops.roi`.
``MultiScaleRoIAlign`` pools each box from the pyramid level its size calls for (FPN paper,
eq. 1), with torchvision's :class:`LevelMapper` and its scale inference. Not in ``torch.nn``:
their public home is :mod:`lamina.vision.ops`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ...autograd.tensor import Tensor
from ...ops.common import const
from ...ops.join import cat
from ...ops.roi import boxes_to_rois, ps_roi_align, ps_roi_pool, roi_align, roi_pool
from .module import Module

__all__ = ["RoIAlign", "RoIPool", "PSRoIAlign", "PSRoIPool", "MultiScaleRoIAlign", "LevelMapper", "infer_scale",
           "setup_scales"]


class RoIAlign(Module):
    """See :func:`lamina.vision.ops.roi_align` (``torchvision.ops.RoIAlign``).

    Example:
        >>> import lamina
        >>> from lamina.vision.ops import RoIAlign
        >>> pool = RoIAlign(output_size=(2, 2), spatial_scale=0.5, sampling_ratio=2)
        >>> pool(lamina.randn(1, 3, 8, 8), [lamina.tensor([[0.0, 0.0, 9.0, 9.0]])]).shape
        (1, 3, 2, 2)
    """

    def __init__(self, output_size: Any, spatial_scale: float, sampling_ratio: int, aligned: bool = False) -> None:
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def forward(self, input: Tensor, rois: Any) -> Tensor:
        return roi_align(input, rois, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned)

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
                f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}")


class RoIPool(Module):
    """See :func:`lamina.vision.ops.roi_pool` (``torchvision.ops.RoIPool``)."""

    def __init__(self, output_size: Any, spatial_scale: float) -> None:
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale

    def forward(self, input: Tensor, rois: Any) -> Tensor:
        return roi_pool(input, rois, self.output_size, self.spatial_scale)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, spatial_scale={self.spatial_scale}"


class PSRoIAlign(Module):
    """See :func:`lamina.vision.ops.ps_roi_align` (``torchvision.ops.PSRoIAlign``)."""

    def __init__(self, output_size: Any, spatial_scale: float, sampling_ratio: int) -> None:
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio

    def forward(self, input: Tensor, rois: Any) -> Tensor:
        return ps_roi_align(input, rois, self.output_size, self.spatial_scale, self.sampling_ratio)

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
                f"sampling_ratio={self.sampling_ratio}")


class PSRoIPool(Module):
    """See :func:`lamina.vision.ops.ps_roi_pool` (``torchvision.ops.PSRoIPool``)."""

    def __init__(self, output_size: Any, spatial_scale: float) -> None:
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale

    def forward(self, input: Tensor, rois: Any) -> Tensor:
        return ps_roi_pool(input, rois, self.output_size, self.spatial_scale)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, spatial_scale={self.spatial_scale}"


# --- FPN: which level pools which box ---------------------------------------------------------

class LevelMapper:
    """The FPN level of each box (eq. 1 of the FPN paper), ``torchvision.ops.poolers.LevelMapper``:
    ``k = ⌊k0 + log2(√(w·h) / s0) + eps⌋`` clamped to ``[k_min, k_max]``, returned as ``k − k_min``
    (the index among the pooled levels). A ``s0 × s0`` box (224 × 224 by default) goes to level
    ``k0`` (4); each halving of its side one level down.

    Args:
        k_min, k_max: the finest and the coarsest level pooled.
        canonical_scale: ``s0``.
        canonical_level: ``k0``.
        eps: keeps a box of exactly ``s0·2^j`` on level ``k0 + j`` despite rounding.
    """

    def __init__(self, k_min: int, k_max: int, canonical_scale: int = 224, canonical_level: int = 4,
                 eps: float = 1e-6) -> None:
        self.k_min = k_min
        self.k_max = k_max
        self.s0 = canonical_scale
        self.lvl0 = canonical_level
        self.eps = eps

    def __call__(self, boxlists: Sequence[Tensor]) -> Tensor:
        """Level index (``int64``, ``0 … k_max − k_min``) of every box of ``boxlists`` (``Tensor[L, 4]`` each)."""
        arrays = [b.array for b in boxlists]
        boxes = np.concatenate(arrays) if arrays else np.zeros((0, 4), np.float32)
        t = boxes.dtype.type
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        if (area < 0).any():
            k = int(np.flatnonzero(area < 0)[0])
            raise ValueError(f"LevelMapper: box {k} has x2 < x1 or y2 < y1 ({boxes[k].tolist()}): its "
                             "area is negative and it maps to no pyramid level")
        with np.errstate(divide="ignore"):  # a box of area 0 goes to the finest level, as in torchvision
            levels = np.floor(t(self.lvl0) + np.log2(np.sqrt(area) / t(self.s0)) + t(self.eps))
        levels = np.clip(levels, self.k_min, self.k_max)
        return const(levels.astype(np.int64) - int(self.k_min))


def infer_scale(feature: Tensor, original_size: Sequence[int]) -> float:
    """The scale ``2^-k`` of a feature map against the image, from their heights (torchvision's
    ``_infer_scale``): ``2 ** round(log2(map_height / image_height))``, rounded in float32 and to
    even as torch rounds."""
    approx = float(feature.shape[-2]) / float(original_size[0])
    return float(2 ** float(np.round(np.log2(np.float32(approx)))))


def setup_scales(features: Sequence[Tensor], image_shapes: Sequence[Sequence[int]], canonical_scale: int,
                 canonical_level: int) -> tuple[list[float], LevelMapper]:
    """The scale of every level and the :class:`LevelMapper` over them (torchvision's ``_setup_scales``):
    scales against the largest image height and width; the levels ``-log2`` of the first and last scale."""
    if not image_shapes:
        raise ValueError("setup_scales: image_shapes should not be empty (one (height, width) per image)")
    original = (max(int(s[0]) for s in image_shapes), max(int(s[1]) for s in image_shapes))
    scales = [infer_scale(f, original) for f in features]
    lvl_min = -math.log2(scales[0])
    lvl_max = -math.log2(scales[-1])
    return scales, LevelMapper(int(lvl_min), int(lvl_max), canonical_scale=canonical_scale,
                               canonical_level=canonical_level)


class MultiScaleRoIAlign(Module):
    """RoI Align over a feature pyramid (``torchvision.ops.MultiScaleRoIAlign``): each box is
    pooled from the level :class:`LevelMapper` gives it, at that level's scale.

    The scales are inferred from the feature and image sizes at the first call and kept (as
    torchvision does), assuming each level halves the previous one.

    Args:
        featmap_names: the keys of the maps to pool from (in the order the input dict has them).
        output_size: bins ``(h, w)`` or one int.
        sampling_ratio: as :func:`lamina.vision.ops.roi_align` (``aligned=False``).
        canonical_scale, canonical_level: ``s0`` and ``k0`` of :class:`LevelMapper`.

    Example:
        >>> import lamina
        >>> from lamina.vision.ops import MultiScaleRoIAlign
        >>> m = MultiScaleRoIAlign(["feat1", "feat3"], 3, 2)
        >>> x = {"feat1": lamina.rand(1, 5, 64, 64), "feat2": lamina.rand(1, 5, 32, 32),
        ...      "feat3": lamina.rand(1, 5, 16, 16)}
        >>> boxes = lamina.rand(6, 4) * 256
        >>> boxes[:, 2:] += boxes[:, :2]
        >>> m(x, [boxes], [(512, 512)]).shape
        (6, 5, 3, 3)
    """

    def __init__(self, featmap_names: list[str], output_size: Any, sampling_ratio: int, *, canonical_scale: int = 224,
                 canonical_level: int = 4) -> None:
        super().__init__()
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        self.featmap_names = featmap_names
        self.sampling_ratio = sampling_ratio
        self.output_size = tuple(output_size)
        self.scales: list[float] | None = None
        self.map_levels: LevelMapper | None = None
        self.canonical_scale = canonical_scale
        self.canonical_level = canonical_level

    def forward(self, x: Mapping[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]]) -> Tensor:
        """Pool ``boxes`` (one ``Tensor[L, 4]`` per image, image coordinates) from the maps ``x``
        (name → ``(N, C, H_l, W_l)``); ``image_shapes``: every image's ``(height, width)``."""
        feats = [v for k, v in x.items() if k in self.featmap_names]
        if not feats:
            raise ValueError(f"none of featmap_names {self.featmap_names} is a key of the "
                             f"input (keys: {list(x)})")
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = setup_scales(feats, image_shapes, self.canonical_scale,
                                                        self.canonical_level)
        if len(feats) != len(self.scales):
            raise ValueError(f"set up for {len(self.scales)} levels at the first call, "
                             f"given {len(feats)} now")
        rois = const(boxes_to_rois("roi_align", feats[0], boxes))
        if len(feats) == 1:
            return roi_align(feats[0], rois, self.output_size, self.scales[0], self.sampling_ratio)
        channels = {f.shape[1] for f in feats}
        if len(channels) > 1:
            raise ValueError(f"the maps must have one number of channels, got "
                             f"{[f.shape[1] for f in feats]}")
        levels = self.map_levels(boxes).array
        parts, order = [], []
        for level, (feat, scale) in enumerate(zip(feats, self.scales)):
            idx = np.flatnonzero(levels == level)
            parts.append(roi_align(feat, rois[const(idx)], self.output_size, scale, self.sampling_ratio))
            order.append(idx)
        # every box pooled once, level by level; put them back in the boxes' order
        return cat(parts)[const(np.argsort(np.concatenate(order), kind="stable"))]

    def extra_repr(self) -> str:  # torchvision's repr; also the prefix of this module's errors
        return (f"featmap_names={self.featmap_names}, output_size={self.output_size}, "
                f"sampling_ratio={self.sampling_ratio}")
