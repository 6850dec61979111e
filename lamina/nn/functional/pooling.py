"""Pooling with ``torch.nn.functional``'s names and signatures (1-D, 2-D and 3-D share one
N-d implementation in ``lamina.ops.pooling``).

Output size per spatial dim (max and average pooling)::

    out = ⌊(n + 2·padding − dilation·(kernel_size − 1) − 1) / stride⌋ + 1

(⌈⌉ with ``ceil_mode=True``, dropping a last window that would start in the right padding).
A global average pool is ``adaptive_avg_pool2d(x, 1)`` (module: ``nn.GlobalAvgPool2d``).
"""

from __future__ import annotations

from typing import Any

from ...autograd.tensor import Tensor
from ...ops.pooling import (
    adaptive_avg_pool_nd,
    adaptive_max_pool_nd,
    avg_pool_nd,
    lp_pool_nd,
    max_pool_nd,
    max_unpool_nd,
)

__all__ = ["max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices",
           "max_pool3d_with_indices", "avg_pool1d", "avg_pool2d", "avg_pool3d", "lp_pool1d", "lp_pool2d",
           "lp_pool3d", "max_unpool1d", "max_unpool2d", "max_unpool3d", "adaptive_avg_pool1d",
           "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d",
           "adaptive_max_pool3d"]


def max_pool2d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """2-D max pooling (``torch.nn.functional.max_pool2d``).

    Args:
        input: ``(N, C, H, W)`` or ``(C, H, W)``.
        kernel_size: window size (int or pair).
        stride: window step (default: ``kernel_size``).
        padding: implicit −∞ padding on both sides, at most half the kernel.
        dilation: spacing between window elements.
        ceil_mode: round the output size up instead of down.
        return_indices: also return, for each output, the flat index of the maximum within its
            input plane ``H·W`` (what ``max_unpool2d`` takes).

    Shape:
        ``(N, C, H, W)`` → ``(N, C, H_out, W_out)`` with the formula in the module docstring.

    Ties: the first maximum in the window's row-major scan order wins and receives the whole
    gradient, as in torch.

    Example:
        >>> import lamina
        >>> x = lamina.arange(16.).reshape(1, 1, 4, 4)
        >>> max_pool2d(x, 2).reshape(-1).tolist()
        [5.0, 7.0, 13.0, 15.0]
    """
    return max_pool_nd(input, 2, kernel_size, stride, padding, dilation, ceil_mode, return_indices, "max_pool2d")


def max_pool1d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """1-D max pooling over ``(N, C, L)``; see :func:`max_pool2d`."""
    return max_pool_nd(input, 1, kernel_size, stride, padding, dilation, ceil_mode, return_indices, "max_pool1d")


def max_pool3d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """3-D max pooling over ``(N, C, D, H, W)``; see :func:`max_pool2d`."""
    return max_pool_nd(input, 3, kernel_size, stride, padding, dilation, ceil_mode, return_indices, "max_pool3d")


def max_pool1d_with_indices(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
                            dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = True) -> Any:
    return max_pool_nd(input, 1, kernel_size, stride, padding, dilation, ceil_mode, True, "max_pool1d")


def max_pool2d_with_indices(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
                            dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = True) -> Any:
    return max_pool_nd(input, 2, kernel_size, stride, padding, dilation, ceil_mode, True, "max_pool2d")


def max_pool3d_with_indices(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
                            dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = True) -> Any:
    return max_pool_nd(input, 3, kernel_size, stride, padding, dilation, ceil_mode, True, "max_pool3d")


def avg_pool2d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """2-D average pooling (``torch.nn.functional.avg_pool2d``).

    Args:
        input: ``(N, C, H, W)`` or ``(C, H, W)``.
        kernel_size: window size (int or pair).
        stride: window step (default: ``kernel_size``).
        padding: implicit zero padding, at most half the kernel.
        ceil_mode: round the output size up instead of down.
        count_include_pad: divide by the window size including padded zeros (torch's default);
            else by the number of real input elements in the window.
        divisor_override: divide every window sum by this number instead.

    Shape:
        ``(N, C, H, W)`` → ``(N, C, H_out, W_out)`` (dilation 1 in the module formula).

    Example:
        >>> import lamina
        >>> x = lamina.arange(16.).reshape(1, 1, 4, 4)
        >>> avg_pool2d(x, 2).reshape(-1).tolist()
        [2.5, 4.5, 10.5, 12.5]
    """
    return avg_pool_nd(input, 2, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
                       "avg_pool2d")


def avg_pool1d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """1-D average pooling over ``(N, C, L)``; see :func:`avg_pool2d` (torch's 1-D form has no
    ``divisor_override``)."""
    return avg_pool_nd(input, 1, kernel_size, stride, padding, ceil_mode, count_include_pad, None, "avg_pool1d")


def avg_pool3d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """3-D average pooling over ``(N, C, D, H, W)``; see :func:`avg_pool2d`."""
    return avg_pool_nd(input, 3, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
                       "avg_pool3d")


