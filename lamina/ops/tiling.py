"""Repetition and grids: ``repeat_interleave``, ``tile``, ``meshgrid`` — composed from
``index_select``, ``repeat`` and ``expand``, so their gradients sum the copies back."""

from __future__ import annotations

import warnings
from typing import Any

from .. import backend
from ..autograd.tensor import Tensor, register
from .common import check_tensor, const, normalize_dim
from .indexing import index_select
from .shape import repeat

__all__ = ["repeat_interleave", "tile", "meshgrid"]

xp = backend.xp


@register("repeat_interleave")
def repeat_interleave(input: Tensor, repeats: Any = None, dim: int | None = None, *,
                      output_size: int | None = None) -> Tensor:
    """Each element (slice along ``dim``) repeated ``repeats`` times in place: ``[1, 2] → [1, 1, 2, 2]``.

    ``repeats`` is an int or a 1-D tensor of one count per slice; without ``dim`` the input is
    flattened first. ``repeat_interleave(counts)`` alone gives ``[0]*counts[0] + [1]*counts[1] + …``.
    """
    check_tensor(input, "repeat_interleave")
    if repeats is None:  # torch.repeat_interleave(repeats): the index each position repeats
        counts = input.array
        if input.ndim != 1 or counts.dtype.kind not in "iu":
            raise RuntimeError("repeat_interleave: repeats must be a 1-D integer tensor")
        return const(xp.repeat(xp.arange(len(counts), dtype=backend.int64), counts))
    x = input.reshape(-1) if dim is None else input
    d = 0 if dim is None else normalize_dim(dim, x.ndim, "repeat_interleave")
    n = x.shape[d] if x.ndim else 1
    r = repeats.array if isinstance(repeats, Tensor) else xp.asarray(repeats)
    if r.dtype.kind not in "iu":
        raise RuntimeError(f"repeat_interleave: repeats must be integers, got {r.dtype}")
    if r.ndim > 1 or (r.ndim == 1 and r.shape[0] not in (1, n)):
        raise RuntimeError(f"repeat_interleave: repeats must have the same size as input along dim, but got "
                           f"repeats.size(0) = {r.shape[0] if r.ndim else 1} and input.size({d}) = {n}")
    if (r < 0).any():
        raise RuntimeError("repeat_interleave: repeats can not be negative")
    index = xp.repeat(xp.arange(n, dtype=backend.int64), xp.broadcast_to(r.reshape(-1), (n,)))
    if output_size is not None and output_size != len(index):
        raise RuntimeError(f"repeat_interleave: output_size {output_size} does not match the sum of repeats "
                           f"{len(index)}")
    if x.ndim == 0:
        x = x.reshape(1)
    return index_select(x, d, const(index))


@register("tile")
def tile(input: Tensor, dims: Any, *more: Any) -> Tensor:
    """``input`` repeated ``dims[i]`` times along each dim; fewer ``dims`` than dims are padded with
    leading 1s (unlike ``repeat``), as torch."""
    check_tensor(input, "tile")
    reps = tuple(dims) + more if isinstance(dims, (tuple, list)) else (dims,) + more
    reps = (1,) * (input.ndim - len(reps)) + tuple(reps)
    return repeat(input, *reps)


def meshgrid(*tensors: Any, indexing: str | None = None) -> tuple[Tensor, ...]:
    """Coordinate grids from 1-D tensors: with ``indexing='ij'`` output ``k`` varies along dim ``k``
    (shape ``(n₀, n₁, …)``); with ``'xy'`` the first two dims swap (Cartesian, as NumPy's default).

    Like torch, leaving ``indexing`` out means ``'ij'`` and warns that it will be required.
    """
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing is None:
        warnings.warn("torch.meshgrid: in an upcoming release, it will be required to pass the indexing argument.",
                      UserWarning, stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise ValueError(f"torch.meshgrid: indexing must be one of \"xy\" or \"ij\", but received: {indexing}")
    for i, t in enumerate(tensors):
        check_tensor(t, "meshgrid", f"tensor {i}")
        if t.ndim > 1:
            raise RuntimeError(f"torch.meshgrid: Expected 0D or 1D tensor in the tensor list but got: {t.ndim}D")
    if len({t.dtype for t in tensors}) > 1:
        raise RuntimeError("meshgrid expects all tensors to have the same dtype")
    ts = [t.reshape(-1) for t in tensors]
    shape = tuple(t.shape[0] for t in ts)
    out = []
    for k, t in enumerate(ts):
        view = [1] * len(ts)
        view[k] = shape[k]
        out.append(t.reshape(*view).expand(*shape))
    if indexing == "xy" and len(ts) >= 2:  # the 'ij' grids with the first two dims swapped
        out = [o.transpose(0, 1) for o in out]
    return tuple(out)
