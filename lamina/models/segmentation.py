"""Dense prediction: FCN-32s / FCN-8s over VGG-16 (Long, Shelhamer & Darrell, 2015), U-Net
(Ronneberger, Fischer & Brox, 2015) and DeepLab v3 (Chen et al., 2017) with ASPP over a dilated
ResNet, whose module names follow torchvision's ``deeplabv3_resnet50``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import backend, nn
from ..autograd.tensor import Tensor
from ..nn import functional as F
from ..ops.join import cat
from ._init import _fill, deferred_init, init_model, kaiming_normal
from .resnet import Bottleneck, ResNet, resnet50, resnet101
from .vgg import cfgs, make_layers

__all__ = ["FCN", "UNet", "ASPP", "DeepLabHead", "DeepLabV3", "bilinear_kernel", "fcn32s", "fcn8s", "unet",
           "deeplabv3", "deeplabv3_resnet50", "deeplabv3_resnet101"]


def bilinear_kernel(channels: int, kernel_size: int) -> Any:
    """The ``(channels, channels, k, k)`` weight that makes a transposed convolution with stride
    ``(k + 1)//2`` a bilinear upsampler, channel by channel (FCN's initialization)."""
    xp = backend.xp
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = xp.arange(kernel_size, dtype=xp.float64)
    f1 = 1 - xp.abs(og - center) / factor
    w = xp.zeros((channels, channels, kernel_size, kernel_size))
    w[xp.arange(channels), xp.arange(channels)] = xp.outer(f1, f1)
    return w


class FCN(nn.Module):
    """Fully convolutional network over VGG-16 (FCN-32s or FCN-8s).

    The VGG-16 trunk (``features``, same indices as :func:`lamina.models.vgg16`'s, so its weights
    load with ``fcn.features.load_state_dict(vgg.features.state_dict())``), ``fc6`` (7×7 conv)
    and ``fc7`` (1×1 conv) as convolutions, a 1×1 class scorer, and transposed convolutions
    initialized to bilinear upsampling. FCN-8s fuses the scores of pool4 and pool3 (skip
    layers, zero-initialized as in the paper). Difference from the paper: the convolutions are
    padded ("same" size) instead of padding the input by 100 and cropping, so the output has
    the input's size when ``H, W`` are multiples of 32.

    Args:
        num_classes: classes per pixel (21 for PASCAL VOC).
        variant: ``'32s'`` or ``'8s'``.
        fc_channels: width of fc6/fc7 (4096 in the paper; smaller for quick experiments).
        dropout: dropout after fc6 and fc7.
        in_channels: input channels.

    Shape:
        ``(N, 3, H, W)`` with ``H, W`` multiples of 32 → ``(N, num_classes, H, W)``.

    Example:
        >>> import lamina
        >>> m = lamina.models.fcn8s(num_classes=3, fc_channels=16)
        >>> m(lamina.randn(1, 3, 32, 32)).shape
        (1, 3, 32, 32)
    """

    def __init__(self, num_classes: int = 21, variant: str = "8s", fc_channels: int = 4096,
                 dropout: float = 0.5, in_channels: int = 3) -> None:
        super().__init__()
        if variant not in ("32s", "8s"):
            raise ValueError(f"FCN: variant must be '32s' or '8s', got {variant!r}")
        self.variant = variant
        with deferred_init():
            self.features = make_layers(cfgs["D"], in_channels=in_channels)
            self.fc6 = nn.Sequential(nn.Conv2d(512, fc_channels, 7, padding=3), nn.ReLU(inplace=True),
                                     nn.Dropout(dropout))
            self.fc7 = nn.Sequential(nn.Conv2d(fc_channels, fc_channels, 1), nn.ReLU(inplace=True),
                                     nn.Dropout(dropout))
            self.score_fr = nn.Conv2d(fc_channels, num_classes, 1)
            if variant == "32s":
                self.upscore = nn.ConvTranspose2d(num_classes, num_classes, 64, stride=32, padding=16, bias=False)
            else:
                self.score_pool4 = nn.Conv2d(512, num_classes, 1)
                self.score_pool3 = nn.Conv2d(256, num_classes, 1)
                self.upscore2 = nn.ConvTranspose2d(num_classes, num_classes, 4, stride=2, padding=1, bias=False)
                self.upscore_pool4 = nn.ConvTranspose2d(num_classes, num_classes, 4, stride=2, padding=1,
                                                        bias=False)
                self.upscore8 = nn.ConvTranspose2d(num_classes, num_classes, 16, stride=8, padding=4, bias=False)
        init_model(self, conv=_fcn_conv)
        for name in ("score_fr", "score_pool4", "score_pool3"):  # class scorers start at zero (the paper)
            if name in self._modules:
                _fill(self._modules[name].weight, 0.0)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[-2] % 32 or x.shape[-1] % 32:
            raise ValueError(f"FCN: expected input (N, 3, H, W) with H, W multiples of 32, got {tuple(x.shape)}")
        pools = []
        for i, m in enumerate(self.features):
            x = m(x)
            if i in (16, 23):  # after pool3 and pool4
                pools.append(x)
        score = self.score_fr(self.fc7(self.fc6(x)))
        if self.variant == "32s":
            return self.upscore(score)
        score = self.upscore2(score) + self.score_pool4(pools[1])
        score = self.upscore_pool4(score) + self.score_pool3(pools[0])
        return self.upscore8(score)


