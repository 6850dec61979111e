"""The data of detection and segmentation runs: the synthetic shapes (``shapes-det``) and the
user's files (``coco``, ``voc``, ``masks`` under ``data_root``), as the run's configuration says.

Layouts under ``--data-root DIR``:

- ``coco``: ``DIR/train.json`` and ``DIR/test.json`` (COCO instances JSON: boxes, polygon or
  RLE masks), their images in ``DIR/train/`` and ``DIR/test/``.
- ``voc``: ``DIR/Annotations/*.xml``, ``DIR/JPEGImages/``, ``DIR/ImageSets/Main/train.txt`` and
  ``test.txt`` (Pascal VOC's own layout).
- ``masks``: ``DIR/train/images/``, ``DIR/train/masks/`` (PNG class maps of the same names;
  255 = ignore), the same under ``DIR/test/``, and optionally ``DIR/classes.txt`` (one name a
  line, the background first).
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


def _resize(config: dict[str, Any]) -> Any:
    """A transform on ``(image, target)`` to the run's square image size (boxes and masks follow)."""
    from ..transforms import detection as T

    size = int(config["image_size"])
    return T.Resize((size, size))


def _augment(config: dict[str, Any], train: bool, steps: list[Any]) -> Any:
    if not steps and not (train and config.get("augment")):
        return None
    from ..transforms import detection as T

    if train and config.get("augment"):
        steps = [*steps, T.RandomHorizontalFlip(0.5)]
    return T.Compose(steps) if steps else None


def _user(config: dict[str, Any], train: bool) -> Any:
    from .. import datasets as D

    name, root = config["data"], config["data_root"]
    split = "train" if train else "test"
    if not os.path.isdir(root):
        raise FileNotFoundError(f"data {name!r}: --data-root {root!r} is not a folder")
    tf = _augment(config, train, [_resize(config)])
    if name == "coco":
        ann = os.path.join(root, f"{split}.json")
        ds = D.CocoDetection(os.path.join(root, split), ann, transforms=tf)
    elif name == "voc":
        ds = D.VOCDetection(root, image_set=split, transforms=tf)
    else:
        ds = D.SegmentationFolder(os.path.join(root, split), transforms=tf,
                                  classes_file=os.path.join(root, "classes.txt"))
    if config["task"] == "segment" and name == "coco":
        ds = D.semantic_from_instances(ds)
    return ds


def build_task_data(config: dict[str, Any], train: bool) -> Any:
    """The train or test part of the run's data, with the run's transforms.

    Raises:
        ValueError: the data's classes are not the run's ``config['classes']``.
    """
    if config["data"] == "shapes-det":
        ds = _shapes(config, train, _augment(config, train, []))
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
    test = build_task_data({**config, "classes": None}, False)
    a, b = [str(c) for c in train.classes], [str(c) for c in test.classes]
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
