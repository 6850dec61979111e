"""Anchor boxes: Faster R-CNN's ``AnchorGenerator`` and SSD's ``DefaultBoxGenerator``, with
torchvision's semantics (``torchvision.models.detection.anchor_utils``).

An anchor is a reference box placed at every cell of a feature map; a detector predicts, for
each anchor, whether an object is there and how to move the anchor onto it (``BoxCoder``).
Anchors are constants (no gradient), so they are computed on arrays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ... import backend, nn
from ...autograd.tensor import Tensor
from .image_list import ImageList

__all__ = ["AnchorGenerator", "DefaultBoxGenerator"]


def _as_nested(name: str, what: str, v: Any) -> tuple[tuple[float, ...], ...]:
    try:
        return tuple(tuple(float(x) for x in row) for row in v)
    except TypeError:
        raise ValueError(f"{name}: {what} must be a tuple of tuples (one per feature map), got {v!r}") from None


def _grid_shapes(name: str, image_list: ImageList, feature_maps: Sequence[Tensor]) -> list[tuple[int, int]]:
    if not isinstance(image_list, ImageList):
        raise TypeError(f"{name}: expected an ImageList as first argument, got {type(image_list).__name__}")
    if not feature_maps:
        raise ValueError(f"{name}: no feature maps given")
    return [tuple(int(s) for s in f.shape[-2:]) for f in feature_maps]  # type: ignore[misc]


class AnchorGenerator(nn.Module):
    """Anchors at every location of each feature map: ``len(sizes[i]) · len(aspect_ratios[i])``
    per location of map ``i`` (as ``torchvision.models.detection.AnchorGenerator``).

    Args:
        sizes: one tuple of anchor sizes (the square root of the area, in pixels) per feature map;
            a flat tuple means one size per map.
        aspect_ratios: one tuple of ratios ``height / width`` per feature map; a flat tuple is used
            for every map.

    A base anchor of size ``s`` and ratio ``a`` is ``(−w/2, −h/2, w/2, h/2)`` rounded to whole
    pixels, with ``h = s·√a`` and ``w = s/√a``; the anchors of a map of ``Hf × Wf`` cells on an image
    of ``H × W`` sit at ``(j·sw, i·sh)`` with the integer strides ``sh = H // Hf``, ``sw = W // Wf``
    (torchvision's convention: anchor centres on the cells' top-left corners). Per location the
    order is ratio-major (all sizes of the first ratio first); locations run row by row.

    ``forward(image_list, feature_maps)`` returns, per image, a ``Tensor[A, 4]`` (xyxy) of all maps'
    anchors concatenated.

    Example:
        >>> import lamina
        >>> from lamina.models.detection import AnchorGenerator, ImageList
        >>> gen = AnchorGenerator(sizes=((32,),), aspect_ratios=((0.5, 1.0, 2.0),))
        >>> gen.cell_anchors[0].tolist()
        [[-23.0, -11.0, 23.0, 11.0], [-16.0, -16.0, 16.0, 16.0], [-11.0, -23.0, 11.0, 23.0]]
        >>> images = ImageList(lamina.zeros(1, 3, 64, 64), [(64, 64)])
        >>> gen(images, [lamina.zeros(1, 8, 2, 2)])[0].shape  # 2·2 locations · 3 anchors
        (12, 4)
    """

    def __init__(self, sizes: Any = ((128, 256, 512),), aspect_ratios: Any = ((0.5, 1.0, 2.0),)) -> None:
        super().__init__()
        if not isinstance(sizes[0], (list, tuple)):
            sizes = tuple((s,) for s in sizes)
        if not isinstance(aspect_ratios[0], (list, tuple)):
            aspect_ratios = (aspect_ratios,) * len(sizes)
        self.sizes = _as_nested("AnchorGenerator", "sizes", sizes)
        self.aspect_ratios = _as_nested("AnchorGenerator", "aspect_ratios", aspect_ratios)
        if len(self.sizes) != len(self.aspect_ratios):
            raise ValueError(f"AnchorGenerator: {len(self.sizes)} tuples of sizes but {len(self.aspect_ratios)} "
                             "of aspect ratios; give one of each per feature map")
        for s, a in zip(self.sizes, self.aspect_ratios):
            if not s or not a or min(s) <= 0 or min(a) <= 0:
                raise ValueError(f"AnchorGenerator: sizes and aspect ratios must be positive and non-empty, "
                                 f"got sizes {s} and aspect ratios {a}")
        self.cell_anchors = [self.generate_anchors(s, a) for s, a in zip(self.sizes, self.aspect_ratios)]

    def generate_anchors(self, scales: Sequence[float], aspect_ratios: Sequence[float],
                         dtype: Any = backend.float32, device: Any = None) -> Tensor:
        """The zero-centred base anchors of one feature map, ``Tensor[len(ratios)·len(scales), 4]``."""
        dt = backend.to_dtype(dtype)
        scales_a = np.asarray(scales, dtype=dt)
        h_ratios = np.sqrt(np.asarray(aspect_ratios, dtype=dt))
        w_ratios = 1 / h_ratios
        ws = (w_ratios[:, None] * scales_a[None, :]).reshape(-1)
        hs = (h_ratios[:, None] * scales_a[None, :]).reshape(-1)
        base = np.stack([-ws, -hs, ws, hs], axis=1) / 2
        return Tensor._wrap(np.round(base).astype(dt))  # round half to even, as torch.round

    def num_anchors_per_location(self) -> list[int]:
        return [len(s) * len(a) for s, a in zip(self.sizes, self.aspect_ratios)]

    def grid_anchors(self, grid_sizes: Sequence[Sequence[int]], strides: Sequence[Sequence[int]]) -> list[Tensor]:
        """Each map's anchors: every base anchor shifted to every cell, ``Tensor[Hf·Wf·A, 4]``."""
        if not len(grid_sizes) == len(strides) == len(self.cell_anchors):
            raise ValueError(f"AnchorGenerator: {len(grid_sizes)} feature maps but anchors for "
                             f"{len(self.cell_anchors)}: sizes and aspect_ratios need one tuple per feature map")
        out = []
        for (gh, gw), (sh, sw), base in zip(grid_sizes, strides, self.cell_anchors):
            shift_x = np.arange(gw, dtype=np.int64) * int(sw)
            shift_y = np.arange(gh, dtype=np.int64) * int(sh)
            sy, sx = np.meshgrid(shift_y, shift_x, indexing="ij")
            shifts = np.stack((sx.ravel(), sy.ravel(), sx.ravel(), sy.ravel()), axis=1).astype(base.dtype)
            out.append(Tensor._wrap((shifts[:, None, :] + base.array[None, :, :]).reshape(-1, 4)))
        return out

    def forward(self, image_list: ImageList, feature_maps: Sequence[Tensor]) -> list[Tensor]:
        grids = _grid_shapes("AnchorGenerator", image_list, feature_maps)
        H, W = image_list.tensors.shape[-2:]
        strides = [(H // gh, W // gw) for gh, gw in grids]
        dt = feature_maps[0].dtype
        if self.cell_anchors[0].dtype != dt:
            self.cell_anchors = [Tensor._wrap(a.array.astype(dt)) for a in self.cell_anchors]
        levels = self.grid_anchors(grids, strides)
        all_levels = np.concatenate([a.array for a in levels], axis=0)
        return [Tensor._wrap(all_levels.copy()) for _ in image_list.image_sizes]

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}, aspect_ratios={self.aspect_ratios}"


class DefaultBoxGenerator(nn.Module):
    """SSD's default boxes (Liu et al. 2016, p. 6), as torchvision's ``DefaultBoxGenerator``.

    Args:
        aspect_ratios: per feature map, the extra aspect ratios ``a`` (each gives two boxes, ``w/h = a``
            and ``1/a``).
        min_ratio, max_ratio: the scales ``s_k = s_min + (s_max − s_min)·k/(m − 1)`` of the ``m`` maps
            (relative to the image), used when ``scales`` is not given; ``s_{m} = 1``.
        scales: the ``m + 1`` scales, instead.
        steps: per map, the stride in pixels that spaces its boxes (default: the map's own grid).
        clip: clamp the boxes' relative widths and heights to ``[0, 1]``.

    Per location of map ``k``: a square of side ``s_k``, a square of side ``√(s_k s_{k+1})``, then
    ``(s_k√a, s_k/√a)`` and ``(s_k/√a, s_k√a)`` for each ratio; the centres are
    ``((j + ½)/f_x, (i + ½)/f_y)`` of the image. ``forward`` returns xyxy boxes in pixels, one
    ``Tensor[D, 4]`` per image.

    Example:
        >>> import lamina
        >>> from lamina.models.detection import DefaultBoxGenerator, ImageList
        >>> gen = DefaultBoxGenerator([[2]], scales=[0.5, 0.5])
        >>> boxes = gen(ImageList(lamina.zeros(1, 3, 100, 100), [(100, 100)]), [lamina.zeros(1, 4, 1, 1)])[0]
        >>> [[round(v, 2) for v in b] for b in boxes.tolist()][:3]
        [[25.0, 25.0, 75.0, 75.0], [25.0, 25.0, 75.0, 75.0], [14.64, 32.32, 85.36, 67.68]]
    """

    def __init__(self, aspect_ratios: Sequence[Sequence[float]], min_ratio: float = 0.15, max_ratio: float = 0.9,
                 scales: Sequence[float] | None = None, steps: Sequence[int] | None = None, clip: bool = True) -> None:
        super().__init__()
        if steps is not None and len(aspect_ratios) != len(steps):
            raise ValueError(f"DefaultBoxGenerator: aspect_ratios and steps should have the same length, got "
                             f"{len(aspect_ratios)} and {len(steps)}")
        self.aspect_ratios = [list(r) for r in aspect_ratios]
        self.steps = list(steps) if steps is not None else None
        self.clip = clip
        m = len(self.aspect_ratios)
        if scales is None:
            if m > 1:
                span = max_ratio - min_ratio
                self.scales = [min_ratio + span * k / (m - 1.0) for k in range(m)] + [1.0]
            else:
                self.scales = [min_ratio, max_ratio]
        else:
            self.scales = [float(s) for s in scales]
        if len(self.scales) != m + 1:
            raise ValueError(f"DefaultBoxGenerator: {m} feature maps need {m + 1} scales, got {len(self.scales)}")
        self._wh_pairs = self._generate_wh_pairs(m)

    def _generate_wh_pairs(self, m: int, dtype: Any = np.float32) -> list[np.ndarray]:
        pairs = []
        for k in range(m):
            s_k = self.scales[k]
            s_prime = math.sqrt(self.scales[k] * self.scales[k + 1])
            wh = [[s_k, s_k], [s_prime, s_prime]]
            for ar in self.aspect_ratios[k]:
                r = math.sqrt(ar)
                wh.extend([[s_k * r, s_k / r], [s_k / r, s_k * r]])
            pairs.append(np.asarray(wh, dtype=dtype))
        return pairs

    def num_anchors_per_location(self) -> list[int]:
        return [2 + 2 * len(r) for r in self.aspect_ratios]

    def _grid_default_boxes(self, grid_sizes: Sequence[tuple[int, int]], image_size: tuple[int, int],
                            dtype: Any = np.float32) -> np.ndarray:
        """All maps' boxes as ``(cx, cy, w, h)`` relative to the image."""
        if len(grid_sizes) != len(self._wh_pairs):
            raise ValueError(f"DefaultBoxGenerator: {len(grid_sizes)} feature maps but aspect ratios for "
                             f"{len(self._wh_pairs)}")
        out = []
        for k, (fh, fw) in enumerate(grid_sizes):
            if self.steps is not None:
                fx, fy = image_size[1] / self.steps[k], image_size[0] / self.steps[k]
            else:
                fy, fx = fh, fw
            cx = ((np.arange(fw) + 0.5) / fx).astype(dtype)
            cy = ((np.arange(fh) + 0.5) / fy).astype(dtype)
            sy, sx = np.meshgrid(cy, cx, indexing="ij")
            n = len(self._wh_pairs[k])
            centres = np.repeat(np.stack((sx.ravel(), sy.ravel()), axis=1), n, axis=0)
            wh = np.clip(self._wh_pairs[k], 0, 1) if self.clip else self._wh_pairs[k]
            out.append(np.concatenate((centres, np.tile(wh, (fh * fw, 1))), axis=1).astype(dtype))
        return np.concatenate(out, axis=0)

    def forward(self, image_list: ImageList, feature_maps: Sequence[Tensor]) -> list[Tensor]:
        grids = _grid_shapes("DefaultBoxGenerator", image_list, feature_maps)
        H, W = (int(s) for s in image_list.tensors.shape[-2:])
        d = self._grid_default_boxes(grids, (H, W), dtype=feature_maps[0].dtype)
        scale = np.asarray([W, H], dtype=d.dtype)
        xyxy = np.concatenate(((d[:, :2] - 0.5 * d[:, 2:]) * scale, (d[:, :2] + 0.5 * d[:, 2:]) * scale), axis=1)
        return [Tensor._wrap(xyxy.copy()) for _ in image_list.image_sizes]

    def extra_repr(self) -> str:
        return f"aspect_ratios={self.aspect_ratios}, clip={self.clip}, scales={self.scales}, steps={self.steps}"
