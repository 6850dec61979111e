"""Shape and layout ops: reshape/view, squeeze/unsqueeze, flatten/unflatten, transpose/permute,
expand/broadcast_to (and its adjoint sum_to), contiguous, flip, roll.

Each backward is the inverse rearrangement of the gradient; broadcasting's adjoint is a sum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .. import backend
from ..autograd.function import Context, Function
from ..autograd.tensor import Tensor, register
from ._ints import as_int
from .cast import to_memory_format
from .common import check_tensor, normalize_dim, normalize_dims

__all__ = [
    "reshape", "view", "flatten", "unflatten", "squeeze", "unsqueeze", "transpose", "swapaxes",
    "permute", "movedim", "expand", "broadcast_to", "sum_to", "contiguous", "flip", "roll", "t", "repeat",
]

xp = backend.xp


def _shape_arg(shape: tuple[Any, ...]) -> tuple[Any, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _infer_shape(shape: Sequence[int], numel: int, op: str, old: tuple[int, ...]) -> tuple[int, ...]:
    shape = tuple(as_int(s, "shape", op) for s in shape)
    if shape.count(-1) > 1:
        raise RuntimeError(f"{op}: only one dimension can be inferred (got shape {list(shape)})")
    known = 1
    for s in shape:
        if s != -1:
            if s < 0:
                raise RuntimeError(f"{op}: invalid shape dimension {s} in {list(shape)}")
            known *= s
    if -1 in shape:
        if known == 0 or numel % known:
            raise RuntimeError(f"{op}: shape '{list(shape)}' is invalid for input of size {numel}")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    elif known != numel:
        raise RuntimeError(
            f"{op}: shape '{list(shape)}' is invalid for input of size {numel} (input shape {old})"
        )
    return shape


class Reshape(Function):
    is_view = True

    @staticmethod
    def forward(ctx: Context, x: Any, shape: tuple[int, ...]) -> Any:
        ctx.in_shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        return reshape(gy, ctx.in_shape)


@register("reshape")
def reshape(input: Tensor, *shape: Any) -> Tensor:
    """The same data with shape ``shape`` (one dim may be -1), as ``torch.reshape``."""
    check_tensor(input, "reshape")
    new = _infer_shape(_shape_arg(shape), input.numel(), "reshape", tuple(input.shape))
    if new == input.shape:
        return input if not input.requires_grad else Reshape.apply(input, shape=new)
    return Reshape.apply(input, shape=new)


@register("view")
def view(input: Tensor, *shape: Any) -> Tensor:
    """As ``reshape`` (lamina does not require contiguity; NumPy copies when it must)."""
    check_tensor(input, "view")
    new = _infer_shape(_shape_arg(shape), input.numel(), "view", tuple(input.shape))
    return reshape(input, new)


@register("view_as", "reshape_as")
def view_as(input: Tensor, other: Tensor) -> Tensor:
    return reshape(input, other.shape)


@register("flatten")
def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims ``start_dim … end_dim`` into one."""
    if input.ndim == 0:
        return reshape(input, 1)
    s = normalize_dim(start_dim, input.ndim, "flatten")
    e = normalize_dim(end_dim, input.ndim, "flatten")
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    shp = input.shape
    return reshape(input, shp[:s] + (math.prod(shp[s:e + 1]),) + shp[e + 1:])  # no -1: ambiguous at size 0


@register("unflatten")
def unflatten(input: Tensor, dim: int, sizes: Sequence[int]) -> Tensor:
    """Split dim ``dim`` into ``sizes`` (one may be -1)."""
    d = normalize_dim(dim, input.ndim, "unflatten")
    sizes = _infer_shape(sizes, input.shape[d], "unflatten", tuple(input.shape))
    return reshape(input, input.shape[:d] + tuple(sizes) + input.shape[d + 1:])


@register("squeeze")
def squeeze(input: Tensor, dim: Any = None) -> Tensor:
    """Remove dims of size 1 (all, or those in ``dim`` that have size 1)."""
    dims = normalize_dims(dim, input.ndim, "squeeze") if dim is not None else range(input.ndim)
    keep = [s for i, s in enumerate(input.shape) if not (i in dims and s == 1)]
    return reshape(input, tuple(keep))


