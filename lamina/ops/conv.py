"""Convolution and transposed convolution, one N-d implementation for 1-, 2- and 3-D.

Three primitives close the family under differentiation (so double backward works):

- ``Conv(x, w, b)``: ``y = x ⋆ w + b`` (cross-correlation, as torch);
- ``ConvTranspose(gy, w, b)``: the adjoint of ``Conv`` in ``x`` — the transposed convolution;
- ``ConvWeight(x, gy)``: the adjoint of ``Conv`` in ``w`` — the weight-gradient correlation.

Each is bilinear, so each backward is made of the other two: the backward of a conv is
"multiply by Cᵀ" — a transposed conv for the input and a correlation for the weight. The array
work lives in :mod:`lamina.ops.kernels.conv_gemm` (im2col + GEMM, numba when installed).

Padding is held as ``pad_lo`` (zeros before each spatial dim); the padding after a dim is
implied by the output size, which each primitive receives explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..autograd.function import Context, Function
from ..autograd.tensor import Tensor
from ._ints import as_int
from .common import check_tensor
from .kernels import conv_gemm as K
from .kernels.conv_select import explain as explain_conv
from .kernels.conv_select import force as force_conv
from .pad import pad as _pad

__all__ = ["conv_nd", "conv_transpose_nd", "conv_output_size", "ntuple", "explain_conv", "force_conv"]


class Conv(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, w: Any, b: Any, *, stride: tuple[int, ...], dilation: tuple[int, ...],
                pad_lo: tuple[int, ...], out: tuple[int, ...], groups: int, xpad: Any = None) -> Any:
        ctx.opts = (stride, dilation, pad_lo, groups)
        ctx.save_for_backward(x, w)
        y, xpad = K.conv_forward(x, w, stride, dilation, pad_lo, out, groups, xpad=xpad, bias=b, return_xpad=True)
        # the padded channels-last input (activation-sized) is kept for the weight gradient
        ctx.xpad = xpad if ctx.needs_input_grad[1] else None
        return y

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> tuple[Tensor | None, ...]:
        x, w = ctx.saved_tensors
        stride, dilation, pad_lo, groups = ctx.opts
        nx, nw, nb = ctx.needs_input_grad
        if nx and nw and not gy.requires_grad and K.wants_channels_last(x.array, w.array, groups, stride, dilation,
                                                                        pad_lo, tuple(gy.shape[2:])):
            # both gradients read gy as channels-last rows: lay it out so once, not twice
            gy = Tensor._wrap(K.channels_last(gy.array))
        gx = ConvTranspose.apply(gy, w, None, stride=stride, dilation=dilation, pad_lo=pad_lo,
                                 size=tuple(x.shape[2:]), groups=groups) if nx else None
        gw = ConvWeight.apply(x, gy, stride=stride, dilation=dilation, pad_lo=pad_lo,
                              ksize=tuple(w.shape[2:]), groups=groups, xpad=ctx.xpad) if nw else None
        gb = gy.sum((0, *range(2, gy.ndim))) if nb else None
        return gx, gw, gb


class ConvTranspose(Function):
    @staticmethod
    def forward(ctx: Context, gy: Any, w: Any, b: Any, *, stride: tuple[int, ...], dilation: tuple[int, ...],
                pad_lo: tuple[int, ...], size: tuple[int, ...], groups: int) -> Any:
        ctx.opts = (stride, dilation, pad_lo, groups)
        ctx.save_for_backward(gy, w)
        return K.conv_input_grad(gy, w, size, stride, dilation, pad_lo, groups, bias=b)

    @staticmethod
    def backward(ctx: Context, ggx: Tensor) -> tuple[Tensor | None, ...]:
        gy, w = ctx.saved_tensors
        stride, dilation, pad_lo, groups = ctx.opts
        ngy, nw, nb = ctx.needs_input_grad
        out = tuple(gy.shape[2:])
        xpad = None
        if ngy and nw and not ggx.requires_grad:  # both read ggx padded channels-last: pad it once
            xpad = K.padded_input(ggx.array, w.array, stride, dilation, pad_lo, out, groups)
        g_gy = Conv.apply(ggx, w, None, stride=stride, dilation=dilation, pad_lo=pad_lo, out=out, groups=groups,
                          xpad=xpad) if ngy else None
        g_w = ConvWeight.apply(ggx, gy, stride=stride, dilation=dilation, pad_lo=pad_lo,
                               ksize=tuple(w.shape[2:]), groups=groups, xpad=xpad) if nw else None
        g_b = ggx.sum((0, *range(2, ggx.ndim))) if nb else None
        return g_gy, g_w, g_b


class ConvWeight(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, gy: Any, *, stride: tuple[int, ...], dilation: tuple[int, ...],
                pad_lo: tuple[int, ...], ksize: tuple[int, ...], groups: int, xpad: Any = None) -> Any:
        ctx.opts = (stride, dilation, pad_lo, groups)
        ctx.save_for_backward(x, gy)
        return K.conv_weight_grad(x, gy, ksize, stride, dilation, pad_lo, groups, xpad=xpad)

    @staticmethod
    def backward(ctx: Context, ggw: Tensor) -> tuple[Tensor | None, ...]:
        x, gy = ctx.saved_tensors
        stride, dilation, pad_lo, groups = ctx.opts
        nx, ngy = ctx.needs_input_grad
        g_x = ConvTranspose.apply(gy, ggw, None, stride=stride, dilation=dilation, pad_lo=pad_lo,
                                  size=tuple(x.shape[2:]), groups=groups) if nx else None
        g_gy = Conv.apply(x, ggw, None, stride=stride, dilation=dilation, pad_lo=pad_lo,
                          out=tuple(gy.shape[2:]), groups=groups) if ngy else None
        return g_x, g_gy


# ----------------------------------------------------------------------------- argument checks

def ntuple(value: Any, nd: int, name: str, op: str) -> tuple[int, ...]:
    """``value`` (an int or a sequence of ``nd`` ints) as an ``nd``-tuple."""
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return (int(value),) * nd
    try:
        items = list(value)
    except TypeError:
        raise TypeError(f"{op}: {name} must be an int or a tuple of {nd} ints, got {value!r}") from None
    t = tuple(as_int(v, name, op) for v in items)
    if len(t) == 1 and nd > 1:
        t = t * nd
    if len(t) != nd:
        raise ValueError(f"{op}: {name} must be an int or a tuple of {nd} ints, got {value!r}")
    return t


def _positive(t: tuple[int, ...], name: str, op: str) -> None:
    if any(v <= 0 for v in t):
        raise ValueError(f"{op}: {name} must be positive, got {t}")


def conv_output_size(size: Sequence[int], ksize: Sequence[int], stride: Sequence[int],
                     dilation: Sequence[int], pad_lo: Sequence[int], pad_hi: Sequence[int]) -> tuple[int, ...]:
    """``floor((S + lo + hi − d·(k − 1) − 1) / s) + 1`` per spatial dim."""
    return K.conv_out_size(size, ksize, stride, dilation, pad_lo, pad_hi)


def _check_common(op: str, input: Tensor, weight: Tensor, bias: Tensor | None, nd: int,
                  groups: int) -> bool:
    """Validate ranks and dtypes; return whether the input is unbatched."""
    check_tensor(input, op)
    check_tensor(weight, op, "weight")
    if weight.ndim != nd + 2:
        raise ValueError(f"{op}: expected a {nd + 2}-D weight, got a {weight.ndim}-D weight of shape "
                         f"{tuple(weight.shape)}")
    if input.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"{op}: expected a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, got a "
                         f"{input.ndim}-D input of shape {tuple(input.shape)}")
    if input.dtype.kind != "f" or input.dtype != weight.dtype:
        raise TypeError(f"{op}: input and weight must have the same floating dtype, got {input.dtype} "
                        f"and {weight.dtype}")
    if not isinstance(groups, int) or groups <= 0:
        raise ValueError(f"{op}: groups must be a positive integer, got {groups!r}")
    if bias is not None:
        check_tensor(bias, op, "bias")
        if bias.dtype != input.dtype:
            raise TypeError(f"{op}: bias dtype {bias.dtype} differs from the input's {input.dtype}")
    return input.ndim == nd + 1


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def conv_nd(input: Tensor, weight: Tensor, bias: Tensor | None, stride: Any, padding: Any, dilation: Any,
            groups: int, nd: int, padding_mode: str = "zeros") -> Tensor:
    """The N-d convolution behind ``conv1d/2d/3d``; see :func:`lamina.nn.functional.conv2d`."""
    op = f"conv{nd}d"
    unbatched = _check_common(op, input, weight, bias, nd, groups)
    x = input.unsqueeze(0) if unbatched else input
    stride = ntuple(stride, nd, "stride", op)
    dilation = ntuple(dilation, nd, "dilation", op)
    _positive(stride, "stride", op)
    _positive(dilation, "dilation", op)
    ksize = tuple(weight.shape[2:])
    k_out, cg = weight.shape[:2]
    if k_out == 0:  # as torch: a conv needs an output channel (a transposed conv does not)
        raise ValueError(f"{op}: expected a weight with at least 1 output channel, got weight of shape "
                         f"{tuple(weight.shape)}")
    if k_out % groups:
        raise ValueError(f"{op}: weight has {_plural(k_out, 'output channel')}, which is not divisible by "
                         f"groups={groups} (weight shape {tuple(weight.shape)})")
    c = x.shape[1]
    if c != cg * groups:
        per = f" ({cg} per group × {groups} groups)" if groups > 1 else ""
        raise ValueError(f"{op}: input has {_plural(c, 'channel')} but weight expects {cg * groups}{per} "
                         f"(weight shape {tuple(weight.shape)})")
    if bias is not None and tuple(bias.shape) != (k_out,):
        raise ValueError(f"{op}: bias must have shape ({k_out},) to match the weight's output channels, "
                         f"got {tuple(bias.shape)}")
    if isinstance(padding, str):
        if padding == "valid":
            lo = hi = (0,) * nd
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions "
                                 f"(stride {stride})")
            total = [d * (k - 1) for d, k in zip(dilation, ksize)]
            lo = tuple(t // 2 for t in total)  # an odd total puts the extra zero after (as torch)
            hi = tuple(t - t // 2 for t in total)
        else:
            raise ValueError(f"{op}: padding must be 'valid', 'same', an int or a tuple, got {padding!r}")
    else:
        lo = hi = ntuple(padding, nd, "padding", op)
        if any(p < 0 for p in lo):
            raise ValueError(f"{op}: padding must be non-negative, got {lo}")
    if padding_mode != "zeros":
        if padding_mode not in ("reflect", "replicate", "circular"):
            raise ValueError(f"{op}: padding_mode must be 'zeros', 'reflect', 'replicate' or 'circular', "
                             f"got {padding_mode!r}")
        widths = [w for i in reversed(range(nd)) for w in (lo[i], hi[i])]
        if any(widths):
            try:
                x = _pad(x, widths, mode=padding_mode)
            except ValueError as e:  # name the layer, not only the padding op inside it
                raise ValueError(f"{op} with padding_mode={padding_mode!r}: {e}") from None
        lo = hi = (0,) * nd
    size = tuple(x.shape[2:])
    padded = tuple(s + a + b for s, a, b in zip(size, lo, hi))
    extent = tuple(d * (k - 1) + 1 for d, k in zip(dilation, ksize))
    if any(e > p for e, p in zip(extent, padded)):
        raise ValueError(f"{op}: kernel size {ksize} (dilated extent {extent}) is larger than the padded input "
                         f"{padded} (input {size}, padding {lo}/{hi})")
    out = conv_output_size(size, ksize, stride, dilation, lo, hi)
    y = Conv.apply(x, weight, bias, stride=stride, dilation=dilation, pad_lo=lo, out=out, groups=groups)
    return y.squeeze(0) if unbatched else y


def conv_transpose_nd(input: Tensor, weight: Tensor, bias: Tensor | None, stride: Any, padding: Any,
                      output_padding: Any, groups: int, dilation: Any, nd: int,
                      output_size: Sequence[int] | None = None) -> Tensor:
    """The N-d transposed convolution behind ``conv_transpose1d/2d/3d``."""
    op = f"conv_transpose{nd}d"
    unbatched = _check_common(op, input, weight, bias, nd, groups)
    x = input.unsqueeze(0) if unbatched else input
    stride = ntuple(stride, nd, "stride", op)
    dilation = ntuple(dilation, nd, "dilation", op)
    _positive(stride, "stride", op)
    _positive(dilation, "dilation", op)
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int or a tuple of ints, got {padding!r}")
    pad = ntuple(padding, nd, "padding", op)
    if any(p < 0 for p in pad):
        raise ValueError(f"{op}: padding must be non-negative, got {pad}")
    ksize = tuple(weight.shape[2:])
    c_in, cg_out = weight.shape[:2]
    if x.shape[1] != c_in:
        raise ValueError(f"{op}: input has {_plural(x.shape[1], 'channel')} but weight expects {c_in} "
                         f"(weight shape {tuple(weight.shape)})")
    if c_in % groups:
        raise ValueError(f"{op}: weight has {_plural(c_in, 'input channel')}, which is not divisible by "
                         f"groups={groups} (weight shape {tuple(weight.shape)})")
    if bias is not None and tuple(bias.shape) != (cg_out * groups,):
        raise ValueError(f"{op}: bias must have shape ({cg_out * groups},), got {tuple(bias.shape)}")
    base = tuple((i - 1) * s - 2 * p + d * (k - 1) + 1
                 for i, s, p, d, k in zip(x.shape[2:], stride, pad, dilation, ksize))
    if output_size is not None:
        want = tuple(as_int(v, "output_size", op) for v in output_size)[-nd:]
        if len(want) != nd:
            raise ValueError(f"{op}: output_size must have {nd} or {nd + 2} elements, got {tuple(output_size)}")
        opad = tuple(w - b for w, b in zip(want, base))
        for w, b, s, d in zip(want, base, stride, dilation):
            if not b <= w < b + max(s, d):
                raise ValueError(f"{op}: requested output size {want} is not reachable: each dim must lie in "
                                 f"[{b}, {b + max(s, d) - 1}] (from the minimum {base} and stride {stride})")
    else:
        opad = ntuple(output_padding, nd, "output_padding", op)
    for o, s, d in zip(opad, stride, dilation):
        if o < 0 or (o >= s and o >= d):
            raise ValueError(f"{op}: output_padding must be non-negative and smaller than either stride or "
                             f"dilation, got output_padding {opad} with stride {stride} and dilation {dilation}")
    size = tuple(b + o for b, o in zip(base, opad))
    if any(s <= 0 for s in size):
        raise ValueError(f"{op}: the output size {size} would be non-positive (input {tuple(x.shape[2:])}, "
                         f"kernel {ksize}, stride {stride}, padding {pad})")
    y = ConvTranspose.apply(x, weight, bias, stride=stride, dilation=dilation, pad_lo=pad, size=size,
                            groups=groups)
    return y.squeeze(0) if unbatched else y