def lp_pool2d(input: Tensor, norm_type: float, kernel_size: Any, stride: Any = None,
              ceil_mode: bool = False) -> Tensor:
    """Power-average pooling ``(Σ_window x^p)^(1/p)`` (``torch.nn.functional.lp_pool2d``).

    ``p = 1`` is sum pooling, ``p = ∞`` max pooling (of ``|x|``). Composed exactly as torch does
    (average pool of ``x^p`` times the window size), so gradients match torch's, including
    its NaN gradient where a window sums to 0 with ``p > 1``.

    Shape:
        ``(N, C, H, W)`` → ``(N, C, H_out, W_out)`` (no padding, dilation 1).

    Example:
        >>> import lamina
        >>> lp_pool2d(lamina.full((1, 1, 2, 2), 2.), 2, 2).item()
        4.0
    """
    return lp_pool_nd(input, 2, norm_type, kernel_size, stride, ceil_mode, "lp_pool2d")


def lp_pool1d(input: Tensor, norm_type: float, kernel_size: int, stride: Any = None,
              ceil_mode: bool = False) -> Tensor:
    """1-D power-average pooling; see :func:`lp_pool2d`."""
    return lp_pool_nd(input, 1, norm_type, kernel_size, stride, ceil_mode, "lp_pool1d")


def lp_pool3d(input: Tensor, norm_type: float, kernel_size: Any, stride: Any = None,
              ceil_mode: bool = False) -> Tensor:
    """3-D power-average pooling; see :func:`lp_pool2d`."""
    return lp_pool_nd(input, 3, norm_type, kernel_size, stride, ceil_mode, "lp_pool3d")


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 output_size: Any = None) -> Tensor:
    """The partial inverse of ``max_pool2d``: each value goes back to the position its index
    names, every other output is zero (``torch.nn.functional.max_unpool2d``).

    Args:
        input: pooled values ``(N, C, H, W)``.
        indices: the indices ``max_pool2d(..., return_indices=True)`` returned.
        kernel_size, stride, padding: those of the pooling.
        output_size: the size to restore (spatial, or the full shape), to undo the rounding down.

    Shape:
        ``H_out = (H − 1)·stride − 2·padding + kernel_size`` unless ``output_size`` is given.

    Example:
        >>> import lamina
        >>> y, i = max_pool2d(lamina.tensor([[[[1., 2.], [4., 3.]]]]), 2, return_indices=True)
        >>> max_unpool2d(y, i, 2).tolist()
        [[[[0.0, 0.0], [4.0, 0.0]]]]
    """
    return max_unpool_nd(input, indices, 2, kernel_size, stride, padding, output_size, "max_unpool2d")


def max_unpool1d(input: Tensor, indices: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 output_size: Any = None) -> Tensor:
    """1-D max-unpooling; see :func:`max_unpool2d`."""
    return max_unpool_nd(input, indices, 1, kernel_size, stride, padding, output_size, "max_unpool1d")


def max_unpool3d(input: Tensor, indices: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 output_size: Any = None) -> Tensor:
    """3-D max-unpooling; see :func:`max_unpool2d`."""
    return max_unpool_nd(input, indices, 3, kernel_size, stride, padding, output_size, "max_unpool3d")


def adaptive_avg_pool2d(input: Tensor, output_size: Any) -> Tensor:
    """Average pooling to a fixed output size (``torch.nn.functional.adaptive_avg_pool2d``).

    Output ``o`` averages input rows ``⌊o·H/H_out⌋ … ⌈(o+1)·H/H_out⌉ − 1`` (windows may
    overlap by one when ``H_out`` does not divide ``H``). ``output_size=1`` is the global
    average pool of classification heads. ``None`` in ``output_size`` keeps that dim.

    Shape:
        ``(N, C, H, W)`` → ``(N, C, *output_size)``.

    Example:
        >>> import lamina
        >>> adaptive_avg_pool2d(lamina.ones(2, 3, 5, 7), 1).shape
        (2, 3, 1, 1)
    """
    return adaptive_avg_pool_nd(input, 2, output_size, "adaptive_avg_pool2d")


def adaptive_avg_pool1d(input: Tensor, output_size: Any) -> Tensor:
    """1-D adaptive average pooling; see :func:`adaptive_avg_pool2d`."""
    return adaptive_avg_pool_nd(input, 1, output_size, "adaptive_avg_pool1d")


def adaptive_avg_pool3d(input: Tensor, output_size: Any) -> Tensor:
    """3-D adaptive average pooling; see :func:`adaptive_avg_pool2d`."""
    return adaptive_avg_pool_nd(input, 3, output_size, "adaptive_avg_pool3d")


def adaptive_max_pool2d(input: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """Max pooling to a fixed output size (``torch.nn.functional.adaptive_max_pool2d``), with
    torch's windows (see :func:`adaptive_avg_pool2d`) and tie rule (first maximum).

    Shape:
        ``(N, C, H, W)`` → ``(N, C, *output_size)``.

    Example:
        >>> import lamina
        >>> adaptive_max_pool2d(lamina.arange(9.).reshape(1, 1, 3, 3), 2).reshape(-1).tolist()
        [4.0, 5.0, 7.0, 8.0]
    """
    return adaptive_max_pool_nd(input, 2, output_size, return_indices, "adaptive_max_pool2d")


def adaptive_max_pool1d(input: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """1-D adaptive max pooling; see :func:`adaptive_max_pool2d`."""
    return adaptive_max_pool_nd(input, 1, output_size, return_indices, "adaptive_max_pool1d")


def adaptive_max_pool3d(input: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """3-D adaptive max pooling; see :func:`adaptive_max_pool2d`."""
    return adaptive_max_pool_nd(input, 3, output_size, return_indices, "adaptive_max_pool3d")
