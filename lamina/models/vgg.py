"""VGG (Simonyan & Zisserman, 2014): configurations A, B, D, E with and without batch norm."""

from __future__ import annotations

from typing import Any

from .. import nn
from ..autograd.tensor import Tensor
from ._init import deferred_init, fill_normal, init_model, kaiming_normal, zero_bias

__all__ = ["VGG", "make_layers", "cfgs", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn",
           "vgg19", "vgg19_bn"]

# channel counts of the 3×3 convolutions; "M" is a 2×2 max pool (the paper's Table 1)
cfgs: dict[str, list[Any]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def make_layers(cfg: list[Any], batch_norm: bool = False, in_channels: int = 3) -> nn.Sequential:
    """The convolutional part of a VGG: 3×3 convs (padding 1) [+ batch norm] + ReLU, and 2×2 max
    pools at each ``"M"``. Module indices match torchvision's."""
    layers: list[nn.Module] = []
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU(inplace=True))
            in_channels = v
    return nn.Sequential(*layers)


def _vgg_linear(m: Any) -> None:
    fill_normal(m.weight, 0.01)
    zero_bias(m)


def _vgg_conv(m: Any) -> None:
    kaiming_normal(m.weight, mode="fan_out")
    zero_bias(m)


class VGG(nn.Module):
    """VGG as ``torchvision.models.VGG``: ``features`` (from :func:`make_layers`), an adaptive
    7×7 average pool and a three-layer classifier (4096, 4096, ``num_classes``) with dropout.

    Args:
        features: the convolutional trunk (its last conv must have 512 channels).
        num_classes: number of outputs.
        init_weights: torchvision's initialization (convs Kaiming-normal fan-out, linear
            ``N(0, 0.01²)``, biases 0); otherwise torch's layer defaults.
        dropout: dropout probability in the classifier.

    The builders (``vgg11`` …) also take ``in_channels`` (3; lamina's addition).

    Shape:
        ``(N, 3, H, W)`` with ``H, W`` ≥ 32 → ``(N, num_classes)``.

    Example:
        >>> import lamina
        >>> with lamina.models.no_weight_init():  # shapes only: skip drawing 133 M weights
        ...     m = lamina.models.vgg11(num_classes=3)
        >>> m(lamina.randn(1, 3, 32, 32)).shape
        (1, 3)
    """

    def __init__(self, features: nn.Module, num_classes: int = 1000, init_weights: bool = True,
                 dropout: float = 0.5) -> None:
        super().__init__()
        with deferred_init():
            self.features = features
            self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
            self.classifier = nn.Sequential(
                nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
                nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
                nn.Linear(4096, num_classes),
            )
        if init_weights:
            init_model(self, conv=_vgg_conv, linear=_vgg_linear)
        else:
            init_model(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


def _vgg(cfg: str, batch_norm: bool, in_channels: int = 3, **kwargs: Any) -> VGG:
    with deferred_init():
        features = make_layers(cfgs[cfg], batch_norm=batch_norm, in_channels=in_channels)
    return VGG(features, **kwargs)


def vgg11(**kwargs: Any) -> VGG:
    """VGG-11 (configuration A), 132,863,336 parameters."""
    return _vgg("A", False, **kwargs)


def vgg11_bn(**kwargs: Any) -> VGG:
    """VGG-11 with batch norm, 132,868,840 parameters."""
    return _vgg("A", True, **kwargs)


def vgg13(**kwargs: Any) -> VGG:
    """VGG-13 (configuration B), 133,047,848 parameters."""
    return _vgg("B", False, **kwargs)


def vgg13_bn(**kwargs: Any) -> VGG:
    """VGG-13 with batch norm, 133,053,736 parameters."""
    return _vgg("B", True, **kwargs)


def vgg16(**kwargs: Any) -> VGG:
    """VGG-16 (configuration D), 138,357,544 parameters."""
    return _vgg("D", False, **kwargs)


def vgg16_bn(**kwargs: Any) -> VGG:
    """VGG-16 with batch norm, 138,365,992 parameters."""
    return _vgg("D", True, **kwargs)


def vgg19(**kwargs: Any) -> VGG:
    """VGG-19 (configuration E), 143,667,240 parameters."""
    return _vgg("E", False, **kwargs)


def vgg19_bn(**kwargs: Any) -> VGG:
    """VGG-19 with batch norm, 143,678,248 parameters."""
    return _vgg("E", True, **kwargs)
