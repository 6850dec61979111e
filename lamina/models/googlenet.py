"""GoogLeNet / Inception v1 (Szegedy et al., 2015) with its two auxiliary classifiers, as
torchvision builds it (batch norm after every convolution)."""

from __future__ import annotations

import math
from collections import namedtuple
from typing import Any

from .. import nn
from ..autograd.tensor import Tensor
from ..nn import functional as F
from ..ops.join import cat
from ._init import deferred_init, fill_normal, fill_uniform, init_model

__all__ = ["GoogLeNet", "GoogLeNetOutputs", "BasicConv2d", "Inception", "InceptionAux", "googlenet"]

GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])
GoogLeNetOutputs.__doc__ = "What GoogLeNet returns in training mode with ``aux_logits``: main and auxiliary logits."


class BasicConv2d(nn.Module):
    """Convolution (no bias), batch norm (eps 0.001) and ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs: Any) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """An Inception module: 1×1, 1×1→3×3, 1×1→"5×5" and 3×3-max-pool→1×1 branches, concatenated
    along channels. As in torchvision (and its checkpoints), the "5×5" branch uses a 3×3 kernel."""

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int,
                 pool_proj: int) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(BasicConv2d(in_channels, ch3x3red, kernel_size=1),
                                     BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(in_channels, ch5x5red, kernel_size=1),
                                     BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
                                     BasicConv2d(in_channels, pool_proj, kernel_size=1))

    def forward(self, x: Tensor) -> Tensor:
        return cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: 4×4 adaptive average pool, 1×1 conv (128), FC 1024, dropout, FC."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.7) -> None:
        super().__init__()
        self.conv = BasicConv2d(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(F.adaptive_avg_pool2d(x, (4, 4))).flatten(1)
        x = self.dropout(F.relu(self.fc1(x)))
        return self.fc2(x)


def _trunc_normal(m: Any) -> None:
    # torchvision: trunc_normal_(std=0.01, a=-2, b=2); the cut at ±200σ never bites
    fill_normal(m.weight, 0.01)


class GoogLeNet(nn.Module):
    """GoogLeNet as ``torchvision.models.GoogLeNet``: stem (7×7/2, pool, 1×1, 3×3, pool), nine
    Inception modules (3a-b, 4a-e, 5a-b) with max pools between, global average pool, dropout
    and a linear classifier; auxiliary classifiers after 4a and 4d during training.

    Args:
        num_classes: number of outputs.
        aux_logits: build the auxiliary classifiers; in training mode the forward then returns
            ``GoogLeNetOutputs(logits, aux_logits2, aux_logits1)``, in eval mode the logits.
        transform_input: map inputs normalized with ImageNet statistics to the ``[-1, 1]``
            scaling of the original weights.
        init_weights: torchvision's initialization (weights ``N(0, 0.01²)``, batch norm γ=1,
            β=0); otherwise torch's layer defaults.
        dropout: dropout before the classifier.
        dropout_aux: dropout in the auxiliary classifiers.
        in_channels: input channels (3; lamina's addition).

    Shape:
        ``(N, 3, H, W)`` with ``H, W ≥ 32`` (``≥ 64`` for the auxiliaries' 4×4 pool to see
        distinct cells) → ``(N, num_classes)``.

    Example:
        >>> import lamina
        >>> lamina.models.googlenet(num_classes=3).eval()(lamina.randn(1, 3, 32, 32)).shape
        (1, 3)
    """

    def __init__(self, num_classes: int = 1000, aux_logits: bool = True, transform_input: bool = False,
                 init_weights: bool | None = None, dropout: float = 0.2, dropout_aux: float = 0.7,
                 in_channels: int = 3) -> None:
        super().__init__()
        self.aux_logits = aux_logits
        self.transform_input = transform_input
        with deferred_init():
            self.conv1 = BasicConv2d(in_channels, 64, kernel_size=7, stride=2, padding=3)
            self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            self.conv2 = BasicConv2d(64, 64, kernel_size=1)
            self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1)
            self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
            self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
            self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
            self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
            self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
            self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
            self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
            self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
            self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
            self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
            if aux_logits:
                self.aux1: InceptionAux | None = InceptionAux(512, num_classes, dropout=dropout_aux)
                self.aux2: InceptionAux | None = InceptionAux(528, num_classes, dropout=dropout_aux)
            else:
                self.aux1 = None
                self.aux2 = None
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.dropout = nn.Dropout(p=dropout)
            self.fc = nn.Linear(1024, num_classes)
        if init_weights is None or init_weights:
            init_model(self, conv=_trunc_normal, linear=_linear)
        else:
            init_model(self)

    def _transform_input(self, x: Tensor) -> Tensor:
        if not self.transform_input:
            return x
        x0 = x[:, 0:1] * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
        x1 = x[:, 1:2] * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
        x2 = x[:, 2:3] * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
        return cat([x0, x1, x2], 1)

    def forward(self, x: Tensor) -> Any:
        x = self._transform_input(x)
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        x = self.dropout(self.avgpool(x).flatten(1))
        x = self.fc(x)
        if self.training and self.aux_logits:
            return GoogLeNetOutputs(x, aux2, aux1)
        return x


def _linear(m: Any) -> None:
    # torchvision draws linear weights N(0, 0.01²) and leaves the biases at torch's default
    fill_normal(m.weight, 0.01)
    if m.bias is not None:
        fill_uniform(m.bias, 1.0 / math.sqrt(m.in_features))


def googlenet(**kwargs: Any) -> GoogLeNet:
    """GoogLeNet (Inception v1): 6,624,904 parameters with ``aux_logits=False`` (torchvision's
    published count), 13,004,888 with the auxiliary classifiers (the default)."""
    return GoogLeNet(**kwargs)
