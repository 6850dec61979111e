"""CIFAR-sized networks (32×32 inputs): the ResNets of He et al. (2016, §4.2) and the Wide
ResNet WRN-28-10 of Zagoruyko & Komodakis (2016)."""

from __future__ import annotations

from typing import Any

from .. import backend, nn
from ..autograd.function import Context, Function
from ..autograd.tensor import Tensor
from ..nn import functional as F
from ._init import deferred_init, init_model, kaiming_normal

__all__ = ["CifarResNet", "WideResNet", "resnet20", "resnet32", "resnet56", "wrn28_10"]


def _like(x: Any, shape: tuple[int, ...]) -> Any:
    """Zeros of ``shape`` in ``x``'s memory order: channels-last if ``x`` is (as lamina's conv
    outputs are), so the ops downstream keep running without layout transposes."""
    xp = backend.xp
    if x.ndim == 4 and not x.flags.c_contiguous and x.transpose(0, 2, 3, 1).flags.c_contiguous:
        return xp.zeros((shape[0], shape[2], shape[3], shape[1]), dtype=x.dtype).transpose(0, 3, 1, 2)
    return xp.zeros(shape, dtype=x.dtype)


class _SubsamplePad(Function):
    """Option A's shortcut: ``x[:, :, ::2, ::2]`` with ``pad`` zero channels on each side.
    (``F.pad`` would give the same values but an NCHW-ordered array, which turns every later
    layer of the stage NCHW and costs a layout transpose at each conv.)"""

    @staticmethod
    def forward(ctx: Context, x: Any, *, pad: int) -> Any:
        ctx.opts = (pad, x.shape[2:])
        xs = x[:, :, ::2, ::2]
        out = _like(x, (x.shape[0], x.shape[1] + 2 * pad, *xs.shape[2:]))
        out[:, pad:pad + x.shape[1]] = xs
        return out

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        pad, size = ctx.opts
        return _SubsamplePadT.apply(gy, pad=pad, size=size)


class _SubsamplePadT(Function):
    """The adjoint of :class:`_SubsamplePad`: drop the padded channels, scatter to every other pixel."""

    @staticmethod
    def forward(ctx: Context, gy: Any, *, pad: int, size: tuple[int, int]) -> Any:
        ctx.opts = pad
        c = gy.shape[1] - 2 * pad
        gx = _like(gy, (gy.shape[0], c, *size))
        gx[:, :, ::2, ::2] = gy[:, pad:pad + c]
        return gx

    @staticmethod
    def backward(ctx: Context, ggx: Tensor) -> Tensor:
        return _SubsamplePad.apply(ggx, pad=ctx.opts)


class _ShortcutA(nn.Module):
    """He et al.'s option A: a parameter-free shortcut that subsamples by 2 and pads the new
    channels with zeros."""

    def __init__(self, pad: int) -> None:
        super().__init__()
        self.pad = pad

    def forward(self, x: Tensor) -> Tensor:
        return _SubsamplePad.apply(x, pad=self.pad)


class _CifarBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, option: str = "A") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            if option == "A":
                self.shortcut = _ShortcutA((planes - in_planes) // 2)
            else:  # option B: a 1×1 projection
                self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                              nn.BatchNorm2d(planes))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """The CIFAR-10 ResNet of He et al. §4.2: a 3×3 conv (16 maps), three stages of ``n`` basic
    blocks with 16, 32, 64 maps on 32×32, 16×16, 8×8, global average pooling and a linear
    classifier: ``6n + 2`` layers.

    Args:
        depth: ``6n + 2`` (20, 32, 44, 56, 110 …).
        num_classes: number of outputs.
        shortcut: ``'A'`` (the paper's CIFAR choice: zero-padded identity, no parameters) or
            ``'B'`` (1×1 projection convs where the shape changes).
        width: maps of the first stage (16 in the paper; smaller for quick experiments).
        in_channels: input channels.

    Shape:
        ``(N, 3, H, W)`` (32×32 in the paper) → ``(N, num_classes)``.

    Example:
        >>> import lamina
        >>> lamina.models.resnet20()(lamina.randn(2, 3, 32, 32)).shape
        (2, 10)
    """

    def __init__(self, depth: int = 20, num_classes: int = 10, shortcut: str = "A", width: int = 16,
                 in_channels: int = 3) -> None:
        super().__init__()
        if (depth - 2) % 6 or depth < 8:
            raise ValueError(f"CifarResNet: depth must be 6n + 2 (20, 32, 56, …), got {depth}")
        if shortcut not in ("A", "B"):
            raise ValueError(f"CifarResNet: shortcut must be 'A' or 'B', got {shortcut!r}")
        n = (depth - 2) // 6
        with deferred_init():
            self.conv1 = nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.in_planes = width
            self.layer1 = self._make_layer(width, n, 1, shortcut)
            self.layer2 = self._make_layer(2 * width, n, 2, shortcut)
            self.layer3 = self._make_layer(4 * width, n, 2, shortcut)
            self.fc = nn.Linear(4 * width, num_classes)
        init_model(self, conv=lambda m: kaiming_normal(m.weight, mode="fan_out"))

    def _make_layer(self, planes: int, blocks: int, stride: int, shortcut: str) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(_CifarBlock(self.in_planes, planes, s, shortcut))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        # global average pool as a mean: its gradient is a broadcast view, so the backward pass
        # keeps the activations' channels-last order (adaptive_avg_pool2d's gradient is NCHW)
        return self.fc(out.mean((2, 3)))


