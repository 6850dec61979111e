"""DenseNet (Huang, Liu, van der Maaten & Weinberger, 2017), as torchvision builds it."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from .. import nn
from ..autograd.tensor import Tensor
from ..nn import functional as F
from ..ops.join import cat
from ._init import default_init, deferred_init, init_model, kaiming_normal, zero_bias

__all__ = ["DenseNet", "densenet121", "densenet161", "densenet169", "densenet201"]


class _DenseLayer(nn.Module):
    """BN-ReLU-conv1×1 (``bn_size·growth_rate`` maps) then BN-ReLU-conv3×3 (``growth_rate`` maps)
    on the concatenation of all earlier feature maps of the block."""

    def __init__(self, num_input_features: int, growth_rate: int, bn_size: int, drop_rate: float) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(num_input_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(num_input_features, bn_size * growth_rate, kernel_size=1, stride=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, stride=1, padding=1, bias=False)
        self.drop_rate = float(drop_rate)

    def forward(self, features: list[Tensor]) -> Tensor:
        x = cat(features, 1) if len(features) > 1 else features[0]
        x = self.conv1(self.relu1(self.norm1(x)))
        x = self.conv2(self.relu2(self.norm2(x)))
        if self.drop_rate > 0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x


class _DenseBlock(nn.ModuleDict):
    def __init__(self, num_layers: int, num_input_features: int, bn_size: int, growth_rate: int,
                 drop_rate: float) -> None:
        super().__init__()
        for i in range(num_layers):
            layer = _DenseLayer(num_input_features + i * growth_rate, growth_rate, bn_size, drop_rate)
            self.add_module(f"denselayer{i + 1}", layer)

    def forward(self, init_features: Tensor) -> Tensor:
        features = [init_features]
        for layer in self._modules.values():
            features.append(layer(features))
        return cat(features, 1)


class _Transition(nn.Sequential):
    def __init__(self, num_input_features: int, num_output_features: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(num_input_features)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(num_input_features, num_output_features, kernel_size=1, stride=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNet(nn.Module):
    """DenseNet-BC as ``torchvision.models.DenseNet``: a 7×7/2 stem and max pool, dense blocks
    (every layer sees the concatenation of all earlier maps and adds ``growth_rate`` new ones)
    separated by transitions (BN-ReLU-1×1 conv halving the channels, 2×2 average pool).

    Args:
        growth_rate: maps added per layer (``k`` in the paper).
        block_config: layers per dense block.
        num_init_features: maps of the stem convolution.
        bn_size: bottleneck width factor (the 1×1 conv makes ``bn_size·k`` maps).
        drop_rate: dropout after each layer.
        num_classes: number of outputs.
        memory_efficient: accepted for torchvision compatibility; ignored (no checkpointing).
        in_channels: input channels (3; lamina's addition).

    Initialization (torchvision's): convs Kaiming-normal (fan-in), batch norm γ=1, β=0, the
    classifier bias 0.

    Shape:
        ``(N, 3, H, W)`` with ``H, W ≥ 32`` → ``(N, num_classes)``.

    Example:
        >>> import lamina
        >>> lamina.models.densenet121(num_classes=4)(lamina.randn(2, 3, 32, 32)).shape
        (2, 4)
    """

    def __init__(self, growth_rate: int = 32, block_config: Sequence[int] = (6, 12, 24, 16),
                 num_init_features: int = 64, bn_size: int = 4, drop_rate: float = 0, num_classes: int = 1000,
                 memory_efficient: bool = False, in_channels: int = 3) -> None:
        super().__init__()
        with deferred_init():
            self.features = nn.Sequential(OrderedDict([
                ("conv0", nn.Conv2d(in_channels, num_init_features, kernel_size=7, stride=2, padding=3, bias=False)),
                ("norm0", nn.BatchNorm2d(num_init_features)),
                ("relu0", nn.ReLU(inplace=True)),
                ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
            ]))
            num_features = num_init_features
            for i, num_layers in enumerate(block_config):
                block = _DenseBlock(num_layers, num_features, bn_size, growth_rate, drop_rate)
                self.features.add_module(f"denseblock{i + 1}", block)
                num_features += num_layers * growth_rate
                if i != len(block_config) - 1:
                    self.features.add_module(f"transition{i + 1}", _Transition(num_features, num_features // 2))
                    num_features //= 2
            self.features.add_module("norm5", nn.BatchNorm2d(num_features))
            self.classifier = nn.Linear(num_features, num_classes)
        init_model(self, conv=lambda m: kaiming_normal(m.weight), linear=_linear)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.features(x))
        out = F.adaptive_avg_pool2d(out, (1, 1)).flatten(1)
        return self.classifier(out)


def _linear(m: Any) -> None:
    default_init(m)
    zero_bias(m)


def densenet121(**kwargs: Any) -> DenseNet:
    """DenseNet-121 (k=32, blocks 6-12-24-16), 7,978,856 parameters."""
    return DenseNet(32, (6, 12, 24, 16), 64, **kwargs)


def densenet161(**kwargs: Any) -> DenseNet:
    """DenseNet-161 (k=48, blocks 6-12-36-24, 96 stem maps), 28,681,000 parameters."""
    return DenseNet(48, (6, 12, 36, 24), 96, **kwargs)


def densenet169(**kwargs: Any) -> DenseNet:
    """DenseNet-169 (k=32, blocks 6-12-32-32), 14,149,480 parameters."""
    return DenseNet(32, (6, 12, 32, 32), 64, **kwargs)


def densenet201(**kwargs: Any) -> DenseNet:
    """DenseNet-201 (k=32, blocks 6-12-48-32), 20,013,928 parameters."""
    return DenseNet(32, (6, 12, 48, 32), 64, **kwargs)
