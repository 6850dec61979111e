"""AlexNet (Krizhevsky, Sutskever & Hinton, 2012), torchvision's single-tower rendition."""

from __future__ import annotations

from typing import Any

from .. import nn
from ..autograd.tensor import Tensor
from ._init import deferred_init, init_model

__all__ = ["AlexNet", "alexnet"]


class AlexNet(nn.Module):
    """AlexNet as ``torchvision.models.AlexNet`` (same module names and parameter shapes).

    Five convolutions (11×11 stride 4, 5×5, three 3×3) with max pooling, an adaptive 6×6
    average pool, then three fully connected layers with dropout. 61,100,840 parameters for
    1000 classes. Initialization is torch's layer default, as in torchvision.

    Args:
        num_classes: number of outputs.
        dropout: dropout probability before the first two fully connected layers.
        in_channels: input channels (3; lamina's addition, torchvision has no such option).

    Shape:
        ``(N, in_channels, H, W)`` with ``H, W ≥ 63`` → ``(N, num_classes)`` (224×224 in the paper).

    Example:
        >>> import lamina
        >>> lamina.models.alexnet(num_classes=5)(lamina.randn(1, 3, 63, 63)).shape
        (1, 5)
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5, in_channels: int = 3) -> None:
        super().__init__()
        with deferred_init():
            self.features = nn.Sequential(
                nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2),
            )
            self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
            self.classifier = nn.Sequential(
                nn.Dropout(p=dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
                nn.Dropout(p=dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
                nn.Linear(4096, num_classes),
            )
        init_model(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


def alexnet(**kwargs: Any) -> AlexNet:
    """AlexNet (``num_classes``, ``dropout``); see :class:`AlexNet`."""
    return AlexNet(**kwargs)
