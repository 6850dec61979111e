"""A classifier's convolutional part as a detection or segmentation backbone (in the spirit of
torchvision's ``backbone_utils.resnet_fpn_backbone`` / ``_resnet_fpn_extractor``): frozen stages
by count (``trainable_layers``), batch norm frozen on request, and optimizer groups that give
the backbone and the heads their own learning rates.

Example:
    >>> import lamina
    >>> from lamina import models
    >>> bb = models.classifier_backbone("resnet18", trainable_layers=2)
    >>> bb.out_channels, bb.stages[-2:]
    (512, [['layer3'], ['layer4']])
    >>> [n for n, p in bb.named_parameters() if p.requires_grad][0]
    'layer3.0.conv1.weight'
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from .. import backend, nn
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from .transfer import freeze_batchnorm

__all__ = ["ClassifierBackbone", "classifier_backbone", "backbone_lr_groups"]

# layers that end a classifier's convolutional part: what follows them reads a vector, not a map
_HEAD_TYPES = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten, nn.Linear, nn.Dropout)
_SKIP = ("aux1", "aux2")  # GoogLeNet's auxiliary classifiers sit between its stages


class ClassifierBackbone(nn.Module):
    """The convolutional layers of a classifier, applied in order, returning the last feature map.

    It shares the classifier's layer modules and keeps their parameter names (``layer1.0.conv1.weight``
    for a ResNet, ``features.3.weight`` for a VGG), so patterns for :func:`freeze` and a
    classifier's ``state_dict`` (``strict=False``) apply unchanged.

    Attributes:
        out_channels: channels of the output map (torchvision's backbone convention).
        stages: the layer groups from input to output, each a list of module names; a stage begins at
            each layer that halves the resolution (torchvision's rule for MobileNet backbones).
        units: the module names applied in order.
    """

    def __init__(self, modules: Sequence[tuple[str, nn.Module]], units: Sequence[str],
                 in_channels: int, probe_size: int = 64) -> None:
        super().__init__()
        for name, m in modules:
            self.add_module(name, m)
        self.units = list(units)
        self.in_channels = in_channels
        self.stages, self.out_channels = self._probe(probe_size)

    def _probe(self, size: int) -> tuple[list[list[str]], int]:
        was = self.training
        self.eval()  # a probe in training mode would move batch-norm statistics
        try:
            with no_grad():
                x = Tensor._wrap(backend.xp.zeros((1, self.in_channels, size, size), dtype=backend.xp.float32))
                stages: list[list[str]] = []
                for name in self.units:
                    h = x.shape[-1]
                    x = self.get_submodule(name)(x)
                    if x.ndim != 4:
                        raise ValueError(f"classifier_backbone: layer {name!r} gives a {x.ndim}-d output, expected "
                                         "feature maps (N, C, H, W)")
                    if not stages or x.shape[-1] <= (h + 1) // 2:  # a stride or pool, not a valid conv's rim
                        stages.append([])
                    stages[-1].append(name)
        finally:
            self.train(was)
        return stages, int(x.shape[1])

    def forward(self, x: Tensor) -> Tensor:
        for name in self.units:
            x = self.get_submodule(name)(x)
        return x

    def set_trainable_layers(self, trainable_layers: int | None) -> list[str]:
        """Train only the last ``trainable_layers`` stages (``requires_grad``); ``None`` trains all.

        Returns:
            the names of the parameters frozen.
        """
        n = len(self.stages)
        if trainable_layers is None:
            trainable_layers = n
        if not isinstance(trainable_layers, int) or not 0 <= trainable_layers <= n:
            raise ValueError(f"classifier_backbone: trainable_layers must be an integer in 0..{n} (this backbone has "
                             f"{n} stages: {self.stages}), got {trainable_layers!r}")
        trained = [u for stage in self.stages[n - trainable_layers:] for u in stage]
        frozen = []
        for pname, p in self.named_parameters():
            keep = any(pname.startswith(u + ".") for u in trained)
            p.requires_grad_(keep)
            if not keep:
                frozen.append(pname)
        return frozen


def _units(model: nn.Module) -> tuple[list[tuple[str, nn.Module]], list[str]]:
    from .cifar import CifarResNet, WideResNet
    from .densenet import DenseNet
    from .googlenet import GoogLeNet

    kind = type(model).__name__
    if isinstance(model, CifarResNet):  # its ReLU after the stem is functional
        mods = [("conv1", model.conv1), ("bn1", model.bn1), ("relu", nn.ReLU()),
                ("layer1", model.layer1), ("layer2", model.layer2), ("layer3", model.layer3)]
        return mods, [n for n, _ in mods]
    if isinstance(model, WideResNet):
        mods = [("conv1", model.conv1), ("block1", model.block1), ("block2", model.block2),
                ("block3", model.block3), ("bn", model.bn), ("relu", nn.ReLU())]
        return mods, [n for n, _ in mods]
    if isinstance(model, GoogLeNet) and model.transform_input:
        raise ValueError("classifier_backbone: a GoogLeNet with transform_input=True remaps its input first; "
                         "build it with transform_input=False")
    features = model._modules.get("features")
    if isinstance(features, nn.Sequential) and not isinstance(model, nn.Sequential):
        items = list(features._modules.items())
        while items and isinstance(items[-1][1], _HEAD_TYPES):
            items.pop()
        if not items:
            raise ValueError(f"classifier_backbone: {kind}.features holds no convolutional layer")
        mods = [("features", nn.Sequential(OrderedDict(items)))]
        units = [f"features.{k}" for k, _ in items]
        if isinstance(model, DenseNet):  # its final ReLU is functional
            mods.append(("relu", nn.ReLU()))
            units.append("relu")
        return mods, units
    mods = []
    for name, child in model.named_children():
        if name in _SKIP:
            continue
        if isinstance(child, _HEAD_TYPES):
            break
        mods.append((name, child))
    if not mods:
        raise ValueError(f"classifier_backbone: found no convolutional layers at the start of {kind} (its first "
                         "layer already reads a vector); an MLP has no feature maps to reuse")
    return mods, [n for n, _ in mods]


def _first_conv(model: nn.Module) -> nn.Conv2d:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m
    raise ValueError(f"classifier_backbone: {type(model).__name__} has no Conv2d layer: it is not a CNN")


def classifier_backbone(model: str | nn.Module, trainable_layers: int | None = None, freeze_bn: bool = False,
                        probe_size: int = 64, **model_kwargs: Any) -> ClassifierBackbone:
    """The feature extractor of a classification model, as a backbone for a detector or a
    segmentation network (YOLOv1, Faster R-CNN's ``backbone`` argument): everything before the
    global pooling and the classifier.

    Args:
        model: a classifier (a zoo model, one loaded from a run with
            :func:`lamina.train.finetune.backbone_from_run`, an ``nn.Sequential``) or a zoo name
            built with ``model_kwargs``. Supported: ResNet, the CIFAR ResNets and wide ResNets,
            models with a ``features`` Sequential (VGG, AlexNet, LeNet, MobileNet, DenseNet),
            GoogLeNet, and Sequentials of conv layers followed by the classifier.
        trainable_layers: train only the last so many stages (counted from the output), freeze the
            others (``requires_grad=False``), as torchvision's ``trainable_layers``; ``None`` (the
            default) trains all, ``0`` none.
        freeze_bn: replace its batch norms by :class:`FrozenBatchNorm2d` (statistics and affine
            parameters fixed, in training mode too).
        probe_size: side of the zero image run once (in eval mode, without gradient) to find the
            stages and ``out_channels``.

    Returns:
        a :class:`ClassifierBackbone` sharing the classifier's layers.
    """
    if isinstance(model, str):
        from . import get_model

        model = get_model(model, **model_kwargs)
    elif model_kwargs:
        raise TypeError(f"classifier_backbone: options {sorted(model_kwargs)} build a zoo model by name; "
                        "got a model instance")
    if not isinstance(model, nn.Module):
        raise TypeError(f"classifier_backbone: expected an nn.Module or a model name, got {type(model).__name__}")
    in_channels = _first_conv(model).in_channels
    mods, units = _units(model)
    bb = ClassifierBackbone(mods, units, in_channels, probe_size)
    if freeze_bn:
        freeze_batchnorm(bb)
    bb.set_trainable_layers(trainable_layers)
    return bb


def backbone_lr_groups(model: nn.Module, lr: float, backbone_lr: float | None = None, backbone: str = "backbone",
                       stage_decay: float | None = None, include_frozen: bool = False,
                       **options: Any) -> list[dict[str, Any]]:
    """Optimizer parameter groups for a detector or segmenter: the heads (everything outside
    ``model.<backbone>``) at ``lr``, the backbone at ``backbone_lr`` (``lr/10`` by default).

    Args:
        model: the detector.
        lr: learning rate of the heads.
        backbone_lr: learning rate of the backbone (of its last stage with ``stage_decay``).
        backbone: attribute name of the backbone.
        stage_decay: if given and the backbone has ``stages`` (a :class:`ClassifierBackbone`),
            one group per stage, the learning rate divided by ``stage_decay`` per stage towards the
            input (discriminative learning rates, Howard & Ruder, 2018).
        include_frozen: keep parameters with ``requires_grad=False`` in their groups (they get no
            gradient, so no update, until unfrozen — what :class:`GradualUnfreezing` needs for a
            resumable run); by default they are left out.
        options: further keys for every group (``momentum``, ``weight_decay`` …).

    Returns:
        a list of ``{'params', 'lr', 'name'}`` dicts, backbone groups first; empty groups are left out.
    """
    bb = model._modules.get(backbone)
    if bb is None:
        raise ValueError(f"backbone_lr_groups: {type(model).__name__} has no submodule {backbone!r}")
    backbone_lr = lr / 10 if backbone_lr is None else backbone_lr

    def keep(p: Any) -> bool:
        return include_frozen or p.requires_grad

    groups: list[dict[str, Any]] = []
    stages = getattr(bb, "stages", None)
    if stage_decay is not None:
        if stage_decay <= 0:
            raise ValueError(f"backbone_lr_groups: stage_decay must be positive, got {stage_decay}")
        if not stages:
            raise ValueError(f"backbone_lr_groups: stage_decay needs a backbone with stages (a ClassifierBackbone), "
                             f"got {type(bb).__name__}")
        seen: set[int] = set()
        for i, stage in enumerate(stages):
            ps = [p for n, p in bb.named_parameters() if any(n.startswith(u + ".") for u in stage) and keep(p)]
            seen.update(id(p) for p in ps)
            groups.append(dict(params=ps, lr=backbone_lr / stage_decay ** (len(stages) - 1 - i),
                               name=f"{backbone}.stage{i}", **options))
        rest = [p for p in bb.parameters() if id(p) not in seen and keep(p)]
        if rest:
            groups.append(dict(params=rest, lr=backbone_lr, name=f"{backbone}.other", **options))
    else:
        groups.append(dict(params=[p for p in bb.parameters() if keep(p)], lr=backbone_lr, name=backbone, **options))
    bb_ids = {id(p) for p in bb.parameters()}
    heads = [p for p in model.parameters() if id(p) not in bb_ids and keep(p)]
    groups.append(dict(params=heads, lr=lr, name="heads", **options))
    return [g for g in groups if g["params"]]
