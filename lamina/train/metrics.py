"""Streaming metrics: update batch by batch, ``compute()`` at the end of an epoch.

Classification: ``Accuracy``, ``TopKAccuracy``, ``ConfusionMatrix`` (with per-class precision,
recall and F1). Regression: ``MeanSquaredError``, ``MeanAbsoluteError``. Outputs are logits or
scores ``(N, C)`` (or ``(N, C, *)`` per pixel); targets are class indices.
"""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd.tensor import Tensor

__all__ = ["Metric", "Accuracy", "TopKAccuracy", "ConfusionMatrix", "MeanSquaredError", "MeanAbsoluteError",
           "get_metric"]

xp = backend.xp


def _arr(t: Any) -> Any:
    return t.detach().array if isinstance(t, Tensor) else xp.asarray(t)


def _flat_scores(output: Any, target: Any) -> tuple[Any, Any]:
    """``(N, C, *)`` scores and ``(N, *)`` targets → ``(M, C)`` and ``(M,)``."""
    o, t = _arr(output), _arr(target)
    if o.ndim > 2:
        o = xp.moveaxis(o, 1, -1).reshape(-1, o.shape[1])
        t = t.reshape(-1)
    return o, t.astype(xp.int64)


class Metric:
    """Base class: ``reset()``, ``update(output, target)``, ``compute()``; ``name`` labels it."""

    name = "metric"
    higher_is_better = True

    def reset(self) -> None:
        raise NotImplementedError

    def update(self, output: Any, target: Any) -> None:
        raise NotImplementedError

    def compute(self) -> Any:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """The running sums (so an interrupted epoch resumes with them)."""
        return dict(vars(self))

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class Accuracy(Metric):
    """Fraction of samples whose arg-max score is the target class (``ignore_index`` skipped)."""

    name = "accuracy"

    def __init__(self, ignore_index: int | None = None) -> None:
        self.ignore_index = ignore_index
        self.reset()

    def reset(self) -> None:
        self.correct = 0
        self.total = 0

    def update(self, output: Any, target: Any) -> None:
        o, t = _flat_scores(output, target)
        keep = t != self.ignore_index if self.ignore_index is not None else slice(None)
        pred = o.argmax(1)
        self.correct += int((pred[keep] == t[keep]).sum())
        self.total += int(t[keep].size)

    def compute(self) -> float:
        return self.correct / self.total if self.total else float("nan")


class TopKAccuracy(Accuracy):
    """Fraction of samples whose target is among the ``k`` highest scores."""

    def __init__(self, k: int = 5) -> None:
        self.k = k
        self.name = f"top{k}_accuracy"
        super().__init__()

    def update(self, output: Any, target: Any) -> None:
        o, t = _flat_scores(output, target)
        k = min(self.k, o.shape[1])
        top = xp.argpartition(-o, k - 1, axis=1)[:, :k]
        self.correct += int((top == t[:, None]).any(1).sum())
        self.total += int(t.size)


class ConfusionMatrix(Metric):
    """``C[i, j]`` = number of samples of true class ``i`` predicted as ``j``; also per-class
    precision ``C[j, j]/Σᵢ C[i, j]``, recall ``C[i, i]/Σⱼ C[i, j]`` and F1."""

    name = "confusion_matrix"

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.reset()

    def reset(self) -> None:
        self.matrix = xp.zeros((self.num_classes, self.num_classes), dtype=xp.int64)

    def update(self, output: Any, target: Any) -> None:
        o, t = _flat_scores(output, target)
        pred = o.argmax(1)
        ok = (t >= 0) & (t < self.num_classes)
        xp.add.at(self.matrix, (t[ok], pred[ok]), 1)

    def compute(self) -> Any:
        return self.matrix.copy()

    def precision(self) -> Any:
        col = self.matrix.sum(0)
        return xp.where(col > 0, xp.diag(self.matrix) / xp.maximum(col, 1), 0.0)

    def recall(self) -> Any:
        row = self.matrix.sum(1)
        return xp.where(row > 0, xp.diag(self.matrix) / xp.maximum(row, 1), 0.0)

    def f1(self) -> Any:
        p, r = self.precision(), self.recall()
        return xp.where(p + r > 0, 2 * p * r / xp.maximum(p + r, 1e-300), 0.0)


class MeanSquaredError(Metric):
    """Mean of ``(output − target)²`` over all elements."""

    name = "mse"
    higher_is_better = False

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sum = 0.0
        self.count = 0

    def update(self, output: Any, target: Any) -> None:
        d = _arr(output).astype(xp.float64) - _arr(target).reshape(_arr(output).shape).astype(xp.float64)
        self.sum += float(self._f(d).sum())
        self.count += d.size

    @staticmethod
    def _f(d: Any) -> Any:
        return d * d

    def compute(self) -> float:
        return self.sum / self.count if self.count else float("nan")


class MeanAbsoluteError(MeanSquaredError):
    """Mean of ``|output − target|``."""

    name = "mae"

    @staticmethod
    def _f(d: Any) -> Any:
        return xp.abs(d)


def get_metric(name: str, num_classes: int | None = None) -> Metric:
    """A metric by name: ``accuracy``, ``top5`` (any ``topK``), ``confusion_matrix``, ``mse``, ``mae``, and the
    segmentation metrics ``miou`` and ``pixel_accuracy`` (these three need ``num_classes``)."""
    if name == "accuracy":
        return Accuracy()
    if name.startswith("top") and name[3:].isdigit():
        return TopKAccuracy(int(name[3:]))
    if name in ("confusion_matrix", "miou", "pixel_accuracy") and num_classes is None:
        raise ValueError(f"get_metric: {name} needs num_classes")
    if name == "confusion_matrix":
        return ConfusionMatrix(num_classes)
    if name in ("miou", "pixel_accuracy"):
        from .segmentation_metrics import MeanIoU, PixelAccuracy  # that file builds on this one

        return MeanIoU(num_classes) if name == "miou" else PixelAccuracy(num_classes)
    if name == "mse":
        return MeanSquaredError()
    if name == "mae":
        return MeanAbsoluteError()
    raise ValueError(f"get_metric: unknown metric {name!r} (accuracy, topK, confusion_matrix, mse, mae, miou, "
                     "pixel_accuracy)")
