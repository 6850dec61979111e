"""Evaluation of detection and segmentation runs: COCO AP through
:class:`lamina.train.detection_metrics.MeanAveragePrecision`, the per-class table of a detector
(images, instances, precision, recall, AP@0.5, AP@[.5:.95]) with its precision-recall curves, and
the pixel accuracy / IoU per class / mIoU of a segmenter."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor

__all__ = ["PRCurves", "SegmentationScores", "evaluate_detector", "evaluate_segmenter", "segmentation_output",
           "anchor_coverage", "coco_summary", "detection_table", "segmentation_table", "format_table"]


def _np(t: Any) -> np.ndarray:
    return np.asarray(t.detach().array if isinstance(t, Tensor) else t)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from ..vision.ops import box_iou

    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    return _np(box_iou(Tensor._wrap(a.astype(np.float32)), Tensor._wrap(b.astype(np.float32))))


class PRCurves:
    """Per-class detections matched to the ground truth at one IoU threshold (greedy by score, as
    COCO: a detection takes the unmatched ground-truth box it overlaps most), giving per-class
    precision-recall curves and the precision and recall at the score of the best F1."""

    def __init__(self, num_classes: int, iou_threshold: float = 0.5) -> None:
        self.k, self.thr = num_classes, iou_threshold
        self.scores: list[list[float]] = [[] for _ in range(num_classes)]
        self.tp: list[list[bool]] = [[] for _ in range(num_classes)]
        self.instances = np.zeros(num_classes, dtype=np.int64)
        self.images = np.zeros(num_classes, dtype=np.int64)

    def update(self, pred: dict[str, Any], target: dict[str, Any]) -> None:
        pb, ps, pl = _np(pred["boxes"]).reshape(-1, 4), _np(pred["scores"]), _np(pred["labels"]).astype(np.int64)
        tb, tl = _np(target["boxes"]).reshape(-1, 4), _np(target["labels"]).astype(np.int64)
        for c in np.unique(np.concatenate([pl, tl])):
            if not 0 < c < self.k:
                continue
            g, d = tb[tl == c], np.argsort(-ps[pl == c], kind="stable")
            boxes, scores = pb[pl == c][d], ps[pl == c][d]
            self.instances[c] += len(g)
            self.images[c] += int(len(g) > 0)
            iou, used = _iou(boxes, g), np.zeros(len(g), dtype=bool)
            for i in range(len(boxes)):
                j = int(np.argmax(np.where(used, -1.0, iou[i]))) if len(g) else -1
                hit = j >= 0 and not used[j] and iou[i, j] >= self.thr
                if hit:
                    used[j] = True
                self.scores[c].append(float(scores[i]))
                self.tp[c].append(bool(hit))

    def curve(self, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(recall, precision, score)`` of class ``c``, one point per detection by falling score."""
        s, tp = np.asarray(self.scores[c]), np.asarray(self.tp[c], dtype=bool)
        order = np.argsort(-s, kind="stable")
        s, tp = s[order], tp[order]
        ctp, cfp = np.cumsum(tp), np.cumsum(~tp)
        recall = ctp / max(int(self.instances[c]), 1)
        precision = ctp / np.maximum(ctp + cfp, 1)
        return recall, precision, s

    def best_f1(self, c: int) -> tuple[float, float]:
        """Precision and recall of class ``c`` at the score threshold of the highest F1."""
        r, p, _ = self.curve(c)
        if len(r) == 0:
            return 0.0, 0.0
        f1 = 2 * p * r / np.maximum(p + r, 1e-12)
        i = int(np.argmax(f1))
        return float(p[i]), float(r[i])


class SegmentationScores:
    """The confusion matrix of per-pixel predictions over ``num_classes`` (pixels labelled
    ``ignore_index`` skipped) and, as torchvision's segmentation references compute them, the
    global pixel accuracy, the IoU per class and their mean (classes never seen nor predicted
    count as IoU 0, as there)."""

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        self.k, self.ignore = num_classes, ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        p, t = np.asarray(pred).reshape(-1).astype(np.int64), np.asarray(target).reshape(-1).astype(np.int64)
        ok = (t != self.ignore) & (t >= 0) & (t < self.k)
        self.matrix += np.bincount(t[ok] * self.k + p[ok], minlength=self.k ** 2).reshape(self.k, self.k)

    def compute(self) -> dict[str, Any]:
        h = self.matrix.astype(np.float64)
        diag = np.diag(h)
        iou = diag / np.maximum(h.sum(1) + h.sum(0) - diag, 1)
        return {"pixel_accuracy": float(diag.sum() / max(h.sum(), 1)), "iou_per_class": iou.tolist(),
                "miou": float(iou.mean()), "confusion_matrix": self.matrix.tolist()}


