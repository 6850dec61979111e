"""Indexing: ``x[...]``, gather/scatter/scatter_add, index_select/index_add, masked_fill.

Reading by index has a scatter-add as its backward (duplicate indices accumulate), and the
scatter-add's backward is the read again — so indexing is differentiable to any order.
"""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd.function import Context, Function
from ..autograd.tensor import Tensor, register
from .common import check_tensor, const, normalize_dim, to_tensor, xp_of
from .selection import where

__all__ = ["select", "getitem", "gather", "scatter", "scatter_add", "index_select", "index_add",
           "masked_fill", "masked_select", "narrow", "tril", "triu"]

xp = backend.xp

_BASIC = (int, slice, type(None), type(Ellipsis), xp.integer)


def _normalize_index(idx: Any, shape: tuple[int, ...]) -> Any:
    """Turn Tensors and lists inside an index into arrays; check bool masks' shapes."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    out = []
    for i in idx:
        if isinstance(i, Tensor):
            i = i.array
        elif isinstance(i, list):
            i = xp.asarray(i)
        if isinstance(i, xp.ndarray):
            if i.dtype.kind == "f":
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
            if i.dtype.kind == "u" and i.dtype != xp.uint8:
                i = i.astype(xp.int64)
            if i.dtype == xp.uint8:
                i = i.astype(bool)
        elif isinstance(i, bool):
            i = xp.asarray(i)
        out.append(i)
    return tuple(out)


def _is_basic(idx: tuple[Any, ...]) -> bool:
    return all(isinstance(i, _BASIC) for i in idx)


class GetItem(Function):
    is_view = True

    @staticmethod
    def forward(ctx: Context, x: Any, index: Any) -> Any:
        ctx.in_shape, ctx.index = x.shape, index
        try:
            return x[index]
        except IndexError as e:
            raise IndexError(f"__getitem__: {e} (tensor of shape {tuple(x.shape)})") from None

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        return IndexPutAdd.apply(gy, shape=ctx.in_shape, index=ctx.index)


class IndexPutAdd(Function):
    """``zeros(shape)`` with ``values`` added at ``index`` (duplicates accumulate)."""

    @staticmethod
    def forward(ctx: Context, values: Any, shape: tuple[int, ...], index: Any) -> Any:
        ctx.index = index
        out = backend.get_array_module(values).zeros(shape, dtype=values.dtype)
        if _is_basic(index):
            out[index] = values
        else:
            xp.add.at(out, index, values)
        return out

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        return GetItem.apply(gy, index=ctx.index)


def getitem(input: Tensor, index: Any) -> Tensor:
    """``input[index]`` with ints, slices, None, Ellipsis, bool masks and integer index tensors
    (NumPy/torch semantics)."""
    idx = _normalize_index(index, input.shape)
    out = GetItem.apply(input, index=idx)
    if not _is_basic(idx):
        out._vc = [0]  # advanced indexing copies
        out._is_view = False
    return out


Tensor.__getitem__ = getitem  # type: ignore[method-assign]


class IndexPut(Function):
    """``x`` with ``values`` written at ``index`` (out of place)."""

    @staticmethod
    def forward(ctx: Context, x: Any, values: Any, index: Any) -> Any:
        ctx.index, ctx.vshape = index, values.shape
        out = x.copy()
        out[index] = values
        return out

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        nx, nv = ctx.needs_input_grad
        gx = IndexPut.apply(gy, const(xp_of(gy).zeros((), gy.dtype)), index=ctx.index) if nx else None
        gv = None
        if nv:
            from .shape import sum_to
            gv = sum_to(GetItem.apply(gy, index=ctx.index), ctx.vshape)
        return gx, gv


def _setitem(self: Tensor, index: Any, value: Any) -> None:
    from .inplace import apply_inplace

    idx = _normalize_index(index, self.shape)
    v = to_tensor(value, self)
    if v.dtype != self.dtype:
        v = v.to(self.dtype) if v.dtype.kind != "f" or self.dtype.kind == "f" else v
    if v.dtype != self.dtype:
        raise TypeError(f"__setitem__: cannot assign {v.dtype} values into a {self.dtype} tensor")
    try:
        target_shape = xp.empty(self.shape, dtype=bool)[idx].shape
        xp.broadcast_shapes(v.shape, target_shape)
    except (IndexError, ValueError) as e:
        raise IndexError(
            f"__setitem__: cannot assign a value of shape {tuple(v.shape)} at index {index!r} of a "
            f"tensor of shape {tuple(self.shape)} ({e})"
        ) from None
    apply_inplace(self, "__setitem__", lambda src: IndexPut.apply(src, v, index=idx),
                  lambda: self.array.__setitem__(idx, v.array), (v,))


Tensor.__setitem__ = _setitem  # type: ignore[method-assign]


def _coords(index: Any, dim: int) -> tuple[Any, ...]:
    coords = list(xp.indices(index.shape, sparse=True))
    coords[dim] = index
    return tuple(coords)


def _check_index(op: str, input: Tensor, dim: int, index: Tensor, src: Tensor | None = None) -> None:
    if not isinstance(index, Tensor) or index.dtype.kind not in "iu":
        raise TypeError(f"{op}: expected index to be an int64 tensor")
    if index.ndim != input.ndim and not (index.ndim <= 1 and input.ndim <= 1):
        raise RuntimeError(
            f"{op}: index tensor must have the same number of dimensions as input tensor "
            f"(index {index.ndim}-d, input {input.ndim}-d)"
        )
    for d in range(index.ndim):
        if d != dim and index.shape[d] > input.shape[d]:
            raise RuntimeError(
                f"{op}: size of index {tuple(index.shape)} exceeds input {tuple(input.shape)} at dim {d}"
            )
        if src is not None and index.shape[d] > src.shape[d]:
            raise RuntimeError(
                f"{op}: size of index {tuple(index.shape)} exceeds src {tuple(src.shape)} at dim {d}"
            )
    n = input.shape[dim] if input.ndim else 1
    if index.numel() and (index.array.min() < -n or index.array.max() >= n):
        raise IndexError(f"{op}: index out of range for dim {dim} of size {n}")


class Gather(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, dim: int, index: Any) -> Any:
        ctx.in_shape, ctx.dim, ctx.index = x.shape, dim, index
        return x[_coords(index, dim)]

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        zeros = const(xp_of(gy).zeros(ctx.in_shape, dtype=gy.dtype))
        return ScatterAdd.apply(zeros, gy, dim=ctx.dim, index=ctx.index)


@register("gather")
def gather(input: Tensor, dim: int, index: Tensor) -> Tensor:
    """``out[i][j] = input[index[i][j]][j]`` (for dim 0), as ``torch.gather``."""
    check_tensor(input, "gather")
    d = normalize_dim(dim, input.ndim, "gather")
    _check_index("gather", input, d, index)
    idx = index.array % max(input.shape[d], 1) if input.ndim else index.array
    return Gather.apply(input, dim=d, index=idx)


class ScatterAdd(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, src: Any, dim: int, index: Any) -> Any:
        ctx.dim, ctx.index, ctx.src_shape = dim, index, src.shape
        out = x.copy()
        sl = tuple(slice(0, s) for s in index.shape)
        xp.add.at(out, _coords(index, dim), src[sl])
        return out

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        nx, ns = ctx.needs_input_grad
        return (gy if nx else None,
                _pad_to_src(Gather.apply(gy, dim=ctx.dim, index=ctx.index), ctx) if ns else None)


def _pad_to_src(g: Tensor, ctx: Context) -> Tensor:
    if g.shape == ctx.src_shape:
        return g
    return IndexPutAdd.apply(g, shape=ctx.src_shape, index=tuple(slice(0, s) for s in g.shape))


class Scatter(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, src: Any, dim: int, index: Any) -> Any:
        ctx.dim, ctx.index, ctx.src_shape = dim, index, src.shape
        out = x.copy()
        if src.ndim == 0:
            out[_coords(index, dim)] = src
        else:
            out[_coords(index, dim)] = src[tuple(slice(0, s) for s in index.shape)]
        return out

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        nx, ns = ctx.needs_input_grad
        gx = Scatter.apply(gy, const(xp_of(gy).zeros((), gy.dtype)), dim=ctx.dim, index=ctx.index) if nx else None
        gs = None
        if ns:
            gs = Gather.apply(gy, dim=ctx.dim, index=ctx.index)
            gs = _pad_to_src(gs, ctx) if ctx.src_shape != () else gs.sum()
        return gx, gs


def _scatter_common(op: str, cls: type[Function], input: Tensor, dim: int, index: Tensor,
                    src: Any) -> Tensor:
    check_tensor(input, op)
    d = normalize_dim(dim, input.ndim, op)
    s = to_tensor(src, input)
    if s.dtype != input.dtype:
        raise TypeError(f"{op}: src has dtype {s.dtype} but input has {input.dtype}")
    if s.ndim != 0 and s.ndim != input.ndim:
        raise RuntimeError(f"{op}: src must have as many dims as input ({input.ndim}), got {s.ndim}")
    _check_index(op, input, d, index, s if s.ndim else None)
    idx = index.array % max(input.shape[d], 1) if input.ndim else index.array
    return cls.apply(input, s, dim=d, index=idx)


@register("scatter_add")
def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """``input`` with ``src`` added at ``index`` along ``dim`` (duplicates accumulate)."""
    return _scatter_common("scatter_add", ScatterAdd, input, dim, index, src)


@register("scatter")
def scatter(input: Tensor, dim: int, index: Tensor, src: Any = None, value: Any = None) -> Tensor:
    """``input`` with ``src`` (a tensor or the number ``value``) written at ``index`` along
    ``dim``. With duplicate indices the written value is one of them (as torch: unspecified)."""
    if src is None:
        src = value
    if src is None:
        raise TypeError("scatter: expected 'src' or 'value'")
    return _scatter_common("scatter", Scatter, input, dim, index, src)


class IndexSelect(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, dim: int, index: Any) -> Any:
        ctx.in_shape, ctx.dim, ctx.index = x.shape, dim, index
        return xp.take(x, index, axis=dim)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        zeros = const(xp_of(gy).zeros(ctx.in_shape, dtype=gy.dtype))
        return IndexAdd.apply(zeros, gy, dim=ctx.dim, index=ctx.index)


class IndexAdd(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, src: Any, dim: int, index: Any) -> Any:
        ctx.dim, ctx.index = dim, index
        out = x.copy()
        xp.add.at(out, (slice(None),) * dim + (index,), src)
        return out

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        nx, ns = ctx.needs_input_grad
        return (gy if nx else None, IndexSelect.apply(gy, dim=ctx.dim, index=ctx.index) if ns else None)


def _check_index_1d(op: str, input: Tensor, d: int, index: Any) -> Any:
    if not isinstance(index, Tensor) or index.dtype.kind not in "iu" or index.ndim > 1:
        raise TypeError(f"{op}: expected index to be a 1-D (or 0-D) int64 tensor")
    n = input.shape[d] if input.ndim else 1
    a = index.array.reshape(-1)
    if a.size and (a.min() < -n or a.max() >= n):
        raise IndexError(f"{op}: index out of range for dim {d} of size {n}")
    return a % max(n, 1)


@register("index_select")
def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    """The slices of ``input`` along ``dim`` at the positions in ``index`` (1-D)."""
    check_tensor(input, "index_select")
    d = normalize_dim(dim, input.ndim, "index_select")
    return IndexSelect.apply(input, dim=d, index=_check_index_1d("index_select", input, d, index))


@register("index_add")
def index_add(input: Tensor, dim: int, index: Tensor, source: Tensor, alpha: float = 1) -> Tensor:
    """``input`` with ``alpha * source`` added at ``index`` along ``dim`` (duplicates accumulate)."""
    check_tensor(input, "index_add")
    d = normalize_dim(dim, input.ndim, "index_add")
    idx = _check_index_1d("index_add", input, d, index)
    src = to_tensor(source, input)
    expected = input.shape[:d] + (idx.size,) + input.shape[d + 1:]
    if src.shape != expected:
        raise RuntimeError(f"index_add: source has shape {tuple(src.shape)}, expected {expected}")
    if alpha != 1:
        src = src * alpha
    return IndexAdd.apply(input, src, dim=d, index=idx)


@register("masked_fill")
def masked_fill(input: Tensor, mask: Tensor, value: Any) -> Tensor:
    """``input`` with ``value`` where ``mask`` (a bool tensor broadcastable to input) holds."""
    check_tensor(input, "masked_fill")
    if not isinstance(mask, Tensor) or mask.dtype != backend.bool_:
        raise TypeError("masked_fill: expected mask to be a bool tensor")
    if xp.broadcast_shapes(input.shape, mask.shape) != input.shape:
        raise RuntimeError(
            f"masked_fill: mask of shape {tuple(mask.shape)} is not broadcastable to input "
            f"{tuple(input.shape)}"
        )
    v = to_tensor(value, input)
    if v.dtype != input.dtype:  # the value takes the input's dtype (an int tensor stays int, as torch)
        v = v.to(input.dtype) if v.dtype.kind != "f" or input.dtype.kind == "f" else const(
            v.array.astype(input.dtype))
    return where(mask, v, input)


@register("masked_select")
def masked_select(input: Tensor, mask: Tensor) -> Tensor:
    """The elements of ``input`` where ``mask`` holds, as a 1-D tensor."""
    shape = xp.broadcast_shapes(input.shape, mask.shape)
    return getitem(input.expand(*shape), mask.expand(*shape))


@register("select")
def select(input: Tensor, dim: int, index: int) -> Tensor:
    """The slice at ``index`` along ``dim``, that dim removed: ``x.select(1, 2)`` is ``x[:, 2]`` (a view)."""
    check_tensor(input, "select")
    if input.ndim == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    d = normalize_dim(dim, input.ndim, "select")
    n = input.shape[d]
    if not -n <= index < n:
        raise IndexError(f"select(): index {index} out of range for tensor of size {tuple(input.shape)} at "
                         f"dimension {dim}")
    return getitem(input, (slice(None),) * d + (int(index),))


@register("narrow")
def narrow(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    d = normalize_dim(dim, input.ndim, "narrow")
    return getitem(input, (slice(None),) * d + (slice(start, start + length),))



def _tri(input: Tensor, diagonal: int, lower: bool, op: str) -> Tensor:
    if input.ndim < 2:
        raise RuntimeError(f"{op}: input tensor must have at least 2 dimensions (got {input.ndim})")
    rows, cols = input.shape[-2:]
    keep = (xp.tril if lower else xp.triu)(xp.ones((rows, cols), dtype=bool), diagonal)
    return where(const(keep), input, to_tensor(0, input)) if input.dtype.kind != "b" else const(input.array & keep)


@register("tril")
def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle (on and below the ``diagonal``-th diagonal); the rest zero."""
    return _tri(input, diagonal, True, "tril")


@register("triu")
def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle (on and above the ``diagonal``-th diagonal); the rest zero."""
    return _tri(input, diagonal, False, "triu")
