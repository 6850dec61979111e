"""Convolution layers: ``Conv1d/2d/3d`` and ``ConvTranspose1d/2d/3d`` (one rank-generic base)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ... import backend
from ...autograd.tensor import Tensor
from ...ops._ints import as_int
from ...ops.conv import conv_nd, conv_transpose_nd
from ...ops.conv_fold import fold_nd, unfold_nd
from .. import init
from ..parameter import Parameter
from .module import Module

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "Fold", "Unfold"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _tuple(value: Any, nd: int, name: str, layer: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * nd
    try:
        t = tuple(as_int(v, name, layer) for v in value)
    except TypeError:
        raise TypeError(f"{layer}: {name} must be an int or a tuple of {nd} ints, got {value!r}") from None
    if len(t) != nd:
        raise ValueError(f"{layer}: {name} must be an int or a tuple of {nd} ints, got {value!r}")
    return t


class _ConvNd(Module):
    """What ``Conv{1,2,3}d`` and ``ConvTranspose{1,2,3}d`` share: arguments, checks,
    parameters, torch's initialization and repr."""

    _rank = 2
    transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 output_padding: Any = 0, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        name, nd = type(self).__name__, self._rank
        if device is not None:
            backend.to_device(device)
        if not isinstance(groups, int) or groups <= 0:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups!r}")
        if in_channels % groups:
            raise ValueError(f"{name}: in_channels must be divisible by groups, got in_channels={in_channels} "
                             f"and groups={groups}")
        if out_channels % groups:
            raise ValueError(f"{name}: out_channels must be divisible by groups, got out_channels={out_channels} "
                             f"and groups={groups}")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
        if self.transposed and padding_mode != "zeros":
            raise ValueError(f"{name}: only 'zeros' padding mode is supported, got {padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _tuple(kernel_size, nd, "kernel_size", name)
        self.stride = _tuple(stride, nd, "stride", name)
        self.dilation = _tuple(dilation, nd, "dilation", name)
        for what, t in (("kernel_size", self.kernel_size), ("stride", self.stride), ("dilation", self.dilation)):
            if any(v <= 0 for v in t):
                raise ValueError(f"{name}: {what} must be positive, got {t}")
        if isinstance(padding, str):
            if self.transposed or padding not in ("valid", "same"):
                raise ValueError(f"{name}: invalid padding string {padding!r}"
                                 + ("" if self.transposed else ", should be one of ('valid', 'same')"))
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided convolutions "
                                 f"(stride {self.stride})")
            self.padding: Any = padding
        else:
            self.padding = _tuple(padding, nd, "padding", name)
            if any(p < 0 for p in self.padding):
                raise ValueError(f"{name}: padding must be non-negative, got {self.padding}")
        self.output_padding = _tuple(output_padding, nd, "output_padding", name)
        self.padding_mode = padding_mode
        if self.transposed:
            for o, s, d in zip(self.output_padding, self.stride, self.dilation):
                if o < 0 or (o >= s and o >= d):
                    raise ValueError(f"{name}: output_padding must be smaller than either stride or dilation, "
                                     f"got output_padding {self.output_padding}, stride {self.stride}, "
                                     f"dilation {self.dilation}")
            shape = (in_channels, out_channels // groups, *self.kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *self.kernel_size)
        dt = backend.to_dtype(dtype)
        self.weight = Parameter(Tensor._wrap(backend.xp.empty(shape, dtype=dt)))
        if bias:
            self.bias = Parameter(Tensor._wrap(backend.xp.empty((out_channels,), dtype=dt)))
        else:
            self.register_parameter("bias", None)
        init._init_built(self)  # reset_parameters(), unless a model builder defers it

    def reset_parameters(self) -> None:
        # torch: kaiming_uniform_(a=√5) gives U(±1/√fan_in); the bias U(±1/√fan_in) with the same
        # fan_in = weight.shape[1]·∏kernel (for a transposed conv that is out_channels/groups·∏k)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self._rank:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._rank:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self._rank:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, 0, device, dtype)

    def forward(self, input: Tensor) -> Tensor:
        return conv_nd(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups,
                       self._rank, self.padding_mode)


class _ConvTranspose(_ConvNd):
    transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 output_padding: Any = 0, groups: int = 1, bias: bool = True, dilation: Any = 1,
                 padding_mode: str = "zeros", device: Any = None, dtype: Any = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, output_padding, device, dtype)

    def forward(self, input: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        return conv_transpose_nd(input, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                 self.groups, self.dilation, self._rank, output_size)


_CONV_DOC = """{d}-D convolution layer over ``(N, C_in, {dims})`` inputs (``torch.nn.Conv{d}d``).

    Args:
        in_channels: channels of the input.
        out_channels: channels produced (one filter each).
        kernel_size: an int or a tuple of {d}.
        stride: step of the window (default 1).
        padding: an int, a tuple, ``'valid'`` or ``'same'`` (default 0).
        dilation: spacing between kernel taps (default 1).
        groups: independent channel groups; ``groups = in_channels`` is depthwise (default 1).
        bias: learn an additive bias per output channel (default True).
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.

    Shape:
        output ``(N, C_out, {outs})`` with ``O = floor((S + 2p − d·(k − 1) − 1) / s) + 1`` per dim.

    Initialization (torch's): weight ``kaiming_uniform_(a=√5)``, i.e. ``U(±1/√fan_in)`` with
    ``fan_in = in_channels/groups·∏kernel_size``; bias ``U(±1/√fan_in)``.

    Example:
        >>> import lamina
        >>> m = lamina.nn.Conv{d}d(2, 4, 3, padding=1)
        >>> m(lamina.randn(1, 2, {ex})).shape[:2]
        (1, 4)
    """

_CONVT_DOC = """{d}-D transposed convolution layer (``torch.nn.ConvTranspose{d}d``): the gradient of a
    ``Conv{d}d`` with respect to its input, used to upsample.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, groups, bias, dilation: as the
            convolution it transposes.
        output_padding: extra size on one side of the output, smaller than stride or dilation.

    ``forward(input, output_size=None)``: ``output_size`` picks the output size among those
    reachable (it sets output_padding).

    Shape:
        ``O = (S − 1)·s − 2p + d·(k − 1) + output_padding + 1`` per dim. Weight
        ``(in_channels, out_channels/groups, *kernel_size)``.

    Example:
        >>> import lamina
        >>> m = lamina.nn.ConvTranspose{d}d(4, 2, 2, stride=2)
        >>> m(lamina.randn(1, 4, {ex})).shape[:2]
        (1, 2)
    """


def _doc(template: str, d: int) -> str:
    dims = ", ".join("DHW"[3 - d:])
    return template.format(d=d, dims=dims, outs=", ".join(f"{c}_out" for c in "DHW"[3 - d:]),
                           ex=", ".join(["5"] * d))


class Conv1d(_Conv):
    __doc__ = _doc(_CONV_DOC, 1)
    _rank = 1


class Conv2d(_Conv):
    __doc__ = _doc(_CONV_DOC, 2)
    _rank = 2


class Conv3d(_Conv):
    __doc__ = _doc(_CONV_DOC, 3)
    _rank = 3


class ConvTranspose1d(_ConvTranspose):
    __doc__ = _doc(_CONVT_DOC, 1)
    _rank = 1


class ConvTranspose2d(_ConvTranspose):
    __doc__ = _doc(_CONVT_DOC, 2)
    _rank = 2


class ConvTranspose3d(_ConvTranspose):
    __doc__ = _doc(_CONVT_DOC, 3)
    _rank = 3


class Unfold(Module):
    """im2col as a layer (``torch.nn.Unfold``): ``(N, C, H, W)`` → ``(N, C·∏kernel_size, L)``.

    Args:
        kernel_size, dilation, padding, stride: of the sliding blocks, as in ``Conv2d``.

    Example:
        >>> import lamina
        >>> lamina.nn.Unfold(kernel_size=(2, 3))(lamina.randn(2, 5, 3, 4)).shape
        (2, 30, 4)
    """

    def __init__(self, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1) -> None:
        super().__init__()
        self.kernel_size, self.dilation, self.padding, self.stride = kernel_size, dilation, padding, stride

    def forward(self, input: Tensor) -> Tensor:
        return unfold_nd(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, padding={self.padding}, "
                f"stride={self.stride}")


class Fold(Module):
    """col2im as a layer (``torch.nn.Fold``): ``(N, C·∏kernel_size, L)`` → ``(N, C, *output_size)``,
    summing overlapping blocks.

    Args:
        output_size: ``(H, W)`` of the result.
        kernel_size, dilation, padding, stride: of the sliding blocks.

    Example:
        >>> import lamina
        >>> lamina.nn.Fold(output_size=(4, 5), kernel_size=(2, 2))(lamina.randn(1, 12, 12)).shape
        (1, 3, 4, 5)
    """

    def __init__(self, output_size: Any, kernel_size: Any, dilation: Any = 1, padding: Any = 0,
                 stride: Any = 1) -> None:
        super().__init__()
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, input: Tensor) -> Tensor:
        return fold_nd(input, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")