def segmentation_output(out: Any) -> Tensor:
    """The class scores of a segmenter's output (DeepLab's dict ``{'out': …}`` or a Tensor)."""
    return out["out"] if isinstance(out, dict) else out


def evaluate_segmenter(model: Any, loader: Any, num_classes: int, keep: int = 0) -> dict[str, Any]:
    """Pixel accuracy, IoU per class and mIoU of ``model`` on ``loader``; with ``keep``, the first
    ``keep`` images with their ground truth and predicted maps (``examples``)."""
    model.eval()
    scores, examples = SegmentationScores(num_classes), []
    with no_grad():
        for x, y in loader:
            pred = _np(segmentation_output(model(x))).argmax(1)
            scores.update(pred, _np(y))
            for i in range(len(pred)):
                if len(examples) < keep:
                    examples.append((_np(x[i]), _np(y[i]), pred[i]))
    res = scores.compute()
    res["examples"] = examples
    return res


def evaluate_detector(model: Any, loader: Any, num_classes: int, masks: bool = False, keep: int = 0) -> dict[str, Any]:
    """COCO AP (box, and mask with ``masks``) of ``model`` on ``loader``, the per-class table and
    precision-recall curves at IoU 0.5 (:class:`PRCurves`), and with ``keep`` the first images
    with their targets and detections (``examples``)."""
    from .detection_metrics import MeanAveragePrecision

    model.eval()
    box = MeanAveragePrecision(iou_type="bbox", class_metrics=True)
    box50 = MeanAveragePrecision(iou_type="bbox", iou_thresholds=[0.5], class_metrics=True)
    segm = MeanAveragePrecision(iou_type="segm", class_metrics=True) if masks else None
    curves, examples, seen = PRCurves(num_classes), [], 0
    with no_grad():
        for images, targets in loader:
            seen += len(images)
            dets = model(images)
            box.update(dets, targets)
            box50.update(dets, targets)
            if segm is not None:
                segm.update([{**d, "masks": _np(d["masks"])[:, 0] > 0.5} for d in dets],
                            [{**t, "masks": _np(t["masks"]).astype(bool)} for t in targets])
            for img, d, t in zip(images, dets, targets):
                curves.update(d, t)
                if len(examples) < keep:
                    examples.append((_np(img), {k: _np(v) for k, v in t.items() if k in ("boxes", "labels", "masks")},
                                     {k: _np(v) for k, v in d.items()}))
    res: dict[str, Any] = {"box": _plain(box.compute()), "box50": _plain(box50.compute()), "curves": curves,
                           "examples": examples, "images": seen}
    if segm is not None:
        res["segm"] = _plain(segm.compute())
    return res


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        a = _np(v)
        out[k] = float(a) if a.ndim == 0 else a.tolist()
    return out


def anchor_coverage(model: Any, loader: Any, limit: int = 200) -> dict[str, Any] | None:
    """The share of ground-truth boxes whose best anchor reaches the RPN's foreground IoU
    threshold, for a model with ``rpn.anchor_generator`` (``None`` for one without anchors)."""
    from ..models.detection import ImageList

    rpn = getattr(model, "rpn", None)
    gen = getattr(rpn, "anchor_generator", None)
    if gen is None:
        return None
    thr = float(getattr(getattr(rpn, "proposal_matcher", None), "high_threshold", 0.7))
    best: list[float] = []
    model.eval()
    with no_grad():
        for images, targets in loader:
            batch = model.transform(images, targets) if hasattr(model, "transform") else None
            if batch is not None:
                image_list, targets = batch
            else:
                from ..ops.join import stack

                image_list = ImageList(stack(list(images)), [tuple(i.shape[-2:]) for i in images])
            feats = model.backbone(image_list.tensors)
            feats = list(feats.values()) if isinstance(feats, dict) else [feats]
            anchors = gen(image_list, feats)
            for a, t in zip(anchors, targets):
                iou = _iou(_np(t["boxes"]).reshape(-1, 4), _np(a))
                best += iou.max(1).tolist() if iou.size else []
            if len(best) >= limit:
                break
    b = np.asarray(best)
    return {"threshold": thr, "boxes": int(len(b)), "coverage": float((b >= thr).mean()) if len(b) else 0.0,
            "best_iou": b.tolist()}


