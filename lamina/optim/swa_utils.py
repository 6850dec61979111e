"""Stochastic Weight Averaging and EMA (``lamina.optim.swa_utils``), as ``torch.optim.swa_utils``:
``AveragedModel``, ``SWALR``, ``update_bn`` and the averaging functions."""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Iterable
from typing import Any

from .. import backend
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..nn.modules.module import Module
from ..nn.parameter import Parameter
from .lr_scheduler import LRScheduler, _format_param
from .optimizer import Optimizer, lerp_

__all__ = ["AveragedModel", "SWALR", "update_bn", "get_ema_multi_avg_fn", "get_swa_multi_avg_fn",
           "get_ema_avg_fn", "get_swa_avg_fn"]

xp = backend.xp


def get_ema_multi_avg_fn(decay: float = 0.999) -> Callable[[list[Tensor], list[Tensor], Any], None]:
    """In-place EMA over lists of tensors: ``ema ← ema + (1 − decay)(current − ema)``."""
    if decay < 0.0 or decay > 1.0:
        raise ValueError(f"Invalid decay value {decay} provided. Please provide a value in [0,1] range.")

    def ema_update(ema_params: list[Tensor], current_params: list[Tensor], _: Any) -> None:
        for e, c in zip(ema_params, current_params):
            if e.dtype.kind == "f":
                lerp_(e.array, c.array, 1 - decay)
            else:
                e.array[...] = e.array * decay + c.array * (1 - decay)
            e._bump_version()

    return ema_update


def get_swa_multi_avg_fn() -> Callable[[list[Tensor], list[Tensor], Any], None]:
    """In-place running mean over lists of tensors: ``avg ← avg + (current − avg) / (n + 1)``."""

    def swa_update(avg_params: list[Tensor], current_params: list[Tensor], num_averaged: Any) -> None:
        if isinstance(num_averaged, Tensor):
            # torch divides by the integer tensor: the weight comes out in the default float dtype
            n = int(num_averaged.item())
            dt = backend.get_default_dtype()
            w = float(xp.asarray(1, dtype=dt) / xp.asarray(n + 1, dtype=dt))
        else:
            n = int(num_averaged)
            w = 1 / (n + 1)
        for a, c in zip(avg_params, current_params):
            if a.dtype.kind == "f":
                lerp_(a.array, c.array, w)
            else:
                a.array[...] = a.array + (c.array - a.array) / (n + 1)
            a._bump_version()

    return swa_update


def get_ema_avg_fn(decay: float = 0.999) -> Callable[[Tensor, Tensor, Any], Tensor]:
    """EMA of one tensor: returns ``decay · ema + (1 − decay) · current``."""
    if decay < 0.0 or decay > 1.0:
        raise ValueError(f"Invalid decay value {decay} provided. Please provide a value in [0,1] range.")

    def ema_update(ema_param: Tensor, current_param: Tensor, num_averaged: Any) -> Tensor:
        return decay * ema_param + (1 - decay) * current_param

    return ema_update


def get_swa_avg_fn() -> Callable[[Tensor, Tensor, Any], Tensor]:
    """Running mean of one tensor: returns ``avg + (current − avg) / (n + 1)``."""

    def swa_update(averaged_param: Tensor, current_param: Tensor, num_averaged: Any) -> Tensor:
        return averaged_param + (current_param - averaged_param) / (num_averaged + 1)

    return swa_update


def _copy_module(model: Module) -> Module:
    """A deep copy of ``model`` with fresh parameter and buffer arrays (lamina tensors refuse
    pickling, which ``copy.deepcopy`` would fall back on)."""
    memo: dict[int, Any] = {}
    for m in model.modules():
        for p in m._parameters.values():
            if p is not None and id(p) not in memo:
                memo[id(p)] = Parameter(Tensor._wrap(xp.array(p.array, copy=True)), requires_grad=p.requires_grad)
        for b in m._buffers.values():
            if b is not None and id(b) not in memo:
                memo[id(b)] = Tensor._wrap(xp.array(b.array, copy=True))
    return copy.deepcopy(model, memo)


class AveragedModel(Module):
    r"""A running average of a model's parameters: SWA (Izmailov et al., 2018) by default, or
    any ``avg_fn`` / ``multi_avg_fn`` such as EMA.

    Matches ``torch.optim.swa_utils.AveragedModel``: the first ``update_parameters`` copies
    the weights, later ones average them; buffers are copied from the model (or averaged too
    with ``use_buffers=True``). ``n_averaged`` counts the models averaged.

    Args:
        model: the model to average (deep-copied).
        device: accepted for torch compatibility (lamina has one device at a time).
        avg_fn: ``avg_fn(averaged, current, n_averaged) -> new averaged`` for one tensor.
        multi_avg_fn: ``multi_avg_fn(averaged_list, current_list, n_averaged)``, in place.
        use_buffers: average buffers as well (default False: copy them).

    Example:
        >>> import lamina
        >>> from lamina.optim.swa_utils import AveragedModel
        >>> lin = lamina.nn.Linear(1, 1, bias=False)
        >>> swa = AveragedModel(lin)
        >>> for v in [1.0, 2.0, 6.0]:
        ...     _ = lin.weight.data.fill_(v)
        ...     swa.update_parameters(lin)
        >>> swa.module.weight.item(), swa.n_averaged.item()
        (3.0, 3)
    """

    def __init__(self, model: Module, device: Any = None, avg_fn: Callable[..., Tensor] | None = None,
                 multi_avg_fn: Callable[..., None] | None = None, use_buffers: bool = False) -> None:
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise ValueError("AveragedModel: only one of avg_fn and multi_avg_fn should be provided")
        self.module = _copy_module(model)
        self.register_buffer("n_averaged", Tensor._wrap(xp.array(0, dtype=backend.int64)))
        self.avg_fn, self.multi_avg_fn, self.use_buffers = avg_fn, multi_avg_fn, use_buffers

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def update_parameters(self, model: Module) -> None:
        """Fold ``model``'s current weights into the average."""
        if self.use_buffers:
            mine = list(itertools.chain(self.module.parameters(), self.module.buffers()))
            theirs = list(itertools.chain(model.parameters(), model.buffers()))
        else:
            mine, theirs = list(self.parameters()), list(model.parameters())
        mine, theirs = [p.detach() for p in mine], [p.detach() for p in theirs]
        n = int(self.n_averaged.item())
        with no_grad():
            if n == 0:
                for a, c in zip(mine, theirs):
                    a.array[...] = c.array
                    a._bump_version()
            elif self.multi_avg_fn is not None:
                self.multi_avg_fn(mine, theirs, self.n_averaged)
            else:
                fn = self.avg_fn or get_swa_avg_fn()
                for a, c in zip(mine, theirs):
                    a.array[...] = fn(a, c, self.n_averaged).array
                    a._bump_version()
            if not self.use_buffers:
                for b_swa, b_model in zip(self.module.buffers(), model.buffers()):
                    b_swa.array[...] = b_model.array
                    b_swa._bump_version()
        self.n_averaged.array += 1
        self.n_averaged._bump_version()


