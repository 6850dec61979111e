"""``Shapes``: procedurally generated colour images of circles, squares, triangles and crosses.

Each image holds one shape of random colour, size, position and rotation on a plain background
of another random colour, plus Gaussian pixel noise. Segmentation masks and bounding boxes come
with it on request, for segmentation and detection work. Generated from ``seed``: nothing is
downloaded, and the same arguments always give the same images.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from .. import backend
from ..autograd.tensor import Tensor
from .vision import VisionDataset

__all__ = ["Shapes", "SHAPE_CLASSES", "render_shape", "masks_to_boxes"]

xp = backend.xp

SHAPE_CLASSES = ("circle", "square", "triangle", "cross")

_TRIES = 100  # draws of one shape before its image starts again (and restarts before giving up)
# How far each shape reaches from its centre, in units of its radius ``r``: the cross's arm
# corners (r, r/3) lie outside the circle of radius r, the other shapes are inscribed in it.
_REACH = {"circle": 1.0, "square": 1.0, "triangle": 1.0, "cross": math.sqrt(10.0) / 3.0}


def render_shape(kind: str, size: int, cx: float, cy: float, r: float, angle: float) -> Any:
    """A boolean ``(size, size)`` mask of one shape, tested at the pixel centres.

    Args:
        kind: one of ``SHAPE_CLASSES``.
        size: image side in pixels.
        cx, cy: the centre in pixel coordinates (x to the right, y down; pixel ``(i, j)`` has its
            centre at ``x = j``, ``y = i``).
        r: the radius of the circle the shape is inscribed in.
        angle: rotation in radians (ignored by the circle).

    Example:
        >>> m = render_shape("square", 8, 3.5, 3.5, 2.9, 0.0)
        >>> int(m.sum()), m[3].astype(int).tolist()
        (16, [0, 0, 1, 1, 1, 1, 0, 0])
    """
    y, x = xp.mgrid[0:size, 0:size].astype(xp.float64)
    dx, dy = x - cx, y - cy
    c, s = math.cos(angle), math.sin(angle)
    u, v = c * dx + s * dy, -s * dx + c * dy  # coordinates in the shape's rotated frame
    if kind == "circle":
        return dx * dx + dy * dy <= r * r
    if kind == "square":
        h = r / math.sqrt(2.0)
        return (xp.abs(u) <= h) & (xp.abs(v) <= h)
    if kind == "triangle":
        inside = xp.ones((size, size), dtype=bool)
        for k in range(3):  # three half-planes, their edges at distance r/2 from the centre
            t = angle + math.pi / 2 + k * 2 * math.pi / 3
            inside &= dx * math.cos(t) + dy * math.sin(t) <= r / 2
        return inside
    if kind == "cross":
        w = r / 3.0
        return ((xp.abs(u) <= r) & (xp.abs(v) <= w)) | ((xp.abs(v) <= r) & (xp.abs(u) <= w))
    raise ValueError(f"render_shape: unknown shape {kind!r} (expected one of {SHAPE_CLASSES})")


def masks_to_boxes(masks: Any) -> Any:
    """Boxes ``(x1, y1, x2, y2)`` around the non-zero pixels of each mask, as ``torchvision.ops.masks_to_boxes``.

    Coordinates are pixel indices with the maximum inclusive: a mask with the single pixel
    ``(row 2, col 5)`` gives ``(5, 2, 5, 2)``.

    Args:
        masks: an array ``(K, H, W)``; each mask must have at least one non-zero pixel.

    Returns:
        A float32 array ``(K, 4)``.
    """
    masks = xp.asarray(masks)
    out = xp.zeros((masks.shape[0], 4), dtype=backend.float32)
    for k, m in enumerate(masks):
        ys, xs = xp.nonzero(m)
        if len(xs) == 0:
            raise ValueError(f"masks_to_boxes: mask {k} is empty")
        out[k] = (xs.min(), ys.min(), xs.max(), ys.max())
    return out


class Shapes(VisionDataset):
    """Procedural colour images of simple shapes for CNN classification, segmentation and detection.

    Samples are ``(image, label)`` with ``image`` a float32 Tensor ``(3, size, size)`` in [0, 1] and
    ``label`` the int index of the shape in ``classes``. With ``return_mask`` and/or
    ``return_boxes`` the target becomes a dict (collated field by field by the DataLoader):

    - ``"label"``: the int class index;
    - ``"mask"`` (``return_mask``): an int64 Tensor ``(size, size)``, 0 for background and
      ``label + 1`` on the shape's pixels (semantic segmentation with class 0 = background);
    - ``"boxes"`` (``return_boxes``): a float32 Tensor ``(1, 4)`` — the shape's box
      ``(x1, y1, x2, y2)`` in pixel indices with the maximum inclusive, i.e.
      ``torchvision.ops.masks_to_boxes`` of the mask — and ``"labels"``, an int64 Tensor ``(1,)``,
      as torchvision's detection targets.

    With ``objects > 1`` every image holds 1 to ``objects`` shapes (later ones painted over earlier
    ones; each keeps at least 4 visible pixels) and the target is always a dict without
    ``"label"``: ``"labels"`` ``(K,)``, plus ``"boxes"`` ``(K, 4)`` (boxes of the visible pixels of
    each shape) and/or ``"mask"`` (the visible class per pixel) on request. ``K`` varies between
    images, so batch them with ``collate_fn=lamina.utils.data.detection_collate``, as for torchvision's
    detection sets.

    Every shape lies wholly inside the image, off its border pixels (the first and last rows and
    columns stay background), so no mask or box is cut by the edge. The shape's radius is drawn
    as a share of ``size`` (smaller with ``objects > 1``), capped in small images so that it fits.

    Colours are drawn so that each shape and the background differ by at least 0.3 in some channel.
    The mask is exactly the set of pixels painted in the shapes' colours (before noise); the noise
    has its own random stream, so ``noise`` changes nothing else. Geometric transforms given as
    ``transform`` act on the image only, not on the mask or boxes.

    Args:
        n: the number of images.
        size: the image side in pixels (at least 8, and at least ``2 * objects``).
        classes: the shape names to draw from, a subset of ``('circle', 'square', 'triangle', 'cross')``;
            labels index this tuple.
        noise: the standard deviation of the Gaussian pixel noise (values are clipped to [0, 1]).
        seed: the generator seed; the training and test sets of one seed differ.
        train: which of the two sets of ``seed``.
        transform, target_transform: as in torchvision.
        return_mask, return_boxes: add masks / boxes to the target (see above).
        objects: the largest number of shapes per image (1: one shape, a classification set).

    Attributes:
        data: float32 array ``(n, 3, size, size)``; ``targets``: int64 ``(n,)`` (the class of the
        first shape); ``masks``: int64 ``(n, size, size)``; ``instances``: int64 ``(n, size, size)``
        (0 background, ``j + 1`` where shape ``j`` is visible); ``boxes``, ``box_labels``: per image, float32
        ``(K, 4)`` and int64 ``(K,)`` arrays; ``colors``: float32 ``(n, 1 + objects, 3)`` (background,
        then each shape's colour; NaN for shapes an image does not have).

    Example:
        >>> ds = Shapes(n=8, size=16, seed=0, return_boxes=True)
        >>> img, target = ds[0]
        >>> tuple(img.shape), sorted(target), tuple(target["boxes"].shape)
        ((3, 16, 16), ['boxes', 'label', 'labels'], (1, 4))
    """

    def __init__(self, n: int = 1000, size: int = 32, classes: Sequence[str] = SHAPE_CLASSES, noise: float = 0.05,
                 seed: int = 0, train: bool = True, transform: Callable[[Any], Any] | None = None,
                 target_transform: Callable[[Any], Any] | None = None, return_mask: bool = False,
                 return_boxes: bool = False, objects: int = 1) -> None:
        super().__init__(None, transform, target_transform)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"Shapes: n must be a positive integer, got {n!r}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 8:
            raise ValueError(f"Shapes: size must be an integer of at least 8, got {size!r}")
        if isinstance(objects, bool) or not isinstance(objects, int) or not 1 <= objects <= 8:
            raise ValueError(f"Shapes: objects must be an integer from 1 to 8, got {objects!r}")
        if size < 2 * objects:  # below this the shapes hardly fit, each with 4 visible pixels
            raise ValueError(f"Shapes: {objects} objects need a size of at least {2 * objects}, got {size}")
        classes = tuple(classes)
        bad = [c for c in classes if c not in SHAPE_CLASSES]
        if not classes or bad or len(set(classes)) != len(classes):
            raise ValueError(f"Shapes: classes must be distinct names from {SHAPE_CLASSES}, got {classes}")
        if noise < 0:
            raise ValueError(f"Shapes: noise must be non-negative, got {noise}")
        self.classes = list(classes)
        self.size, self.noise, self.seed, self.train = size, float(noise), seed, train
        self.return_mask, self.return_boxes, self.objects = return_mask, return_boxes, objects
        part = 0 if train else 1
        # two streams: the noise level does not change the shapes, colours and labels
        self._generate(n, xp.random.default_rng([int(seed), part, 0]), xp.random.default_rng([int(seed), part, 1]))

    def _draw_shape(self, kind: str, first: bool, r_lo: float, r_hi: float, rng: Any) -> tuple[Any, Any, Any]:
        """Draw one shape: returns (its mask, the background colour when ``first`` else None, its colour)."""
        size = self.size
        # the shape reaches e = reach * r from its centre, which lies in [e + 0.5, size - 1.5 - e]:
        # the shape stays off the border pixels, so it is never cut; that range is empty
        # unless e <= (size - 2) / 2, which caps r in small images
        reach = _REACH[kind]
        r = rng.uniform(r_lo, min(r_hi, (size - 2) / (2 * reach * size))) * size
        e = reach * r
        cx, cy = rng.uniform(e + 0.5, size - 1.5 - e, size=2)
        angle = rng.uniform(0.0, 2 * math.pi)
        bg = rng.uniform(0.0, 1.0, 3) if first else None
        return render_shape(kind, size, cx, cy, r, angle), bg, rng.uniform(0.0, 1.0, 3)

    def _draw_image(self, labels: list[int], rng: Any) -> tuple[Any, Any, Any]:
        """Paint one image: returns (image (3, H, W) float64, instance map (H, W), colours (1 + K, 3)).

        Shapes are placed one by one; a shape that would show fewer than 4 pixels, or leave an
        earlier one with fewer, is drawn again (redrawing only that shape keeps the cost linear
        in the number of shapes); after ``_TRIES`` failures the whole image starts again.
        """
        size, k = self.size, len(labels)
        r_lo, r_hi = (0.18, 0.4) if k == 1 else (0.12, 0.28)
        for _ in range(_TRIES):
            inst = xp.zeros((size, size), dtype=backend.int64)
            colors: list[Any] = []
            img = bg = None
            for j, label in enumerate(labels):
                for _ in range(_TRIES):
                    m, new_bg, fg = self._draw_shape(self.classes[label], j == 0, r_lo, r_hi, rng)
                    bg = new_bg if j == 0 else bg
                    while xp.abs(fg - bg).max() < 0.3:
                        fg = rng.uniform(0.0, 1.0, 3)
                    if m.sum() >= 4 and all(((inst == i + 1) & ~m).sum() >= 4 for i in range(j)):
                        break
                else:
                    break  # no room left for this shape: start the image again
                if j == 0:
                    colors.append(bg)
                    img = xp.broadcast_to(bg[:, None, None], (3, size, size)).copy()
                img[:, m] = fg[:, None]
                inst[m] = j + 1
                colors.append(fg)
            else:
                return img, inst, xp.stack(colors)
        raise RuntimeError(f"Shapes: could not place {k} visible shapes in a {size}x{size} image")

    def _generate(self, n: int, rng: Any, noise_rng: Any) -> None:
        size, c = self.size, len(self.classes)
        self.targets = rng.integers(0, c, size=n).astype(backend.int64)
        self.data = xp.empty((n, 3, size, size), dtype=backend.float32)
        self.masks = xp.zeros((n, size, size), dtype=backend.int64)
        self.instances = xp.zeros((n, size, size), dtype=backend.int64)
        self.colors = xp.full((n, 1 + self.objects, 3), xp.nan, dtype=backend.float32)
        self.boxes, self.box_labels = [], []
        for i in range(n):
            labels = [int(self.targets[i])]
            if self.objects > 1:
                labels += rng.integers(0, c, size=int(rng.integers(0, self.objects))).tolist()
            img, inst, colors = self._draw_image(labels, rng)
            if self.noise > 0:
                img = xp.clip(img + noise_rng.normal(0.0, self.noise, img.shape), 0.0, 1.0)
            self.data[i] = img
            self.instances[i] = inst
            lab = xp.asarray(labels, dtype=backend.int64)
            self.masks[i] = xp.where(inst > 0, lab[inst - 1] + 1, 0)
            self.colors[i, : len(colors)] = colors
            self.boxes.append(masks_to_boxes(inst[None] == xp.arange(1, len(labels) + 1)[:, None, None]))
            self.box_labels.append(lab)

    def _image(self, index: int) -> Tensor:
        return Tensor._wrap(self.data[index].copy())

    def _target(self, index: int) -> Any:
        label = int(self.targets[index])
        if self.objects == 1 and not (self.return_mask or self.return_boxes):
            return label
        target: dict[str, Any] = {"label": label} if self.objects == 1 else {}
        if self.return_mask:
            target["mask"] = Tensor._wrap(self.masks[index].copy())
        if self.return_boxes:
            target["boxes"] = Tensor._wrap(self.boxes[index].copy())
        if self.return_boxes or self.objects > 1:
            target["labels"] = Tensor._wrap(self.box_labels[index].copy())
        return target
