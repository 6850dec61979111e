"""Ordering and selection: ``sort``, ``argsort``, ``topk``, ``nonzero``.

Values come out through ``gather`` at the sorting indices, so their gradient is the scatter of
the upstream gradient back to where each value came from.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from .. import backend
from ..autograd.tensor import Tensor, register
from .common import check_tensor, const, normalize_dim
from .indexing import gather

__all__ = ["sort", "argsort", "topk", "nonzero"]

xp = backend.xp

return_types_sort = namedtuple("sort", ["values", "indices"])
return_types_topk = namedtuple("topk", ["values", "indices"])


def _argsort(a: Any, dim: int, descending: bool) -> Any:
    # a stable sort; descending order keeps equal elements in their original order, as torch's stable sort
    if descending:
        a = ~a if a.dtype.kind == "b" else -(a.astype(xp.int64) if a.dtype.kind == "u" else a)
    return xp.argsort(a, axis=dim, kind="stable").astype(backend.int64)


@register("sort")
def sort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
    """``(values, indices)`` sorted along ``dim`` (stable: ties keep their order)."""
    check_tensor(input, "sort")
    if input.ndim == 0:
        return return_types_sort(input, const(xp.zeros((), dtype=backend.int64)))
    d = normalize_dim(dim, input.ndim, "sort")
    idx = _argsort(input.array, d, descending)
    return return_types_sort(gather(input, d, const(idx)), const(idx))


@register("argsort")
def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """The indices that sort ``input`` along ``dim``."""
    check_tensor(input, "argsort")
    if input.ndim == 0:
        return const(xp.zeros((), dtype=backend.int64))
    return const(_argsort(input.array, normalize_dim(dim, input.ndim, "argsort"), descending))


@register("topk")
def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:  # noqa: A002
    """The ``k`` largest (or smallest) elements along ``dim`` and their indices."""
    check_tensor(input, "topk")
    d = normalize_dim(dim, input.ndim, "topk") if input.ndim else 0
    n = input.shape[d] if input.ndim else 1
    if not 0 <= k <= n:
        raise RuntimeError(f"topk: selected index k={k} out of range for a dim of size {n}")
    if input.ndim == 0:
        return return_types_topk(input, const(xp.zeros((), dtype=backend.int64)))
    idx = xp.take(_argsort(input.array, d, largest), xp.arange(k), axis=d)
    return return_types_topk(gather(input, d, const(idx)), const(idx))


@register("nonzero")
def nonzero(input: Tensor, as_tuple: bool = False) -> Any:
    """The indices of the non-zero elements: an ``(n, ndim)`` int64 tensor, or one 1-D tensor per
    dim with ``as_tuple``."""
    check_tensor(input, "nonzero")
    where_ = xp.nonzero(input.array if input.ndim else input.array.reshape(1))
    if as_tuple:
        return tuple(const(w.astype(backend.int64)) for w in where_)
    return const(xp.stack(where_, axis=1).astype(backend.int64) if input.ndim else
                 xp.zeros((len(where_[0]), 0), dtype=backend.int64))