def _fcn_conv(m: Any) -> None:
    if isinstance(m, nn.ConvTranspose2d):
        _fill(m.weight, bilinear_kernel(m.in_channels, m.kernel_size[0]))
    else:
        kaiming_normal(m.weight, mode="fan_out")
        _fill(m.bias, 0.0)


class _DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, batch_norm: bool) -> None:
        layers: list[nn.Module] = []
        for a, b in ((cin, cout), (cout, cout)):
            layers.append(nn.Conv2d(a, b, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(b))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class _Up(nn.Module):
    def __init__(self, cin: int, bilinear: bool, batch_norm: bool) -> None:
        super().__init__()
        if bilinear:
            self.up: nn.Module = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                               nn.Conv2d(cin, cin // 2, 1))
        else:
            self.up = nn.ConvTranspose2d(cin, cin // 2, 2, stride=2)
        self.conv = _DoubleConv(cin, cin // 2, batch_norm)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = self.up(x)
        dh, dw = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
        if dh or dw:  # odd sizes on the way down: pad the upsampled map to the skip's size
            x = F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
        return self.conv(cat([skip, x], 1))


class UNet(nn.Module):
    """U-Net: a contracting path of double 3×3 convolutions and 2×2 max pools (channels doubling),
    an expanding path that upsamples (2×2 transposed conv, or bilinear + 1×1 conv), concatenates
    the skip connection and applies a double conv, and a 1×1 classifier.

    Differences from the paper: padded convolutions (the output has the input's size, no
    cropping) and optional batch norm after each convolution.

    Args:
        in_channels: input channels.
        num_classes: output channels (class scores per pixel).
        base_channels: channels of the first level (64 in the paper).
        depth: number of down-sampling steps (4 in the paper).
        bilinear: bilinear upsampling instead of transposed convolutions.
        batch_norm: batch norm after each convolution.

    Shape:
        ``(N, in_channels, H, W)`` → ``(N, num_classes, H, W)``.

    Example:
        >>> import lamina
        >>> lamina.models.unet(in_channels=1, num_classes=2, base_channels=4, depth=2)(
        ...     lamina.randn(1, 1, 16, 16)).shape
        (1, 2, 16, 16)
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2, base_channels: int = 64, depth: int = 4,
                 bilinear: bool = False, batch_norm: bool = True) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"UNet: depth must be at least 1, got {depth}")
        self.depth = depth
        with deferred_init():
            self.inc = _DoubleConv(in_channels, base_channels, batch_norm)
            chans = [base_channels * 2 ** i for i in range(depth + 1)]
            self.downs = nn.ModuleList([nn.Sequential(nn.MaxPool2d(2), _DoubleConv(chans[i], chans[i + 1],
                                                                                   batch_norm))
                                        for i in range(depth)])
            self.ups = nn.ModuleList([_Up(chans[i + 1], bilinear, batch_norm) for i in reversed(range(depth))])
            self.outc = nn.Conv2d(base_channels, num_classes, 1)
        init_model(self, conv=lambda m: kaiming_normal(m.weight, mode="fan_out"))
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.bias is not None:
                _fill(m.bias, 0.0)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or min(x.shape[-2:]) < 2 ** self.depth:
            raise ValueError(f"UNet: expected input (N, C, H, W) with H, W ≥ {2 ** self.depth}, got "
                             f"{tuple(x.shape)}")
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return self.outc(x)


class _ASPPPooling(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[-2:]
        for m in self:
            x = m(x)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (as torchvision's): a 1×1 conv, one 3×3 conv per atrous
    rate, and image-level pooling, concatenated and projected to ``out_channels``."""

    def __init__(self, in_channels: int, atrous_rates: Sequence[int], out_channels: int = 256) -> None:
        super().__init__()
        modules: list[nn.Module] = [nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False),
                                                  nn.BatchNorm2d(out_channels), nn.ReLU())]
        for rate in atrous_rates:
            modules.append(nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=rate, dilation=rate,
                                                   bias=False), nn.BatchNorm2d(out_channels), nn.ReLU()))
        modules.append(_ASPPPooling(in_channels, out_channels))
        self.convs = nn.ModuleList(modules)
        self.project = nn.Sequential(nn.Conv2d(len(modules) * out_channels, out_channels, 1, bias=False),
                                     nn.BatchNorm2d(out_channels), nn.ReLU(), nn.Dropout(0.5))

    def forward(self, x: Tensor) -> Tensor:
        return self.project(cat([conv(x) for conv in self.convs], 1))


