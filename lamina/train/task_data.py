"""The data of detection and segmentation runs: the synthetic shapes (``shapes-det``) and the
user's files (``coco``, ``voc``, ``masks`` under ``data_root``), as the run's configuration says.

Layouts under ``--data-root DIR``:

- ``coco``: ``DIR/train.json`` and ``DIR/test.json`` (COCO instances JSON: boxes, polygon or
  RLE masks), their images in ``DIR/train/`` and ``DIR/test/``.
- ``voc``: ``DIR/Annotations/*.xml``, ``DIR/JPEGImages/``, ``DIR/ImageSets/Main/train.txt`` and
  ``test.txt`` (Pascal VOC's own layout).
- ``masks``: ``DIR/train/images/``, ``DIR/train/masks/`` (PNG class maps of the same names;
  255 = ignore), the same under ``DIR/test/``, and optionally ``DIR/classes.txt`` (one name a
  line, the background first). Images and maps are resized to ``--image-size``.

Detection images keep their sizes (the detectors resize inside and give boxes in each image's
pixels). VOC's test part takes the training part's class list.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["task_classes", "build_task_data", "task_loader"]


def _shapes(config: dict[str, Any], train: bool, transforms: Any = None) -> Any:
    from ..datasets import ShapesDetection

    seed = int(config.get("seed", 0))
    n = int(config["train_images"] if train else config["test_images"])
    target = "semantic" if config["task"] == "segment" else "detection"
    return ShapesDetection(split="train" if train else "test", num_images=n, size=int(config["image_size"]),
                           max_objects=int(config["max_objects"]), seed=seed, transforms=transforms, target=target)


class _SegmentationResize:
    """``(image, mask)`` → the run's square size: the image bilinear, the class map nearest (so
    every pixel keeps a class of its own, and 255 stays ignore); batches of one size stack."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, image: Any, mask: Any) -> tuple[Any, Any]:
        import numpy as np

        from ..autograd.tensor import Tensor
        from ..nn import functional as F

        s = self.size
        if tuple(image.shape[-2:]) == (s, s):
            return image, mask
        img = F.interpolate(image[None], size=(s, s), mode="bilinear", align_corners=False)[0]
        m = np.asarray(mask.array)
        rows = np.minimum((np.arange(s) + 0.5) * m.shape[0] / s, m.shape[0] - 1).astype(int)
        cols = np.minimum((np.arange(s) + 0.5) * m.shape[1] / s, m.shape[1] - 1).astype(int)
        return img, Tensor._wrap(np.ascontiguousarray(m[rows][:, cols]))


def _flip(train: bool, config: dict[str, Any]) -> Any:
    """The training augmentation (a horizontal flip that moves boxes and masks too), or None."""
    if not (train and config.get("augment")):
        return None
    from ..transforms import detection as T

    return T.RandomHorizontalFlip(0.5)


def _chain(*steps: Any) -> Any:
    steps = tuple(s for s in steps if s is not None)
    if not steps:
        return None

    def run(image: Any, target: Any) -> tuple[Any, Any]:
        for step in steps:
            image, target = step(image, target)
        return image, target

    return run


def _user(config: dict[str, Any], train: bool) -> Any:
    from .. import datasets as D

    name, root = config["data"], config["data_root"]
    split = "train" if train else "test"
    if not os.path.isdir(root):
        raise FileNotFoundError(f"data {name!r}: --data-root {root!r} is not a folder")
    known = config.get("classes")
    if name == "coco":
        # the detectors resize inside (YOLO to its input, R-CNN's transform) and give boxes in each
        # image's own pixels: the images keep their sizes
        return D.CocoDetection(os.path.join(root, split), os.path.join(root, f"{split}.json"),
                               transforms=_flip(train, config))
    if name == "voc":
        return D.VOCDetection(root, image_set=split, transforms=_flip(train, config),
                              classes=list(known[1:]) if known else None)
    names_file = os.path.join(root, "classes.txt")
    classes = known
    if classes is None and os.path.isfile(names_file):
        with open(names_file, encoding="utf-8") as f:
            classes = [line.strip() for line in f if line.strip()]
    return D.SegmentationFolder(os.path.join(root, split), classes=classes,
                                transforms=_chain(_SegmentationResize(int(config["image_size"])), _flip(train, config)))


def build_task_data(config: dict[str, Any], train: bool) -> Any:
    """The train or test part of the run's data, with the run's transforms.

    Raises:
        ValueError: the data's classes are not the run's ``config['classes']``.
    """
    if config["data"] == "shapes-det":
        ds = _shapes(config, train, _flip(train, config))
    else:
        ds = _user(config, train)
    expected = config.get("classes")
    found = [str(c) for c in getattr(ds, "classes", [])]
    if expected is not None and found != list(expected):
        from .run_config import class_difference

        raise ValueError(f"data {config['data']!r} ({'train' if train else 'test'} part) does not have the classes "
                         f"of the run: {class_difference(found, list(expected), 'the data', 'the run')}")
    return ds


def task_classes(config: dict[str, Any]) -> list[str]:
    """The class names of the run's data, ``'background'`` first."""
    if config["data"] == "shapes-det":
        return list(_shapes({**config, "train_images": 1}, True).classes)
    train = build_task_data({**config, "classes": None}, True)
    a = [str(c) for c in train.classes]
    test = build_task_data({**config, "classes": a if config["data"] == "voc" else None}, False)
    b = [str(c) for c in test.classes]
    if a != b:
        from .run_config import class_difference

        raise ValueError(f"data {config['data']!r} in {config['data_root']}: the train and test parts must have the "
                         f"same classes; {class_difference(a, b, 'train', 'test')}")
    return a


def task_loader(config: dict[str, Any], ds: Any, train: bool) -> Any:
    """Batches of the run: ``(images, targets)`` lists for detection (``detection_collate``),
    stacked ``(N, 3, H, W)`` images and ``(N, H, W)`` class maps for segmentation."""
    from ..utils.data import DataLoader

    kw: dict[str, Any] = {}
    if config["task"] == "detect":
        from ..utils.data import detection_collate

        kw["collate_fn"] = detection_collate
    return DataLoader(ds, batch_size=int(config["batch_size"]), shuffle=train, seed=int(config.get("seed", 0)),
                      num_workers=int(config.get("num_workers", 0)), **kw)
