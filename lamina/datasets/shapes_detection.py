"""``ShapesDetection``: a seeded synthetic set for object detection, instance and semantic segmentation.

Each image holds 0 to ``max_objects`` shapes (circles, squares, triangles, crosses) of three
scales, plain or textured (stripes or a checkerboard), painted one over the other on a noisy,
shaded background. Later shapes hide parts of earlier ones; an instance's mask is the part that
stays visible, its box the tight box of that part, and a shape left almost wholly hidden is not
painted at all, so that every pixel of a shape's colour belongs to an annotated instance.

Every image is generated from ``(seed, split, index)`` alone: any subset, in any order, in any
process, gives the same items. Images are generated on first access and cached (as uint8).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from .. import backend
from ..autograd.tensor import Tensor
from .shapes import _REACH, SHAPE_CLASSES, masks_to_boxes, render_shape
from .vision import VisionDataset

__all__ = ["ShapesDetection"]

xp = backend.xp

# radius ranges (as a share of the image side) of the three scales; at size 96 a small shape
# covers roughly 40-180 pixels, a large one 700-2500 (COCO's small/medium/large split at 32² and
# 96² pixels is relative to 640-pixel images; these are relative to the image side)
_SCALES = ((0.04, 0.08), (0.08, 0.15), (0.15, 0.27))
_MIN_VISIBLE = 0.3  # a shape showing less than this share of its pixels is dropped (not painted)
_MIN_PIXELS = 6  # ... and so is one showing fewer pixels than this
_SPLITS = {"train": 0, "test": 1}


class ShapesDetection(VisionDataset):
    """Synthetic detection / segmentation images with torchvision's detection target format.

    Samples are ``(image, target)``: ``image`` a float32 Tensor ``(3, size, size)`` in [0, 1]; with
    ``target="detection"`` the target is a dict as ``torchvision.datasets.CocoDetection`` wrapped
    for detection (``wrap_dataset_for_transforms_v2``) gives it:

    - ``"boxes"``: float32 ``(N, 4)``, ``(x1, y1, x2, y2)`` — ``masks_to_boxes`` of the visible
      mask (pixel indices, the maximum inclusive);
    - ``"labels"``: int64 ``(N,)`` in ``1 .. len(classes) - 1``;
    - ``"masks"``: uint8 ``(N, size, size)``, 1 on the visible pixels of each instance;
    - ``"area"``: float32 ``(N,)``, the visible pixel count; ``"iscrowd"``: int64 zeros ``(N,)``;
    - ``"image_id"``: the int index.

    ``N`` may be 0 (an empty image: ``boxes`` of shape ``(0, 4)``), chosen with probability
    ``empty_prob``. With ``target="semantic"`` the target is an int64 Tensor ``(size, size)`` of
    class indices (0 = background). Batch detection samples with
    :func:`lamina.utils.data.detection_collate`.

    Shapes lie wholly inside the image (never cut by its edge). Instances are numbered in
    painting order (the first is the lowest); the number drawn per image is uniform in
    ``1 .. max_objects``, fewer may remain after hidden ones are dropped (never 0: the top one is
    always whole). Each shape's colour differs from the background's mean by at least 0.3 in some
    channel; the pixel noise has its own random stream, so ``noise`` changes nothing else.

    Args:
        split: ``"train"`` or ``"test"``: two disjoint streams of the same ``seed``.
        num_images: the number of images.
        size: the image side in pixels, 32 to 512 (default 96).
        max_objects: the most shapes drawn per image, 1 to 20.
        seed: the generator seed.
        transforms: a callable on ``(image, target)`` returning both (e.g.
            ``lamina.transforms.detection.Compose``), applied on each access.
        target: ``"detection"`` or ``"semantic"``.
        classes: the shape names to draw from, a subset of ``SHAPE_CLASSES``; label ``k`` is
            ``self.classes[k]``, where ``self.classes[0] == "background"``.
        empty_prob: the probability that an image has no shape at all.
        noise: the standard deviation of the Gaussian pixel noise.

    Example:
        >>> ds = ShapesDetection(num_images=4, size=64, max_objects=3, seed=0)
        >>> img, target = ds[0]
        >>> tuple(img.shape), ds.classes[0], sorted(target)
        ((3, 64, 64), 'background', ['area', 'boxes', 'image_id', 'iscrowd', 'labels', 'masks'])
    """

    def __init__(self, split: str = "train", num_images: int = 1000, size: int = 96, max_objects: int = 4,
                 seed: int = 0, transforms: Callable[[Any, Any], tuple[Any, Any]] | None = None,
                 target: str = "detection", classes: Sequence[str] = SHAPE_CLASSES, empty_prob: float = 0.0,
                 noise: float = 0.04) -> None:
        super().__init__(None)
        if split not in _SPLITS:
            raise ValueError(f"ShapesDetection: split must be 'train' or 'test', got {split!r}")
        for name, value, lo, hi in (("num_images", num_images, 1, None), ("size", size, 32, 512),
                                    ("max_objects", max_objects, 1, 20)):
            if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
                rng_text = f"from {lo} to {hi}" if hi is not None else f"of at least {lo}"
                raise ValueError(f"ShapesDetection: {name} must be an integer {rng_text}, got {value!r}")
        if target not in ("detection", "semantic"):
            raise ValueError(f"ShapesDetection: target must be 'detection' or 'semantic', got {target!r}")
        names = tuple(classes)
        bad = [c for c in names if c not in SHAPE_CLASSES]
        if not names or bad or len(set(names)) != len(names):
            raise ValueError(f"ShapesDetection: classes must be distinct names from {SHAPE_CLASSES}, got {names}")
        if not 0.0 <= float(empty_prob) <= 1.0:
            raise ValueError(f"ShapesDetection: empty_prob must lie in [0, 1], got {empty_prob}")
        if noise < 0:
            raise ValueError(f"ShapesDetection: noise must be non-negative, got {noise}")
        self.split, self.num_images, self.size, self.max_objects = split, num_images, size, max_objects
        self.seed, self.transforms, self.target = int(seed), transforms, target
        self.shape_names = names
        self.classes = ["background", *names]
        self.empty_prob, self.noise = float(empty_prob), float(noise)
        self._cache: dict[int, tuple[Any, Any, Any]] = {}

    def __len__(self) -> int:
        return self.num_images

    # -- generation ---------------------------------------------------------------------------------

    def _shape_mask(self, kind: str, rng: Any) -> tuple[Any, float]:
        """One shape's full (unoccluded) boolean mask, rendered in its own window for speed."""
        size = self.size
        lo, hi = _SCALES[int(rng.integers(0, len(_SCALES)))]
        reach = _REACH[kind]
        r = rng.uniform(lo, hi) * size
        e = reach * r
        cx, cy = rng.uniform(e + 0.5, size - 1.5 - e, size=2)
        angle = rng.uniform(0.0, 2 * math.pi)
        x0, y0 = max(int(cx - e) - 1, 0), max(int(cy - e) - 1, 0)
        x1, y1 = min(int(cx + e) + 2, size), min(int(cy + e) + 2, size)
        side = max(x1 - x0, y1 - y0)
        local = render_shape(kind, side, cx - x0, cy - y0, r, angle)
        m = xp.zeros((size, size), dtype=bool)
        m[y0:y1, x0:x1] = local[: y1 - y0, : x1 - x0]
        return m, angle

    def _texture(self, angle: float, rng: Any) -> Any:
        """A brightness pattern in [-1, 1] over the image: flat, stripes or a checkerboard."""
        kind = int(rng.integers(0, 3))
        if kind == 0:
            return None
        period = rng.uniform(3.0, 7.0)
        y, x = xp.mgrid[0:self.size, 0:self.size].astype(xp.float64)
        c, s = math.cos(angle), math.sin(angle)
        u = (c * x + s * y) * (2 * math.pi / period)
        if kind == 1:
            return xp.sign(xp.sin(u))
        v = (-s * x + c * y) * (2 * math.pi / period)
        return xp.sign(xp.sin(u) * xp.sin(v))

    def _generate(self, index: int) -> tuple[Any, Any, Any]:
        """(image uint8 (3, H, W), instance map uint8 (H, W) with 0 = background, labels int64 (N,))."""
        size = self.size
        part = _SPLITS[self.split]
        rng = xp.random.default_rng([self.seed, part, index, 0])
        noise_rng = xp.random.default_rng([self.seed, part, index, 1])
        # background: a base colour and a linear shading across the image
        base = rng.uniform(0.15, 0.85, 3)
        gy, gx = rng.uniform(-0.15, 0.15, 2)
        y, x = xp.mgrid[0:size, 0:size].astype(xp.float64) / (size - 1) - 0.5
        img = base[:, None, None] + (gx * x + gy * y)[None]
        n = 0 if rng.uniform() < self.empty_prob else int(rng.integers(1, self.max_objects + 1))
        kinds = rng.integers(0, len(self.shape_names), size=n)
        shapes = [self._shape_mask(self.shape_names[int(k)], rng) for k in kinds]
        # top-down: a shape's visible part depends only on the shapes kept above it, so one pass
        # decides which to drop, and dropping one never hides another
        cover = xp.zeros((size, size), dtype=bool)
        keep = [False] * n
        for j in range(n - 1, -1, -1):
            full = shapes[j][0]
            vis = int((full & ~cover).sum())
            if vis >= _MIN_PIXELS and vis >= _MIN_VISIBLE * int(full.sum()):
                keep[j] = True
                cover |= full
        inst = xp.zeros((size, size), dtype=xp.uint8)
        labels = []
        for j in range(n):
            if not keep[j]:
                continue
            full, angle = shapes[j]
            fg = rng.uniform(0.0, 1.0, 3)
            while xp.abs(fg - base).max() < 0.3:
                fg = rng.uniform(0.0, 1.0, 3)
            tex = self._texture(angle, rng)
            paint = xp.broadcast_to(fg[:, None, None], (3, size, size))
            if tex is not None:
                paint = xp.clip(paint + 0.12 * tex[None], 0.0, 1.0)
            img[:, full] = paint[:, full]
            labels.append(int(kinds[j]) + 1)
            inst[full] = len(labels)
        if self.noise > 0:
            img = img + noise_rng.normal(0.0, self.noise, img.shape)
        img8 = xp.rint(xp.clip(img, 0.0, 1.0) * 255.0).astype(xp.uint8)
        return img8, inst, xp.asarray(labels, dtype=backend.int64)

    def _item(self, index: int) -> tuple[Any, Any, Any]:
        item = self._cache.get(index)
        if item is None:
            item = self._cache[index] = self._generate(index)
        return item

    # -- access -------------------------------------------------------------------------------------

    def _image(self, index: int) -> Tensor:
        return Tensor._wrap(self._item(index)[0].astype(backend.float32) / 255.0)

    def _target(self, index: int) -> Any:
        _, inst, labels = self._item(index)
        if self.target == "semantic":
            lut = xp.concatenate([xp.zeros(1, dtype=backend.int64), labels])
            return Tensor._wrap(lut[inst])
        masks = (inst[None] == xp.arange(1, len(labels) + 1, dtype=xp.uint8)[:, None, None]).astype(xp.uint8)
        boxes = masks_to_boxes(masks) if len(labels) else xp.zeros((0, 4), dtype=backend.float32)
        return {
            "boxes": Tensor._wrap(boxes),
            "labels": Tensor._wrap(labels.copy()),
            "masks": Tensor._wrap(masks),
            "area": Tensor._wrap(masks.sum(axis=(1, 2)).astype(backend.float32)),
            "iscrowd": Tensor._wrap(xp.zeros(len(labels), dtype=backend.int64)),
            "image_id": int(index),
        }

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        n = len(self)
        if isinstance(index, bool) or not isinstance(index, int) and not hasattr(index, "__index__"):
            raise TypeError(f"ShapesDetection: index must be an integer, got {type(index).__name__}")
        index = int(index)
        if not -n <= index < n:
            raise IndexError(f"ShapesDetection: index {index} out of range for {n} images")
        index %= n
        img, target = self._image(index), self._target(index)
        if self.transforms is not None:
            img, target = self.transforms(img, target)
        return img, target

    def __repr__(self) -> str:
        return (f"Dataset ShapesDetection\n    Number of datapoints: {len(self)}\n    Split: {self.split}\n"
                f"    Size: {self.size}, max_objects: {self.max_objects}, target: {self.target}")
