"""Training runs of detection and segmentation: the task steps of :class:`Trainer`
(``DetectionTrainer``, ``SegmentationTrainer``), and ``train_task_run`` / ``evaluate_task_run`` /
``load_task_run`` over run folders laid out as a classification run's (``config.json``,
``metrics.csv``, ``checkpoint.lamina``, ``report.html``)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from .. import nn
from .callbacks import Callback, EarlyStopping
from .checkpoint import load_checkpoint, load_part
from .report import write_config, write_metrics_csv
from .segmentation_metrics import MeanIoU
from .task_config import resolve_task_config
from .task_data import build_task_data, task_loader
from .task_eval import evaluate_detector, evaluate_segmenter, segmentation_output
from .task_models import apply_finetuning, build_task_model, gradual_unfreezing, param_groups
from .trainer import Trainer

__all__ = ["DetectionTrainer", "SegmentationTrainer", "segmentation_loss", "train_task_run", "evaluate_task_run",
           "load_task_run"]


class _PartsMixin:
    """Sums of the loss parts over an epoch, logged per key (``loss_box_reg``, ``val_loss_box_reg`` …)."""

    _parts: dict[str, float]

    def _add_parts(self, parts: dict[str, Any], n: int) -> None:
        for k, v in parts.items():
            self._parts[k] = self._parts.get(k, 0.0) + float(v.item()) * n
        self._parts["_seen"] = self._parts.get("_seen", 0.0) + n

    def _part_logs(self) -> dict[str, float]:
        seen = self._parts.pop("_seen", 0.0)
        return {k: v / seen for k, v in self._parts.items()} if seen else {}

    def _train_epoch(self, train_data: Any, epochs: int) -> dict[str, float]:
        self._parts = {}
        logs = super()._train_epoch(train_data, epochs)  # type: ignore[misc]
        logs.update(self._part_logs())
        return logs

    def evaluate(self, data: Any) -> dict[str, float]:
        self._parts = {}
        logs = super().evaluate(data)  # type: ignore[misc]
        logs.update(self._part_logs())
        return logs


class DetectionTrainer(_PartsMixin, Trainer):
    """:class:`Trainer` for torchvision-style detectors: batches are ``(images, targets)`` lists;
    the loss is the sum of the model's loss dict, each part logged under its own key; validation
    takes the losses in eval mode (``model(images, targets, return_losses=True)``)."""

    def __init__(self, model: Any, optimizer: Any, **kwargs: Any) -> None:
        super().__init__(model, None, optimizer, metrics=(), **kwargs)
        self._parts = {}

    def _forward_loss(self, batch: Any) -> tuple[Any, Any, Any, int]:
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise TypeError(f"DetectionTrainer: expected batches of (images, targets), got {type(batch).__name__}")
        images, targets = batch
        if self.model.training:
            losses = self.model(images, targets)
        else:
            losses, _ = self.model(images, targets, return_losses=True)
        if not isinstance(losses, dict) or not losses:
            raise TypeError(f"DetectionTrainer: the model gave {type(losses).__name__}, expected a dict of losses")
        total = None
        for v in losses.values():
            total = v if total is None else total + v
        self._add_parts(losses, len(images))
        return None, total, None, len(images)


def segmentation_loss(name: str = "ce", weight: Any = None, ignore_index: int = 255) -> Any:
    """``loss(scores (N, K, H, W), target (N, H, W)) → scalar``: cross-entropy (``'ce'``, with
    class ``weight`` and ``ignore_index``), soft Dice (``'dice'``), focal (``'focal'``) or
    ``'ce+dice'`` (their sum). The Dice is taken over the whole batch, one per class
    (``dice_loss(batch=True)``): the shapes' classes are each absent from most images, and a
    per-image Dice near 1 for every absent class would dilute the present ones'."""
    from ..nn import functional as F

    def ce(x: Any, y: Any) -> Any:
        return F.cross_entropy(x, y, weight=weight, ignore_index=ignore_index)

    def dice(x: Any, y: Any) -> Any:
        return F.dice_loss(x, y, ignore_index=ignore_index, batch=True)

    def focal(x: Any, y: Any) -> Any:
        return F.focal_loss(x, y, alpha=weight, ignore_index=ignore_index)

    table = {"ce": ce, "dice": dice, "focal": focal, "ce+dice": lambda x, y: ce(x, y) + dice(x, y)}
    if name not in table:
        raise ValueError(f"unknown segmentation loss {name!r}; known: {', '.join(table)}")
    return table[name]


class SegmentationTrainer(_PartsMixin, Trainer):
    """:class:`Trainer` for segmenters: ``(N, 3, H, W)`` images and ``(N, H, W)`` class maps; the
    model's scores (a Tensor, or DeepLab's ``{'out', 'aux'}``: the auxiliary loss weighted 0.5 as
    torchvision's references do) go to ``loss_fn``; ``miou`` is logged for training and
    validation."""

    def __init__(self, model: Any, loss_fn: Any, optimizer: Any, num_classes: int, **kwargs: Any) -> None:
        super().__init__(model, loss_fn, optimizer, metrics=(MeanIoU(num_classes),), **kwargs)
        self._parts = {}

    def _forward_loss(self, batch: Any) -> tuple[Any, Any, Any, int]:
        x, y = batch
        out = self.model(x)
        scores = segmentation_output(out)
        loss = self.loss_fn(scores, y)
        if isinstance(out, dict) and out.get("aux") is not None:
            aux = self.loss_fn(out["aux"], y)
            self._add_parts({"loss_out": loss, "loss_aux": aux}, x.shape[0])
            loss = loss + aux * 0.5
        return scores, loss, y, x.shape[0]