class _WideBlock(nn.Module):
    """Pre-activation block (BN-ReLU-conv3×3, BN-ReLU-[dropout]-conv3×3) with a 1×1 projection
    shortcut where the shape changes."""

    def __init__(self, in_planes: int, planes: int, stride: int, drop_rate: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.drop_rate = drop_rate
        self.equal_in_out = in_planes == planes and stride == 1
        self.shortcut = None if self.equal_in_out else nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        o = F.relu(self.bn1(x))
        # the projection sees the pre-activated input (as the authors' code)
        identity = x if self.shortcut is None else self.shortcut(o)
        out = self.conv1(o)
        out = F.relu(self.bn2(out))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return self.conv2(out) + identity


class WideResNet(nn.Module):
    """Wide ResNet WRN-``depth``-``widen_factor`` (Zagoruyko & Komodakis, 2016) for 32×32 inputs:
    a 3×3 conv (16 maps), three stages of ``(depth − 4)/6`` pre-activation blocks with
    ``16k, 32k, 64k`` maps, BN-ReLU, global average pooling and a linear classifier.

    Args:
        depth: ``6n + 4`` (28 for WRN-28-10).
        widen_factor: ``k``.
        num_classes: number of outputs.
        drop_rate: dropout between the convolutions of each block (0.3 in the paper's best runs).
        in_channels: input channels.

    Shape:
        ``(N, 3, H, W)`` → ``(N, num_classes)``.

    Example:
        >>> import lamina
        >>> lamina.models.WideResNet(depth=10, widen_factor=1)(lamina.randn(2, 3, 32, 32)).shape
        (2, 10)
    """

    def __init__(self, depth: int = 28, widen_factor: int = 10, num_classes: int = 10, drop_rate: float = 0.0,
                 in_channels: int = 3) -> None:
        super().__init__()
        if (depth - 4) % 6 or depth < 10:
            raise ValueError(f"WideResNet: depth must be 6n + 4 (10, 16, 22, 28, …), got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        with deferred_init():
            self.conv1 = nn.Conv2d(in_channels, widths[0], 3, stride=1, padding=1, bias=False)
            blocks = []
            for stage, stride in zip(range(1, 4), (1, 2, 2)):
                layers = [_WideBlock(widths[stage - 1] if i == 0 else widths[stage], widths[stage],
                                     stride if i == 0 else 1, drop_rate) for i in range(n)]
                blocks.append(nn.Sequential(*layers))
            self.block1, self.block2, self.block3 = blocks
            self.bn = nn.BatchNorm2d(widths[3])
            self.fc = nn.Linear(widths[3], num_classes)
        init_model(self, conv=lambda m: kaiming_normal(m.weight, mode="fan_out"))

    def forward(self, x: Tensor) -> Tensor:
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = F.relu(self.bn(out))
        return self.fc(out.mean((2, 3)))


def resnet20(**kwargs: Any) -> CifarResNet:
    """ResNet-20 for CIFAR-10 (0.27 M parameters: 269,722 with option-A shortcuts)."""
    return CifarResNet(20, **kwargs)


def resnet32(**kwargs: Any) -> CifarResNet:
    """ResNet-32 for CIFAR-10 (464,154 parameters)."""
    return CifarResNet(32, **kwargs)


def resnet56(**kwargs: Any) -> CifarResNet:
    """ResNet-56 for CIFAR-10 (853,018 parameters)."""
    return CifarResNet(56, **kwargs)


def wrn28_10(**kwargs: Any) -> WideResNet:
    """WRN-28-10 for CIFAR-10 (36,479,194 parameters)."""
    return WideResNet(28, 10, **kwargs)
