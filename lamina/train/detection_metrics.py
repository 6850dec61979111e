"""Detection and instance-segmentation metrics: COCO's mean average precision, as pycocotools'
``COCOeval`` computes it, behind torchmetrics' ``MeanAveragePrecision`` interface.

The engine (IoU, matching, accumulation) is :mod:`lamina.train.coco_eval`; this file holds the
streaming metric, its inputs and its outputs (stats, per-class table, PR curves, summary text).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..autograd.tensor import Tensor
from .coco_eval import COCO_AREA_RANGES, REFERENCE_IMAGE_AREA, accumulate, box_iou_xywh, evaluate_class, mask_iou
from .metrics import Metric

__all__ = ["MeanAveragePrecision"]

_AREA_NAMES = ("all", "small", "medium", "large")


def _np(x: Any, name: str, dtype: Any) -> np.ndarray:
    if isinstance(x, Tensor):
        x = x.detach().numpy()
    try:
        return np.asarray(x, dtype=dtype)
    except (TypeError, ValueError):
        msg = f"MeanAveragePrecision.update: {name} must be a Tensor or array, got {type(x).__name__}"
        raise TypeError(msg) from None


def _to_xywh(boxes: np.ndarray, box_format: str) -> np.ndarray:
    b = boxes.astype(np.float64)
    if box_format == "xyxy":
        return np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)
    if box_format == "cxcywh":
        return np.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 2], b[:, 3]], 1)
    return b


class MeanAveragePrecision(Metric):
    """COCO mean average precision and recall of boxes or instance masks, as torchmetrics'
    ``MeanAveragePrecision`` and exactly pycocotools' ``COCOeval`` (see :mod:`lamina.train.coco_eval`).

    Args:
        box_format: ``"xyxy"`` (default), ``"xywh"`` or ``"cxcywh"``.
        iou_type: ``"bbox"`` (IoU of boxes) or ``"segm"`` (IoU of the instance ``masks``).
        iou_thresholds: default ``0.50:0.05:0.95`` (10 values).
        rec_thresholds: default ``0:0.01:1`` (101 values).
        max_detection_thresholds: the ``maxDets`` (per image AND class, as pycocotools), default ``[1, 10, 100]``.
        class_metrics: also fill ``map_per_class`` and ``mar_100_per_class`` (else −1).
        average: ``"macro"`` (mean over classes) or ``"micro"`` (all classes pooled as one).
        ap_method: how one precision/recall curve becomes a number. ``"coco"``: the mean of the
            enveloped precision at the 101 recall levels. ``"voc11"`` (Pascal VOC2007): the mean
            over the recall levels 0, 0.1, …, 1 of the highest precision at a recall ≥ the level.
            ``"continuous"`` (VOC2010 and later): the exact area under the precision envelope.
            The three differ because they sample the same step-shaped curve differently: 11 coarse
            points overweight the curve's left part and jump when a recall crosses a tenth; 101
            points are close to the area; the continuous area has no sampling at all. VOC's own
            number is the one at IoU 0.5 (``map_50``). The matching stays COCO's (a detection takes
            the best still-free ground truth; VOC's devkit takes the best-overlap one and counts it
            a false positive if taken, which can differ where ground truths overlap), and VOC's
            11 levels are exact decimals (``k / 10``; the Python ``voc_eval``'s ``np.arange(0, 1.1, 0.1)``
            holds 0.30000000000000004 and would skip a recall of exactly 0.3).
        area_ranges: ``"coco"``: small < 32², medium 32²–96², large > 96² pixels² (both ends
            inclusive, as pycocotools). ``"relative"``: the same ranges for an image of COCO's
            typical size 640×480: an object of an ``H×W`` image is small if its area is below
            ``32² · H·W / (640·480)`` (so 30.72 px², about 5.5², for 96×96), medium up to
            ``96² · H·W / (640·480)`` (276.48 px², about 16.6², for 96×96). The image size comes
            from the target's ``image_size`` ``(H, W)``, else its ``masks``, else ``image_size`` here.
            Or a dict ``{"small": (lo, hi), "medium": ..., "large": ...}`` in pixels².
        image_size: ``(H, W)`` of every image, for ``area_ranges="relative"``.

    Inputs (lists, one dict per image): preds ``boxes [M, 4]``, ``scores [M]``, ``labels [M]``
    (+ ``masks [M, H, W]`` or ``[M, 1, H, W]`` for ``"segm"``: binary, or probabilities cut at 0.5
    as torchvision's references do); targets ``boxes [N, 4]``, ``labels [N]`` (+ ``masks``, optional
    ``iscrowd [N]``, ``area [N]``, ``image_size``). An object's area is the target's ``area`` if
    given, else its box (``"bbox"``) or mask (``"segm"``) area; a prediction's is always its own.

    ``compute()`` returns floats ``map, map_50, map_75, map_small, map_medium, map_large, mar_1,
    mar_10, mar_100, mar_small, mar_medium, mar_large`` (−1 where undefined; the ``mar_N`` names
    follow ``max_detection_thresholds``) and arrays ``map_per_class``, ``mar_100_per_class``,
    ``classes``; :meth:`summary` prints them as pycocotools does; :meth:`per_class` and
    :meth:`pr_curves` give the report's table and curves.

    Example:
        >>> import lamina
        >>> m = MeanAveragePrecision()
        >>> box = lamina.tensor([[0.0, 0.0, 10.0, 10.0]])
        >>> m.update([{"boxes": box, "scores": lamina.tensor([0.9]), "labels": lamina.tensor([1])}],
        ...          [{"boxes": box, "labels": lamina.tensor([1])}])
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")  # one 10×10 box: no medium or large object, a warning says so
        ...     print(round(m.compute()["map"], 6))
        1.0
    """

    name = "map"

    def __init__(self, box_format: str = "xyxy", iou_type: str = "bbox", iou_thresholds: list[float] | None = None,
                 rec_thresholds: list[float] | None = None, max_detection_thresholds: list[int] | None = None,
                 class_metrics: bool = False, average: str = "macro", ap_method: str = "coco",
                 area_ranges: str | dict[str, tuple[float, float]] = "coco",
                 image_size: tuple[int, int] | None = None) -> None:
        op = "MeanAveragePrecision"
        for arg, value, allowed in (("box_format", box_format, ("xyxy", "xywh", "cxcywh")),
                                    ("iou_type", iou_type, ("bbox", "segm")), ("average", average, ("macro", "micro")),
                                    ("ap_method", ap_method, ("coco", "voc11", "continuous"))):
            if value not in allowed:
                raise ValueError(f"{op}: {arg} must be one of {allowed}, got {value!r}")
        if isinstance(area_ranges, dict):
            unknown = sorted(set(area_ranges) - set(_AREA_NAMES[1:]))
            if unknown:
                raise ValueError(f"{op}: area_ranges names {unknown}; the ranges are 'small', 'medium' and 'large'")
        elif area_ranges not in ("coco", "relative"):
            raise ValueError(f"{op}: area_ranges must be 'coco', 'relative' or a dict of (lo, hi), got {area_ranges!r}")
        self.box_format, self.iou_type, self.average, self.ap_method = box_format, iou_type, average, ap_method
        self.iou_thresholds = np.asarray(iou_thresholds if iou_thresholds is not None
                                         else np.linspace(0.5, 0.95, 10), dtype=np.float64)
        self.rec_thresholds = np.asarray(rec_thresholds if rec_thresholds is not None
                                         else np.linspace(0.0, 1.0, 101), dtype=np.float64)
        self.max_detection_thresholds = sorted(int(m) for m in (max_detection_thresholds or [1, 10, 100]))
        self.class_metrics = class_metrics
        self.area_ranges = area_ranges
        self.image_size = image_size
        self.reset()

    def reset(self) -> None:
        self.images: list[dict[str, dict[str, np.ndarray]]] = []
        self._result: dict[bool, dict[str, Any]] = {}

    # -- input ------------------------------------------------------------------------------------------------
    def _area_scale(self, target: dict[str, Any], mask_hw: tuple[int, ...] | None) -> float:
        if self.area_ranges != "relative":
            return 1.0
        size = target.get("image_size", mask_hw)
        size = self.image_size if size is None else size
        if size is None:
            raise ValueError("MeanAveragePrecision.update: area_ranges='relative' needs the image size: a target "
                             "'image_size' (H, W), target 'masks', or image_size=(H, W) in the constructor")
        h, w = (int(s) for s in np.asarray(size).reshape(-1)[-2:])
        return REFERENCE_IMAGE_AREA / (h * w)

    def _side(self, d: Any, which: str, is_pred: bool) -> tuple[dict[str, np.ndarray], tuple[int, ...] | None]:
        """One image's predictions or target as float64/bool arrays (boxes as xywh), and its mask size."""
        op = "MeanAveragePrecision.update"
        if not isinstance(d, dict):
            raise TypeError(f"{op}: {which} must be a dict, got {type(d).__name__}")
        keys = ("boxes", "scores", "labels") if is_pred else ("boxes", "labels")
        keys += ("masks",) if self.iou_type == "segm" else ()
        missing = [k for k in keys if k not in d]
        if missing:
            raise KeyError(f"{op}: {which} lacks {missing} (iou_type={self.iou_type!r} needs {list(keys)})")
        boxes = _np(d["boxes"], f"{which}['boxes']", np.float64)
        boxes = boxes.reshape(0, 4) if boxes.size == 0 else boxes
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"{op}: {which}['boxes'] must have shape [N, 4], got {boxes.shape}")
        n = len(boxes)
        out = {"boxes": _to_xywh(boxes, self.box_format),
               "labels": _np(d["labels"], f"{which}['labels']", np.int64).reshape(-1)}
        if is_pred:
            out["scores"] = _np(d["scores"], f"{which}['scores']", np.float64).reshape(-1)
        else:
            out["crowd"] = _np(d.get("iscrowd", np.zeros(n)), f"{which}['iscrowd']", np.int64).reshape(-1) != 0
        hw = None
        if self.iou_type == "segm":
            masks = _np(d["masks"], f"{which}['masks']", None)
            if masks.ndim == 4 and masks.shape[1] == 1:
                masks = masks[:, 0]
            if masks.ndim != 3:
                raise ValueError(f"{op}: {which}['masks'] must have shape [N, H, W] or [N, 1, H, W], got {masks.shape}")
            hw = masks.shape[1:]
            out["masks"] = (masks > 0.5 if masks.dtype.kind == "f" else masks != 0).reshape(len(masks), hw[0] * hw[1])
        if is_pred or "area" not in d:
            out["areas"] = out["masks"].sum(1).astype(np.float64) if self.iou_type == "segm" \
                else out["boxes"][:, 2] * out["boxes"][:, 3]
        else:
            out["areas"] = _np(d["area"], f"{which}['area']", np.float64).reshape(-1)
        for key, v in out.items():
            if len(v) != n:
                raise ValueError(f"{op}: {which} has {n} boxes but {len(v)} entries in {key!r}")
        return out, hw

    def update(self, preds: list[dict[str, Any]], target: list[dict[str, Any]]) -> None:
        """Add a batch: one prediction dict and one target dict per image (see the class docstring)."""
        if not isinstance(preds, (list, tuple)) or not isinstance(target, (list, tuple)):
            raise TypeError("MeanAveragePrecision.update: preds and target must be lists of dicts (one per image), "
                            f"got {type(preds).__name__} and {type(target).__name__}")
        if len(preds) != len(target):
            raise ValueError(f"MeanAveragePrecision.update: {len(preds)} predictions but {len(target)} targets")
        for i, (p, t) in enumerate(zip(preds, target)):
            dt, _ = self._side(p, f"preds[{i}]", True)
            gt, hw = self._side(t, f"target[{i}]", False)
            scale = self._area_scale(t, hw)
            dt["areas"], gt["areas"] = dt["areas"] * scale, gt["areas"] * scale
            self.images.append({"dt": dt, "gt": gt})
        self._result = {}

    # -- evaluation -------------------------------------------------------------------------------------------
    def _ranges(self) -> list[tuple[float, float]]:
        ranges = dict(COCO_AREA_RANGES)
        if isinstance(self.area_ranges, dict):
            ranges.update({k: (float(v[0]), float(v[1])) for k, v in self.area_ranges.items()})
        return [ranges[name] for name in _AREA_NAMES]

    def classes(self) -> np.ndarray:
        """The labels seen in the targets or predictions, sorted."""
        seen = [s[side]["labels"] for s in self.images for side in ("dt", "gt")]
        return np.unique(np.concatenate(seen)) if seen else np.zeros(0, dtype=np.int64)

    def _evaluate(self, pooled: bool) -> dict[str, Any]:
        """evaluate + accumulate, per class (``pooled=False``) or with all classes as one; cached."""
        if pooled in self._result:
            return self._result[pooled]
        classes = self.classes()
        iou_fn, geom = (mask_iou, "masks") if self.iou_type == "segm" else (box_iou_xywh, "boxes")
        ranges = self._ranges()
        groups = [classes] if pooled else [[c] for c in classes]
        evals: list[list[list[Any]]] = [[[] for _ in ranges] for _ in groups]
        for k, group in enumerate(groups):
            for image in self.images:
                dt, gt = image["dt"], image["gt"]
                ds, gs = np.isin(dt["labels"], group), np.isin(gt["labels"], group)
                if not ds.any() and not gs.any():
                    continue
                records = evaluate_class({"geom": dt[geom][ds], "scores": dt["scores"][ds], "areas": dt["areas"][ds]},
                                         {"geom": gt[geom][gs], "areas": gt["areas"][gs], "crowd": gt["crowd"][gs]},
                                         iou_fn, ranges, self.iou_thresholds, self.max_detection_thresholds[-1])
                for a, record in enumerate(records):
                    evals[k][a].append(record)
        result = accumulate(evals, len(self.iou_thresholds), self.rec_thresholds, self.max_detection_thresholds,
                            len(ranges), self.ap_method)
        result["evals"], result["classes"] = evals, classes
        self._result[pooled] = result
        return result

    def _iou_index(self, iou: float | None) -> np.ndarray:
        if iou is None:
            return np.arange(len(self.iou_thresholds))
        return np.nonzero(np.isclose(self.iou_thresholds, iou))[0]

    def _stat(self, result: dict[str, Any], ap: bool, iou: float | None = None, area: str = "all",
              max_det: int | None = None, k: Any = slice(None)) -> float:
        """pycocotools' ``_summarize``: the mean of the selected cells > −1, or −1 if there are none."""
        t = self._iou_index(iou)
        a = _AREA_NAMES.index(area)
        max_det = self.max_detection_thresholds[-1] if max_det is None else max_det
        m = self.max_detection_thresholds.index(max_det)
        if not ap:
            s = result["recall"][t][:, k, a, m]
        elif self.ap_method == "coco":
            s = result["precision"][t][:, :, k, a, m]
        else:
            s = result["ap"][t][:, k, a, m]
        s = np.asarray(s)
        return float(np.mean(s[s > -1])) if (s > -1).any() else -1.0

    def compute(self) -> dict[str, Any]:
        """The COCO stats (floats, −1 where undefined) and the per-class arrays; see the class docstring."""
        result = self._evaluate(pooled=self.average == "micro")
        last = self.max_detection_thresholds[-1]
        out: dict[str, Any] = {"map": self._stat(result, True), "map_50": self._stat(result, True, 0.5),
                               "map_75": self._stat(result, True, 0.75)}
        for area in _AREA_NAMES[1:]:
            out[f"map_{area}"] = self._stat(result, True, area=area)
        for m in self.max_detection_thresholds:
            out[f"mar_{m}"] = self._stat(result, False, max_det=m)
        for area in _AREA_NAMES[1:]:
            out[f"mar_{area}"] = self._stat(result, False, area=area)
        per_class = self._evaluate(pooled=False) if self.class_metrics else None
        classes = self.classes()
        if per_class is not None:
            out["map_per_class"] = np.array([self._stat(per_class, True, k=k) for k in range(len(classes))])
            out[f"mar_{last}_per_class"] = np.array([self._stat(per_class, False, k=k) for k in range(len(classes))])
        else:
            out["map_per_class"], out[f"mar_{last}_per_class"] = np.array([-1.0]), np.array([-1.0])
        out["classes"] = classes
        self._warn_empty_ranges(result, out)
        return out

    def _warn_empty_ranges(self, result: dict[str, Any], out: dict[str, Any]) -> None:
        if out[f"mar_{self.max_detection_thresholds[-1]}"] == -1:
            return  # no ground truth at all: nothing is defined, nothing to explain
        empty = [a for a in _AREA_NAMES[1:] if out[f"mar_{a}"] == -1]
        if empty:
            ranges = dict(zip(_AREA_NAMES, self._ranges()))
            text = ", ".join(f"{a} [{ranges[a][0]:g}, {ranges[a][1]:g}] px²" for a in empty)
            hint = " (for small images, area_ranges='relative' scales them to the image size)" \
                if self.area_ranges == "coco" else ""
            warnings.warn(f"MeanAveragePrecision: no ground-truth object falls in the area range {text}, so "
                          f"{', '.join(f'map_{a}' for a in empty)} are -1{hint}", stacklevel=3)

    # -- reports ----------------------------------------------------------------------------------------------
    def summary(self) -> str:
        """The 12 lines of pycocotools' ``COCOeval.summarize()``."""
        result = self._evaluate(pooled=self.average == "micro")
        thr, dets = self.iou_thresholds, self.max_detection_thresholds
        rows = [(True, None, "all", dets[-1]), (True, 0.5, "all", dets[-1]), (True, 0.75, "all", dets[-1])]
        rows += [(True, None, a, dets[-1]) for a in _AREA_NAMES[1:]]
        rows += [(False, None, "all", m) for m in dets] + [(False, None, a, dets[-1]) for a in _AREA_NAMES[1:]]
        lines = []
        for ap, iou, area, max_det in rows:
            title, kind = ("Average Precision", "(AP)") if ap else ("Average Recall", "(AR)")
            iou_text = f"{thr[0]:0.2f}:{thr[-1]:0.2f}" if iou is None else f"{iou:0.2f}"
            value = self._stat(result, ap, iou, area, max_det)
            lines.append(f" {title:<18} {kind} @[ IoU={iou_text:<9} | area={area:>6s} | maxDets={max_det:>3d} ] "
                         f"= {value:0.3f}")
        return "\n".join(lines)

    def per_class(self, score_threshold: float = 0.5, iou_threshold: float = 0.5) -> dict[str, np.ndarray]:
        """The per-class table of a report: ``classes``, ``images`` (with a non-crowd object of the
        class), ``instances`` (non-crowd objects), ``precision`` and ``recall`` of the detections
        scoring ≥ ``score_threshold`` at IoU ``iou_threshold`` (area "all", the largest maxDets;
        precision 0 without such detections, recall −1 without objects), ``map_50`` and ``map``."""
        result = self._evaluate(pooled=False)
        t = self._iou_index(iou_threshold)
        if len(t) == 0:
            raise ValueError(f"MeanAveragePrecision.per_class: iou_threshold {iou_threshold} is not among the "
                             f"iou_thresholds {self.iou_thresholds.tolist()}")
        rows: dict[str, list[float]] = {"images": [], "instances": [], "precision": [], "recall": []}
        for records in result["evals"]:
            tp = fp = 0
            for e in records[0]:
                keep = e.scores >= score_threshold
                counted = ~e.ignored[t[0]] & keep
                tp += int((e.matched[t[0]] & counted).sum())
                fp += int((~e.matched[t[0]] & counted).sum())
            instances = sum(e.num_regular_gt for e in records[0])
            rows["images"].append(sum(e.num_regular_gt > 0 for e in records[0]))
            rows["instances"].append(instances)
            rows["precision"].append(tp / (tp + fp) if tp + fp else 0.0)
            rows["recall"].append(tp / instances if instances else -1.0)
        out = {"classes": result["classes"], "images": np.array(rows["images"], dtype=np.int64),
               "instances": np.array(rows["instances"], dtype=np.int64),
               "precision": np.array(rows["precision"]), "recall": np.array(rows["recall"])}
        k_all = range(len(result["classes"]))
        out["map_50"] = np.array([self._stat(result, True, iou_threshold, k=k) for k in k_all])
        out["map"] = np.array([self._stat(result, True, k=k) for k in k_all])
        return out

    def pr_curves(self, iou_threshold: float = 0.5) -> dict[str, np.ndarray]:
        """Per-class precision-recall curves at IoU ``iou_threshold`` (area "all", the largest
        maxDets): ``recall [R]`` (the recall levels), ``precision [K, R]`` (the envelope, −1 for a
        class without objects), ``scores [K, R]`` (the score reaching each recall) and ``classes [K]``."""
        result = self._evaluate(pooled=False)
        t = self._iou_index(iou_threshold)
        if len(t) == 0:
            raise ValueError(f"MeanAveragePrecision.pr_curves: iou_threshold {iou_threshold} is not among the "
                             f"iou_thresholds {self.iou_thresholds.tolist()}")
        return {"classes": result["classes"], "recall": self.rec_thresholds.copy(),
                "precision": result["precision"][t[0], :, :, 0, -1].T.copy(),
                "scores": result["scores"][t[0], :, :, 0, -1].T.copy()}
