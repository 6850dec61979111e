"""``CocoDetection``: a COCO-style annotation JSON and an image folder, read as detection targets.

Masks are decoded with lamina's own NumPy implementation of pycocotools' RLE and polygon code
(:mod:`lamina.datasets.coco_mask`); pycocotools is not needed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import backend
from ..autograd.tensor import Tensor
from . import coco_mask
from ._readers import load_rgb, read_json, safe_join
from .files import DatasetFileError
from .vision import VisionDataset

__all__ = ["CocoDetection"]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


class CocoDetection(VisionDataset):
    """Images and COCO annotations, as ``torchvision.datasets.CocoDetection`` wrapped for detection.

    Samples are ``(image, target)``: ``image`` a float32 Tensor ``(3, H, W)`` in [0, 1]; ``target``
    a dict (the contract of torchvision's detection models and references' ``ConvertCocoPolysToMask``):

    - ``"boxes"``: float32 ``(N, 4)`` — COCO's ``[x, y, width, height]`` as ``(x, y, x + width,
      y + height)``, clipped to the image; boxes left with no width or height are dropped with
      their annotation (as torchvision's references do);
    - ``"labels"``: int64 ``(N,)``: category ids mapped to ``1 .. K`` in increasing id order;
      ``classes[label]`` is the category's name, ``classes[0] == "background"``;
    - ``"masks"``: uint8 ``(N, H, W)`` from the polygons (merged, as pycocotools' ``annToRLE``) or
      the RLE (compressed or not), present when every annotation of the file has a
      ``segmentation`` (an empty list gives an empty mask);
    - ``"area"``: float32 ``(N,)`` (the annotation's ``area``; the box area where it has none);
    - ``"iscrowd"``: int64 ``(N,)``; ``"image_id"``: the image's COCO id.

    Images are listed in increasing id order (as torchvision); images without annotations are kept
    (an empty target). The file is checked whole when the data set is made: a malformed entry raises
    a :class:`~lamina.datasets.files.DatasetFileError` naming the file, the entry and what was wrong.

    Args:
        root: the folder that ``file_name`` of each image is relative to.
        annFile: the annotation JSON.
        transforms: a callable on ``(image, target)`` returning both.

    Attributes:
        classes, cat_ids (the COCO category id of each label, ``cat_ids[0]`` is None), ids (the image ids).
    """

    def __init__(self, root: str, annFile: str,
                 transforms: Callable[[Any, Any], tuple[Any, Any]] | None = None) -> None:
        super().__init__(os.fspath(root))
        self.annFile, self.transforms = os.fspath(annFile), transforms
        data = read_json(self.annFile, "CocoDetection")
        where = f"CocoDetection: {self.annFile}"
        if not isinstance(data, dict):
            raise DatasetFileError(f"{where}: expected a JSON object with 'images', 'annotations' and 'categories', "
                                   f"got a {type(data).__name__}")
        for key in ("images", "categories"):
            if not isinstance(data.get(key), list):
                raise DatasetFileError(f"{where}: expected a list under {key!r}, got "
                                       f"{type(data.get(key)).__name__ if key in data else 'nothing'}")
        anns = data.get("annotations", [])
        if not isinstance(anns, list):
            raise DatasetFileError(f"{where}: expected a list under 'annotations', got {type(anns).__name__}")
        cats = {}
        for i, c in enumerate(data["categories"]):
            if not isinstance(c, dict) or not _is_int(c.get("id")) or not isinstance(c.get("name"), str):
                raise DatasetFileError(f"{where}: category {i} must be an object with an integer 'id' and a string "
                                       f"'name', got {c!r:.200}")
            if c["id"] in cats:
                raise DatasetFileError(f"{where}: category id {c['id']} appears twice")
            cats[c["id"]] = c["name"]
        self.cat_ids: list[int | None] = [None, *sorted(cats)]
        self.classes = ["background", *(cats[k] for k in self.cat_ids[1:])]
        self._label = {cid: k for k, cid in enumerate(self.cat_ids) if cid is not None}
        self._images: dict[int, dict[str, Any]] = {}
        for i, im in enumerate(data["images"]):
            if not isinstance(im, dict) or not _is_int(im.get("id")):
                raise DatasetFileError(f"{where}: image {i} must be an object with an integer 'id', got {im!r:.200}")
            for key in ("width", "height"):
                if not _is_int(im.get(key)) or im[key] < 1:
                    raise DatasetFileError(f"{where}: image {i} (id {im['id']}): {key!r} must be a positive "
                                           f"integer, got {im.get(key)!r}")
            if im["id"] in self._images:
                raise DatasetFileError(f"{where}: image id {im['id']} appears twice")
            path = safe_join(self.root, im.get("file_name"), "CocoDetection", f"{self.annFile}: image {i}")
            self._images[im["id"]] = {"path": path, "h": im["height"], "w": im["width"]}
        self._anns: dict[int, list[dict[str, Any]]] = {k: [] for k in self._images}
        self.has_masks = True
        for i, a in enumerate(anns):
            self._check_annotation(i, a, where)
            self._anns[a["image_id"]].append(a)
            self.has_masks &= "segmentation" in a
        self.ids = sorted(self._images)

    def _check_annotation(self, i: int, a: Any, where: str) -> None:
        if not isinstance(a, dict):
            raise DatasetFileError(f"{where}: annotation {i} must be an object, got {type(a).__name__}")
        what = f"{where}: annotation {i}" + (f" (id {a['id']})" if "id" in a else "")
        if a.get("image_id") not in self._images:
            raise DatasetFileError(f"{what}: image_id {a.get('image_id')!r} is not among the images")
        if a.get("category_id") not in self._label:
            raise DatasetFileError(f"{what}: category_id {a.get('category_id')!r} is not among the categories")
        box = a.get("bbox")
        if not isinstance(box, list) or len(box) != 4 or not all(_is_num(v) for v in box) or box[2] < 0 or box[3] < 0:
            raise DatasetFileError(f"{what}: 'bbox' must be 4 finite numbers [x, y, width, height] with width, "
                                   f"height >= 0, got {box!r:.200}")
        if a.get("iscrowd", 0) not in (0, 1) or isinstance(a.get("iscrowd"), bool):
            raise DatasetFileError(f"{what}: 'iscrowd' must be 0 or 1, got {a.get('iscrowd')!r}")
        if "area" in a and not _is_num(a["area"]):
            raise DatasetFileError(f"{what}: 'area' must be a finite number, got {a['area']!r:.100}")

    def __len__(self) -> int:
        return len(self.ids)

    def _mask(self, a: dict[str, Any], h: int, w: int, what: str) -> Any:
        try:
            rles = coco_mask.fr_py_objects(a["segmentation"], h, w)
            rles = [rles] if isinstance(rles, dict) else rles
            if not rles:
                return np.zeros((h, w), dtype=np.uint8)
            masks = coco_mask.decode(rles)
        except coco_mask.RLEError as e:
            raise DatasetFileError(f"{what}: bad segmentation: {e}") from None
        if masks.shape[:2] != (h, w):
            raise DatasetFileError(f"{what}: the RLE's size {list(masks.shape[:2])} differs from the image's "
                                   f"[height, width] = [{h}, {w}]")
        return masks.any(axis=2).astype(np.uint8)

    def _load(self, image_id: int) -> tuple[Any, dict[str, Any]]:
        info = self._images[image_id]
        h, w = info["h"], info["w"]
        img = load_rgb(info["path"], "CocoDetection")
        if img.shape[1:] != (h, w):
            raise DatasetFileError(f"CocoDetection: image {info['path']} is {img.shape[2]} x {img.shape[1]} pixels, "
                                   f"but {self.annFile} says {w} x {h} (width x height)")
        boxes, labels, areas, crowd, masks = [], [], [], [], []
        for a in self._anns[image_id]:
            x, y, bw, bh = (float(v) for v in a["bbox"])
            b = [min(max(x, 0.0), w), min(max(y, 0.0), h), min(max(x + bw, 0.0), w), min(max(y + bh, 0.0), h)]
            if not (b[2] > b[0] and b[3] > b[1]):
                continue  # no area left inside the image: dropped, as torchvision's references do
            boxes.append(b)
            labels.append(self._label[a["category_id"]])
            areas.append(float(a.get("area", bw * bh)))
            crowd.append(int(a.get("iscrowd", 0)))
            if self.has_masks:
                masks.append(self._mask(a, h, w, f"CocoDetection: {self.annFile}: annotation id {a.get('id')!r}"))
        f32, i64 = backend.float32, backend.int64
        target: dict[str, Any] = {
            "boxes": Tensor._wrap(np.asarray(boxes, dtype=f32).reshape(-1, 4)),
            "labels": Tensor._wrap(np.asarray(labels, dtype=i64)),
        }
        if self.has_masks:
            target["masks"] = Tensor._wrap(np.stack(masks) if masks else np.zeros((0, h, w), dtype=np.uint8))
        target["area"] = Tensor._wrap(np.asarray(areas, dtype=f32))
        target["iscrowd"] = Tensor._wrap(np.asarray(crowd, dtype=i64))
        target["image_id"] = image_id
        return Tensor._wrap(img.astype(f32) / 255.0), target

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"CocoDetection: index {index} out of range for {n} images")
        img, target = self._load(self.ids[index])
        if self.transforms is not None:
            img, target = self.transforms(img, target)
        return img, target
