"""Functional convolutions (``torch.nn.functional.conv*``, ``conv_transpose*``, ``fold``, ``unfold``).

All of them are thin wrappers over one N-d implementation in :mod:`lamina.ops.conv`.

Output size of a convolution, per spatial dim (``S`` input size, ``k`` kernel, ``s`` stride,
``p`` padding on each side, ``d`` dilation)::

    O = floor((S + 2p − d·(k − 1) − 1) / s) + 1

and of a transposed convolution (``op`` the output_padding)::

    O = (S − 1)·s − 2p + d·(k − 1) + op + 1

A "full" convolution (every partial overlap, as ``numpy.convolve(mode='full')`` but without the
kernel flip) is ``padding = d·(k − 1)``; ``'valid'`` is ``padding=0``; ``'same'`` keeps
``O = S`` (stride 1 only; an odd total padding puts the extra zero after, as torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...autograd.tensor import Tensor
from ...ops.conv import conv_nd, conv_transpose_nd
from ...ops.conv_fold import fold_nd, unfold_nd

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
           "fold", "unfold"]

_Int = Any  # an int or a tuple of ints


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: _Int = 1, padding: Any = 0,
           dilation: _Int = 1, groups: int = 1, *, padding_mode: str = "zeros") -> Tensor:
    """1-D convolution (cross-correlation); see :func:`conv2d` for the arguments.

    Shape:
        input ``(N, C_in, L)`` or ``(C_in, L)``; weight ``(C_out, C_in/groups, k)`` →
        ``(N, C_out, L_out)``.

    Example:
        >>> import lamina
        >>> x = lamina.tensor([[[0., 0., 1., 1., 1., 0.]]])
        >>> box = lamina.ones(1, 1, 3) / 3
        >>> [round(v, 4) for v in lamina.nn.functional.conv1d(x, box).flatten().tolist()]
        [0.3333, 0.6667, 1.0, 0.6667]
    """
    return conv_nd(input, weight, bias, stride, padding, dilation, groups, 1, padding_mode)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: _Int = 1, padding: Any = 0,
           dilation: _Int = 1, groups: int = 1, *, padding_mode: str = "zeros") -> Tensor:
    """2-D convolution (cross-correlation, as every deep-learning library): matches
    ``torch.nn.functional.conv2d``.

    Args:
        input: ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)``.
        weight: ``(C_out, C_in/groups, kH, kW)``.
        bias: optional ``(C_out,)``.
        stride: step of the window, an int or ``(sH, sW)``.
        padding: zeros on each side (an int or a tuple), ``'valid'`` (none) or ``'same'``
            (output as large as the input; stride 1 only). ``padding = dilation·(k − 1)`` gives
            the "full" convolution.
        dilation: spacing between kernel taps.
        groups: split the channels into ``groups`` independent convolutions;
            ``groups = C_in`` is a depthwise convolution.
        padding_mode: (lamina extension; torch has it on the module only) ``'zeros'``,
            ``'reflect'``, ``'replicate'`` or ``'circular'``.

    Shape:
        ``H_out = floor((H + 2·p − d·(kH − 1) − 1) / s + 1)``, the same for ``W``.

    Returns:
        ``(N, C_out, H_out, W_out)`` (or without ``N`` for an unbatched input).

    Raises:
        ValueError: channel/group mismatch, a kernel larger than the padded input, non-positive
            stride or dilation, an input of the wrong rank.

    Example:
        >>> import lamina
        >>> x = lamina.randn(2, 3, 8, 8)
        >>> w = lamina.randn(4, 3, 3, 3)
        >>> lamina.nn.functional.conv2d(x, w, padding=1).shape
        (2, 4, 8, 8)
        >>> lamina.nn.functional.conv2d(x, w, stride=2).shape
        (2, 4, 3, 3)
    """
    return conv_nd(input, weight, bias, stride, padding, dilation, groups, 2, padding_mode)


def conv3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: _Int = 1, padding: Any = 0,
           dilation: _Int = 1, groups: int = 1, *, padding_mode: str = "zeros") -> Tensor:
    """3-D convolution; see :func:`conv2d` for the arguments.

    Shape:
        input ``(N, C_in, D, H, W)`` or ``(C_in, D, H, W)``; weight ``(C_out, C_in/groups, kD, kH, kW)``.

    Example:
        >>> import lamina
        >>> lamina.nn.functional.conv3d(lamina.randn(1, 2, 5, 5, 5), lamina.randn(3, 2, 3, 3, 3)).shape
        (1, 3, 3, 3, 3)
    """
    return conv_nd(input, weight, bias, stride, padding, dilation, groups, 3, padding_mode)


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: _Int = 1,
                     padding: _Int = 0, output_padding: _Int = 0, groups: int = 1, dilation: _Int = 1,
                     output_size: Sequence[int] | None = None) -> Tensor:
    """1-D transposed convolution; see :func:`conv_transpose2d`.

    Example:
        >>> import lamina
        >>> lamina.nn.functional.conv_transpose1d(lamina.ones(1, 1, 3), lamina.ones(1, 1, 2), stride=2).tolist()
        [[[1.0, 1.0, 1.0, 1.0, 1.0, 1.0]]]
    """
    return conv_transpose_nd(input, weight, bias, stride, padding, output_padding, groups, dilation, 1,
                             output_size)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: _Int = 1,
                     padding: _Int = 0, output_padding: _Int = 0, groups: int = 1, dilation: _Int = 1,
                     output_size: Sequence[int] | None = None) -> Tensor:
    """2-D transposed convolution ("deconvolution"): the adjoint of :func:`conv2d` with respect to
    its input, i.e. the gradient of a conv. Matches ``torch.nn.functional.conv_transpose2d``.

    Args:
        input: ``(N, C_in, H, W)`` or ``(C_in, H, W)``.
        weight: ``(C_in, C_out/groups, kH, kW)`` (note: input channels first).
        bias: optional ``(C_out,)``.
        stride, padding, dilation, groups: those of the convolution this one transposes.
        output_padding: extra size added on one side of the output (``< stride`` or
            ``< dilation``), to pick among the input sizes that a strided conv maps to the same size.
        output_size: (lamina extension of the functional form; torch has it on the module) the
            wanted ``(H_out, W_out)``; sets ``output_padding``.

    Shape:
        ``H_out = (H − 1)·s − 2·p + d·(kH − 1) + output_padding + 1``.

    Example:
        >>> import lamina
        >>> lamina.nn.functional.conv_transpose2d(lamina.randn(1, 4, 5, 5), lamina.randn(4, 2, 4, 4),
        ...                                       stride=2, padding=1).shape
        (1, 2, 10, 10)
    """
    return conv_transpose_nd(input, weight, bias, stride, padding, output_padding, groups, dilation, 2,
                             output_size)


def conv_transpose3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: _Int = 1,
                     padding: _Int = 0, output_padding: _Int = 0, groups: int = 1, dilation: _Int = 1,
                     output_size: Sequence[int] | None = None) -> Tensor:
    """3-D transposed convolution; see :func:`conv_transpose2d`.

    Example:
        >>> import lamina
        >>> lamina.nn.functional.conv_transpose3d(lamina.randn(1, 2, 3, 3, 3), lamina.randn(2, 1, 2, 2, 2)).shape
        (1, 1, 4, 4, 4)
    """
    return conv_transpose_nd(input, weight, bias, stride, padding, output_padding, groups, dilation, 3,
                             output_size)


def unfold(input: Tensor, kernel_size: _Int, dilation: _Int = 1, padding: _Int = 0, stride: _Int = 1) -> Tensor:
    """im2col: every sliding block of a batch of images as a column (``torch.nn.functional.unfold``).

    Args:
        input: ``(N, C, H, W)`` or ``(C, H, W)``.
        kernel_size, dilation, padding, stride: those of the blocks, as in :func:`conv2d`.

    Shape:
        ``(N, C·kH·kW, L)`` with ``L = H_out·W_out`` the number of blocks (the conv output size).
        A conv2d is ``w.view(C_out, -1) @ unfold(x, k)`` reshaped to ``(N, C_out, H_out, W_out)``.

    Example:
        >>> import lamina
        >>> x = lamina.arange(9.).reshape(1, 1, 3, 3)
        >>> lamina.nn.functional.unfold(x, 2)[0].tolist()
        [[0.0, 1.0, 3.0, 4.0], [1.0, 2.0, 4.0, 5.0], [3.0, 4.0, 6.0, 7.0], [4.0, 5.0, 7.0, 8.0]]
    """
    return unfold_nd(input, kernel_size, dilation, padding, stride, 2)


def fold(input: Tensor, output_size: _Int, kernel_size: _Int, dilation: _Int = 1, padding: _Int = 0,
         stride: _Int = 1) -> Tensor:
    """col2im: sum the columns of :func:`unfold` back into images (``torch.nn.functional.fold``).

    Overlapping blocks add up, so ``fold(unfold(x))`` multiplies each pixel by the number of
    blocks that contain it.

    Args:
        input: ``(N, C·kH·kW, L)`` or ``(C·kH·kW, L)``.
        output_size: ``(H, W)`` of the images.
        kernel_size, dilation, padding, stride: as :func:`unfold`.

    Shape:
        ``(N, C, H, W)``.

    Example:
        >>> import lamina
        >>> x = lamina.ones(1, 1, 3, 3)
        >>> F = lamina.nn.functional
        >>> F.fold(F.unfold(x, 2), (3, 3), 2)[0, 0].tolist()
        [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
    """
    return fold_nd(input, output_size, kernel_size, dilation, padding, stride, 2)
