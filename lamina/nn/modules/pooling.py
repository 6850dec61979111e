"""Pooling layers (``torch.nn.MaxPool2d`` …): thin modules over ``lamina.nn.functional``.

Each family has one base class generic over the number of spatial dims; the 1-D/2-D/3-D
classes only name their functional form. ``GlobalAvgPool2d`` is lamina's convenience.
"""

from __future__ import annotations

from typing import Any

from ...autograd.tensor import Tensor
from ...ops.pooling import ntuple
from .. import functional as F
from .module import Module

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d", "LPPool1d", "LPPool2d",
           "LPPool3d", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
           "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "GlobalAvgPool2d"]


class _MaxPoolNd(Module):
    _fn: Any = None

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input: Tensor) -> Any:
        return type(self)._fn(input, self.kernel_size, self.stride, self.padding, self.dilation,
                              ceil_mode=self.ceil_mode, return_indices=self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool2d(_MaxPoolNd):
    """2-D max pooling (``torch.nn.MaxPool2d``); see :func:`lamina.nn.functional.max_pool2d`.

    Args:
        kernel_size: window size.
        stride: window step (default ``kernel_size``).
        padding: implicit −∞ padding, at most half the kernel.
        dilation: spacing between window elements.
        return_indices: also return the argmax indices (for ``MaxUnpool2d``).
        ceil_mode: round the output size up.

    Shape:
        ``(N, C, H, W)`` → ``(N, C, H_out, W_out)``,
        ``H_out = ⌊(H + 2·padding − dilation·(kernel_size − 1) − 1)/stride⌋ + 1``.

    Example:
        >>> import lamina
        >>> lamina.nn.MaxPool2d(3, stride=2)(lamina.randn(2, 4, 9, 9)).shape
        (2, 4, 4, 4)
    """

    _fn = staticmethod(F.max_pool2d)


class MaxPool1d(_MaxPoolNd):
    """1-D max pooling over ``(N, C, L)`` (``torch.nn.MaxPool1d``); see :class:`MaxPool2d`."""

    _fn = staticmethod(F.max_pool1d)


class MaxPool3d(_MaxPoolNd):
    """3-D max pooling over ``(N, C, D, H, W)`` (``torch.nn.MaxPool3d``); see :class:`MaxPool2d`."""

    _fn = staticmethod(F.max_pool3d)


class _AvgPoolNd(Module):
    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(_AvgPoolNd):
    """2-D average pooling (``torch.nn.AvgPool2d``); see :func:`lamina.nn.functional.avg_pool2d`.

    Shape:
        ``(N, C, H, W)`` → ``(N, C, H_out, W_out)``, ``H_out = ⌊(H + 2·padding − kernel_size)/stride⌋ + 1``.

    Example:
        >>> import lamina
        >>> lamina.nn.AvgPool2d(2)(lamina.ones(1, 1, 4, 4)).tolist()
        [[[[1.0, 1.0], [1.0, 1.0]]]]
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class AvgPool1d(_AvgPoolNd):
    """1-D average pooling (``torch.nn.AvgPool1d``; no ``divisor_override``, as torch)."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)

    def forward(self, input: Tensor) -> Tensor:
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)


class AvgPool3d(_AvgPoolNd):
    """3-D average pooling (``torch.nn.AvgPool3d``); see :class:`AvgPool2d`."""

    def forward(self, input: Tensor) -> Tensor:
        return F.avg_pool3d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class _LPPoolNd(Module):
    _fn: Any = None

    def __init__(self, norm_type: float, kernel_size: Any, stride: Any = None, ceil_mode: bool = False) -> None:
        super().__init__()
        self.norm_type = norm_type
        self.kernel_size = kernel_size
        self.stride = stride
        self.ceil_mode = ceil_mode

    def forward(self, input: Tensor) -> Tensor:
        return type(self)._fn(input, float(self.norm_type), self.kernel_size, self.stride, self.ceil_mode)

    def extra_repr(self) -> str:
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"ceil_mode={self.ceil_mode}")


class LPPool2d(_LPPoolNd):
    """2-D power-average pooling ``(Σ_window x^p)^(1/p)`` (``torch.nn.LPPool2d``).

    Example:
        >>> import lamina
        >>> lamina.nn.LPPool2d(1, 2)(lamina.ones(1, 1, 2, 2)).item()
        4.0
    """

    _fn = staticmethod(F.lp_pool2d)


class LPPool1d(_LPPoolNd):
    """1-D power-average pooling (``torch.nn.LPPool1d``)."""

    _fn = staticmethod(F.lp_pool1d)


