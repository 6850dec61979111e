"""``SegmentationFolder``: semantic segmentation pairs ``root/images/<name>.*`` and ``root/masks/<name>.png``."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import backend
from ..autograd.tensor import Tensor
from ._readers import load_label_png, load_rgb
from .files import DatasetFileError
from .folder import IMG_EXTENSIONS, walk_files
from .vision import VisionDataset

__all__ = ["SegmentationFolder", "IGNORE_INDEX"]

IGNORE_INDEX = 255
"""The mask value of pixels no loss or metric counts (VOC's object borders and "void")."""


def _stem(root: str, path: str) -> str:
    return os.path.splitext(os.path.relpath(path, root))[0]


class SegmentationFolder(VisionDataset):
    """Images and their class-index masks, paired by name (sub-folders allowed).

    Samples are ``(image, mask)``: ``image`` a float32 Tensor ``(3, H, W)`` in [0, 1], ``mask``
    an int64 Tensor ``(H, W)`` of class indices, 0 = background, 255 = ignore. Masks are PNGs whose
    pixel values are the indices: palette images (as VOC's ``SegmentationClass``, whose colours
    are only a display palette) give their palette indices, greyscale ones their grey values;
    RGB masks are refused (their colours are not indices). ``images/a/b.jpg`` pairs with
    ``masks/a/b.png``; an image without a mask or a mask without an image is an error.

    Classes, in this order of precedence: ``classes`` (names, ``classes[0]`` the background);
    ``root/classes.txt`` (one name a line); otherwise ``"background", "class_1", ...`` up to the
    largest index found in the masks (every mask is read once to find it). A mask value at or
    above ``len(classes)`` other than 255 raises a
    :class:`~lamina.datasets.files.DatasetFileError` when that mask is read.

    Args:
        root: the folder holding ``images/`` and ``masks/``.
        transforms: a callable on ``(image, mask)`` returning both (e.g. a
            ``lamina.transforms.detection.Compose``, whose transforms move the mask with the image).
        classes: the class names, background first.
    """

    def __init__(self, root: str, transforms: Callable[[Any, Any], tuple[Any, Any]] | None = None,
                 classes: Sequence[str] | None = None) -> None:
        super().__init__(os.fspath(root))
        self.transforms = transforms
        img_dir, mask_dir = os.path.join(self.root, "images"), os.path.join(self.root, "masks")
        for d in (img_dir, mask_dir):
            if not os.path.isdir(d):
                raise FileNotFoundError(f"SegmentationFolder: folder {d} does not exist (expected root/images and "
                                        f"root/masks)")
        images: dict[str, str] = {}
        for p in walk_files(img_dir):
            if p.lower().endswith(IMG_EXTENSIONS):
                s = _stem(img_dir, p)
                if s in images:
                    raise DatasetFileError(f"SegmentationFolder: two images share the name {s!r}: {images[s]} and {p}")
                images[s] = p
        masks = {_stem(mask_dir, p): p for p in walk_files(mask_dir) if p.lower().endswith(".png")}
        lone_images, lone_masks = sorted(set(images) - set(masks)), sorted(set(masks) - set(images))
        if lone_images or lone_masks:
            parts = []
            if lone_images:
                parts.append(f"images without a mask ({len(lone_images)}): {lone_images[:5]}")
            if lone_masks:
                parts.append(f"masks without an image ({len(lone_masks)}): {lone_masks[:5]}")
            raise DatasetFileError(f"SegmentationFolder: {self.root}: " + "; ".join(parts)
                                   + " (a mask masks/<name>.png pairs with images/<name>.<ext>)")
        if not images:
            raise FileNotFoundError(f"SegmentationFolder: no image found in {img_dir}")
        self.samples = [(images[s], masks[s]) for s in sorted(images)]
        if classes is None:
            classes = self._classes_file()
        if classes is None:
            top = 0
            for _, m in self.samples:
                values = np.unique(load_label_png(m, "SegmentationFolder"))
                values = values[values != IGNORE_INDEX]
                top = max(top, int(values.max()) if values.size else 0)
            classes = ["background", *(f"class_{k}" for k in range(1, top + 1))]
        self.classes = list(classes)
        if not 1 <= len(self.classes) <= IGNORE_INDEX:
            raise ValueError(f"SegmentationFolder: expected 1 to 255 classes, got {len(self.classes)}")

    def _classes_file(self) -> list[str] | None:
        path = os.path.join(self.root, "classes.txt")
        if not os.path.isfile(path):
            return None
        try:
            with open(path, encoding="utf-8") as f:
                names = [line.strip() for line in f if line.strip()]
        except (OSError, UnicodeDecodeError) as e:
            raise DatasetFileError(f"SegmentationFolder: cannot read {path}: {e}") from None
        if not names:
            raise DatasetFileError(f"SegmentationFolder: {path} lists no class name")
        return names

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"SegmentationFolder: index {index} out of range for {n} samples")
        img_path, mask_path = self.samples[index]
        img = load_rgb(img_path, "SegmentationFolder")
        mask = load_label_png(mask_path, "SegmentationFolder")
        if mask.shape != img.shape[1:]:
            raise DatasetFileError(f"SegmentationFolder: mask {mask_path} is {mask.shape[1]} x {mask.shape[0]} "
                                   f"pixels, its image {img_path} {img.shape[2]} x {img.shape[1]}")
        bad = (mask >= len(self.classes)) & (mask != IGNORE_INDEX)
        if bad.any():
            raise DatasetFileError(f"SegmentationFolder: mask {mask_path} holds class index {int(mask[bad].max())}, "
                                   f"but there are {len(self.classes)} classes (0..{len(self.classes) - 1}, "
                                   f"and 255 = ignore)")
        image, target = Tensor._wrap(img.astype(backend.float32) / 255.0), Tensor._wrap(mask)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target
