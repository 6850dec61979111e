"""Deformable convolution (DCNv1, and DCNv2 with a mask): ``torchvision.ops.deform_conv2d``.

One primitive, ``DeformConv(x, offset, weight, mask, bias)``, whose forward builds the deformable
column matrix and multiplies it by the weight (:mod:`lamina.ops.kernels.deform`; the plain loops
of :mod:`lamina.ops.kernels.deform_reference` are the text to read) and whose backward returns all
five gradients from the kernels' backward: the output is bilinear in (samples, weight) and the
samples are piecewise bilinear in the offsets, so the gradients are those of a GEMM followed by a
col2im with the bilinear weights and the corner differences. Double backward is not supported, as
in torchvision: under ``backward(create_graph=True)`` the gradients are recorded, and
differentiating them raises.
"""

from __future__ import annotations

from typing import Any

from ..autograd.function import Context, Function
from ..autograd.grad_mode import is_grad_enabled
from ..autograd.tensor import Tensor
from .common import check_tensor
from .conv import ntuple
from .kernels import deform as K

__all__ = ["deform_conv2d"]

_OP = "deform_conv2d"


class DeformConv(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, offset: Any, w: Any, mask: Any, b: Any, *, stride: tuple[int, int],
                padding: tuple[int, int], dilation: tuple[int, int]) -> Any:
        ctx.opts = (stride, padding, dilation)
        ctx.save_for_backward(x, offset, w, mask)
        y, cols = K.deform_forward(x, offset, w, b, mask, stride, padding, dilation,
                                   keep_cols=ctx.needs_input_grad[2])
        ctx.cols = cols  # the weight gradient's operand: kept rather than sampled again
        return y

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> tuple[Tensor | None, ...]:
        x, offset, w, mask = ctx.saved_tensors
        nx, noff, nw, nm, nb = ctx.needs_input_grad
        grads = K.deform_backward(gy.array, x.array, offset.array, w.array, None if mask is None else mask.array,
                                  ctx.cols, *ctx.opts, needs=(nx, noff, nw, nm))
        recorded = is_grad_enabled()  # backward(create_graph=True): a second derivative may be asked for

        def wrap(g: Any) -> Tensor | None:
            if g is None:
                return None
            return FirstOrderOnly.apply(Tensor._wrap(g), gy, x, offset, w, mask) if recorded else Tensor._wrap(g)

        gx, goff, gw, gm = (wrap(g) for g in grads)
        gb = gy.sum((0, 2, 3)) if nb else None
        return gx, goff, gw, gm, gb


class FirstOrderOnly(Function):
    """Passes a first-order gradient of :class:`DeformConv` on (its first input) and raises when
    differentiated, so that a double backward fails loudly rather than giving zero."""

    @staticmethod
    def forward(ctx: Context, g: Any, *inputs: Any) -> Any:
        return g

    @staticmethod
    def backward(ctx: Context, gg: Tensor) -> tuple[Tensor | None, ...]:
        raise RuntimeError(f"{_OP}: double backward is not supported (as in torchvision): its gradients are "
                           "computed by array kernels, not by differentiable operations")


