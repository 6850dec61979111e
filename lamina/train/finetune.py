"""Fine-tuning in the training loop: a backbone from a classification run, and gradual
unfreezing (Howard & Ruder, 2018, ULMFiT) as a callback.

Example:
    >>> import lamina
    >>> from lamina import models, optim
    >>> from lamina.train import GradualUnfreezing, stage_groups
    >>> det = models.detection.yolov1(num_classes=3, backbone=models.classifier_backbone("resnet18"),
    ...                               image_size=64, grid_size=2)
    >>> groups = stage_groups(det)  # the backbone's stages, input to output
    >>> opt = optim.SGD(models.backbone_lr_groups(det, lr=0.01, include_frozen=True), lr=0.01)
    >>> cb = GradualUnfreezing(groups, every=2)  # one more stage every 2 epochs, from the top
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import nn
from ..models.backbone_utils import ClassifierBackbone, classifier_backbone
from .callbacks import Callback

__all__ = ["backbone_from_run", "GradualUnfreezing", "stage_groups"]


def backbone_from_run(path: str, trainable_layers: int | None = None, freeze_bn: bool = False,
                      probe_size: int = 64) -> ClassifierBackbone:
    """The feature extractor of the classifier trained in a run folder (or checkpoint file), with
    its trained weights, as a backbone (``lamina train --backbone-from RUN``).

    Args:
        path: a run folder written by ``lamina train`` or its ``checkpoint.lamina``.
        trainable_layers, freeze_bn, probe_size: as :func:`lamina.models.classifier_backbone`.

    Raises:
        FileNotFoundError: no checkpoint there.
        ValueError: the checkpoint is not a training run's, its weights do not fit its model, or
            the model has no convolutional feature extractor (an MLP).
    """
    from .run import load_run

    config, model, _ = load_run(path)
    model.train()
    try:
        return classifier_backbone(model, trainable_layers=trainable_layers, freeze_bn=freeze_bn,
                                   probe_size=probe_size)
    except ValueError as e:
        raise ValueError(f"{path!r} (model {config['model']!r}): {e}") from None


def stage_groups(model: nn.Module, backbone: str = "backbone") -> list[list[str]]:
    """The stages of ``model.<backbone>`` (a :class:`ClassifierBackbone`) as module-name groups of
    ``model``, input to output: the ``groups`` of :class:`GradualUnfreezing`."""
    bb = model._modules.get(backbone)
    stages = getattr(bb, "stages", None)
    if not stages:
        raise ValueError(f"stage_groups: model.{backbone} must be a backbone with stages (a ClassifierBackbone), got "
                         f"{type(bb).__name__}")
    return [[f"{backbone}.{u}" for u in stage] for stage in stages]


class GradualUnfreezing(Callback):
    """Unfreeze a model layer group by layer group, from the output down (ULMFiT's gradual
    unfreezing): at the start of training every group of ``groups`` is frozen; at the start of
    epoch ``k·every`` the last ``k`` groups are trainable. Parameters outside ``groups`` (the
    heads) are left as they are.

    The optimizer should hold every parameter from the start (``discriminative_lr_groups`` or
    ``backbone_lr_groups`` with ``include_frozen=True``): frozen ones get no gradient, so no update,
    and a run can then be resumed. Unfrozen parameters that the optimizer lacks are added to it as a
    new parameter group (base learning rate ``lr``, divided by ``decay`` per group below the output
    with ``decay``, times the factor the trainer's LR scheduler has reached), and the scheduler is
    extended to it; such a run's checkpoint only loads into an optimizer with the same groups.

    It reads ``trainer.model``, ``trainer.optimizer``, ``trainer.epoch`` and (if present)
    ``trainer.scheduler``, so any loop that calls ``on_train_begin`` and ``on_epoch_begin`` with
    such an object can use it (a detection loop as well as :class:`Trainer`). Batch-norm
    statistics of frozen groups still move in training mode: freeze them too with
    ``classifier_backbone(..., freeze_bn=True)`` or :func:`lamina.models.freeze_batchnorm`.

    Args:
        groups: module-name prefixes of ``model``, input to output; one entry (a name or a list of
            names) per group, e.g. ``stage_groups(model)`` or ``['features', 'classifier.0']``.
        every: epochs between two unfreezings.
        lr: learning rate of groups added to the optimizer (default: that of its first group).
        decay: if given, the ``k``-th group from the output is added with ``lr / decay**k``.

    Attributes:
        unfrozen: how many groups (from the output) are trainable now.
    """

    def __init__(self, groups: Sequence[str | Sequence[str]], every: int = 1, lr: float | None = None,
                 decay: float | None = None) -> None:
        if not groups:
            raise ValueError("GradualUnfreezing: groups is empty")
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"GradualUnfreezing: every must be a positive number of epochs, got {every!r}")
        if decay is not None and decay <= 0:
            raise ValueError(f"GradualUnfreezing: decay must be positive, got {decay}")
        self.groups = [[g] if isinstance(g, str) else list(g) for g in groups]
        self.every, self.lr, self.decay = every, lr, decay
        self.unfrozen = 0

    def _params(self, model: nn.Module, i: int) -> list[Any]:
        pre = self.groups[i]
        ps = [p for n, p in model.named_parameters() if any(n == q or n.startswith(q + ".") for q in pre)]
        if not ps:
            raise ValueError(f"GradualUnfreezing: group {i} {pre} names no parameter of {type(model).__name__}")
        return ps

    def _apply(self, trainer: Any, n: int) -> None:
        g = len(self.groups)
        for i in range(g):
            for p in self._params(trainer.model, i):
                p.requires_grad_(i >= g - n)
        self.unfrozen = n
        self._add_missing(trainer, n)

    def _add_missing(self, trainer: Any, n: int) -> None:
        opt = trainer.optimizer
        held = {id(p) for group in opt.param_groups for p in group["params"]}
        base = self.lr if self.lr is not None else opt.param_groups[0].get("initial_lr", opt.param_groups[0]["lr"])
        sched = getattr(trainer, "scheduler", None)
        base_lrs = getattr(sched, "base_lrs", None)
        if not isinstance(base_lrs, list):
            base_lrs = None
        # where the schedule stands now (its factor on the first group), so that a group added
        # late gets ``lr`` times that factor, whether the scheduler is chainable or closed-form
        factor = opt.param_groups[0]["lr"] / base_lrs[0] if base_lrs and base_lrs[0] else 1.0
        g = len(self.groups)
        for k in range(1, n + 1):  # k-th group from the output
            missing = [p for p in self._params(trainer.model, g - k) if id(p) not in held]
            if not missing:
                continue
            lr = base / self.decay ** k if self.decay is not None else base
            opt.add_param_group({"params": missing, "lr": lr * factor, "initial_lr": lr})
            held.update(id(p) for p in missing)
            if base_lrs is not None and len(base_lrs) < len(opt.param_groups):
                base_lrs.append(lr)

    def _due(self, epoch: int) -> int:
        return min(len(self.groups), epoch // self.every)

    def on_train_begin(self, trainer: Any) -> None:
        self._apply(trainer, self._due(trainer.epoch))

    def on_epoch_begin(self, trainer: Any, epoch: int) -> None:
        n = self._due(epoch)
        if n != self.unfrozen:
            self._apply(trainer, n)

    def state_dict(self) -> dict[str, Any]:
        return {"unfrozen": self.unfrozen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.unfrozen = int(state["unfrozen"])
