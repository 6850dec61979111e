"""Semantic-segmentation metrics from one pixel confusion matrix, with torchvision's references'
definitions (``references/segmentation/utils.py``, ``ConfusionMatrix``):

- ``acc_global`` (pixel accuracy) ``= Σᵢ C[i, i] / Σ C``,
- ``acc[i]`` (per-class accuracy, the recall of class ``i``) ``= C[i, i] / Σⱼ C[i, j]``,
- ``iu[i]`` (per-class IoU) ``= C[i, i] / (Σⱼ C[i, j] + Σⱼ C[j, i] − C[i, i])``,

where ``C[i, j]`` counts the pixels of true class ``i`` predicted as ``j``. Pixels whose target is
``ignore_index`` (255, the VOC border) or outside ``0..num_classes−1`` are not counted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .metrics import Metric, _arr

__all__ = ["SegmentationConfusionMatrix", "MeanIoU", "PixelAccuracy"]


class SegmentationConfusionMatrix(Metric):
    """The ``[num_classes, num_classes]`` pixel confusion matrix and the scores read from it.

    ``update(output, target)``: ``output`` is logits/scores ``(N, C, H, W)`` (arg-max over ``C``)
    or predicted labels ``(N, H, W)``; ``target`` is class indices ``(N, H, W)``. ``compute()``
    returns the matrix; :meth:`results` returns torchvision's ``acc_global``, ``acc``, ``iu`` and
    ``miou``. A class without any pixel in the target has ``acc`` nan; a class absent from both
    target and prediction has ``iu`` nan and is left out of ``miou`` (torchvision's ``iu.mean()``
    would turn nan; both agree when every class occurs).

    Example:
        >>> import lamina
        >>> m = SegmentationConfusionMatrix(2)
        >>> m.update(lamina.tensor([[[0, 1], [1, 1]]]), lamina.tensor([[[0, 1], [0, 255]]]))
        >>> m.compute().tolist()
        [[1, 1], [0, 1]]
        >>> round(m.results()["miou"], 4)
        0.5
    """

    name = "segmentation_confusion_matrix"

    def __init__(self, num_classes: int, ignore_index: int | None = 255) -> None:
        if int(num_classes) < 1:
            raise ValueError(f"{type(self).__name__}: num_classes must be at least 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.reset()

    def reset(self) -> None:
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, output: Any, target: Any) -> None:
        op = f"{type(self).__name__}.update"
        o, t = np.asarray(_arr(output)), np.asarray(_arr(target))
        if t.dtype.kind not in "iu":
            raise TypeError(f"{op}: target must hold integer class indices, got dtype {t.dtype}")
        if o.ndim == t.ndim + 1:
            if o.shape[1] != self.num_classes:
                raise ValueError(f"{op}: output has {o.shape[1]} class scores but num_classes is {self.num_classes}")
            pred = o.argmax(1)
        elif o.ndim == t.ndim and o.dtype.kind in "iu":
            pred = o
        else:
            raise ValueError(f"{op}: output must be scores (N, C, H, W) or labels of the target's shape, got "
                             f"output {o.shape} ({o.dtype}) and target {t.shape}")
        if pred.shape != t.shape:
            raise ValueError(f"{op}: prediction of shape {pred.shape} does not match target of shape {t.shape}")
        t, pred = t.reshape(-1).astype(np.int64), pred.reshape(-1).astype(np.int64)
        keep = (t >= 0) & (t < self.num_classes)
        if self.ignore_index is not None:
            keep &= t != self.ignore_index
        t, pred = t[keep], pred[keep]
        if pred.size and (pred.min() < 0 or pred.max() >= self.num_classes):
            raise ValueError(f"{op}: predicted labels must lie in 0..{self.num_classes - 1}, "
                             f"got {pred.min()}..{pred.max()}")
        n = self.num_classes
        # torchvision's bincount of n·target + prediction
        self.matrix += np.bincount(n * t + pred, minlength=n * n).reshape(n, n)

    def compute(self) -> Any:
        return self.matrix.copy()

    def results(self) -> dict[str, Any]:
        """``acc_global`` (float), ``acc`` and ``iu`` (arrays per class), ``miou`` (float)."""
        h = self.matrix.astype(np.float64)
        diag = np.diag(h)
        with np.errstate(divide="ignore", invalid="ignore"):
            acc_global = float(diag.sum() / h.sum()) if h.sum() else float("nan")
            acc = diag / h.sum(1)
            iu = diag / (h.sum(1) + h.sum(0) - diag)
        miou = float(np.nanmean(iu)) if np.isfinite(iu).any() else float("nan")
        return {"acc_global": acc_global, "acc": acc, "iu": iu, "miou": miou}

    def __str__(self) -> str:
        r = self.results()
        return (f"global correct: {r['acc_global'] * 100:.1f}\naverage row correct: "
                f"{[f'{i:.1f}' for i in (r['acc'] * 100).tolist()]}\nIoU: "
                f"{[f'{i:.1f}' for i in (r['iu'] * 100).tolist()]}\nmean IoU: {r['miou'] * 100:.1f}")


class MeanIoU(SegmentationConfusionMatrix):
    """The mean over classes of the per-class IoU (``compute()`` → float; see
    :class:`SegmentationConfusionMatrix`)."""

    name = "miou"

    def compute(self) -> float:
        return self.results()["miou"]


class PixelAccuracy(SegmentationConfusionMatrix):
    """The share of counted pixels predicted right (``compute()`` → float)."""

    name = "pixel_accuracy"

    def compute(self) -> float:
        return self.results()["acc_global"]