def _trainer(config: dict[str, Any], model: nn.Module, steps: int, checkpoint: str, log: Any,
             progress: bool | None) -> Trainer:
    from .callbacks import GradientClipping
    from .run import SCHEDULER_KEEP, build_optimizer, build_scheduler

    opt = build_optimizer(config, param_groups(model, config))
    sched, interval = build_scheduler(config, opt, steps)
    callbacks: list[Callback] = []
    if int(config.get("unfreeze_every") or 0) > 0:
        callbacks.append(gradual_unfreezing(model, int(config["unfreeze_every"]), log))
    if int(config.get("early_stopping") or 0) > 0:
        callbacks.append(EarlyStopping("val_loss", patience=int(config["early_stopping"]), restore_best_weights=True))
    if config.get("grad_clip"):
        callbacks.append(GradientClipping(max_norm=float(config["grad_clip"])))
    kw = dict(scheduler=sched, scheduler_interval=interval, callbacks=callbacks, checkpoint_path=checkpoint,
              progress=progress, log=log, scheduler_keep=SCHEDULER_KEEP)
    if config["task"] == "detect":
        return DetectionTrainer(model, opt, **kw)
    import lamina

    w = config.get("class_weights")
    loss = segmentation_loss(config.get("loss", "ce"), lamina.tensor(w) if w is not None else None)
    return SegmentationTrainer(model, loss, opt, len(config["classes"]), **kw)


def _evaluate(config: dict[str, Any], model: nn.Module, loader: Any, keep: int = 0) -> dict[str, Any]:
    k = len(config["classes"])
    if config["task"] == "segment":
        return evaluate_segmenter(model, loader, k, keep)
    return evaluate_detector(model, loader, k, int(config["image_size"]), masks=config["model"] == "maskrcnn",
                             keep=keep)


def headline(config: dict[str, Any], res: dict[str, Any]) -> str:
    """The one line of a task run's test result."""
    if config["task"] == "segment":
        return f"test mIoU {res['miou']:.4f}  pixel accuracy {res['pixel_accuracy']:.4f}"
    line = f"test mAP@0.5 {res['box']['map_50']:.4f}  mAP@[.5:.95] {res['box']['map']:.4f}"
    if "segm" in res:
        line += f"  mask mAP@0.5 {res['segm']['map_50']:.4f}  mask mAP {res['segm']['map']:.4f}"
    return line


def _scalars(res: dict[str, Any]) -> dict[str, Any]:
    """What of an evaluation goes to ``results.json`` (numbers and lists, no arrays, no examples)."""
    return {k: v for k, v in res.items() if k != "examples"}


def train_task_run(config: dict[str, Any], run_dir: str, resume: str | None = None, log: Any = print,
                   progress: bool | None = None, report: bool = True) -> dict[str, Any]:
    """Train a detection or segmentation run as ``config`` says, writing ``run_dir``; returns the
    test evaluation (and ``train_seconds``). The data and model are built before ``run_dir`` is
    created, so a run that cannot start leaves no folder."""
    from ..backend import manual_seed
    from .report import atomic_write_text
    from .run import split_validation

    config = resolve_task_config({}, config) if resume else resolve_task_config(config)
    seed = int(config.get("seed", 0))
    manual_seed(seed)
    full_train, test_ds = build_task_data(config, True), build_task_data(config, False)
    model = build_task_model(config)
    apply_finetuning(model, config, log if resume is None else None, load_weights=resume is None)
    os.makedirs(run_dir, exist_ok=True)
    train_ds, val_ds = split_validation(full_train, float(config.get("val_fraction", 0.1)), seed)
    train_loader, val_loader = task_loader(config, train_ds, True), task_loader(config, val_ds, False)
    checkpoint = os.path.join(run_dir, "checkpoint.lamina")
    trainer = _trainer(config, model, len(train_loader), checkpoint, log, progress)
    trainer.checkpoint_extra = {"config": json.dumps(config)}
    write_config(config, os.path.join(run_dir, "config.json"))
    t0 = time.perf_counter()
    history = trainer.fit(train_loader, int(config["epochs"]), val_data=val_loader, resume=resume)
    elapsed = time.perf_counter() - t0
    trainer.save_checkpoint(checkpoint)
    write_metrics_csv(history, os.path.join(run_dir, "metrics.csv"))
    res = _evaluate(config, model, task_loader(config, test_ds, False), keep=8)
    res["train_seconds"] = elapsed
    atomic_write_text(os.path.join(run_dir, "results.json"), json.dumps(_scalars(res), indent=1) + "\n")
    if report:
        from .task_report import write_task_report

        write_task_report(run_dir, config, history, model, res, test_ds)
    return res


def load_task_run(path: str, ck: dict[str, Any] | None = None) -> tuple[dict[str, Any], nn.Module]:
    """(config, model with the checkpoint's weights, in eval mode) of a task run folder or checkpoint."""
    from .run import resolve_checkpoint

    ck_path = resolve_checkpoint(path)
    ck = ck if ck is not None else load_checkpoint(ck_path)
    config = resolve_task_config({}, json.loads(ck["config"]))
    model = build_task_model(config)
    load_part(model, ck.get("model"), ck_path, "model")
    model.eval()
    return config, model


def evaluate_task_run(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config, evaluation on the run's test data) of a task run folder or checkpoint."""
    config, model = load_task_run(path)
    return config, _evaluate(config, model, task_loader(config, build_task_data(config, False), False))