class DeepLabHead(nn.Sequential):
    """ASPP, a 3×3 conv with batch norm and ReLU, and a 1×1 classifier (torchvision's)."""

    def __init__(self, in_channels: int, num_classes: int, atrous_rates: Sequence[int] = (12, 24, 36),
                 channels: int = 256) -> None:
        super().__init__(ASPP(in_channels, atrous_rates, channels),
                         nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
                         nn.ReLU(), nn.Conv2d(channels, num_classes, 1))


def _fcn_head(in_channels: int, num_classes: int) -> nn.Sequential:
    inter = in_channels // 4
    return nn.Sequential(nn.Conv2d(in_channels, inter, 3, padding=1, bias=False), nn.BatchNorm2d(inter), nn.ReLU(),
                         nn.Dropout(0.1), nn.Conv2d(inter, num_classes, 1))


class DeepLabV3(nn.Module):
    """DeepLab v3: a ResNet backbone whose last stages dilate instead of striding (output stride
    8), an ASPP head, and bilinear upsampling of the scores to the input size. Module names
    match torchvision's ``deeplabv3_resnet50`` (``backbone.*``, ``classifier.*``, ``aux_classifier.*``).

    Args:
        backbone: a :class:`ResNet` (its ``avgpool`` and ``fc`` are removed), or ``'resnet50'`` /
            ``'resnet101'`` built with ``replace_stride_with_dilation=[False, True, True]``.
        num_classes: classes per pixel.
        atrous_rates: ASPP dilation rates ((12, 24, 36) at output stride 8).
        aux_loss: add torchvision's auxiliary FCN head on ``layer3``.
        head_channels: ASPP width (256).

    Returns:
        a dict ``{'out': (N, num_classes, H, W)}`` (plus ``'aux'`` with ``aux_loss``), as torchvision.

    Example:
        >>> import lamina
        >>> from lamina.models.resnet import Bottleneck, ResNet
        >>> bb = ResNet(Bottleneck, [1, 1, 1, 1], replace_stride_with_dilation=[False, True, True])
        >>> m = lamina.models.deeplabv3(backbone=bb, num_classes=3, head_channels=8).eval()
        >>> m(lamina.randn(1, 3, 32, 32))['out'].shape
        (1, 3, 32, 32)
    """

    def __init__(self, backbone: str | ResNet = "resnet50", num_classes: int = 21,
                 atrous_rates: Sequence[int] = (12, 24, 36), aux_loss: bool = False, head_channels: int = 256) -> None:
        super().__init__()
        if isinstance(backbone, str):
            builders = {"resnet50": resnet50, "resnet101": resnet101}
            if backbone not in builders:
                raise ValueError(f"DeepLabV3: backbone must be a ResNet or one of {sorted(builders)}, got {backbone!r}")
            backbone = builders[backbone](replace_stride_with_dilation=[False, True, True])
        if not isinstance(backbone, ResNet):
            raise TypeError(f"DeepLabV3: backbone must be a ResNet, got {type(backbone).__name__}")
        for name in ("avgpool", "fc"):
            if name in backbone._modules:
                delattr(backbone, name)
        self.backbone = backbone
        expansion = 4 if isinstance(backbone.layer4[0], Bottleneck) else 1
        with deferred_init():
            self.classifier = DeepLabHead(512 * expansion, num_classes, atrous_rates, head_channels)
            self.aux_classifier = _fcn_head(256 * expansion, num_classes) if aux_loss else None
        init_model(self.classifier)
        if self.aux_classifier is not None:
            init_model(self.aux_classifier)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        size = x.shape[-2:]
        b = self.backbone
        f = b.maxpool(b.relu(b.bn1(b.conv1(x))))
        f3 = b.layer3(b.layer2(b.layer1(f)))
        out = {"out": F.interpolate(self.classifier(b.layer4(f3)), size=size, mode="bilinear", align_corners=False)}
        if self.aux_classifier is not None:
            out["aux"] = F.interpolate(self.aux_classifier(f3), size=size, mode="bilinear", align_corners=False)
        return out


def fcn32s(**kwargs: Any) -> FCN:
    """FCN-32s over VGG-16; see :class:`FCN`."""
    return FCN(variant="32s", **kwargs)


def fcn8s(**kwargs: Any) -> FCN:
    """FCN-8s over VGG-16; see :class:`FCN`."""
    return FCN(variant="8s", **kwargs)


def unet(**kwargs: Any) -> UNet:
    """U-Net; see :class:`UNet`."""
    return UNet(**kwargs)


def deeplabv3(**kwargs: Any) -> DeepLabV3:
    """DeepLab v3 (ResNet-50 backbone by default); see :class:`DeepLabV3`."""
    return DeepLabV3(**kwargs)


def deeplabv3_resnet50(**kwargs: Any) -> DeepLabV3:
    """torchvision's ``deeplabv3_resnet50`` (42,004,074 parameters with ``num_classes=21,
    aux_loss=True``)."""
    return DeepLabV3(backbone="resnet50", **kwargs)


def deeplabv3_resnet101(**kwargs: Any) -> DeepLabV3:
    """torchvision's ``deeplabv3_resnet101`` (60,996,202 parameters with ``num_classes=21,
    aux_loss=True``)."""
    return DeepLabV3(backbone="resnet101", **kwargs)

