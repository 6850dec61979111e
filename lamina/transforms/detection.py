"""``lamina.transforms.detection``: transforms of ``(image, target)`` pairs that move boxes and masks with the image.

Each transform takes and returns ``(image, target)``, as torchvision's detection references
(and ``torchvision.transforms.v2`` given an image and a target). ``target`` may be

- a detection dict (``boxes`` ``(N, 4)`` xyxy, ``labels``, optional ``masks`` ``(N, H, W)``,
  ``area``, ``iscrowd``, ...): boxes and masks move with the image; instances left empty are
  dropped (every per-instance key is filtered alike), so ``N = 0`` may come out;
- a semantic map ``(H, W)`` of class indices: it moves with the image, resized by nearest
  neighbour; pixels a crop pads in are 255 (ignore);
- ``None``: the image alone.

With ``masks`` in the target, the boxes after a flip, resize or crop are the tight boxes of the
moved masks (``masks_to_boxes``, the convention of :class:`~lamina.datasets.ShapesDetection`);
without masks they move as in ``torchvision.transforms.v2`` (continuous coordinates, e.g. a flip
maps ``x`` to ``W - x``; boxes clipped to a crop, those left without area dropped). See
:mod:`lamina.transforms._target`.

Random transforms take ``generator=`` (a ``numpy.random.Generator``) or draw from lamina's global
generator (``lamina.manual_seed``), like the other transforms.

Example:
    >>> import lamina
    >>> from lamina.datasets import ShapesDetection
    >>> from lamina.transforms import detection as DT
    >>> _ = lamina.manual_seed(0)
    >>> aug = DT.Compose([DT.RandomHorizontalFlip(1.0), DT.Resize((48, 64))])
    >>> img, target = aug(*ShapesDetection(num_images=2, size=32)[0])
    >>> tuple(img.shape), tuple(target["masks"].shape[1:])
    ((3, 48, 64), (48, 64))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .. import backend
from ..autograd.tensor import Tensor
from . import functional as F
from ._image import rng, size_of
from ._target import crop_target, flip_target, is_semantic, keep_instances, resize_target, target_boxes
from .augment import ColorJitter as _ColorJitter
from .transforms import ToTensor as _ToTensor

__all__ = ["Compose", "ToTensor", "RandomHorizontalFlip", "Resize", "RandomCrop", "RandomIoUCrop", "ScaleJitter",
           "ColorJitter"]

xp = backend.xp


class _PairTransform:
    def __call__(self, image: Any, target: Any = None) -> tuple[Any, Any]:
        raise NotImplementedError

    def _args(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._args()})"


class Compose(_PairTransform):
    """Apply ``transforms`` (each on ``(image, target)``) one after the other."""

    def __init__(self, transforms: Sequence[Callable[[Any, Any], tuple[Any, Any]]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, image: Any, target: Any = None) -> tuple[Any, Any]:
        for t in self.transforms:
            image, target = t(image, target)
        return image, target

    def __repr__(self) -> str:
        return "Compose(" + "".join(f"\n    {t!r}" for t in self.transforms) + "\n)"


class ToTensor(_PairTransform):
    """The image as a float Tensor ``(C, H, W)`` (``lamina.transforms.ToTensor``); a NumPy semantic map
    becomes an int64 Tensor; a detection target passes unchanged."""

    def __call__(self, image: Any, target: Any = None) -> tuple[Any, Any]:
        if isinstance(target, xp.ndarray):
            target = Tensor._wrap(target.astype(backend.int64))
        return _ToTensor()(image), target


class RandomHorizontalFlip(_PairTransform):
    """Flip image and target left to right with probability ``p``.

    Example:
        >>> import numpy as np, lamina
        >>> t = {"boxes": lamina.tensor([[1.0, 0.0, 3.0, 2.0]]), "labels": lamina.tensor([1])}
        >>> _, out = RandomHorizontalFlip(1.0)(lamina.zeros(3, 4, 10), t)
        >>> out["boxes"].tolist()
        [[7.0, 0.0, 9.0, 2.0]]
    """

    def __init__(self, p: float = 0.5, generator: Any = None) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must lie in [0, 1], got {p}")
        self.p, self.generator = float(p), generator

    def __call__(self, image: Any, target: Any = None) -> tuple[Any, Any]:
        if rng(self.generator).random() >= self.p:
            return image, target
        _, w = size_of(image, "RandomHorizontalFlip")
        return F.hflip(image), flip_target(target, w, "RandomHorizontalFlip")

    def _args(self) -> str:
        return f"p={self.p}"


def _resize_pair(image: Any, target: Any, new_size: tuple[int, int], interpolation: Any, antialias: bool,
                 op: str) -> tuple[Any, Any]:
    h, w = size_of(image, op)
    if new_size[0] < 1 or new_size[1] < 1:
        raise ValueError(f"{op}: the output size must be positive, got {new_size}")
    if new_size == (h, w):
        return image, target
    image = F.resize(image, list(new_size), interpolation, antialias=antialias)
    return image, resize_target(target, (h, w), new_size, op)


class Resize(_PairTransform):
    """Resize image and target to ``size`` (``(h, w)``, or an int for the smaller edge, as
    ``lamina.transforms.Resize``): the image bilinearly, masks and semantic maps by nearest neighbour,
    boxes scaled by ``(new_w / w, new_h / h)``."""

    def __init__(self, size: Any, interpolation: Any = F.InterpolationMode.BILINEAR, max_size: int | None = None,
                 antialias: bool = True) -> None:
        F._mode(interpolation, "Resize")
        self.size, self.interpolation, self.max_size, self.antialias = size, interpolation, max_size, antialias

    def __call__(self, image: Any, target: Any = None) -> tuple[Any, Any]:
        h, w = size_of(image, "Resize")
        new = F._output_size(h, w, self.size, self.max_size, "Resize")
        return _resize_pair(image, target, new, self.interpolation, self.antialias, "Resize")

    def _args(self) -> str:
        return f"size={self.size}"


def _crop_pair(image: Any, target: Any, top: int, left: int, height: int, width: int, fill: Any,
               op: str) -> tuple[Any, Any]:
    h, w = size_of(image, op)
    if top < 0 or left < 0 or top + height > h or left + width > w:  # the window reaches out: pad with fill
        pad = [max(-left, 0), max(-top, 0), max(left + width - w, 0), max(top + height - h, 0)]
        image = F.crop(F.pad(image, pad, fill), top + pad[1], left + pad[0], height, width)
    else:
        image = F.crop(image, top, left, height, width)
    return image, crop_target(target, top, left, height, width, op)


class RandomCrop(_PairTransform):
    """A random ``size`` window of image and target, after optional ``padding``.

    The window's top-left corner is drawn uniformly (``lamina.transforms.RandomCrop``). Padding is
    constant: ``fill`` for the image, 0 for masks, 255 (ignore) for semantic maps; boxes are
    clipped to the window and those left without area (without masks) or whose mask is left
    empty are dropped.

    Args:
        size: ``(h, w)`` or an int.
        padding: an int, ``(left/right, top/bottom)`` or ``(left, top, right, bottom)``.
        pad_if_needed: pad an image smaller than ``size`` up to it.
        fill: the image's padding value.
        generator: a ``numpy.random.Generator``.
    """

    def __init__(self, size: Any, padding: Any = None, pad_if_needed: bool = False, fill: Any = 0,
                 generator: Any = None) -> None:
        self.size = F._pair(size, "RandomCrop")
        self.padding = None if padding is None else F._padding4(padding, "RandomCrop")
        self.pad_if_needed, self.fill, self.generator = pad_if_needed, fill, generator

    def __call__(self, image: Any, target: Any = None) -> tuple[Any, Any]:
        h, w = size_of(image, "RandomCrop")
        l, t, r, b = self.padding or (0, 0, 0, 0)
        th, tw = self.size
        if self.pad_if_needed:
            r, b = r + max(tw - (w + l + r), 0), b + max(th - (h + t + b), 0)
        ph, pw = h + t + b, w + l + r
        if ph < th or pw < tw:
            raise ValueError(f"RandomCrop: required crop size {(th, tw)} is larger than the (padded) image size "
                             f"{(ph, pw)}")
        g = rng(self.generator)
        i = int(g.integers(0, ph - th + 1)) if ph > th else 0
        j = int(g.integers(0, pw - tw + 1)) if pw > tw else 0
        # a window of the padded image at (i, j) is the window of the image at (i - t, j - l)
        return _crop_pair(image, target, i - t, j - l, th, tw, self.fill, "RandomCrop")

    def _args(self) -> str:
        return f"size={self.size}, padding={self.padding}"


def _box_iou(a: Any, b: Any) -> Any:
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt, rb = xp.maximum(a[:, None, :2], b[None, :, :2]), xp.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = xp.clip(rb - lt, 0, None).prod(axis=2)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


class RandomIoUCrop(_PairTransform):
    """SSD's random crop, as ``torchvision.transforms.v2.RandomIoUCrop``.

    Draws a minimum IoU from ``sampler_options`` (1.0 or more: leave the image as it is), then up
    to ``trials`` windows of side shares in ``[min_scale, max_scale]`` and aspect ratio in
    ``[min_aspect_ratio, max_aspect_ratio]``, keeping the first window that holds the centre of
    some box and overlaps one such box with IoU at least the drawn minimum; when all trials fail it
    draws a new minimum. Boxes whose centre lies outside the window are dropped (torchvision marks
    them for ``SanitizeBoundingBoxes``), the others clipped to it. A target without boxes (or
    ``None``) is returned unchanged, as no window can qualify.
    """

    def __init__(self, min_scale: float = 0.3, max_scale: float = 1.0, min_aspect_ratio: float = 0.5,
                 max_aspect_ratio: float = 2.0, sampler_options: Sequence[float] | None = None, trials: int = 40,
                 generator: Any = None) -> None:
        self.min_scale, self.max_scale = float(min_scale), float(max_scale)
        self.min_aspect_ratio, self.max_aspect_ratio = float(min_aspect_ratio), float(max_aspect_ratio)
        self.options = list(sampler_options) if sampler_options is not None else [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0]
        self.trials, self.generator = int(trials), generator

    def get_params(self, h: int, w: int, boxes: Any) -> tuple[int, int, int, int, Any] | None:
        """``(top, left, height, width, inside)`` of the window, or None to leave the image as it is."""
        g = rng(self.generator)
        while True:
            min_iou = self.options[int(g.integers(0, len(self.options)))]
            if min_iou >= 1.0:
                return None
            for _ in range(self.trials):
                r = self.min_scale + (self.max_scale - self.min_scale) * g.random(2)
                new_w, new_h = int(w * r[0]), int(h * r[1])
                if new_h == 0 or not self.min_aspect_ratio <= new_w / new_h <= self.max_aspect_ratio:
                    continue
                r = g.random(2)
                left, top = int((w - new_w) * r[0]), int((h - new_h) * r[1])
                right, bottom = left + new_w, top + new_h
                if left == right or top == bottom:
                    continue
                cx, cy = 0.5 * (boxes[:, 0] + boxes[:, 2]), 0.5 * (boxes[:, 1] + boxes[:, 3])
                inside = (left < cx) & (cx < right) & (top < cy) & (cy < bottom)
                if not inside.any():
                    continue
                window = xp.asarray([[left, top, right, bottom]], dtype=xp.float64)
                if _box_iou(boxes[inside], window).max() < min_iou:
                    continue
                return top, left, new_h, new_w, inside

    def __call__(self, image: Any, target: Any = None) -> tuple[Any, Any]:
        if target is None or is_semantic(target):
            raise TypeError("RandomIoUCrop: needs a detection target (a dict with 'boxes')")
        boxes = target_boxes(target)
        if len(boxes) == 0:
            return image, target
        h, w = size_of(image, "RandomIoUCrop")
        params = self.get_params(h, w, boxes)
        if params is None:
            return image, target
        top, left, nh, nw, inside = params
        masks = None if "masks" not in target else _masks_of(target)
        kept = keep_instances(target, inside, boxes=boxes, masks=masks)
        return _crop_pair(image, kept, top, left, nh, nw, 0, "RandomIoUCrop")

    def _args(self) -> str:
        return f"min_scale={self.min_scale}, max_scale={self.max_scale}, sampler_options={self.options}"


def _masks_of(target: dict[str, Any]) -> Any:
    m = target["masks"]
    return m.array if isinstance(m, Tensor) else xp.asarray(m)


class ScaleJitter(_PairTransform):
    """Resize by a random factor, as ``torchvision.transforms.v2.ScaleJitter`` (large-scale jitter).

    The image of size ``(h, w)`` is resized to ``(int(h * r), int(w * r))`` with
    ``r = min(target_size[1] / w, target_size[0] / h) * s`` and ``s`` uniform in ``scale_range``;
    the target moves with it (see :class:`Resize`).

    Args:
        target_size: ``(height, width)`` the scale refers to.
        scale_range: the range of ``s``.
        interpolation, antialias: for the image, as :class:`Resize`.
        generator: a ``numpy.random.Generator``.
    """

    def __init__(self, target_size: tuple[int, int], scale_range: tuple[float, float] = (0.1, 2.0),
                 interpolation: Any = F.InterpolationMode.BILINEAR, antialias: bool = True,
                 generator: Any = None) -> None:
        self.target_size = F._pair(target_size, "ScaleJitter")
        lo, hi = (float(v) for v in scale_range)
        if not 0 < lo <= hi:
            raise ValueError(f"ScaleJitter: scale_range must be (lo, hi) with 0 < lo <= hi, got {scale_range}")
        self.scale_range, self.interpolation, self.antialias, self.generator = (lo, hi), interpolation, antialias, \
            generator

    def __call__(self, image: Any, target: Any = None) -> tuple[Any, Any]:
        h, w = size_of(image, "ScaleJitter")
        lo, hi = self.scale_range
        s = lo + float(rng(self.generator).random()) * (hi - lo)
        r = min(self.target_size[1] / w, self.target_size[0] / h) * s
        new = (max(int(h * r), 1), max(int(w * r), 1))  # torchvision would fail on a size of 0
        return _resize_pair(image, target, new, self.interpolation, self.antialias, "ScaleJitter")

    def _args(self) -> str:
        return f"target_size={self.target_size}, scale_range={self.scale_range}"


class ColorJitter(_PairTransform):
    """``lamina.transforms.ColorJitter`` on the image; the target is unchanged."""

    def __init__(self, brightness: Any = 0, contrast: Any = 0, saturation: Any = 0, hue: Any = 0,
                 generator: Any = None) -> None:
        self.jitter = _ColorJitter(brightness, contrast, saturation, hue, generator)

    def __call__(self, image: Any, target: Any = None) -> tuple[Any, Any]:
        return self.jitter(image), target

    def _args(self) -> str:
        return self.jitter._args()
