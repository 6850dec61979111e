"""``Trainer``: the training loop — epochs of mini-batches, metrics, validation, callbacks, a
progress bar, checkpoints that resume exactly, a clean stop on Ctrl-C or SIGTERM, and a loud one on NaN.

Example:
    >>> import lamina
    >>> from lamina import nn
    >>> from lamina.train import Trainer
    >>> X, y = lamina.randn(64, 2), (lamina.rand(64) > 0.5).long()
    >>> model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> opt = lamina.optim.SGD(model.parameters(), lr=0.1)
    >>> batches = [(X[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    >>> history = Trainer(model, nn.CrossEntropyLoss(), opt, progress=False).fit(batches, epochs=2)
    >>> sorted(history[-1])
    ['accuracy', 'epoch', 'loss', 'lr', 'samples_per_s', 'time']
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from .. import backend
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from .callbacks import Callback, LRSchedulerCallback
from .checkpoint import CheckpointError, load_checkpoint, load_part, save_checkpoint, set_rng_state
from .metrics import Metric, get_metric
from .ranks import any_rank, unwrap, writes_files

__all__ = ["Trainer", "TrainingError", "TrainingInterrupted"]

xp = backend.xp


class TrainingError(RuntimeError):
    """Training cannot go on (a NaN or infinite loss …); the message names the step and the last
    good checkpoint."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM stopped training after a checkpoint was written to ``path``;
    ``signal`` is the signal's number."""

    def __init__(self, path: str | None, signal: int = 2) -> None:
        super().__init__(f"training interrupted; checkpoint saved to {path}" if path else "training interrupted")
        self.path = path
        self.signal = signal


def _batch_size(x: Any) -> int:
    if isinstance(x, Tensor):
        return x.shape[0] if x.ndim else 1
    if isinstance(x, (tuple, list)) and x:
        return _batch_size(x[0])
    if isinstance(x, dict) and x:
        return _batch_size(next(iter(x.values())))
    return 1


