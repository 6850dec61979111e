"""Writes at indices: ``index_fill``, ``index_copy``, ``masked_scatter``, ``put`` (out of place,
differentiable), and the in-place forms torch code calls on tensors: ``scatter_``, ``scatter_add_``,
``index_add_``, ``index_fill_``, ``index_copy_``, ``masked_scatter_``, ``put_``, and the in-place
shape changes ``unsqueeze_``, ``squeeze_``, ``transpose_``.

Each out-of-place op is a ``where`` of the input and the written values (built with
``index_add``), so the gradient of the input is zero where it was overwritten and that of the
source is the upstream gradient gathered back. The in-place forms go through
:func:`~lamina.ops.inplace.apply_inplace` (version counting, recording on non-leaf tensors).
"""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd.grad_mode import is_grad_enabled
from ..autograd.tensor import Tensor, register
from .common import check_tensor, const, normalize_dim, to_tensor
from .indexing import _check_index_1d, index_add, scatter, scatter_add
from .inplace import apply_inplace
from .selection import where
from .shape import squeeze, transpose, unsqueeze

__all__ = ["index_fill", "index_copy", "masked_scatter", "put"]

xp = backend.xp


def _zeros(like: Tensor) -> Tensor:
    return const(xp.zeros(like.shape, dtype=like.dtype))  # not like * 0, which is nan at inf and nan


def _slice_mask(shape: tuple[int, ...], d: int, idx: Any) -> Tensor:
    """A bool tensor, broadcastable to ``shape``: True on the slices ``idx`` along ``d``."""
    m = xp.zeros(shape[d] if shape else 1, dtype=bool)
    m[idx] = True
    view = [1] * max(len(shape), 1)
    view[d] = m.size
    return const(m.reshape(view) if shape else m.reshape(()))


@register("index_fill")
def index_fill(input: Tensor, dim: int, index: Tensor, value: Any) -> Tensor:
    """``input`` with the slices at ``index`` along ``dim`` set to ``value`` (a number or 0-d tensor)."""
    check_tensor(input, "index_fill")
    d = normalize_dim(dim, input.ndim, "index_fill")
    idx = _check_index_1d("index_fill", input, d, index)
    if isinstance(value, Tensor) and value.ndim != 0:
        raise RuntimeError(f"index_fill_ only supports a 0-dimensional value tensor, but got tensor with "
                           f"{value.ndim} dimension(s).")
    v = to_tensor(value, input)
    if v.dtype != input.dtype:
        v = v.to(input.dtype)
    return where(_slice_mask(tuple(input.shape), d, idx), v, input)


