"""LeNet-5 (LeCun, Bottou, Bengio & Haffner, 1998) and a LeNet-style net for small images."""

from __future__ import annotations

from typing import Any

from .. import nn
from ..autograd.tensor import Tensor

__all__ = ["LeNet5", "lenet5", "LeNetSmall", "lenet_small"]


class LeNet5(nn.Module):
    """LeNet-5 as in the 1998 paper, for ``32×32`` inputs:

    C1 conv 5×5, 6 maps (28×28) → S2 2×2 subsampling (14×14) → C3 conv 5×5, 16 maps (10×10) →
    S4 2×2 subsampling (5×5) → C5 conv 5×5, 120 maps (1×1) → F6 84 units → output.

    Differences from the paper, as in most modern renditions: S2/S4 are average pooling (the
    paper's trainable coefficient and bias per map are dropped), C3 connects to all six S2 maps
    (the paper's sparse connection table is dropped), and the output layer is linear (logits for
    the cross-entropy) instead of Euclidean RBF units.

    Args:
        num_classes: outputs (10 digits).
        in_channels: input channels (1 for grey images).
        activation: ``'tanh'`` (the paper's squashing function; default) or ``'relu'``.

    Shape:
        ``(N, in_channels, 32, 32)`` → ``(N, num_classes)``.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, activation: str = "tanh") -> None:
        super().__init__()
        act = {"tanh": nn.Tanh, "relu": nn.ReLU}[activation]
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5), act(), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5), act(), nn.AvgPool2d(2),
            nn.Conv2d(16, 120, 5), act(),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(120, 84), act(), nn.Linear(84, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[-2:] != (32, 32):
            raise ValueError(f"LeNet5: expected input of shape (N, C, 32, 32), got {tuple(x.shape)}")
        return self.classifier(self.features(x))


class LeNetSmall(nn.Module):
    """A LeNet-style CNN for small images (the 8×8 digits up to 32×32): three 3×3 convolutions
    (with batch normalization and ReLU), two 2×2 max-pooling stages, dropout and a linear
    classifier — the default model of ``lamina train``.

    Args:
        num_classes, in_channels: outputs and input channels.
        input_size: the input height and width (a multiple of 4).
        width: channels of the first two convolutions (the third has ``2·width``).
        batch_norm: normalize after each convolution (Ioffe & Szegedy, 2015).
        dropout: dropout probability before the classifier.
        global_pool: ``None`` (the default): the classifier reads the flattened maps, so the
            position of a pattern matters. ``'max'`` or ``'avg'``: a fourth convolution
            (``2·width`` maps) and a global max / average pool over the whole image feed the
            classifier, so the network detects a pattern anywhere (and any ``input_size`` ≥ 4
            works) — what shapes of random place and size need.

    Shape:
        ``(N, in_channels, input_size, input_size)`` → ``(N, num_classes)``.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 8, width: int = 32,
                 batch_norm: bool = True, dropout: float = 0.3, global_pool: str | None = None) -> None:
        super().__init__()
        if global_pool not in (None, "max", "avg"):
            raise ValueError(f"LeNetSmall: global_pool must be None, 'max' or 'avg', got {global_pool!r}")
        if global_pool is None and input_size % 4:
            raise ValueError(f"LeNetSmall: input_size must be a multiple of 4, got {input_size}")
        self.input_size = input_size

        def block(cin: int, cout: int) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1, bias=not batch_norm)]
            if batch_norm:
                layers.append(nn.BatchNorm2d(cout))
            return layers + [nn.ReLU()]

        self.features = nn.Sequential(
            *block(in_channels, width), *block(width, width), nn.MaxPool2d(2),
            *block(width, 2 * width), nn.MaxPool2d(2),
        )
        flat = 2 * width * (input_size // 4) ** 2
        if global_pool is not None:
            pool = nn.AdaptiveMaxPool2d(1) if global_pool == "max" else nn.AdaptiveAvgPool2d(1)
            self.features.extend([*block(2 * width, 2 * width), pool])
            flat = 2 * width
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(flat, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


def lenet5(num_classes: int = 10, in_channels: int = 1, **kwargs: Any) -> LeNet5:
    """LeNet-5 (32×32 input)."""
    return LeNet5(num_classes=num_classes, in_channels=in_channels, **kwargs)


def lenet_small(num_classes: int = 10, in_channels: int = 1, **kwargs: Any) -> LeNetSmall:
    """The LeNet-style CNN for small images (``input_size`` 8 by default)."""
    return LeNetSmall(num_classes=num_classes, in_channels=in_channels, **kwargs)
