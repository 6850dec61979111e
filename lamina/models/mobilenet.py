"""MobileNet v1 (Howard et al., 2017; depthwise-separable convolutions) and MobileNet v2
(Sandler et al., 2018; inverted residuals with linear bottlenecks, as torchvision)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .. import nn
from ..autograd.tensor import Tensor
from ..nn import functional as F
from ._init import deferred_init, fill_normal, init_model, kaiming_normal, zero_bias

__all__ = ["Conv2dNormActivation", "InvertedResidual", "MobileNetV1", "MobileNetV2", "mobilenet_v1",
           "mobilenet_v2"]


def _make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
    """Round ``v`` to a multiple of ``divisor`` without going more than 10% below it."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class Conv2dNormActivation(nn.Sequential):
    """Convolution ("same" padding for odd kernels), batch norm and an activation, as torchvision's
    ``ops.Conv2dNormActivation`` (modules ``0``, ``1``, ``2``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1, norm_layer: Callable[..., nn.Module] | None = nn.BatchNorm2d,
                 activation_layer: Callable[..., nn.Module] | None = nn.ReLU, dilation: int = 1) -> None:
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                                             (kernel_size - 1) // 2 * dilation, dilation=dilation, groups=groups,
                                             bias=norm_layer is None)]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if activation_layer is not None:
            layers.append(activation_layer(inplace=True))
        super().__init__(*layers)
        self.out_channels = out_channels


class InvertedResidual(nn.Module):
    """1×1 expansion (×``expand_ratio``, ReLU6), 3×3 depthwise (ReLU6), linear 1×1 projection;
    a residual connection when the stride is 1 and the channels match."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int,
                 norm_layer: Callable[..., nn.Module] | None = None) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual: stride should be 1 or 2, got {stride}")
        norm_layer = norm_layer or nn.BatchNorm2d
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(Conv2dNormActivation(inp, hidden_dim, kernel_size=1, norm_layer=norm_layer,
                                               activation_layer=nn.ReLU6))
        layers += [
            Conv2dNormActivation(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim, norm_layer=norm_layer,
                                 activation_layer=nn.ReLU6),
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
            norm_layer(oup),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


def _conv_init(m: Any) -> None:
    kaiming_normal(m.weight, mode="fan_out")
    zero_bias(m)


def _linear_init(m: Any) -> None:
    fill_normal(m.weight, 0.01)
    zero_bias(m)


class MobileNetV2(nn.Module):
    """MobileNet v2 as ``torchvision.models.MobileNetV2`` (3,504,872 parameters).

    Args:
        num_classes: number of outputs.
        width_mult: channel multiplier (rounded to multiples of ``round_nearest``).
        inverted_residual_setting: rows ``(t, c, n, s)``: expansion, channels, repeats, stride.
        round_nearest: channel rounding.
        dropout: dropout before the classifier.
        in_channels: input channels (3; lamina's addition).

    Shape:
        ``(N, 3, H, W)`` → ``(N, num_classes)``; the feature map is ``H/32``.

    Example:
        >>> import lamina
        >>> lamina.models.mobilenet_v2(num_classes=3, width_mult=0.25).eval()(lamina.randn(1, 3, 32, 32)).shape
        (1, 3)
    """

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0,
                 inverted_residual_setting: Sequence[Sequence[int]] | None = None, round_nearest: int = 8,
                 norm_layer: Callable[..., nn.Module] | None = None, dropout: float = 0.2,
                 in_channels: int = 3) -> None:
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        setting = inverted_residual_setting or [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2],
                                                [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]
        if len(setting) == 0 or any(len(row) != 4 for row in setting):
            raise ValueError(f"MobileNetV2: inverted_residual_setting should be non-empty rows of 4 elements, "
                             f"got {setting}")
        input_channel = _make_divisible(32 * width_mult, round_nearest)
        self.last_channel = _make_divisible(1280 * max(1.0, width_mult), round_nearest)
        with deferred_init():
            features: list[nn.Module] = [Conv2dNormActivation(in_channels, input_channel, stride=2,
                                                              norm_layer=norm_layer, activation_layer=nn.ReLU6)]
            for t, c, n, s in setting:
                output_channel = _make_divisible(c * width_mult, round_nearest)
                for i in range(n):
                    features.append(InvertedResidual(input_channel, output_channel, s if i == 0 else 1, t,
                                                     norm_layer=norm_layer))
                    input_channel = output_channel
            features.append(Conv2dNormActivation(input_channel, self.last_channel, kernel_size=1,
                                                 norm_layer=norm_layer, activation_layer=nn.ReLU6))
            self.features = nn.Sequential(*features)
            self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes))
        init_model(self, conv=_conv_init, linear=_linear_init)

    def forward(self, x: Tensor) -> Tensor:
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1)).flatten(1)
        return self.classifier(x)


class MobileNetV1(nn.Module):
    """The original MobileNet (no torchvision twin): a 3×3/2 convolution, then 13
    depthwise-separable blocks (3×3 depthwise + BN + ReLU, 1×1 pointwise + BN + ReLU), global
    average pooling and a linear classifier. 4,231,976 parameters at width 1 (the paper's 4.2 M).

    Args:
        num_classes: number of outputs.
        width_mult: the paper's width multiplier α (channels ×α, rounded to multiples of 8).
        dropout: dropout before the classifier (0 as in the paper).
        in_channels: input channels.

    Shape:
        ``(N, 3, H, W)`` → ``(N, num_classes)``; the feature map is ``H/32``.

    Example:
        >>> import lamina
        >>> lamina.models.mobilenet_v1(num_classes=3, width_mult=0.25).eval()(lamina.randn(1, 3, 32, 32)).shape
        (1, 3)
    """

    # (output channels, stride) of the 13 separable blocks (the paper's Table 1)
    cfg = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1),
           (512, 1), (1024, 2), (1024, 1)]

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.0,
                 in_channels: int = 3) -> None:
        super().__init__()
        with deferred_init():
            c = _make_divisible(32 * width_mult, 8)
            layers: list[nn.Module] = [Conv2dNormActivation(in_channels, c, stride=2)]
            for out, stride in self.cfg:
                o = _make_divisible(out * width_mult, 8)
                layers.append(nn.Sequential(Conv2dNormActivation(c, c, stride=stride, groups=c),
                                            Conv2dNormActivation(c, o, kernel_size=1)))
                c = o
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(c, num_classes))
        init_model(self, conv=_conv_init, linear=_linear_init)

    def forward(self, x: Tensor) -> Tensor:
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1)).flatten(1)
        return self.classifier(x)


def mobilenet_v1(**kwargs: Any) -> MobileNetV1:
    """MobileNet v1; see :class:`MobileNetV1`."""
    return MobileNetV1(**kwargs)


def mobilenet_v2(**kwargs: Any) -> MobileNetV2:
    """MobileNet v2; see :class:`MobileNetV2`."""
    return MobileNetV2(**kwargs)
