"""Evaluation of detection and segmentation runs: COCO AP through
:class:`lamina.train.detection_metrics.MeanAveragePrecision` with its summary, per-class table
(images, instances, precision, recall, AP@0.5, AP@[.5:.95]) and precision-recall curves; the
anchor coverage of an anchor-based detector; the pixel accuracy / IoU per class / mIoU of a
segmenter."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor

__all__ = ["evaluate_detector", "evaluate_segmenter", "segmentation_output",
           "anchor_coverage", "detection_table", "segmentation_table", "format_table"]


def _np(t: Any) -> np.ndarray:
    return np.asarray(t.detach().array if isinstance(t, Tensor) else t)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from ..vision.ops import box_iou

    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    return _np(box_iou(Tensor._wrap(a.astype(np.float32)), Tensor._wrap(b.astype(np.float32))))


def segmentation_output(out: Any) -> Tensor:
    """The class scores of a segmenter's output (DeepLab's dict ``{'out': …}`` or a Tensor)."""
    return out["out"] if isinstance(out, dict) else out


def evaluate_segmenter(model: Any, loader: Any, num_classes: int, keep: int = 0) -> dict[str, Any]:
    """Pixel accuracy, IoU per class (nan for a class in neither the targets nor the predictions),
    mIoU (their mean, nan left out) and the confusion matrix of ``model`` on ``loader`` (pixels
    labelled 255 ignored), by :class:`~lamina.train.segmentation_metrics.SegmentationConfusionMatrix`;
    with ``keep``, the first ``keep`` images with their ground truth and predicted maps (``examples``)."""
    from .segmentation_metrics import SegmentationConfusionMatrix

    model.eval()
    cm, examples = SegmentationConfusionMatrix(num_classes), []
    with no_grad():
        for x, y in loader:
            pred = _np(segmentation_output(model(x))).argmax(1)
            cm.update(pred, _np(y))
            for i in range(len(pred)):
                if len(examples) < keep:
                    examples.append((_np(x[i]), _np(y[i]), pred[i]))
    r = cm.results()
    return {"pixel_accuracy": r["acc_global"], "iou_per_class": [float(v) for v in r["iu"]], "miou": r["miou"],
            "confusion_matrix": cm.compute().tolist(), "examples": examples}


def evaluate_detector(model: Any, loader: Any, num_classes: int, image_size: int, masks: bool = False,
                      keep: int = 0, score_threshold: float = 0.5) -> dict[str, Any]:
    """COCO AP of ``model`` on ``loader`` by :class:`~lamina.train.detection_metrics.MeanAveragePrecision`
    (boxes: ``box``, and masks with ``masks``: ``segm``; area ranges relative to the
    ``image_size`` images), each with its 12-line ``summary``, the per-class ``table``
    (precision and recall of the detections scoring ≥ ``score_threshold`` at IoU 0.5) and the
    ``pr`` curves at IoU 0.5; ``images`` counted; with ``keep`` the first images with their
    targets and detections (``examples``)."""
    from .detection_metrics import MeanAveragePrecision

    model.eval()
    opts = dict(class_metrics=True, area_ranges="relative", image_size=(image_size, image_size))
    metrics = {"box": MeanAveragePrecision(iou_type="bbox", **opts)}
    if masks:
        metrics["segm"] = MeanAveragePrecision(iou_type="segm", **opts)
    examples: list[Any] = []
    seen = 0
    with no_grad():
        for images, targets in loader:
            seen += len(images)
            dets = model(images)
            for m in metrics.values():
                m.update(dets, targets)
            for img, d, t in zip(images, dets, targets):
                if len(examples) < keep:
                    examples.append((_np(img), {k: _np(v) for k, v in t.items() if k in ("boxes", "labels", "masks")},
                                     {k: _np(v) for k, v in d.items()}))
    res: dict[str, Any] = {"images": seen, "examples": examples}
    with warnings.catch_warnings():
        # tiny images hold no COCO-"large" objects: the -1 in the summary says so already
        warnings.simplefilter("ignore", UserWarning)
        for name, m in metrics.items():
            res[name] = _plain(m.compute())
            res[f"{name}_summary"] = m.summary()
            res[f"{name}_table"] = _plain(m.per_class(score_threshold=score_threshold))
            res[f"{name}_pr"] = _plain(m.pr_curves())
    return res


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        a = np.asarray(v)
        out[k] = a.item() if a.ndim == 0 else a.tolist()
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


def detection_table(classes: list[str], res: dict[str, Any], kind: str = "box") -> list[list[str]]:
    """The per-class table of a detector's evaluation (``kind`` ``'box'`` or ``'segm'``), a header
    row first: Class, Images, Instances, P, R, mAP50, mAP50-95; the last row ``all`` counts the
    test images and objects, averages P and R over the classes with objects and gives the COCO
    ``map_50`` and ``map``."""
    t = res[f"{kind}_table"]
    rows = [["Class", "Images", "Instances", "P", "R", "mAP50", "mAP50-95"]]
    ps, rs = [], []
    for i, c in enumerate(t["classes"]):
        name = classes[int(c)] if 0 <= int(c) < len(classes) else str(c)
        p, r = float(t["precision"][i]), float(t["recall"][i])
        if r >= 0:
            ps.append(p)
            rs.append(r)
        rows.append([name, str(int(t["images"][i])), str(int(t["instances"][i])), f"{p:.3f}",
                     f"{r:.3f}" if r >= 0 else "-", f"{float(t['map_50'][i]):.3f}", f"{float(t['map'][i]):.3f}"])
    rows.append(["all", str(int(res["images"])), str(int(sum(int(v) for v in t["instances"]))),
                 f"{np.mean(ps):.3f}" if ps else "-", f"{np.mean(rs):.3f}" if rs else "-",
                 f"{res[kind]['map_50']:.3f}", f"{res[kind]['map']:.3f}"])
    return rows


def segmentation_table(classes: list[str], res: dict[str, Any]) -> list[list[str]]:
    """Class and IoU per class (``-``: the class is in neither the targets nor the predictions),
    then the mean and the pixel accuracy."""
    rows = [["Class", "IoU"]] + [[c, f"{v:.3f}" if v == v else "-"] for c, v in zip(classes, res["iou_per_class"])]
    return rows + [["mIoU", f"{res['miou']:.3f}"], ["pixel accuracy", f"{res['pixel_accuracy']:.3f}"]]


def format_table(rows: list[list[str]]) -> str:
    """Rows as aligned text: the first column left, the others right."""
    widths = [max(len(r[j]) for r in rows) for j in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths)))
                     for r in rows)