def _shape(t: Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def deform_conv2d(input: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None = None,
                  stride: Any = (1, 1), padding: Any = (0, 0), dilation: Any = (1, 1),
                  mask: Tensor | None = None) -> Tensor:
    """Deformable convolution: DCN (`Dai et al. 2017 <https://arxiv.org/abs/1703.06211>`_) without
    ``mask``, DCNv2 (`Zhu et al. 2018 <https://arxiv.org/abs/1811.11168>`_) with it.

    Each tap ``(i, j)`` of output pixel ``(oy, ox)`` reads the input at
    ``(oy·s_h − p_h + i·d_h + Δy, ox·s_w − p_w + j·d_w + Δx)`` by bilinear interpolation (zero
    outside the image), times the mask value; the rest is a grouped convolution. The plain loops
    of :func:`lamina.ops.kernels.deform_reference.reference_deform_conv2d` say it line by line.
    Matches ``torchvision.ops.deform_conv2d``; differentiable in every tensor argument (first
    order only, as torchvision: a double backward raises).

    Args:
        input: ``(N, C_in, H, W)``.
        offset: ``(N, 2·offset_groups·kh·kw, Ho, Wo)``: for offset group ``og`` and tap
            ``k = i·kw + j``, channel ``og·2·kh·kw + 2k`` holds ``Δy`` and the next one ``Δx``.
            ``offset_groups = offset.shape[1] // (2·kh·kw)`` must divide ``C_in``.
        weight: ``(C_out, C_in/groups, kh, kw)``; ``groups = C_in // weight.shape[1]``.
        bias: ``(C_out,)`` or None.
        stride, padding, dilation: an int or a pair.
        mask: ``(N, offset_groups·kh·kw, Ho, Wo)`` or None (every tap's mask is 1).

    Shape:
        ``Ho = ⌊(H + 2·p_h − d_h·(kh − 1) − 1) / s_h⌋ + 1``, ``Wo`` likewise; the output is
        ``(N, C_out, Ho, Wo)``.

    Returns:
        The output tensor.

    Example:
        >>> import lamina
        >>> from lamina.vision.ops import deform_conv2d
        >>> x = lamina.ones(1, 1, 1, 3)
        >>> x[0, 0, 0, 1] = 3.0
        >>> w = lamina.ones(1, 1, 1, 1)
        >>> offset = lamina.zeros(1, 2, 1, 3)
        >>> offset[0, 1] = 0.5  # Δx = +0.5: each output is the mean of two neighbours
        >>> deform_conv2d(x, offset, w).tolist()
        [[[[2.0, 2.0, 0.5]]]]
    """
    check_tensor(input, _OP)
    check_tensor(offset, _OP, "offset")
    check_tensor(weight, _OP, "weight")
    named = [("input", input), ("offset", offset), ("weight", weight)]
    if mask is not None:
        named.append(("mask", check_tensor(mask, _OP, "mask")))
    for name, t in named:
        if t.ndim != 4:
            raise ValueError(f"{_OP}: expected a 4-D {name}, got a {t.ndim}-D {name} of shape {_shape(t)}")
    if bias is not None:
        named.append(("bias", check_tensor(bias, _OP, "bias")))
    if input.dtype.kind != "f" or any(t.dtype != input.dtype for _, t in named):
        dtypes = ", ".join(f"{name} {t.dtype}" for name, t in named)
        raise TypeError(f"{_OP}: input, offset, weight, mask and bias must have one floating dtype, got {dtypes}")
    stride = ntuple(stride, 2, "stride", _OP)
    padding = ntuple(padding, 2, "padding", _OP)
    dilation = ntuple(dilation, 2, "dilation", _OP)
    if min(stride) <= 0 or min(dilation) <= 0 or min(padding) < 0:
        raise ValueError(f"{_OP}: stride and dilation must be positive and padding non-negative, got stride "
                         f"{stride}, padding {padding}, dilation {dilation}")
    n, c, h, w = _shape(input)
    c_out, cg, kh, kw = _shape(weight)
    if kh == 0 or kw == 0 or cg == 0 or c_out == 0:
        raise ValueError(f"{_OP}: weight must have non-zero sizes, got shape {_shape(weight)}")
    if c % cg:
        raise ValueError(f"{_OP}: input has {c} channels, which is not a multiple of the weight's {cg} input "
                         f"channels per group (weight shape {_shape(weight)})")
    groups = c // cg
    if c_out % groups:
        raise ValueError(f"{_OP}: the weight's {c_out} output channels are not divisible by groups={groups} "
                         f"(input channels {c} / weight.shape[1] {cg}; weight shape {_shape(weight)})")
    if bias is not None and _shape(bias) != (c_out,):
        raise ValueError(f"{_OP}: bias must have shape ({c_out},), got {_shape(bias)}")
    taps = kh * kw
    if offset.shape[1] == 0 or offset.shape[1] % (2 * taps):
        raise ValueError(f"{_OP}: offset.shape[1] must be a positive multiple of 2·kh·kw = {2 * taps} "
                         f"(2·offset_groups·kh·kw), got offset of shape {_shape(offset)}")
    offset_groups = offset.shape[1] // (2 * taps)
    if c % offset_groups:
        raise ValueError(f"{_OP}: input has {c} channels, which is not divisible by offset_groups={offset_groups} "
                         f"(offset.shape[1] {offset.shape[1]} / (2·{kh}·{kw}))")
    out_h = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    out_w = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"{_OP}: the output would be {out_h}×{out_w}: kernel {kh}×{kw} with dilation {dilation} "
                         f"is larger than the padded input ({h}×{w}, padding {padding})")
    want = (n, 2 * offset_groups * taps, out_h, out_w)
    if _shape(offset) != want:
        raise ValueError(f"{_OP}: expected offset of shape {want} (N, 2·offset_groups·kh·kw, Ho, Wo), got "
                         f"{_shape(offset)}")
    if mask is not None and _shape(mask) != (n, offset_groups * taps, out_h, out_w):
        raise ValueError(f"{_OP}: expected mask of shape {(n, offset_groups * taps, out_h, out_w)} "
                         f"(N, offset_groups·kh·kw, Ho, Wo), got {_shape(mask)}")
    return DeformConv.apply(input, offset, weight, mask, bias, stride=stride, padding=padding, dilation=dilation)
