"""``VOCDetection``: Pascal-VOC-style XML annotations (``Annotations/``) with images (``JPEGImages/``)."""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import backend
from ..autograd.tensor import Tensor
from ._readers import load_rgb, read_xml, safe_join
from .files import DatasetFileError
from .folder import IMG_EXTENSIONS
from .vision import VisionDataset

__all__ = ["VOCDetection", "VOC_CLASSES"]

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
               "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")
"""The 20 Pascal VOC classes, in the usual order (labels 1..20 with ``classes=VOC_CLASSES``)."""


def _text(el: ET.Element, tag: str, what: str, required: bool = True) -> str | None:
    child = el.find(tag)
    if child is None or child.text is None or not child.text.strip():
        if required:
            raise DatasetFileError(f"{what}: expected a <{tag}> element with text, found none")
        return None
    return child.text.strip()


def _number(el: ET.Element, tag: str, what: str) -> float:
    s = _text(el, tag, what)
    try:
        v = float(s)  # type: ignore[arg-type]
    except ValueError:
        raise DatasetFileError(f"{what}: <{tag}> must be a number, got {s!r:.50}") from None
    if not math.isfinite(v):
        raise DatasetFileError(f"{what}: <{tag}> must be finite, got {s!r:.50}")
    return v


class VOCDetection(VisionDataset):
    """Pascal-VOC-style detection data: ``root/Annotations/<id>.xml`` and ``root/JPEGImages/<id>.jpg``.

    Samples are ``(image, target)``: ``image`` a float32 Tensor ``(3, H, W)`` in [0, 1]; ``target``
    a dict with ``"boxes"`` float32 ``(N, 4)``, ``"labels"`` int64 ``(N,)`` in ``1 .. K``,
    ``"difficult"`` int64 ``(N,)`` (VOC's flag: VOC's evaluation ignores such objects, neither
    true nor false positives), ``"iscrowd"`` int64 zeros, ``"area"`` float32 (box areas) and
    ``"image_id"`` (the int index).

    **Box convention.** VOC's ``xmin .. xmax`` are 1-based pixel indices, both inclusive (a box
    over the whole image is ``1 .. W``). They become continuous pixel coordinates with the
    image spanning ``[0, W] x [0, H]``: ``(xmin - 1, ymin - 1, xmax, ymax)``, as detectron2's
    ``load_voc_instances`` does — the convention of COCO boxes (``x + width``) and of
    torchvision's detection models; boxes are then clipped to the image, and one left empty is
    dropped. Unlike torchvision's ``VOCDetection`` (which returns the XML as a dict and downloads),
    this reads local folders and returns detection targets.

    The image of ``<id>.xml`` is ``JPEGImages/<id>`` with the first image extension that exists
    (``.jpg`` first), else the XML's ``<filename>`` in ``JPEGImages/``. All XML files are read and
    checked when the data set is made.

    Args:
        root: the folder holding ``Annotations/`` and ``JPEGImages/``.
        image_set: read the ids from ``root/ImageSets/Main/<image_set>.txt`` (e.g. ``"train"``);
            ``None``: every ``.xml`` file in ``Annotations/`` in sorted order.
        transforms: a callable on ``(image, target)`` returning both.
        classes: the object names in label order (label ``k`` is ``classes[k - 1]``; e.g.
            ``VOC_CLASSES``); an object of another name is an error. ``None``: the names found in the
            annotations, sorted.

    Attributes:
        classes (``classes[0] == "background"``), ids.
    """

    def __init__(self, root: str, image_set: str | None = None,
                 transforms: Callable[[Any, Any], tuple[Any, Any]] | None = None,
                 classes: Sequence[str] | None = None) -> None:
        super().__init__(os.fspath(root))
        self.transforms = transforms
        ann_dir, self._img_dir = os.path.join(self.root, "Annotations"), os.path.join(self.root, "JPEGImages")
        for d in (ann_dir, self._img_dir):
            if not os.path.isdir(d):
                raise FileNotFoundError(f"VOCDetection: folder {d} does not exist (expected root/Annotations and "
                                        f"root/JPEGImages)")
        if image_set is not None:
            split = os.path.join(self.root, "ImageSets", "Main", f"{image_set}.txt")
            try:
                with open(split, encoding="utf-8") as f:
                    ids = [line.strip() for line in f if line.strip()]
            except OSError as e:
                raise DatasetFileError(f"VOCDetection: cannot read image set {split}: {e.strerror or e}") from None
            except UnicodeDecodeError as e:
                raise DatasetFileError(f"VOCDetection: image set {split} is not UTF-8 text: {e}") from None
        else:
            ids = sorted(n[:-4] for n in os.listdir(ann_dir) if n.lower().endswith(".xml"))
        if not ids:
            raise FileNotFoundError(f"VOCDetection: no annotation found in {ann_dir}")
        self.ids = ids
        self._records = [self._parse(safe_join(ann_dir, i + ".xml", "VOCDetection", f"image id {i!r}"))
                         for i in ids]
        names = sorted({o[0] for r in self._records for o in r["objects"]})
        if classes is None:
            classes = names
        classes = list(classes)
        unknown = [n for n in names if n not in classes]
        if unknown:
            raise DatasetFileError(f"VOCDetection: {self.root}: object names {unknown} are not in classes {classes}")
        self.classes = ["background", *classes]
        self._label = {c: k for k, c in enumerate(self.classes) if k}

    def _parse(self, path: str) -> dict[str, Any]:
        root = read_xml(path, "VOCDetection")
        what = f"VOCDetection: {path}"
        if root.tag != "annotation":
            raise DatasetFileError(f"{what}: expected the root element <annotation>, got <{root.tag}>")
        size = root.find("size")
        hw = None
        if size is not None:
            w, h = _number(size, "width", f"{what}: <size>"), _number(size, "height", f"{what}: <size>")
            if w < 1 or h < 1 or w != int(w) or h != int(h):
                raise DatasetFileError(f"{what}: <size> must hold positive integer width and height, got {w} x {h}")
            hw = (int(h), int(w))
        objects = []
        for j, obj in enumerate(root.findall("object")):
            owhat = f"{what}: object {j}"
            name = _text(obj, "name", owhat)
            box = obj.find("bndbox")
            if box is None:
                raise DatasetFileError(f"{owhat} ({name}): expected a <bndbox> element, found none")
            x1, y1, x2, y2 = (_number(box, t, f"{owhat} ({name}): <bndbox>") for t in ("xmin", "ymin", "xmax", "ymax"))
            if x2 < x1 or y2 < y1:
                raise DatasetFileError(f"{owhat} ({name}): <bndbox> must have xmin <= xmax and ymin <= ymax, got "
                                       f"({x1:g}, {y1:g}, {x2:g}, {y2:g})")
            diff = _text(obj, "difficult", owhat, required=False) or "0"
            if diff not in ("0", "1"):
                raise DatasetFileError(f"{owhat} ({name}): <difficult> must be 0 or 1, got {diff!r:.20}")
            objects.append((name, (x1 - 1.0, y1 - 1.0, x2, y2), int(diff)))
        return {"path": path, "size": hw, "filename": _text(root, "filename", what, required=False),
                "objects": objects}

    def _image_path(self, index: int) -> str:
        for ext in IMG_EXTENSIONS:
            for e in (ext, ext.upper()):
                p = os.path.join(self._img_dir, self.ids[index] + e)
                if os.path.isfile(p):
                    return p
        name = self._records[index]["filename"]
        if name is not None:
            p = safe_join(self._img_dir, name, "VOCDetection", self._records[index]["path"])
            if os.path.isfile(p):
                return p
        raise DatasetFileError(f"VOCDetection: no image for {self._records[index]['path']}: looked for "
                               f"{os.path.join(self._img_dir, self.ids[index])}.jpg (or another image extension)"
                               + (f" and {name}" if name else ""))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"VOCDetection: index {index} out of range for {n} images")
        index %= n
        rec = self._records[index]
        path = self._image_path(index)
        img = load_rgb(path, "VOCDetection")
        h, w = img.shape[1:]
        if rec["size"] is not None and rec["size"] != (h, w):
            raise DatasetFileError(f"VOCDetection: image {path} is {w} x {h} pixels, but {rec['path']} says "
                                   f"{rec['size'][1]} x {rec['size'][0]} (width x height)")
        boxes, labels, difficult = [], [], []
        for name, (x1, y1, x2, y2), diff in rec["objects"]:
            b = [min(max(x1, 0.0), w), min(max(y1, 0.0), h), min(max(x2, 0.0), w), min(max(y2, 0.0), h)]
            if b[2] > b[0] and b[3] > b[1]:
                boxes.append(b)
                labels.append(self._label[name])
                difficult.append(diff)
        b = np.asarray(boxes, dtype=backend.float32).reshape(-1, 4)
        target = {
            "boxes": Tensor._wrap(b),
            "labels": Tensor._wrap(np.asarray(labels, dtype=backend.int64)),
            "difficult": Tensor._wrap(np.asarray(difficult, dtype=backend.int64)),
            "iscrowd": Tensor._wrap(np.zeros(len(labels), dtype=backend.int64)),
            "area": Tensor._wrap(((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).astype(backend.float32)),
            "image_id": index,
        }
        image = Tensor._wrap(img.astype(backend.float32) / 255.0)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target
