"""``unfold`` (im2col) and ``fold`` (col2im) as differentiable public ops.

The two are adjoint linear maps, so each one's backward is the other.
Layout as torch: ``unfold`` turns ``(N, C, H, W)`` into ``(N, C·kh·kw, L)`` with the channel
outermost and the kernel offsets innermost in each column, ``L`` the number of windows.
"""

from __future__ import annotations

from typing import Any

from ..autograd.function import Context, Function
from ..autograd.tensor import Tensor
from .common import check_tensor
from .conv import conv_output_size, ntuple
from .kernels.im2col import col2im, im2col

__all__ = ["unfold_nd", "fold_nd"]


class Im2col(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, *, ksize: tuple[int, ...], stride: tuple[int, ...],
                dilation: tuple[int, ...], pad_lo: tuple[int, ...], out: tuple[int, ...]) -> Any:
        ctx.opts = (ksize, stride, dilation, pad_lo, tuple(x.shape[2:]))
        n, c = x.shape[:2]
        cols = im2col(x, ksize, stride, dilation, pad_lo, out)  # (N, *out, C, *k)
        return cols.reshape(n, _prod(out), c * _prod(ksize)).transpose(0, 2, 1)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        ksize, stride, dilation, pad_lo, size = ctx.opts
        return Col2im.apply(g, ksize=ksize, stride=stride, dilation=dilation, pad_lo=pad_lo, size=size)


class Col2im(Function):
    @staticmethod
    def forward(ctx: Context, cols: Any, *, ksize: tuple[int, ...], stride: tuple[int, ...],
                dilation: tuple[int, ...], pad_lo: tuple[int, ...], size: tuple[int, ...]) -> Any:
        hi = pad_lo
        out = conv_output_size(size, ksize, stride, dilation, pad_lo, hi)
        ctx.opts = (ksize, stride, dilation, pad_lo, out)
        n, ck, _ = cols.shape
        c = ck // _prod(ksize)
        c_rows = cols.transpose(0, 2, 1).reshape(n, *out, c, *ksize)
        return col2im(c_rows, size, stride, dilation, pad_lo)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        ksize, stride, dilation, pad_lo, out = ctx.opts
        return Im2col.apply(g, ksize=ksize, stride=stride, dilation=dilation, pad_lo=pad_lo, out=out)


def _prod(t: tuple[int, ...]) -> int:
    p = 1
    for v in t:
        p *= int(v)
    return p


def _params(op: str, nd: int, kernel_size: Any, dilation: Any, padding: Any,
            stride: Any) -> tuple[tuple[int, ...], ...]:
    k = ntuple(kernel_size, nd, "kernel_size", op)
    d = ntuple(dilation, nd, "dilation", op)
    p = ntuple(padding, nd, "padding", op)
    s = ntuple(stride, nd, "stride", op)
    for name, t in (("kernel_size", k), ("dilation", d), ("stride", s)):
        if any(v <= 0 for v in t):
            raise ValueError(f"{op}: {name} must be positive, got {t}")
    if any(v < 0 for v in p):
        raise ValueError(f"{op}: padding must be non-negative, got {p}")
    return k, d, p, s


def unfold_nd(input: Tensor, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1,
              nd: int = 2) -> Tensor:
    """Extract sliding blocks: ``(N, C, *S)`` → ``(N, C·∏k, L)``; see
    :func:`lamina.nn.functional.unfold`."""
    op = "unfold"
    check_tensor(input, op)
    if input.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"{op}: expected a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, got a "
                         f"{input.ndim}-D input of shape {tuple(input.shape)}")
    k, d, p, s = _params(op, nd, kernel_size, dilation, padding, stride)
    unbatched = input.ndim == nd + 1
    x = input.unsqueeze(0) if unbatched else input
    size = tuple(x.shape[2:])
    out = conv_output_size(size, k, s, d, p, p)
    if any(o <= 0 for o in out):
        raise ValueError(f"{op}: kernel {k} (dilation {d}) does not fit the padded input "
                         f"{tuple(a + 2 * b for a, b in zip(size, p))}")
    y = Im2col.apply(x, ksize=k, stride=s, dilation=d, pad_lo=p, out=out)
    return y.squeeze(0) if unbatched else y


def fold_nd(input: Tensor, output_size: Any, kernel_size: Any, dilation: Any = 1, padding: Any = 0,
            stride: Any = 1, nd: int = 2) -> Tensor:
    """Sum sliding blocks back: ``(N, C·∏k, L)`` → ``(N, C, *output_size)``; see
    :func:`lamina.nn.functional.fold`."""
    op = "fold"
    check_tensor(input, op)
    if input.ndim not in (2, 3):
        raise ValueError(f"{op}: expected a 2-D (unbatched) or 3-D (batched) input, got a {input.ndim}-D input "
                         f"of shape {tuple(input.shape)}")
    size = ntuple(output_size, nd, "output_size", op)
    k, d, p, s = _params(op, nd, kernel_size, dilation, padding, stride)
    unbatched = input.ndim == 2
    x = input.unsqueeze(0) if unbatched else input
    kk = _prod(k)
    if x.shape[1] % kk:
        raise ValueError(f"{op}: expected size of input's dimension 1 to be divisible by the product of "
                         f"kernel_size ({kk}), but got input.size(1)={x.shape[1]}")
    out = conv_output_size(size, k, s, d, p, p)
    if any(o <= 0 for o in out) or _prod(out) != x.shape[2]:
        raise ValueError(f"{op}: given output_size={size}, kernel_size={k}, dilation={d}, padding={p}, "
                         f"stride={s}, expected size of input's dimension 2 to match the calculated number of "
                         f"sliding blocks {' * '.join(map(str, out))} = {_prod(out)}, but got "
                         f"input.size(2)={x.shape[2]}")
    y = Col2im.apply(x, ksize=k, stride=s, dilation=d, pad_lo=p, size=size)
    return y.squeeze(0) if unbatched else y
