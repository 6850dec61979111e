"""The models of detection and segmentation runs, and the fine-tuning options that shape what
trains: a backbone from a classification run (``backbone_from``), frozen parameters (``freeze``
patterns or ``trainable_layers``), gradual unfreezing (``unfreeze_every``), discriminative
learning rates (``lr_decay``) and frozen batch norm (``freeze_bn``)."""

from __future__ import annotations

from typing import Any

from .. import nn
from .callbacks import Callback

__all__ = ["build_task_model", "apply_finetuning", "param_groups", "gradual_unfreezing", "backbone_stages"]


def _segmenter(name: str, kw: dict[str, Any]) -> nn.Module:
    from ..models import segmentation as S

    kw = dict(kw)
    if name == "unet":
        kw.setdefault("in_channels", 3)
        return S.unet(**kw)
    if name == "fcn8s":
        return S.fcn8s(**kw)
    from ..models.resnet import Bottleneck, ResNet

    # a narrow ResNet of bottlenecks (BasicBlock cannot dilate, as in torchvision): output stride 8
    layers, width = kw.pop("backbone_layers", [1, 1, 1, 1]), kw.pop("backbone_width", 16)
    backbone = ResNet(Bottleneck, list(layers), width_per_group=int(width),
                      replace_stride_with_dilation=[False, True, True])
    return S.deeplabv3(backbone=backbone, **kw)


_DETECTORS = {"yolov1": "yolov1", "fasterrcnn": "fasterrcnn_small", "maskrcnn": "maskrcnn_small"}


def _rcnn_over(name: str, backbone: nn.Module, kw: dict[str, Any]) -> nn.Module:
    """A small Faster / Mask R-CNN (the anchors, RoI sizes and heads of ``fasterrcnn_small``) over
    another backbone (a classifier's, from :func:`lamina.models.classifier_backbone`)."""
    from ..models import detection as Dm
    from ..models.detection.faster_rcnn import _small_kwargs
    from ..vision.ops import MultiScaleRoIAlign

    kw = dict(kw)
    num_classes, rep = kw.pop("num_classes"), kw.pop("representation_size", 256)
    mask_layers = kw.pop("mask_layers", (64, 64))
    kw.pop("channels", None)  # the small backbone's widths: this backbone has its own
    kw = _small_kwargs(kw)
    res = kw["box_roi_pool"].output_size[0]
    kw.setdefault("box_head", Dm.TwoMLPHead(backbone.out_channels * res ** 2, rep))
    kw.setdefault("box_predictor", Dm.FastRCNNPredictor(rep, num_classes))
    if name == "fasterrcnn":
        return Dm.FasterRCNN(backbone, None, **kw)
    kw.setdefault("mask_roi_pool", MultiScaleRoIAlign(featmap_names=["0"], output_size=14, sampling_ratio=2))
    kw.setdefault("mask_head", Dm.MaskRCNNHeads(backbone.out_channels, list(mask_layers), 1))
    kw.setdefault("mask_predictor", Dm.MaskRCNNPredictor(mask_layers[-1], mask_layers[-1], num_classes))
    return Dm.MaskRCNN(backbone, None, **kw)


def _detector(name: str, kw: dict[str, Any], backbone_config: dict[str, Any] | None) -> nn.Module:
    from ..models import detection as Dm

    if backbone_config is None:
        return getattr(Dm, _DETECTORS[name])(**kw)
    from ..models.backbone_utils import classifier_backbone
    from .run_config import build_model

    backbone = classifier_backbone(build_model(backbone_config))
    if name == "yolov1":
        return Dm.yolov1(backbone=backbone, **kw)
    return _rcnn_over(name, backbone, kw)


def build_task_model(config: dict[str, Any]) -> nn.Module:
    """The model that ``config['model']`` and ``config['model_kwargs']`` describe, over the
    backbone of the classifier ``config['backbone_config']`` describes when there is one (its
    weights come with :func:`apply_finetuning` or the run's checkpoint), with batch norm frozen
    when ``config['freeze_bn']`` (so a checkpoint of such a run loads)."""
    kw = dict(config["model_kwargs"])
    try:
        if config["task"] == "segment":
            model = _segmenter(config["model"], kw)
        else:
            model = _detector(config["model"], kw, config.get("backbone_config"))
    except TypeError as e:  # a constructor argument the model does not have
        raise ValueError(f"model {config['model']!r} cannot be built with {kw}: {e}") from None
    if config.get("freeze_bn"):
        from ..models.transfer import freeze_batchnorm

        freeze_batchnorm(getattr(model, "backbone", model))
    return model


