"""``DeformConv2d``: the layer form of :func:`lamina.ops.deform.deform_conv2d` (torchvision's
``torchvision.ops.DeformConv2d``; exported from :mod:`lamina.vision.ops`, as torch.nn has none)."""

from __future__ import annotations

from typing import Any

from ... import backend
from ...autograd.tensor import Tensor
from ...ops.conv import ntuple
from ...ops.deform import deform_conv2d
from ..parameter import Parameter
from .conv import _ConvNd
from .module import Module

__all__ = ["DeformConv2d"]


class DeformConv2d(Module):
    """A 2-D deformable convolution whose offsets (and mask) come with each call.

    Args:
        in_channels, out_channels: channels in and out (both divisible by ``groups``).
        kernel_size, stride, padding, dilation: an int or a pair, as in ``Conv2d``.
        groups: weight groups: ``weight`` has shape ``(out_channels, in_channels/groups, kh, kw)``.
        bias: whether to add a learnt bias.

    Shape:
        ``forward(input (N, C_in, H, W), offset (N, 2·offset_groups·kh·kw, Ho, Wo),
        mask (N, offset_groups·kh·kw, Ho, Wo) or None)`` → ``(N, C_out, Ho, Wo)``, with ``Ho, Wo``
        as for ``Conv2d``; the offset groups are read from ``offset.shape[1]``.

    The weight is drawn as torchvision's (``kaiming_uniform_(a=√5)``, i.e. U(±1/√fan_in)) and the
    bias from U(±1/√fan_in), ``fan_in = in_channels/groups·kh·kw``. Matches
    ``torchvision.ops.DeformConv2d``, its repr included.

    Example:
        >>> import lamina
        >>> from lamina.vision.ops import DeformConv2d
        >>> layer = DeformConv2d(3, 8, 3, padding=1)
        >>> x = lamina.randn(2, 3, 5, 5)
        >>> layer(x, lamina.zeros(2, 18, 5, 5)).shape
        (2, 8, 5, 5)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        if not isinstance(groups, int) or isinstance(groups, bool) or groups <= 0:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups!r}")
        if in_channels % groups:
            raise ValueError(f"{name}: in_channels must be divisible by groups, got in_channels={in_channels} "
                             f"and groups={groups}")
        if out_channels % groups:
            raise ValueError(f"{name}: out_channels must be divisible by groups, got out_channels={out_channels} "
                             f"and groups={groups}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = ntuple(kernel_size, 2, "kernel_size", name)
        self.stride = ntuple(stride, 2, "stride", name)
        self.padding = ntuple(padding, 2, "padding", name)
        self.dilation = ntuple(dilation, 2, "dilation", name)
        for what, t in (("kernel_size", self.kernel_size), ("stride", self.stride), ("dilation", self.dilation)):
            if min(t) <= 0:
                raise ValueError(f"{name}: {what} must be positive, got {t}")
        if min(self.padding) < 0:
            raise ValueError(f"{name}: padding must be non-negative, got {self.padding}")
        dt = backend.get_default_dtype()
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = Parameter(Tensor._wrap(backend.xp.empty(shape, dtype=dt)))
        if bias:
            self.bias = Parameter(Tensor._wrap(backend.xp.empty((out_channels,), dtype=dt)))
        else:
            self.register_parameter("bias", None)
        # always drawn: models' deferred init (lamina.models._init.init_model) knows conv and linear
        # layers only, so a deferred DeformConv2d would keep uninitialized memory
        self.reset_parameters()

    reset_parameters = _ConvNd.reset_parameters  # torch's conv default, as torchvision's

    def forward(self, input: Tensor, offset: Tensor, mask: Tensor | None = None) -> Tensor:
        return deform_conv2d(input, offset, self.weight, self.bias, stride=self.stride, padding=self.padding,
                             dilation=self.dilation, mask=mask)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s
