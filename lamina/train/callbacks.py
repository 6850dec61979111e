"""Training callbacks: early stopping, best-model checkpoints, learning-rate schedules, SWA,
gradient clipping and curriculum ordering.

A callback overrides any of ``on_train_begin``, ``on_epoch_begin``, ``on_after_backward``,
``on_batch_end``, ``on_epoch_end``, ``on_train_end``; each receives the ``Trainer``. Callbacks
with state implement ``state_dict``/``load_state_dict`` so a resumed run continues exactly.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .. import backend
from .ranks import unwrap, writes_files

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint", "LRSchedulerCallback", "GradientClipping", "SWA",
           "Curriculum"]

xp = backend.xp


class Callback:
    """Base class: every hook does nothing."""

    def on_train_begin(self, trainer: Any) -> None: ...

    def on_epoch_begin(self, trainer: Any, epoch: int) -> None: ...

    def on_after_backward(self, trainer: Any) -> None: ...

    def on_batch_end(self, trainer: Any, batch: int, logs: dict[str, float]) -> None: ...

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, float]) -> None: ...

    def on_train_end(self, trainer: Any) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def _monitored(logs: dict[str, float], monitor: str, who: str) -> float:
    if monitor not in logs:
        raise KeyError(f"{who}: monitored quantity {monitor!r} is not in the epoch logs ({', '.join(sorted(logs))})")
    return float(logs[monitor])


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs; with
    ``restore_best_weights`` the model gets the weights of its best epoch back when it stops.

    The training-loop face of :class:`lamina.optim.EarlyStopping`, which does the bookkeeping.

    Args:
        monitor: a key of the epoch logs (``'val_loss'``, ``'val_accuracy'`` …).
        mode: ``'min'`` or ``'max'`` (``'auto'``: max for accuracies, else min).
        patience, min_delta, restore_best_weights, baseline: as ``lamina.optim.EarlyStopping``.
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", patience: int = 5, min_delta: float = 0.0,
                 restore_best_weights: bool = False, baseline: float | None = None) -> None:
        from ..optim.early_stopping import EarlyStopping as _Stopper

        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.stopper = _Stopper(monitor, mode, patience, abs(min_delta), restore_best_weights, baseline)

    @property
    def stopped_epoch(self) -> int | None:
        return self.stopper.stopped_epoch

    @property
    def best(self) -> float:
        return self.stopper.best

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, float]) -> None:
        _monitored(logs, self.stopper.monitor, "EarlyStopping")
        if self.stopper.step(logs, trainer.model):
            trainer.stop_training = True

    def state_dict(self) -> dict[str, Any]:
        return self.stopper.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stopper.load_state_dict(state)


class ModelCheckpoint(Callback):
    """Save the model's ``state_dict`` (atomically) to ``path`` after every epoch, or only when
    ``monitor`` improves (``save_best_only``)."""

    def __init__(self, path: str | os.PathLike[str], monitor: str = "val_loss", mode: str = "auto",
                 save_best_only: bool = True) -> None:
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.path, self.monitor, self.mode, self.save_best_only = os.fspath(path), monitor, mode, save_best_only
        self.best = math.inf if mode == "min" else -math.inf

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, float]) -> None:
        from ..serialization import save

        if self.save_best_only:
            value = _monitored(logs, self.monitor, "ModelCheckpoint")
            better = value < self.best if self.mode == "min" else value > self.best
            if not better:
                return
            self.best = value
        if writes_files():
            save(unwrap(trainer.model).state_dict(), self.path)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]


class LRSchedulerCallback(Callback):
    """Step a learning-rate scheduler every epoch (``interval='epoch'``) or every batch
    (``'step'``); a ``ReduceLROnPlateau`` is stepped with the monitored value."""

    def __init__(self, scheduler: Any, interval: str = "epoch", monitor: str = "val_loss",
                 keep: tuple[str, ...] = ()) -> None:
        """``keep``: scheduler attributes whose constructed values survive ``load_state_dict`` —
        a run resumed with more epochs keeps its new horizon (e.g. ``T_max``)."""
        if interval not in ("epoch", "step"):
            raise ValueError(f"LRSchedulerCallback: interval must be 'epoch' or 'step', got {interval!r}")
        self.scheduler, self.interval, self.monitor, self.keep = scheduler, interval, monitor, keep

    def _plateau(self) -> bool:
        return type(self.scheduler).__name__ == "ReduceLROnPlateau"

    def on_batch_end(self, trainer: Any, batch: int, logs: dict[str, float]) -> None:
        if self.interval == "step" and not self._plateau():
            self.scheduler.step()

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, float]) -> None:
        if self._plateau():
            key = self.monitor if self.monitor in logs else "loss"
            self.scheduler.step(logs[key])
        elif self.interval == "epoch":
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return {"scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        kept = {k: getattr(self.scheduler, k) for k in self.keep if hasattr(self.scheduler, k)}
        self.scheduler.load_state_dict(state["scheduler"])
        changed = False
        for k, v in kept.items():
            changed = changed or getattr(self.scheduler, k) != v
            setattr(self.scheduler, k, v)
        closed = getattr(self.scheduler, "_get_closed_form_lr", None)
        if changed and closed is not None:  # re-place the current learning rate on the new schedule
            for group, lr in zip(self.scheduler.optimizer.param_groups, closed()):
                group["lr"] = lr
            self.scheduler._last_lr = [g["lr"] for g in self.scheduler.optimizer.param_groups]


class GradientClipping(Callback):
    """Clip gradients after each backward: by global norm (``max_norm``) and/or by value."""

    def __init__(self, max_norm: float | None = None, max_value: float | None = None, norm_type: float = 2.0) -> None:
        if max_norm is None and max_value is None:
            raise ValueError("GradientClipping: give max_norm and/or max_value")
        self.max_norm, self.max_value, self.norm_type = max_norm, max_value, norm_type

    def on_after_backward(self, trainer: Any) -> None:
        from ..nn.utils import clip_grad_norm_, clip_grad_value_

        params = [p for p in trainer.model.parameters() if p.grad is not None]
        if self.max_value is not None:
            clip_grad_value_(params, self.max_value)
        if self.max_norm is not None:
            trainer.last_grad_norm = float(clip_grad_norm_(params, self.max_norm, self.norm_type))


class SWA(Callback):
    """Stochastic Weight Averaging (Izmailov et al., 2018): from epoch ``swa_start`` on, average
    the weights after every epoch (``AveragedModel``), with the ``SWALR`` schedule; at the end,
    recompute batch-norm statistics (``update_bn``) and copy the average into the model."""

    def __init__(self, swa_start: int, swa_lr: float, anneal_epochs: int = 1, anneal_strategy: str = "cos") -> None:
        self.swa_start, self.swa_lr = swa_start, swa_lr
        self.anneal_epochs, self.anneal_strategy = anneal_epochs, anneal_strategy
        self.averaged: Any = None
        self.scheduler: Any = None

    def on_train_begin(self, trainer: Any) -> None:
        from ..optim.swa_utils import SWALR, AveragedModel

        self.averaged = AveragedModel(trainer.model)
        self.scheduler = SWALR(trainer.optimizer, swa_lr=self.swa_lr, anneal_epochs=self.anneal_epochs,
                               anneal_strategy=self.anneal_strategy)

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, float]) -> None:
        if epoch >= self.swa_start:
            self.averaged.update_parameters(trainer.model)
            self.scheduler.step()

    def on_train_end(self, trainer: Any) -> None:
        from ..optim.swa_utils import update_bn

        if self.averaged is None or int(self.averaged.n_averaged.item()) == 0:
            return
        update_bn(trainer.train_data, self.averaged)
        trainer.model.load_state_dict(self.averaged.module.state_dict())

    def state_dict(self) -> dict[str, Any]:
        if self.averaged is None:
            return {}
        return {"averaged": self.averaged.state_dict(), "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state and self.averaged is not None:
            self.averaged.load_state_dict(state["averaged"])
            self.scheduler.load_state_dict(state["scheduler"])


class Curriculum(Callback):
    """Curriculum learning (Bengio et al., 2009): present the training samples in an order that
    changes with the epoch — e.g. easy examples first.

    ``order_fn(epoch, trainer)`` returns the sample indices for that epoch (all of them, or the
    subset to train on). Build the loader with ``sampler=curriculum.sampler``.

    Example:
        >>> cb = Curriculum(lambda epoch, trainer: list(range(4))[::-1])
        >>> cb.on_epoch_begin(None, 0)
        >>> list(cb.sampler)
        [3, 2, 1, 0]
    """

    def __init__(self, order_fn: Callable[[int, Any], Sequence[int]], num_samples: int | None = None) -> None:
        self.order_fn = order_fn
        self.order: list[int] = list(range(num_samples)) if num_samples is not None else []
        self.sampler = _OrderSampler(self)

    def on_epoch_begin(self, trainer: Any, epoch: int) -> None:
        self.order = [int(i) for i in self.order_fn(epoch, trainer)]


class _OrderSampler:
    def __init__(self, owner: Curriculum) -> None:
        self.owner = owner

    def __iter__(self) -> Iterator[int]:
        return iter(list(self.owner.order))

    def __len__(self) -> int:
        return len(self.owner.order)