@register("unsqueeze")
def unsqueeze(input: Tensor, dim: int) -> Tensor:
    """Insert a dim of size 1 at ``dim``."""
    d = normalize_dim(dim, input.ndim + 1, "unsqueeze")
    return reshape(input, input.shape[:d] + (1,) + input.shape[d:])


class Permute(Function):
    is_view = True

    @staticmethod
    def forward(ctx: Context, x: Any, dims: tuple[int, ...]) -> Any:
        ctx.dims = dims
        return x.transpose(dims)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        return permute(gy, tuple(int(i) for i in xp.argsort(ctx.dims)))


@register("permute")
def permute(input: Tensor, *dims: Any) -> Tensor:
    """Reorder the dims (a view)."""
    dims = _shape_arg(dims)
    if len(dims) != input.ndim:
        raise RuntimeError(
            f"permute: number of dims don't match: input has {input.ndim} dims, got {list(dims)}"
        )
    nd = tuple(normalize_dim(d, input.ndim, "permute") for d in dims)
    if len(set(nd)) != len(nd):
        raise RuntimeError(f"permute: repeated dim in {list(dims)}")
    if nd == tuple(range(input.ndim)):
        return input
    return Permute.apply(input, dims=nd)


@register("transpose", "swapaxes", "swapdims")
def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap dims ``dim0`` and ``dim1`` (a view)."""
    if input.ndim == 0:
        return input
    a = normalize_dim(dim0, input.ndim, "transpose")
    b = normalize_dim(dim1, input.ndim, "transpose")
    order = list(range(input.ndim))
    order[a], order[b] = order[b], order[a]
    return permute(input, tuple(order))


swapaxes = transpose


@register("movedim", "moveaxis")
def movedim(input: Tensor, source: Any, destination: Any) -> Tensor:
    src = (source,) if isinstance(source, int) else tuple(source)
    dst = (destination,) if isinstance(destination, int) else tuple(destination)
    src = tuple(normalize_dim(s, input.ndim, "movedim") for s in src)
    dst = tuple(normalize_dim(s, input.ndim, "movedim") for s in dst)
    order = [i for i in range(input.ndim) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return permute(input, tuple(order))


@register("t")
def t(input: Tensor) -> Tensor:
    """Transpose of a tensor of at most 2 dims."""
    if input.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    return transpose(input, 0, 1) if input.ndim == 2 else input


Tensor.T = property(lambda self: permute(self, tuple(reversed(range(self.ndim)))))  # type: ignore[attr-defined]
Tensor.mT = property(lambda self: transpose(self, -2, -1))  # type: ignore[attr-defined]


class BroadcastTo(Function):
    is_view = True

    @staticmethod
    def forward(ctx: Context, x: Any, shape: tuple[int, ...]) -> Any:
        ctx.in_shape = x.shape
        return xp.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        return sum_to(gy, ctx.in_shape)


class SumTo(Function):
    """Sum a broadcast gradient back to ``shape`` (the adjoint of broadcasting)."""

    @staticmethod
    def forward(ctx: Context, x: Any, shape: tuple[int, ...]) -> Any:
        ctx.in_shape = x.shape
        lead = x.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, s in enumerate(shape) if s == 1 and x.shape[lead + i] != 1
        )
        y = x.sum(axis=axes, keepdims=True) if axes else x
        return y.reshape(shape)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        return broadcast_to(gy, ctx.in_shape)


def sum_to(input: Tensor, shape: Sequence[int]) -> Tensor:
    """Sum ``input`` over broadcast dims so that it has ``shape`` (``Tensor.sum_to_size``)."""
    shape = tuple(shape)
    if input.shape == shape:
        return input
    return SumTo.apply(input, shape=shape)


@register("sum_to_size")
def sum_to_size(input: Tensor, *size: Any) -> Tensor:
    return sum_to(input, _shape_arg(size))


@register("broadcast_to")
def broadcast_to(input: Tensor, shape: Sequence[int]) -> Tensor:
    """A read-only broadcast view of ``input`` with shape ``shape``."""
    shape = tuple(as_int(s, "shape", "broadcast_to") for s in shape)
    if shape == input.shape:
        return input
    try:
        xp.broadcast_shapes(input.shape, shape)
        if len(shape) < input.ndim:
            raise ValueError
        ok = all(a in (1, b) for a, b in zip(input.shape[::-1], shape[::-1]))
        if not ok:
            raise ValueError
    except ValueError:
        raise RuntimeError(
            f"broadcast_to: the expanded size of the tensor must match the existing size at "
            f"non-singleton dimensions: cannot expand {tuple(input.shape)} to {shape}"
        ) from None
    return BroadcastTo.apply(input, shape=shape)


@register("expand")
def expand(input: Tensor, *sizes: Any) -> Tensor:
    """Broadcast to ``sizes``; -1 keeps that dim's size, as ``torch.Tensor.expand``."""
    sizes = tuple(as_int(s, "sizes", "expand") for s in _shape_arg(sizes))
    lead = len(sizes) - input.ndim
    if lead < 0:
        raise RuntimeError(
            f"expand: the number of sizes provided ({len(sizes)}) must be greater or equal to the "
            f"number of dimensions in the tensor ({input.ndim})"
        )
    shape = tuple(input.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(sizes))
    return broadcast_to(input, shape)