def backbone_stages(model: nn.Module) -> list[list[str]]:
    """The backbone's stages from the input on, each a list of parameter-name prefixes: a
    :class:`~lamina.models.backbone_utils.ClassifierBackbone`'s ``stages``; else the children
    holding parameters of the backbone (descending through a lone wrapper such as ``body``), or
    for a model without ``backbone`` (U-Net, FCN) its own encoder children."""
    root = getattr(model, "backbone", None)
    if root is None:
        names = [n for n, m in model.named_children() if any(True for _ in m.parameters())]
        enc = [n for n in names if n in ("inc", "downs", "features", "fc6", "fc7")]
        if "downs" in enc:  # U-Net: each down step is a stage
            return [["inc"]] + [[f"downs.{i}"] for i in range(len(model.downs))]
        return [[n] for n in enc]
    stages = getattr(root, "stages", None)
    if stages:
        return [[f"backbone.{u}" for u in stage] for stage in stages]
    prefix = "backbone"
    children = [(n, m) for n, m in root.named_children() if any(True for _ in m.parameters())]
    while len(children) == 1:
        prefix = f"{prefix}.{children[0][0]}"
        root = children[0][1]
        children = [(n, m) for n, m in root.named_children() if any(True for _ in m.parameters())]
    return [[f"{prefix}.{n}"] for n, _ in children]


def _owned(name: str, stage: list[str]) -> bool:
    return any(name == q or name.startswith(q + ".") for q in stage)


def _load_backbone(model: nn.Module, config: dict[str, Any]) -> int:
    """The trained weights of the classification run ``config['backbone_from']`` into ``model``'s
    backbone (built from the same classifier, so every name and shape agrees). Returns the count."""
    from .finetune import backbone_from_run

    state = backbone_from_run(config["backbone_from"], freeze_bn=bool(config.get("freeze_bn"))).state_dict()
    model.backbone.load_state_dict(state)
    return len(state)


def apply_finetuning(model: nn.Module, config: dict[str, Any], log: Any = None, load_weights: bool = True) -> None:
    """Apply the run's fine-tuning options to a new ``model`` in place (before the optimizer is
    built): the classifier's weights (``backbone_from``), frozen parameters (``freeze`` globs,
    ``trainable_layers``: the last so many backbone stages train). A resumed run passes
    ``load_weights=False``: its checkpoint holds every weight."""
    from ..models import transfer

    say = log or (lambda *a: None)
    if config.get("backbone_from") and load_weights:
        n = _load_backbone(model, config)
        say(f"backbone: {n} tensors from the classification run {config['backbone_from']}")
    if config.get("freeze"):
        say(f"frozen: {len(transfer.freeze(model, config['freeze']))} parameters ({', '.join(config['freeze'])})")
    k = config.get("trainable_layers")
    if k is not None:
        stages = backbone_stages(model)
        if not 0 <= int(k) <= len(stages):
            raise ValueError(f"--trainable-layers must lie in 0..{len(stages)} (this model's backbone has the stages "
                             f"{', '.join('+'.join(s) for s in stages)}), got {k}")
        frozen = stages[:len(stages) - int(k)]
        for name, p in model.named_parameters():
            if any(_owned(name, s) for s in frozen):
                p.requires_grad_(False)
        say(f"trainable backbone stages: {int(k)} of {len(stages)}")


def param_groups(model: nn.Module, config: dict[str, Any]) -> Any:
    """The optimizer's parameters: all of them (frozen ones get no gradient, so no update, and
    gradual unfreezing can open them later), or with ``lr_decay`` discriminative groups: the
    head at ``lr``, the backbone's last stage at ``lr / lr_decay``, each stage nearer the input
    divided by ``lr_decay`` once more."""
    if not config.get("lr_decay"):
        return list(model.parameters())
    decay, lr = float(config["lr_decay"]), float(config["lr"])
    if decay <= 0:
        raise ValueError(f"--lr-decay must be positive, got {decay}")
    stages = backbone_stages(model)
    groups: list[dict[str, Any]] = []
    taken: set[int] = set()
    for i, stage in enumerate(stages):
        ps = [p for n, p in model.named_parameters() if _owned(n, stage)]
        taken.update(id(p) for p in ps)
        if ps:
            groups.append({"params": ps, "lr": lr / decay ** (len(stages) - i)})
    rest = [p for p in model.parameters() if id(p) not in taken]
    return groups + ([{"params": rest, "lr": lr}] if rest else [])


def gradual_unfreezing(model: nn.Module, every: int, log: Any = None) -> Callback:
    """:class:`lamina.train.finetune.GradualUnfreezing` over the backbone stages frozen now (by
    ``trainable_layers`` or ``freeze``), or over all of them when none is (ULMFiT's schedule: all
    frozen first); each opening is logged."""
    from .finetune import GradualUnfreezing

    stages = backbone_stages(model)
    named = list(model.named_parameters())
    frozen = [s for s in stages if any(not p.requires_grad for n, p in named if _owned(n, s))]

    class _Logged(GradualUnfreezing):
        def on_epoch_begin(self, trainer: Any, epoch: int) -> None:
            before = self.unfrozen
            super().on_epoch_begin(trainer, epoch)
            if self.unfrozen != before and log is not None:
                opened = self.groups[len(self.groups) - self.unfrozen]
                log(f"epoch {epoch + 1}: unfroze {'+'.join(opened)}")

    return _Logged(frozen or stages, every=int(every))