class LPPool3d(_LPPoolNd):
    """3-D power-average pooling (``torch.nn.LPPool3d``)."""

    _fn = staticmethod(F.lp_pool3d)


class _MaxUnpoolNd(Module):
    _fn: Any = None
    _nd = 2

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        nd = type(self)._nd
        self.kernel_size = ntuple(kernel_size, nd, "kernel_size", type(self).__name__)
        self.stride = ntuple(stride if stride is not None else kernel_size, nd, "stride", type(self).__name__)
        self.padding = ntuple(padding, nd, "padding", type(self).__name__, minimum=0)

    def forward(self, input: Tensor, indices: Tensor, output_size: Any = None) -> Tensor:
        return type(self)._fn(input, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool2d(_MaxUnpoolNd):
    """Values back at the positions ``MaxPool2d(return_indices=True)`` took them from, zeros
    elsewhere (``torch.nn.MaxUnpool2d``); ``output_size`` resolves the rounded-down size.

    Example:
        >>> import lamina
        >>> pool, unpool = lamina.nn.MaxPool2d(2, return_indices=True), lamina.nn.MaxUnpool2d(2)
        >>> y, i = pool(lamina.randn(1, 1, 4, 4))
        >>> unpool(y, i).shape
        (1, 1, 4, 4)
    """

    _fn = staticmethod(F.max_unpool2d)


class MaxUnpool1d(_MaxUnpoolNd):
    """1-D max-unpooling (``torch.nn.MaxUnpool1d``)."""

    _fn = staticmethod(F.max_unpool1d)
    _nd = 1


class MaxUnpool3d(_MaxUnpoolNd):
    """3-D max-unpooling (``torch.nn.MaxUnpool3d``)."""

    _fn = staticmethod(F.max_unpool3d)
    _nd = 3


class _AdaptiveAvgPoolNd(Module):
    _fn: Any = None

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        return type(self)._fn(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """Average pooling to a fixed output size (``torch.nn.AdaptiveAvgPool2d``).

    Example:
        >>> import lamina
        >>> lamina.nn.AdaptiveAvgPool2d((1, 1))(lamina.randn(2, 8, 7, 7)).shape
        (2, 8, 1, 1)
    """

    _fn = staticmethod(F.adaptive_avg_pool2d)


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """1-D adaptive average pooling (``torch.nn.AdaptiveAvgPool1d``)."""

    _fn = staticmethod(F.adaptive_avg_pool1d)


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """3-D adaptive average pooling (``torch.nn.AdaptiveAvgPool3d``)."""

    _fn = staticmethod(F.adaptive_avg_pool3d)


class _AdaptiveMaxPoolNd(Module):
    _fn: Any = None

    def __init__(self, output_size: Any, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size = output_size
        self.return_indices = return_indices

    def forward(self, input: Tensor) -> Any:
        return type(self)._fn(input, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """Max pooling to a fixed output size (``torch.nn.AdaptiveMaxPool2d``).

    Example:
        >>> import lamina
        >>> lamina.nn.AdaptiveMaxPool2d(3)(lamina.randn(1, 2, 8, 5)).shape
        (1, 2, 3, 3)
    """

    _fn = staticmethod(F.adaptive_max_pool2d)


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """1-D adaptive max pooling (``torch.nn.AdaptiveMaxPool1d``)."""

    _fn = staticmethod(F.adaptive_max_pool1d)


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """3-D adaptive max pooling (``torch.nn.AdaptiveMaxPool3d``)."""

    _fn = staticmethod(F.adaptive_max_pool3d)


class GlobalAvgPool2d(Module):
    """The mean of each channel over all positions — lamina's extension, the same as
    ``AdaptiveAvgPool2d(1)`` (torch has no class of this name).

    Args:
        flatten: return ``(N, C)`` instead of ``(N, C, 1, 1)`` (ready for a ``Linear`` head).

    Example:
        >>> import lamina
        >>> lamina.nn.GlobalAvgPool2d(flatten=True)(lamina.ones(2, 3, 4, 4)).shape
        (2, 3)
    """

    def __init__(self, flatten: bool = False) -> None:
        super().__init__()
        self.flatten = flatten

    def forward(self, input: Tensor) -> Tensor:
        y = F.adaptive_avg_pool2d(input, 1)
        return y.flatten(-3) if self.flatten else y

    def extra_repr(self) -> str:
        return f"flatten={self.flatten}"