@register("expand_as")
def expand_as(input: Tensor, other: Tensor) -> Tensor:
    return broadcast_to(input, other.shape)


class Contiguous(Function):
    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        return backend.get_array_module(x).ascontiguousarray(x)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        return gy


@register("contiguous")
def contiguous(input: Tensor, memory_format: Any = None) -> Tensor:
    """A C-contiguous tensor with the same values (``input`` itself if already contiguous);
    ``memory_format=lamina.channels_last`` lays it out with channels innermost instead."""
    if memory_format is not None and memory_format is not backend.contiguous_format:
        return to_memory_format(input, memory_format)
    if input.array.flags.c_contiguous:
        return input
    return Contiguous.apply(input)


class Flip(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, dims: tuple[int, ...]) -> Any:
        ctx.dims = dims
        return xp.flip(x, dims).copy()

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        return flip(gy, ctx.dims)


@register("flip")
def flip(input: Tensor, *dims: Any) -> Tensor:
    """Reverse the order of elements along ``dims``."""
    dims = _shape_arg(dims)
    nd = normalize_dims(dims, input.ndim, "flip") if dims else ()
    if not nd:
        return input
    return Flip.apply(input, dims=nd)


class Roll(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, shifts: Any, dims: Any) -> Any:
        ctx.shifts, ctx.dims = shifts, dims
        return xp.roll(x, shifts, dims)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        neg = tuple(-s for s in ctx.shifts) if isinstance(ctx.shifts, tuple) else -ctx.shifts
        return Roll.apply(gy, shifts=neg, dims=ctx.dims)


@register("roll")
def roll(input: Tensor, shifts: Any, dims: Any = None) -> Tensor:
    """Roll elements along ``dims`` by ``shifts`` (flattened first when ``dims`` is None)."""
    if dims is None:
        return reshape(Roll.apply(reshape(input, -1), shifts=int(shifts), dims=0), input.shape)
    if isinstance(shifts, int) and isinstance(dims, int):
        return Roll.apply(input, shifts=shifts, dims=normalize_dim(dims, input.ndim, "roll"))
    shifts, dims = tuple(shifts), tuple(dims) if not isinstance(dims, int) else (dims,)
    if len(shifts) != len(dims):
        raise RuntimeError(f"roll: shifts ({len(shifts)}) and dims ({len(dims)}) must align")
    return Roll.apply(input, shifts=shifts,
                      dims=tuple(normalize_dim(d, input.ndim, "roll") for d in dims))


@register("repeat")
def repeat(input: Tensor, *sizes: Any) -> Tensor:
    """Tile ``input`` ``sizes[i]`` times along each dim (extra leading sizes add dims), as
    ``torch.Tensor.repeat``; differentiable (an expand and a reshape per dim)."""
    sizes = tuple(as_int(s, "sizes", "repeat") for s in _shape_arg(sizes))
    if len(sizes) < input.ndim:
        raise RuntimeError(
            f"repeat: number of repeat dims ({len(sizes)}) can not be smaller than the number of dims of the "
            f"tensor ({input.ndim})"
        )
    out = reshape(input, (1,) * (len(sizes) - input.ndim) + tuple(input.shape))
    for d, r in enumerate(sizes):
        if r != 1:
            shp = out.shape
            tiled = broadcast_to(unsqueeze(out, d), shp[:d] + (r,) + shp[d:])
            out = reshape(tiled, shp[:d] + (r * shp[d],) + shp[d + 1:])
    return out
