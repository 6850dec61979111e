"""The models of detection and segmentation runs, and the fine-tuning options that shape what
trains: a backbone from a classification run (``backbone_from``), frozen parameters (``freeze``
patterns or ``trainable_layers``), gradual unfreezing (``unfreeze_every``), discriminative
learning rates (``lr_decay``) and frozen batch norm (``freeze_bn``)."""

from __future__ import annotations

from typing import Any

from .. import nn
from .callbacks import Callback

__all__ = ["build_task_model", "apply_finetuning", "param_groups", "GradualUnfreezing", "backbone_stages"]


def _segmenter(name: str, kw: dict[str, Any]) -> nn.Module:
    from ..models import segmentation as S

    kw = dict(kw)
    if name == "unet":
        kw.setdefault("in_channels", 3)
        return S.unet(**kw)
    if name == "fcn8s":
        return S.fcn8s(**kw)
    from ..models.resnet import BasicBlock, ResNet

    layers = kw.pop("backbone_layers", [1, 1, 1, 1])
    backbone = ResNet(BasicBlock, list(layers), replace_stride_with_dilation=[False, True, True])
    return S.deeplabv3(backbone=backbone, **kw)


def _detector(name: str, kw: dict[str, Any]) -> nn.Module:
    from ..models import detection as Dm

    builder = getattr(Dm, name, None)
    if builder is None:
        raise ValueError(f"model {name!r} is not in lamina.models.detection of this lamina")
    return builder(**kw)


def build_task_model(config: dict[str, Any]) -> nn.Module:
    """The model that ``config['model']`` and ``config['model_kwargs']`` describe (without the
    fine-tuning options: see :func:`apply_finetuning`)."""
    kw = dict(config["model_kwargs"])
    try:
        if config["task"] == "segment":
            return _segmenter(config["model"], kw)
        return _detector(config["model"], kw)
    except TypeError as e:  # a constructor argument the model does not have
        raise ValueError(f"model {config['model']!r} cannot be built with {kw}: {e}") from None


def backbone_stages(model: nn.Module) -> list[str]:
    """The names of the backbone's top-level children that hold parameters, from the input on
    (the stages ``trainable_layers`` counts from the end and gradual unfreezing opens)."""
    root = getattr(model, "backbone", None)
    prefix = "backbone."
    if root is None:  # U-Net, FCN: the encoder is the model's own first children
        root, prefix = model, ""
    names = [n for n, m in root.named_children() if any(True for _ in m.parameters())]
    if not prefix:
        names = [n for n in names if n not in ("outc", "ups", "score_fr", "upscore2", "upscore_pool4", "upscore8",
                                               "score_pool3", "score_pool4")]
    return [prefix + n for n in names]


def _load_backbone(model: nn.Module, run: str) -> int:
    """Copy the weights of a classification run's model into ``model``'s backbone: every tensor
    whose name (after the backbone prefix) and shape agree. Returns the number copied."""
    from .run import load_run

    config, source, _ = load_run(run)
    if config.get("task"):
        raise ValueError(f"--backbone-from {run}: that run is a {config['task']} run; give a classification run")
    target = getattr(model, "backbone", model)
    theirs = source.state_dict()
    mine = target.state_dict()
    copied = {}
    for name, value in mine.items():
        for cand in (name, f"features.{name}", name.removeprefix("body.")):
            if cand in theirs and tuple(theirs[cand].shape) == tuple(value.shape):
                copied[name] = theirs[cand]
                break
    if not copied:
        raise ValueError(f"--backbone-from {run}: no weight of its model ({config['model']}) has the name and shape "
                         f"of a backbone weight of this model (names look like {next(iter(mine), '?')!r} here and "
                         f"{next(iter(theirs), '?')!r} there)")
    target.load_state_dict({**mine, **copied})
    return len(copied)


def apply_finetuning(model: nn.Module, config: dict[str, Any], log: Any = None) -> None:
    """Apply the run's fine-tuning options to ``model`` in place (before the optimizer is built)."""
    from ..models import transfer

    say = log or (lambda *a: None)
    if config.get("backbone_from"):
        n = _load_backbone(model, config["backbone_from"])
        say(f"backbone: {n} tensors from {config['backbone_from']}")
    if config.get("freeze_bn"):
        say(f"frozen batch norm: {transfer.freeze_batchnorm(model)} layers")
    if config.get("freeze"):
        say(f"frozen: {len(transfer.freeze(model, config['freeze']))} parameters ({config['freeze']})")
    k = config.get("trainable_layers")
    if k is not None:
        stages = backbone_stages(model)
        if not 0 <= int(k) <= len(stages):
            raise ValueError(f"--trainable-layers must lie in 0..{len(stages)} (the stages "
                             f"{', '.join(stages)}), got {k}")
        frozen = stages[:len(stages) - int(k)]
        for name in frozen:
            transfer.freeze(model, f"{name}.*")
        say(f"trainable backbone stages: {int(k)} of {len(stages)}" + (f" (frozen: {', '.join(frozen)})"
                                                                       if frozen else ""))


def param_groups(model: nn.Module, config: dict[str, Any]) -> Any:
    """The optimizer's parameters: every parameter (frozen ones are skipped by the optimizers as
    they get no gradient, and gradual unfreezing can open them later), or with ``lr_decay``
    discriminative groups (backbone stages from the input, then the rest as the head)."""
    if not config.get("lr_decay"):
        return list(model.parameters())
    stages = backbone_stages(model)
    head = [n for n, _ in model.named_children() if n != "backbone" and n not in stages]
    groups = [*stages, head] if head else stages
    named = dict(model.named_parameters())
    out = []
    n = len(groups)
    for i, g in enumerate(groups):
        pre = [g] if isinstance(g, str) else g
        params = [p for k, p in named.items() if any(k == q or k.startswith(q + ".") for q in pre)]
        if params:
            out.append({"params": params, "lr": float(config["lr"]) / float(config["lr_decay"]) ** (n - 1 - i)})
    return out


class GradualUnfreezing(Callback):
    """Gradual unfreezing (Howard & Ruder, 2018): the backbone stages frozen when training begins
    open one by one, from the output side, every ``every`` epochs. Which stages are open follows
    from the epoch alone, so a resumed run opens the same ones."""

    def __init__(self, every: int) -> None:
        self.every = int(every)
        self.frozen: list[str] = []

    def on_train_begin(self, trainer: Any) -> None:
        named = list(trainer.model.named_parameters())
        self.frozen = [s for s in backbone_stages(trainer.model)
                       if any(not p.requires_grad for n, p in named if n.startswith(s + "."))]

    def on_epoch_begin(self, trainer: Any, epoch: int) -> None:
        from ..models import transfer

        if self.every <= 0 or not self.frozen:
            return
        opened = self.frozen[len(self.frozen) - min(epoch // self.every, len(self.frozen)):]
        for name in opened:
            params = [p for n, p in trainer.model.named_parameters() if n.startswith(name + ".")]
            if not all(p.requires_grad for p in params):
                transfer.unfreeze(trainer.model, f"{name}.*")
                if trainer.log is not None:
                    trainer.log(f"epoch {epoch + 1}: unfroze {name}")
