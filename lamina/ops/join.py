"""Joining and splitting: cat, stack, split, chunk, unbind.

``cat``'s backward slices the gradient back into pieces; ``split`` is slicing, whose backward
is a scatter into zeros — the two are each other's adjoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import backend
from ..autograd.function import Context, Function
from ..autograd.tensor import Tensor, register
from ._ints import as_int
from .common import check_tensor, into_out, normalize_dim
from .indexing import getitem
from .promotion import promote_types

__all__ = ["cat", "concat", "concatenate", "stack", "split", "chunk", "unbind", "hstack", "vstack"]

xp = backend.xp


class Cat(Function):
    @staticmethod
    def forward(ctx: Context, *xs: Any, dim: int) -> Any:
        ctx.dim = dim
        ctx.sizes = [x.shape[dim] for x in xs]
        return xp.concatenate(xs, axis=dim)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> tuple[Tensor | None, ...]:
        grads = []
        start = 0
        for n, need in zip(ctx.sizes, ctx.needs_input_grad):
            sl = (slice(None),) * ctx.dim + (slice(start, start + n),)
            grads.append(getitem(gy, sl) if need else None)
            start += n
        return tuple(grads)


@register("cat")
def cat(tensors: Sequence[Tensor], dim: int = 0, *, out: Tensor | None = None) -> Tensor:
    """Concatenate tensors along an existing dim ``dim`` (``out=``: written into ``out``, as torch)."""
    if out is not None:
        return into_out(cat(tensors, dim), out, "cat")
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("cat: expected a non-empty list of Tensors")
    for i, t in enumerate(tensors):
        check_tensor(t, "cat", f"tensors[{i}]")
    # torch skips legacy empty 1-D tensors
    tensors = [t for t in tensors if not (t.ndim == 1 and t.shape[0] == 0)] or tensors[:1]
    ref = tensors[0]
    if ref.ndim == 0:
        raise RuntimeError("cat: zero-dimensional tensor (at position 0) cannot be concatenated; use stack")
    tensors = _promote(tensors, "cat")
    ref = tensors[0]
    d = normalize_dim(dim, ref.ndim, "cat")
    for i, t in enumerate(tensors):
        if t.ndim != ref.ndim:
            raise RuntimeError(
                f"cat: tensors must have the same number of dimensions: tensors[0] is {ref.ndim}-D "
                f"but tensors[{i}] is {t.ndim}-D"
            )
        for k in range(ref.ndim):
            if k != d and t.shape[k] != ref.shape[k]:
                raise RuntimeError(
                    f"cat: sizes of tensors must match except in dimension {d}: expected size "
                    f"{ref.shape[k]} but got size {t.shape[k]} for tensor number {i} in the list"
                )
    return Cat.apply(*tensors, dim=d)


def _promote(tensors: list[Tensor], op: str) -> list[Tensor]:
    """One dtype for all, as torch's ``cat``: the promotion of every tensor's dtype (float32 with
    float64 is float64; the cast is differentiable)."""
    target = tensors[0].dtype
    for t in tensors[1:]:
        target = promote_types(target, t.dtype)
    return [t if t.dtype == target else t.to(target) for t in tensors]


concat = concatenate = cat


def stack(tensors: Sequence[Tensor], dim: int = 0, *, out: Tensor | None = None) -> Tensor:
    """Stack equally shaped tensors along a new dim ``dim`` (``out=``: written into ``out``, as torch)."""
    if out is not None:
        return into_out(stack(tensors, dim), out, "stack")
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack: expected a non-empty list of Tensors")
    shape = tensors[0].shape
    for i, t in enumerate(tensors):
        check_tensor(t, "stack", f"tensors[{i}]")
        if t.shape != shape:
            raise RuntimeError(
                f"stack expects each tensor to be equal size, but got {tuple(shape)} at entry 0 "
                f"and {tuple(t.shape)} at entry {i}"
            )
    d = normalize_dim(dim, len(shape) + 1, "stack")
    return cat([t.unsqueeze(d) for t in _promote(tensors, "stack")], d)


def hstack(tensors: Sequence[Tensor]) -> Tensor:
    tensors = list(tensors)
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors: Sequence[Tensor]) -> Tensor:
    return cat([t if t.ndim > 1 else t.unsqueeze(0) for t in tensors], 0)


@register("split")
def split(tensor: Tensor, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """Pieces of ``split_size`` along ``dim`` (the last may be smaller), or pieces of the
    listed sizes (which must add up to the dim's size)."""
    check_tensor(tensor, "split")
    d = normalize_dim(dim, tensor.ndim, "split")
    n = tensor.shape[d]
    if isinstance(split_size_or_sections, (int, xp.integer)):
        size = int(split_size_or_sections)
        if size <= 0 and n > 0:
            raise RuntimeError(f"split: split_size must be positive, got {size}")
        sizes = [min(size, n - s) for s in range(0, n, size)] if n else [0]
    else:
        sizes = [as_int(s, "split_size_or_sections", "split") for s in split_size_or_sections]
        if builtins_sum(sizes) != n or any(s < 0 for s in sizes):
            raise RuntimeError(
                f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size "
                f"at dimension {d}), but got split_sizes={sizes}"
            )
    out = []
    start = 0
    for s in sizes:
        out.append(getitem(tensor, (slice(None),) * d + (slice(start, start + s),)))
        start += s
    return tuple(out)


builtins_sum = sum


@register("chunk")
def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """Split into ``chunks`` pieces of size ``ceil(n / chunks)`` (the last smaller; possibly
    fewer pieces), as ``torch.chunk``."""
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    d = normalize_dim(dim, input.ndim, "chunk")
    n = input.shape[d]
    size = -(-n // chunks) if n else 1
    return split(input, max(size, 1), d)


@register("unbind")
def unbind(input: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    """The slices along ``dim``, with that dim removed."""
    d = normalize_dim(dim, input.ndim, "unbind")
    return tuple(getitem(input, (slice(None),) * d + (i,)) for i in range(input.shape[d]))