class Trainer:
    """Train ``model`` with ``loss_fn`` and ``optimizer``.

    Args:
        model: a ``lamina.nn.Module``.
        loss_fn: ``loss_fn(output, target) → scalar Tensor``.
        optimizer: a ``lamina.optim`` optimizer over the model's parameters.
        scheduler: an LR scheduler, stepped every epoch (or every batch with
            ``scheduler_interval='step'``; a ``ReduceLROnPlateau`` with ``monitor``).
        metrics: metric names (``'accuracy'``, ``'top5'``, ``'mse'``, ``'mae'``) or ``Metric`` objects,
            computed on the training and validation data each epoch.
        callbacks: ``Callback`` objects (early stopping, checkpoints, SWA, gradient clipping …).
        checkpoint_path: write a full checkpoint here after every ``checkpoint_every`` epochs (and
            on Ctrl-C or SIGTERM); ``fit(resume=path)`` continues from one.
        scheduler_keep: scheduler attributes that keep their new values when resuming (e.g.
            ``('T_max',)`` so that a run resumed with more epochs follows the longer schedule).
        progress: show a tqdm bar (default: only when stderr is a terminal and tqdm is installed).
        log: a function receiving one summary line per epoch (default: none).

    ``fit`` returns the history: one dict per epoch (``loss``, metrics, ``val_…``, ``lr``, ``time``,
    ``samples_per_s``).
    """

    def __init__(self, model: Any, loss_fn: Any, optimizer: Any, scheduler: Any = None,
                 metrics: Sequence[Any] = ("accuracy",), callbacks: Sequence[Callback] = (),
                 checkpoint_path: str | os.PathLike[str] | None = None, checkpoint_every: int = 1,
                 progress: bool | None = None, log: Any = None, scheduler_interval: str = "epoch",
                 monitor: str = "val_loss", scheduler_keep: tuple[str, ...] = ()) -> None:
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.metrics: list[Metric] = [get_metric(m) if isinstance(m, str) else m for m in metrics]
        self.callbacks: list[Callback] = list(callbacks)
        self.scheduler = scheduler
        if scheduler is not None:
            self.callbacks.insert(0, LRSchedulerCallback(scheduler, scheduler_interval, monitor, scheduler_keep))
        self.checkpoint_path = os.fspath(checkpoint_path) if checkpoint_path is not None else None
        self.checkpoint_every = checkpoint_every
        self.progress, self.log = progress, log
        self.epoch = 0  # completed epochs
        self.step = 0  # optimizer steps taken
        self.history: list[dict[str, float]] = []
        self.stop_training = False
        self.last_checkpoint: str | None = None
        self.train_data: Any = None
        self._interrupted = 0
        self._resume_skip = 0
        self._resume_rng: Any = None
        self._partial: dict[str, Any] | None = None
        self.checkpoint_extra: dict[str, Any] = {}  # stored in every checkpoint (e.g. the run config)

    # --- state --------------------------------------------------------------------------
    def state_dict(self, train_data: Any = None, loader_state: Any = None, batches_done: int = 0) -> dict[str, Any]:
        state = {
            "model": unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch, "step": self.step, "history": self.history, "batches_done": batches_done,
            "callbacks": [cb.state_dict() for cb in self.callbacks],
        }
        if loader_state is None and train_data is not None and hasattr(train_data, "state_dict"):
            loader_state = train_data.state_dict()
        if loader_state is not None:
            state["loader"] = loader_state
        return state

    def save_checkpoint(self, path: str | os.PathLike[str] | None = None, **extra: Any) -> str:
        path = os.fspath(path or self.checkpoint_path or "checkpoint.lamina")
        state = self.state_dict(self.train_data, extra.pop("loader_state", None), extra.pop("batches_done", 0))
        state.update(self.checkpoint_extra)
        state.update(extra)
        if writes_files():  # on several ranks, rank 0 writes; the others hold the same state
            save_checkpoint(path, **state)
        self.last_checkpoint = path
        return self.last_checkpoint

    def load_checkpoint(self, path: str | os.PathLike[str], train_data: Any = None) -> dict[str, Any]:
        """Restore model, optimizer, callbacks, counters, history, RNG and loader state."""
        ck = load_checkpoint(path)
        for key in ("epoch", "step"):
            if key not in ck:
                raise CheckpointError(f"Trainer.load_checkpoint: {os.fspath(path)!r} has no {key!r}: it is not a "
                                      "checkpoint of a training run")
        if not all(isinstance(h, dict) for h in ck.get("history", [])):
            raise CheckpointError(f"Trainer.load_checkpoint: {os.fspath(path)!r}: its history is not a list of "
                                  "dicts")
        load_part(unwrap(self.model), ck.get("model"), path, "model")
        load_part(self.optimizer, ck.get("optimizer"), path, "optimizer")
        self.epoch, self.step = ck["epoch"], ck["step"]
        self.history = [dict(h) for h in ck.get("history", [])]
        self._load_callback_states(ck, path)
        if "loader" in ck and train_data is not None and hasattr(train_data, "load_state_dict"):
            load_part(train_data, ck["loader"], path, "data loader")
        self._resume_skip = int(ck.get("batches_done", 0))
        self._partial = ck.get("partial_epoch")
        self._resume_rng = ck.get("rng")
        if self._resume_skip == 0 and self._resume_rng is not None:
            set_rng_state(self._resume_rng)
            self._resume_rng = None
        self.last_checkpoint = os.fspath(path)
        return ck

    def _load_callback_states(self, ck: dict[str, Any], path: str | os.PathLike[str]) -> None:
        states = ck.get("callbacks", [])
        if len(states) != len(self.callbacks):
            raise CheckpointError(
                f"Trainer.load_checkpoint: {os.fspath(path)!r} holds {len(states)} callback states but this trainer "
                f"has {len(self.callbacks)} callbacks; resume with the same configuration"
            )
        for cb, st in zip(self.callbacks, states):
            load_part(cb, st, path, f"{type(cb).__name__} callback")

    # --- loops --------------------------------------------------------------------------
    def _forward_loss(self, batch: Any) -> tuple[Any, Tensor, Any, int]:
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise TypeError(f"Trainer: expected batches of (input, target), got {type(batch).__name__}")
        x, y = batch
        out = self.model(x)
        aux = [getattr(out, k) for k in ("aux_logits1", "aux_logits2") if getattr(out, k, None) is not None]
        if hasattr(out, "logits") and aux:
            # Inception-style auxiliary classifiers (GoogLeNet in training mode): their losses are
            # added with weight 0.3, as in Szegedy et al. (2015); metrics use the main logits
            out = out.logits
            loss = self.loss_fn(out, y) + sum(self.loss_fn(a, y) for a in aux) * 0.3
            return out, loss, y, _batch_size(x)
        return out, self.loss_fn(out, y), y, _batch_size(x)

    def _lr(self) -> float:
        groups = getattr(self.optimizer, "param_groups", None)
        return float(groups[0]["lr"]) if groups else float("nan")

    def _bar(self, total: int | None, desc: str) -> Any:
        show = self.progress if self.progress is not None else sys.stderr.isatty()
        if not show:
            return None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return None
        return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)

    def fit(self, train_data: Iterable[Any], epochs: int, val_data: Iterable[Any] | None = None,
            resume: str | os.PathLike[str] | None = None) -> list[dict[str, float]]:
        """Train for ``epochs`` epochs in total (a resumed run counts the epochs already done)."""
        self.train_data = train_data
        if resume is not None:
            self.load_checkpoint(resume, train_data)
        self.stop_training = False
        old_handler = self._install_sigint()
        try:
            for cb in self.callbacks:
                cb.on_train_begin(self)
            if resume is not None:  # callbacks built state in on_train_begin: restore it again
                self._load_callback_states(load_checkpoint(resume), resume)
            while self.epoch < epochs and not self.stop_training:
                logs = self._train_epoch(train_data, epochs)
                if val_data is not None:
                    logs.update({f"val_{k}": v for k, v in self.evaluate(val_data).items()})
                for cb in self.callbacks:
                    cb.on_epoch_end(self, self.epoch, logs)
                self.epoch += 1
                self.history.append(logs)
                if self.log is not None:
                    self.log(self._summary(logs, epochs))
                if self.checkpoint_path and self.epoch % self.checkpoint_every == 0:
                    self.save_checkpoint(self.checkpoint_path)
            for cb in self.callbacks:
                cb.on_train_end(self)
        finally:
            self._restore_sigint(old_handler)
        return self.history

    def _train_epoch(self, train_data: Iterable[Any], epochs: int) -> dict[str, float]:
        for cb in self.callbacks:
            cb.on_epoch_begin(self, self.epoch)
        loader_state = train_data.state_dict() if hasattr(train_data, "state_dict") else None
        self.model.train()
        sampler = getattr(train_data, "sampler", None)
        if hasattr(sampler, "set_epoch"):  # a DistributedSampler: each epoch its own order, on every rank
            sampler.set_epoch(self.epoch)
        for m in self.metrics:
            m.reset()
        total_loss, seen, t0 = 0.0, 0, time.perf_counter()
        skip, self._resume_skip = self._resume_skip, 0
        if skip and self._partial is not None:  # the sums of the batches before the interruption
            total_loss, seen = float(self._partial["loss_sum"]), int(self._partial["seen"])
            for m, st in zip(self.metrics, self._partial["metrics"]):
                m.load_state_dict(st)
        self._partial = None
        try:
            total = len(train_data)  # type: ignore[arg-type]
        except TypeError:
            total = None
        bar = self._bar(total, f"epoch {self.epoch + 1}/{epochs}")
        for b, batch in enumerate(train_data):
            if b < skip:  # resuming mid-epoch: these batches were trained before the interruption
                if b == skip - 1 and self._resume_rng is not None:
                    set_rng_state(self._resume_rng)
                    self._resume_rng = None
                continue
            out, loss, y, n = self._forward_loss(batch)
            value = float(loss.item())
            if not math.isfinite(value):
                raise TrainingError(
                    f"loss is {value} at epoch {self.epoch + 1}, batch {b + 1} (step {self.step + 1}); "
                    f"last good checkpoint: {self.last_checkpoint or 'none written yet'}"
                )
            self.optimizer.zero_grad()
            loss.backward()
            for cb in self.callbacks:
                cb.on_after_backward(self)
            self.optimizer.step()
            self.step += 1
            total_loss += value * n
            seen += n
            for m in self.metrics:
                m.update(out, y)
            batch_logs = {"loss": value}
            for cb in self.callbacks:
                cb.on_batch_end(self, b, batch_logs)
            if bar is not None:
                rate = seen / max(time.perf_counter() - t0, 1e-9)
                shown = {"loss": f"{total_loss / seen:.4f}"}
                if self.metrics and isinstance(self.metrics[0].compute(), float):
                    shown[self.metrics[0].name] = f"{self.metrics[0].compute():.4f}"
                bar.set_postfix(**shown, lr=f"{self._lr():.3g}", samples_s=f"{rate:.0f}")
                bar.update(1)
            # on several ranks all stop after the same batch, so rank 0's checkpoint is every rank's state
            interrupted = any_rank(self._interrupted)
            if interrupted:
                partial = {"loss_sum": total_loss, "seen": seen, "metrics": [m.state_dict() for m in self.metrics]}
                path = self.save_checkpoint(self.checkpoint_path or "interrupted.lamina",
                                            loader_state=loader_state, batches_done=b + 1, partial_epoch=partial)
                if bar is not None:
                    bar.close()
                raise TrainingInterrupted(path, interrupted)
        if bar is not None:
            bar.close()
        elapsed = time.perf_counter() - t0
        logs = {"epoch": float(self.epoch + 1), "loss": total_loss / seen if seen else float("nan")}
        for m in self.metrics:
            v = m.compute()
            if isinstance(v, float):
                logs[m.name] = v
        logs.update({"lr": self._lr(), "time": elapsed, "samples_per_s": seen / elapsed if elapsed else 0.0})
        return logs

    def evaluate(self, data: Iterable[Any]) -> dict[str, float]:
        """Loss and metrics over ``data`` in evaluation mode, without gradients."""
        was_training = self.model.training
        self.model.eval()
        for m in self.metrics:
            m.reset()
        total, seen = 0.0, 0
        with no_grad():
            for batch in data:
                out, loss, y, n = self._forward_loss(batch)
                total += float(loss.item()) * n
                seen += n
                for m in self.metrics:
                    m.update(out, y)
        self.model.train(was_training)
        logs = {"loss": total / seen if seen else float("nan")}
        for m in self.metrics:
            v = m.compute()
            if isinstance(v, float):
                logs[m.name] = v
        return logs

    def predict(self, data: Iterable[Any]) -> Tensor:
        """Concatenated model outputs over ``data`` (batches of inputs, or of ``(input, target)``)."""
        from ..ops.join import cat

        was_training = self.model.training
        self.model.eval()
        outs = []
        with no_grad():
            for batch in data:
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                outs.append(self.model(x))
        self.model.train(was_training)
        return cat(outs, 0)

    def _summary(self, logs: dict[str, float], epochs: int) -> str:
        parts = [f"epoch {int(logs['epoch'])}/{epochs}"]
        for k, v in logs.items():
            if k in ("epoch", "time", "samples_per_s"):
                continue
            parts.append(f"{k} {v:.4g}")
        parts.append(f"{logs['samples_per_s']:.0f} samples/s")
        return "  ".join(parts)

    # --- Ctrl-C and SIGTERM ----------------------------------------------------------------
    # SIGTERM (what `kill`, a scheduler or a container runtime sends) is handled like Ctrl-C: the
    # batch under way finishes, a checkpoint is written, TrainingInterrupted is raised
    _SIGNALS = ("SIGINT", "SIGTERM")

    def _install_sigint(self) -> Any:
        self._interrupted = 0  # the number of the signal that asked to stop, 0 while none did
        if threading.current_thread() is not threading.main_thread():
            return None  # signal handlers can only be set in the main thread

        def handler(signum: int, frame: Any) -> None:
            if self._interrupted:  # a second signal stops at once
                raise KeyboardInterrupt
            self._interrupted = signum

        return {s: signal.signal(s, handler) for s in (getattr(signal, n, None) for n in self._SIGNALS) if s}

    def _restore_sigint(self, old: Any) -> None:
        for s, previous in (old or {}).items():
            signal.signal(s, previous if previous is not None else signal.SIG_DFL)
