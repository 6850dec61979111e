"""Backbones for the detectors, as ``torchvision.models.detection.backbone_utils``: a classification
network's intermediate maps (``IntermediateLayerGetter``) under a feature pyramid
(``BackboneWithFPN``), and ResNet's (``resnet_fpn_backbone``)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ... import nn
from ...autograd.tensor import Tensor
from ...vision.ops.feature_pyramid_network import ExtraFPNBlock, FeaturePyramidNetwork, LastLevelMaxPool
from .. import resnet as _resnet

__all__ = ["IntermediateLayerGetter", "BackboneWithFPN", "resnet_fpn_backbone"]


class IntermediateLayerGetter(nn.ModuleDict):
    """The children of ``model`` up to the last of ``return_layers``, run in order; returns the
    outputs of ``return_layers`` (child name → output name) as an ``OrderedDict``
    (``torchvision.models._utils.IntermediateLayerGetter``). Only direct children can be named."""

    def __init__(self, model: nn.Module, return_layers: Mapping[str, str]) -> None:
        children = OrderedDict(model.named_children())
        missing = set(return_layers) - set(children)
        if missing:
            raise ValueError(f"IntermediateLayerGetter: return_layers {sorted(missing)} are not present in model "
                             f"(children: {list(children)})")
        wanted = dict(return_layers)
        left = set(wanted)
        layers = OrderedDict()
        for name, module in children.items():
            layers[name] = module
            left.discard(name)
            if not left:
                break
        super().__init__(layers)
        self.return_layers = wanted

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        out = OrderedDict()
        for name, module in self.items():
            x = module(x)
            if name in self.return_layers:
                out[self.return_layers[name]] = x
        return out


class BackboneWithFPN(nn.Module):
    """``body`` (an :class:`IntermediateLayerGetter` of ``backbone``) then ``fpn``
    (:class:`~lamina.vision.ops.FeaturePyramidNetwork`); ``out_channels`` for the detector."""

    def __init__(self, backbone: nn.Module, return_layers: Mapping[str, str], in_channels_list: Sequence[int],
                 out_channels: int, extra_blocks: ExtraFPNBlock | None = None,
                 norm_layer: Callable[..., nn.Module] | None = None) -> None:
        super().__init__()
        self.body = IntermediateLayerGetter(backbone, return_layers)
        self.fpn = FeaturePyramidNetwork(in_channels_list, out_channels,
                                         extra_blocks if extra_blocks is not None else LastLevelMaxPool(), norm_layer)
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        return self.fpn(self.body(x))


def _resnet_fpn_extractor(backbone: nn.Module, trainable_layers: int, returned_layers: Sequence[int] | None = None,
                          extra_blocks: ExtraFPNBlock | None = None,
                          norm_layer: Callable[..., nn.Module] | None = None) -> BackboneWithFPN:
    if not 0 <= trainable_layers <= 5:
        raise ValueError(f"resnet_fpn_backbone: trainable_layers should be in the range [0,5], got {trainable_layers}")
    layers_to_train = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable_layers]
    if trainable_layers == 5:
        layers_to_train.append("bn1")
    for name, p in backbone.named_parameters():
        if all(not name.startswith(layer) for layer in layers_to_train):
            p.requires_grad_(False)
    returned_layers = list(returned_layers) if returned_layers is not None else [1, 2, 3, 4]
    if min(returned_layers) <= 0 or max(returned_layers) >= 5:
        raise ValueError(f"resnet_fpn_backbone: each returned layer should be in the range [1,4], got "
                         f"{returned_layers}")
    return_layers = {f"layer{k}": str(v) for v, k in enumerate(returned_layers)}
    in_channels_stage2 = backbone.inplanes // 8
    in_channels_list = [in_channels_stage2 * 2 ** (i - 1) for i in returned_layers]
    return BackboneWithFPN(backbone, return_layers, in_channels_list, 256, extra_blocks=extra_blocks,
                           norm_layer=norm_layer)


def resnet_fpn_backbone(*, backbone_name: str, weights: Any = None,
                        norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d, trainable_layers: int = 3,
                        returned_layers: Sequence[int] | None = None,
                        extra_blocks: ExtraFPNBlock | None = None) -> BackboneWithFPN:
    """A ResNet (``'resnet18'`` … ``'resnet152'``) with an FPN of 256 channels over ``layer1 … layer4``
    (maps ``'0' … '3'``, plus ``'pool'``), the layers before the last ``trainable_layers`` frozen
    (torchvision's ``resnet_fpn_backbone``). ``weights`` must be ``None``: lamina downloads nothing
    (load a state_dict afterwards)."""
    if weights is not None:
        raise ValueError("resnet_fpn_backbone: lamina has no weight download; build with weights=None and load a "
                         "state_dict")
    resnets = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "wide_resnet50_2",
               "wide_resnet101_2")
    builder = getattr(_resnet, backbone_name) if backbone_name in resnets else None
    if builder is None:
        raise ValueError(f"resnet_fpn_backbone: unknown backbone_name {backbone_name!r}")
    return _resnet_fpn_extractor(builder(norm_layer=norm_layer), trainable_layers, returned_layers, extra_blocks)