def _is_batch_norm(m: Any) -> bool:
    """Duck typing: a module with running statistics, a momentum and ``reset_running_stats``."""
    return (getattr(m, "running_mean", None) is not None and getattr(m, "running_var", None) is not None
            and hasattr(m, "momentum") and callable(getattr(m, "reset_running_stats", None)))


def update_bn(loader: Iterable[Any], model: Module, device: Any = None) -> None:
    """Recompute the batch-norm running statistics of ``model`` with one pass over ``loader``.

    Matches ``torch.optim.swa_utils.update_bn``: each batch-norm module (found by duck
    typing: ``running_mean``, ``running_var``, ``momentum`` and ``reset_running_stats()``) is
    reset and switched to a cumulative average (``momentum=None``) for the pass, in train
    mode; momenta and the training flag are restored afterwards. A batch that is a list or
    tuple contributes its first element. The pass runs under ``no_grad``.

    Args:
        loader: an iterable of batches (lamina Tensors, arrays, or tuples starting with one).
        model: the model whose statistics are updated.
        device: accepted for torch compatibility.

    Example:
        >>> import lamina
        >>> from lamina.optim.swa_utils import update_bn
        >>> update_bn([lamina.randn(4, 3)], lamina.nn.Linear(3, 2))  # no batch norm: nothing to do
    """
    momenta = {}
    for m in model.modules():
        if _is_batch_norm(m):
            m.reset_running_stats()
            momenta[m] = m.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for m in momenta:
        m.momentum = None
    try:
        with no_grad():
            for batch in loader:
                if isinstance(batch, (list, tuple)):
                    batch = batch[0]
                if not isinstance(batch, Tensor):
                    batch = Tensor._wrap(xp.asarray(batch))
                model(batch)
    finally:
        for m, mom in momenta.items():
            m.momentum = mom
        model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's lr to a fixed ``swa_lr`` over ``anneal_epochs``, then hold it.

    Matches ``torch.optim.swa_utils.SWALR`` (cosine or linear annealing).

    Args:
        optimizer: the wrapped optimizer.
        swa_lr: the target lr (one value or one per group).
        anneal_epochs: epochs of the annealing (default 10).
        anneal_strategy: ``'cos'`` or ``'linear'``.
        last_epoch: to resume (default -1).

    Example:
        >>> import lamina
        >>> from lamina.optim.swa_utils import SWALR
        >>> opt = lamina.optim.SGD([lamina.nn.Parameter(lamina.zeros(1))], lr=1.0)
        >>> sched = SWALR(opt, swa_lr=0.1, anneal_epochs=2, anneal_strategy="linear")
        >>> lrs = [sched.get_last_lr()[0]]
        >>> for _ in range(3):
        ...     opt.step(); sched.step(); lrs.append(round(sched.get_last_lr()[0], 6))
        >>> lrs  # halfway after one epoch, at swa_lr from the second on
        [1.0, 0.55, 0.1, 0.1]
    """

    def __init__(self, optimizer: Optimizer, swa_lr: float | list[float], anneal_epochs: int = 10,
                 anneal_strategy: str = "cos", last_epoch: int = -1) -> None:
        for lr, group in zip(_format_param("swa_lr", optimizer, swa_lr), optimizer.param_groups):
            group["swa_lr"] = lr
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"SWALR: anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}")
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"SWALR: anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        self._anneal_strategy = anneal_strategy
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    def anneal_func(self, t: float) -> float:
        return (1 - math.cos(math.pi * t)) / 2 if self._anneal_strategy == "cos" else t

    @staticmethod
    def _get_initial_lr(lr: float, swa_lr: float, alpha: float) -> float:
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self) -> list[float]:
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_alpha = self.anneal_func(max(0, min(1, (step - 1) / max(1, self.anneal_epochs))))
        prev_lrs = [self._get_initial_lr(g["lr"], g["swa_lr"], prev_alpha) for g in self.optimizer.param_groups]
        alpha = self.anneal_func(max(0, min(1, step / max(1, self.anneal_epochs))))
        return [g["swa_lr"] * alpha + lr * (1 - alpha) for g, lr in zip(self.optimizer.param_groups, prev_lrs)]
