"""``EarlyStopping``: stop training when a monitored metric stops improving (beyond torch)."""

from __future__ import annotations

import math
from typing import Any

from .. import backend

__all__ = ["EarlyStopping"]

xp = backend.xp


class EarlyStopping:
    """Watch a metric once per epoch and say when to stop; optionally keep the best weights.

    An epoch *improves* when the value beats the best so far by more than ``min_delta``
    (``value < best - min_delta`` in ``'min'`` mode, ``value > best + min_delta`` in
    ``'max'``). After ``patience`` epochs in a row without improvement, ``step`` returns True
    (and ``should_stop`` becomes True). With ``restore_best_weights``, the model's state at the
    best epoch is kept (copied) and loaded back into the model when training stops (or on
    ``restore(model)``).

    Args:
        monitor: the metric's name, used when ``step`` is given a dict of metrics
            (default ``'val_loss'``).
        mode: ``'min'`` or ``'max'``.
        patience: epochs without improvement to tolerate (default 5).
        min_delta: the least change that counts as improvement (default 0).
        restore_best_weights: keep and restore the best model state (default False).
        baseline: a value the metric must beat before any epoch counts as improvement.

    Example:
        >>> from lamina.optim import EarlyStopping
        >>> stopper = EarlyStopping(patience=2)
        >>> [stopper.step(v) for v in [1.0, 0.8, 0.9, 0.85]]
        [False, False, False, True]
        >>> stopper.best, stopper.best_epoch
        (0.8, 1)
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "min", patience: int = 5, min_delta: float = 0.0,
                 restore_best_weights: bool = False, baseline: float | None = None) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max' (got {mode!r})")
        if patience < 0:
            raise ValueError(f"EarlyStopping: patience must be >= 0 (got {patience})")
        if min_delta < 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0 (got {min_delta})")
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.min_delta, self.restore_best_weights, self.baseline = min_delta, restore_best_weights, baseline
        self.reset()

    def reset(self) -> None:
        """Forget everything seen so far."""
        worst = math.inf if self.mode == "min" else -math.inf
        self.best = worst if self.baseline is None else float(self.baseline)
        self.best_epoch: int | None = None
        self.epoch = -1
        self.num_bad_epochs = 0
        self.should_stop = False
        self.stopped_epoch: int | None = None
        self.best_state: dict[str, Any] | None = None

    def is_improvement(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, value: Any, model: Any = None) -> bool:
        """Record this epoch's metric (a number, a 0-d tensor, or a dict holding ``monitor``);
        returns True when training should stop. Pass ``model`` to keep its best weights."""
        if isinstance(value, dict):
            if self.monitor not in value:
                raise KeyError(f"EarlyStopping: monitored metric {self.monitor!r} not in {sorted(value)}")
            value = value[self.monitor]
        value = float(value)
        self.epoch += 1
        if self.is_improvement(value):
            self.best, self.best_epoch, self.num_bad_epochs = value, self.epoch, 0
            if self.restore_best_weights and model is not None:
                self.best_state = {k: xp.array(v.array if hasattr(v, "array") else v, copy=True)
                                   for k, v in model.state_dict().items()}
            return self.should_stop
        self.num_bad_epochs += 1
        if self.num_bad_epochs >= self.patience:
            if not self.should_stop:
                self.should_stop, self.stopped_epoch = True, self.epoch
                if self.restore_best_weights and model is not None:
                    self.restore(model)
        return self.should_stop

    __call__ = step

    def restore(self, model: Any) -> None:
        """Load the best weights seen into ``model`` (needs ``restore_best_weights``)."""
        if self.best_state is None:
            raise RuntimeError("EarlyStopping.restore: no best weights were kept (pass restore_best_weights=True "
                               "and the model to step())")
        model.load_state_dict(self.best_state)

    def state_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update(state_dict)