@register("index_copy")
def index_copy(input: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:
    """``input`` with its slices at ``index`` along ``dim`` replaced by those of ``source``
    (duplicate indices: one of the written slices, as torch's unspecified choice)."""
    check_tensor(input, "index_copy")
    d = normalize_dim(dim, input.ndim, "index_copy")
    idx = _check_index_1d("index_copy", input, d, index)
    expected = tuple(input.shape[:d]) + (idx.size,) + tuple(input.shape[d + 1:])
    if tuple(source.shape) != expected:
        raise RuntimeError(f"index_copy_(): Source/destination tensor must have same slice shapes. Destination "
                           f"slice shape: {tuple(input.shape)} at dimension {d} and source slice shape: "
                           f"{tuple(source.shape)} at dimension {d}.")
    if len(set(idx.tolist())) < idx.size:  # one write per slice: keep the last, as a loop of copies would
        last = {int(i): k for k, i in enumerate(idx)}
        keep = xp.array(sorted(last.values()))
        idx = idx[keep]
        source = source.index_select(d, const(keep.astype(backend.int64)))
    written = index_add(_zeros(input), d, const(idx.astype(backend.int64)), source)
    return where(_slice_mask(tuple(input.shape), d, idx), written, input)


@register("masked_scatter")
def masked_scatter(input: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    """``input`` with the positions where ``mask`` holds filled, in row-major order, by the
    leading elements of ``source``."""
    check_tensor(input, "masked_scatter")
    if not isinstance(mask, Tensor) or mask.dtype != backend.bool_:
        raise RuntimeError("masked_scatter_: expected BoolTensor for mask")
    m = xp.broadcast_to(mask.array, input.shape)
    pos = xp.flatnonzero(m)
    if source.numel() < pos.size:
        raise RuntimeError(f"masked_scatter: expected source to have at least {pos.size} elements (the number of "
                           f"True in mask), got {source.numel()}")
    src = source.reshape(-1)[: pos.size]
    flat = index_add(_zeros(input).reshape(-1), 0, const(pos.astype(backend.int64)), src.to(input.dtype))
    return where(const(m), flat.reshape(*input.shape), input)


@register("put")
def put(input: Tensor, index: Tensor, source: Tensor, accumulate: bool = False) -> Tensor:
    """``input`` (taken as 1-D) with ``source`` written (``accumulate``: added) at ``index``."""
    check_tensor(input, "put")
    if not isinstance(index, Tensor) or index.dtype.kind not in "iu":
        raise TypeError("put: expected index to be an int64 tensor")
    n = input.numel()
    idx = index.array.reshape(-1)
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"put_(): index out of range for a tensor of {n} elements")
    if source.numel() != idx.size:
        raise RuntimeError(f"put_(): Expected source and index to have the same number of elements, but got "
                           f"source.numel() = {source.numel()}, index.numel() = {idx.size}")
    idx = (idx % max(n, 1)).astype(backend.int64)
    flat, src = input.reshape(-1), source.reshape(-1).to(input.dtype)
    if accumulate:
        return index_add(flat, 0, const(idx), src).reshape(*input.shape)
    mask = xp.zeros(n, dtype=bool)
    mask[idx] = True
    return where(const(mask), index_copy(_zeros(flat), 0, const(idx), src), flat).reshape(*input.shape)


def _inplace(name: str, op: Any) -> None:
    def method(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        others = tuple(a for a in list(args) + list(kwargs.values()) if isinstance(a, Tensor))
        return apply_inplace(self, name, lambda src: op(src, *args, **kwargs),
                             lambda: self.array.__setitem__(Ellipsis, op(self.detach(), *args, **kwargs).array),
                             others)

    method.__name__ = name
    method.__doc__ = f"In-place ``{name[:-1]}``."
    register(name)(method)


def _scatter_(self: Tensor, dim: int, index: Tensor, src: Any = None, value: Any = None, *,
              reduce: str | None = None) -> Tensor:
    if reduce is not None:
        if reduce != "add":
            raise NotImplementedError(f"scatter_: reduce={reduce!r} is not supported by lamina (only 'add'); use "
                                      f"scatter_reduce")
        return scatter_add(self, dim, index, to_tensor(src if src is not None else value, self).expand(
            *index.shape) if not isinstance(src, Tensor) else src)
    return scatter(self, dim, index, src, value)


for _name, _op in (("scatter_", _scatter_), ("scatter_add_", scatter_add), ("index_add_", index_add),
                   ("index_fill_", index_fill), ("index_copy_", index_copy), ("masked_scatter_", masked_scatter),
                   ("put_", put)):
    _inplace(_name, _op)


def _shape_inplace(name: str, op: Any) -> None:
    def method(self: Tensor, *args: Any) -> Tensor:
        if is_grad_enabled() and self.requires_grad:
            if self.is_leaf:
                raise RuntimeError(f"{name}: a leaf Variable that requires grad is being used in an in-place "
                                   f"operation")
            result = op(self, *args)
            self.array, self.grad_fn = result.array, result.grad_fn
        else:
            self.array = op(self.detach(), *args).array
        self._bump_version()  # a copy of self saved for an earlier backward no longer has this shape
        return self

    method.__name__ = name
    method.__doc__ = f"In-place ``{name[:-1]}``: this tensor takes the new shape."
    register(name)(method)


_shape_inplace("unsqueeze_", unsqueeze)
_shape_inplace("squeeze_", squeeze)
_shape_inplace("transpose_", transpose)