_COCO_LINES = (("AP", "0.50:0.95", "all", 100, "map"), ("AP", "0.50", "all", 100, "map_50"),
               ("AP", "0.75", "all", 100, "map_75"), ("AP", "0.50:0.95", "small", 100, "map_small"),
               ("AP", "0.50:0.95", "medium", 100, "map_medium"), ("AP", "0.50:0.95", "large", 100, "map_large"),
               ("AR", "0.50:0.95", "all", 1, "mar_1"), ("AR", "0.50:0.95", "all", 10, "mar_10"),
               ("AR", "0.50:0.95", "all", 100, "mar_100"), ("AR", "0.50:0.95", "small", 100, "mar_small"),
               ("AR", "0.50:0.95", "medium", 100, "mar_medium"), ("AR", "0.50:0.95", "large", 100, "mar_large"))


def coco_summary(res: dict[str, Any]) -> str:
    """The 12 lines of pycocotools' ``COCOeval.summarize()`` for the results ``res`` of
    ``MeanAveragePrecision.compute()`` (-1: no ground truth in that area range)."""
    lines = []
    for kind, iou, area, dets, key in _COCO_LINES:
        title = "Average Precision" if kind == "AP" else "Average Recall"
        value = float(res.get(key, -1.0))
        lines.append(f" {title:<18} ({kind}) @[ IoU={iou:<9} | area={area:>6} | maxDets={dets:>3} ] = {value:.3f}")
    return "\n".join(lines)


def _per_class(values: Any, k: int) -> list[float]:
    """``map_per_class`` as one value per label 1..k-1 (a scalar when there is one class)."""
    a = np.atleast_1d(np.asarray(values, dtype=np.float64))
    return [float(a[c - 1]) if c - 1 < len(a) else -1.0 for c in range(1, k)]


def detection_table(classes: list[str], res: dict[str, Any]) -> list[list[str]]:
    """The per-class table of a detector's evaluation, a header row first: Class, Images,
    Instances, P and R (at the score of the best F1, IoU 0.5), mAP50, mAP50-95; the last row
    ``all`` sums the counts and averages the rest over the classes."""
    k, curves = len(classes), res["curves"]
    ap50, ap = _per_class(res["box50"]["map_per_class"], k), _per_class(res["box"]["map_per_class"], k)
    rows = [["Class", "Images", "Instances", "P", "R", "mAP50", "mAP50-95"]]
    pr = [curves.best_f1(c) for c in range(1, k)]
    for c in range(1, k):
        p, r = pr[c - 1]
        rows.append([classes[c], str(int(curves.images[c])), str(int(curves.instances[c])), f"{p:.3f}", f"{r:.3f}",
                     f"{ap50[c - 1]:.3f}", f"{ap[c - 1]:.3f}"])
    n_images = int(res.get("images", 0)) or int(curves.images.max(initial=0))
    rows.append(["all", str(n_images), str(int(curves.instances.sum())),
                 f"{np.mean([p for p, _ in pr]):.3f}" if pr else "0.000",
                 f"{np.mean([r for _, r in pr]):.3f}" if pr else "0.000",
                 f"{res['box']['map_50']:.3f}", f"{res['box']['map']:.3f}"])
    return rows


def segmentation_table(classes: list[str], res: dict[str, Any]) -> list[list[str]]:
    """Class and IoU per class, then the mean and the pixel accuracy."""
    rows = [["Class", "IoU"]] + [[c, f"{v:.3f}"] for c, v in zip(classes, res["iou_per_class"])]
    return rows + [["mIoU", f"{res['miou']:.3f}"], ["pixel accuracy", f"{res['pixel_accuracy']:.3f}"]]


def format_table(rows: list[list[str]]) -> str:
    """Rows as aligned text: the first column left, the others right."""
    widths = [max(len(r[j]) for r in rows) for j in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths)))
                     for r in rows)
