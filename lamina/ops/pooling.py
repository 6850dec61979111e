"""Pooling: max, average, power-average, max-unpooling and adaptive pooling, 1-D to 3-D.

One N-d implementation serves every rank. Max pooling is a *gather* (each window reads the
element it chose), so its backward is the adjoint *scatter*, whose backward is the gather
again — differentiable to any order. Average pooling is linear, ``y = A x``; its backward is
``Aᵀ gy`` and the backward of that is ``A`` again. Array work lives in ``kernels/pool.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .. import backend
from ..autograd.function import Context, Function
from ..autograd.tensor import Tensor
from ._ints import as_int
from .arithmetic import abs, sign
from .common import check_tensor, const, xp_of
from .kernels import pool as K
from .kernels import pool_select
from .kernels.pool_select import force as force_pool
from .unary import relu

__all__ = ["max_pool_nd", "avg_pool_nd", "lp_pool_nd", "max_unpool_nd", "adaptive_avg_pool_nd",
           "adaptive_max_pool_nd", "PlaneGather", "PlaneScatter", "SpatialMean", "ntuple", "batched", "explain_pool",
           "force_pool"]

xp = backend.xp


def ntuple(value: Any, n: int, name: str, op: str, minimum: int | None = 1) -> tuple[int, ...]:
    """``value`` (an int or a sequence of ``n`` ints) as an ``n``-tuple, checked ``≥ minimum``."""
    if isinstance(value, Tensor):
        value = value.tolist()
    if isinstance(value, (int, xp.integer)) and not isinstance(value, bool):
        t = (int(value),) * n
    elif isinstance(value, Sequence) and len(value) == 1 and n > 1:
        t = (as_int(value[0], name, op),) * n
    elif isinstance(value, Sequence) and len(value) == n:
        t = tuple(as_int(v, name, op) for v in value)
    else:
        raise ValueError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if minimum is not None and any(v < minimum for v in t):
        what = "positive" if minimum == 1 else f"at least {minimum}"
        raise ValueError(f"{op}: {name} must be {what}, got {value!r}")
    return t


def batched(input: Tensor, nd: int, op: str) -> tuple[Tensor, bool]:
    """``input`` as ``(N, C, *spatial)``; an unbatched ``(C, *spatial)`` gains a batch dim."""
    check_tensor(input, op)
    if input.ndim == nd + 1:
        return input.unsqueeze(0), True
    if input.ndim != nd + 2:
        raise ValueError(
            f"{op}: expected a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, (N, C) then "
            f"{nd} spatial dim{'s' if nd > 1 else ''}; got a {input.ndim}-D input of shape {tuple(input.shape)}"
        )
    return input, False


def _geom(op: str, x: Tensor, nd: int, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
          ceil_mode: bool, pad_rule: str) -> K.PoolGeom:
    k = ntuple(kernel_size, nd, "kernel_size", op)
    s = k if stride is None or (isinstance(stride, Sequence) and len(stride) == 0) else ntuple(stride, nd, "stride", op)
    p = ntuple(padding, nd, "padding", op, minimum=0)
    d = ntuple(dilation, nd, "dilation", op)
    for pi, ki in zip(p, k):
        if pi > ki // 2:
            raise ValueError(f"{op}: padding should be at most half of kernel_size ({pad_rule}), got "
                             f"padding={p} for kernel_size={k}")
    g = K.pool_geom(tuple(x.shape[2:]), k, s, p, d, bool(ceil_mode))
    if any(o <= 0 for o in g.out_size):
        raise ValueError(
            f"{op}: the kernel (kernel_size={k}, dilation={d}) is larger than the padded input "
            f"(input spatial size {tuple(x.shape[2:])}, padding={p}): output size would be {g.out_size}"
        )
    return g


def explain_pool(input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                 ceil_mode: bool = False) -> dict[str, str]:
    """The implementation each pooling pass would run on now, as ``{pass: name}`` for the passes
    of :data:`.kernels.pool_select.PASSES` (``"max_forward"``, ``"max_backward"``,
    ``"avg_forward"``, ``"avg_backward"``).

    ``input`` is a batched ``(N, C, *spatial)`` tensor or array (only its shape, dtype and array
    type count); the other arguments mean what they mean in ``torch.nn.functional.max_pool2d``
    (the average passes are told for the same window). :func:`force_pool` picks implementations
    within a ``with`` block.
    """
    x = getattr(input, "array", input)
    nd = x.ndim - 2
    if nd not in (1, 2, 3):
        raise ValueError(f"explain_pool: expected a batched 3-D, 4-D or 5-D input (N, C, *spatial), got shape "
                         f"{tuple(x.shape)}")
    g = _geom("explain_pool", x, nd, kernel_size, stride, padding, dilation, ceil_mode, "as max_pool")
    return pool_select.explain(x, g)


# --- max pooling -------------------------------------------------------------------------

class MaxPool(Function):
    """Max over each window; remembers which offset won (``box['arg']``)."""

    @staticmethod
    def forward(ctx: Context, x: Any, geom: K.PoolGeom, box: dict[str, Any]) -> Any:
        y, arg = K.max_pool_forward(x, geom, ctx.needs_input_grad[0] or box["want"])
        ctx.geom, ctx.arg = geom, arg
        box["arg"] = arg
        return y

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        return MaxPoolScatter.apply(gy, geom=ctx.geom, arg=ctx.arg)


class MaxPoolScatter(Function):
    """Each window's value sent to the element it chose (zeros elsewhere; overlaps add)."""

    @staticmethod
    def forward(ctx: Context, gy: Any, geom: K.PoolGeom, arg: Any) -> Any:
        ctx.geom, ctx.arg = geom, arg
        return K.max_pool_scatter(gy, arg, geom)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        return MaxPoolGather.apply(g, geom=ctx.geom, arg=ctx.arg)


class MaxPoolGather(Function):
    """Read, for each window, the element it chose."""

    @staticmethod
    def forward(ctx: Context, x: Any, geom: K.PoolGeom, arg: Any) -> Any:
        ctx.geom, ctx.arg = geom, arg
        return K.max_pool_gather(x, arg, geom)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        return MaxPoolScatter.apply(g, geom=ctx.geom, arg=ctx.arg)


def max_pool_nd(input: Tensor, nd: int, kernel_size: Any, stride: Any = None, padding: Any = 0,
                dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = False, op: str = "max_pool") -> Any:
    """N-d max pooling behind ``max_pool1d/2d/3d`` (see :func:`lamina.nn.functional.max_pool2d`)."""
    x, unb = batched(input, nd, op)
    g = _geom(op, x, nd, kernel_size, stride, padding, dilation, ceil_mode, "max pooling")
    box = {"want": bool(return_indices)}
    y = MaxPool.apply(x, geom=g, box=box)
    if unb:
        y = y.squeeze(0)
    if not return_indices:
        return y
    idx = K.arg_to_index(box["arg"], g)
    return y, const(idx[0] if unb else idx)


# --- average and power-average pooling -----------------------------------------------------

class AvgPool(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, geom: K.PoolGeom, div: Any) -> Any:
        ctx.geom, ctx.div = geom, div
        return K.avg_pool_forward(x, geom, div)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        return AvgPoolT.apply(gy, geom=ctx.geom, div=ctx.div)


class AvgPoolT(Function):
    """The transpose of average pooling: ``gy / divisor`` spread back over each window."""

    @staticmethod
    def forward(ctx: Context, gy: Any, geom: K.PoolGeom, div: Any) -> Any:
        ctx.geom, ctx.div = geom, div
        return K.avg_pool_backward(gy, geom, div)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        return AvgPool.apply(g, geom=ctx.geom, div=ctx.div)


def avg_pool_nd(input: Tensor, nd: int, kernel_size: Any, stride: Any = None, padding: Any = 0,
                ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: int | None = None,
                op: str = "avg_pool") -> Tensor:
    """N-d average pooling behind ``avg_pool1d/2d/3d``."""
    x, unb = batched(input, nd, op)
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point input, got {x.dtype}")
    if divisor_override is not None and int(divisor_override) == 0:
        raise ValueError(f"{op}: divisor_override must be non-zero, got {divisor_override}")
    g = _geom(op, x, nd, kernel_size, stride, padding, 1, ceil_mode, "average pooling")
    if nd == 3 and any(n < k for n, k in zip(g.in_size, g.kernel)):  # torch's 3-D check ignores the padding
        t, h, w = g.in_size
        kt, kh, kw = g.kernel
        raise ValueError(f"{op}: input image (T: {t} H: {h} W: {w}) smaller than kernel size "
                         f"(kT: {kt} kH: {kh} kW: {kw}), as torch's avg_pool3d checks (padding not counted)")
    div = K.avg_divisor(g, bool(count_include_pad), divisor_override, x.dtype, like=x.array)
    y = AvgPool.apply(x, geom=g, div=div)
    return y.squeeze(0) if unb else y


def lp_pool_nd(input: Tensor, nd: int, norm_type: float, kernel_size: Any, stride: Any = None,
               ceil_mode: bool = False, op: str = "lp_pool") -> Tensor:
    """``(Σ_window xᵖ)^(1/p)``, composed exactly as torch composes it (so the gradients agree)."""
    k = ntuple(kernel_size, nd, "kernel_size", op)
    p = float(norm_type)
    if p == math.inf:
        return max_pool_nd(abs(input), nd, k, stride, 0, 1, ceil_mode, op=op)
    if p == -math.inf:
        return -max_pool_nd(-abs(input), nd, k, stride, 0, 1, ceil_mode, op=op)
    out = avg_pool_nd(input ** norm_type, nd, k, stride, 0, ceil_mode, op=op)
    return ((sign(out) * relu(abs(out))) * float(math.prod(k))) ** (1.0 / p)


# --- index gather / scatter on flattened planes (max-unpooling, adaptive max) ------------------

def _flat(a: Any, nd: int) -> Any:
    return a.reshape(a.shape[:a.ndim - nd] + (-1,))


class PlaneGather(Function):
    """``y[…, m] = x[…, idx[…, m]]`` with ``x``'s last ``nd`` dims flattened into one plane."""

    @staticmethod
    def forward(ctx: Context, x: Any, idx: Any, nd: int) -> Any:
        ctx.idx, ctx.nd, ctx.shape = idx, nd, x.shape
        flat = xp.take_along_axis(_flat(x, nd), idx.reshape(idx.shape[:x.ndim - nd] + (-1,)), axis=-1)
        return flat.reshape(idx.shape)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        return PlaneScatter.apply(gy, idx=ctx.idx, nd=ctx.nd, shape=ctx.shape, accumulate=True)


class PlaneScatter(Function):
    """``zeros(shape)`` with ``v[…, m]`` put at plane position ``idx[…, m]`` (added up if
    ``accumulate``, else written: the max-unpooling rule)."""

    @staticmethod
    def forward(ctx: Context, v: Any, idx: Any, nd: int, shape: tuple[int, ...], accumulate: bool) -> Any:
        ctx.idx, ctx.nd = idx, nd
        lead = shape[:len(shape) - nd]
        plane = math.prod(shape[len(shape) - nd:])
        m = backend.get_array_module(v)
        out = m.zeros(lead + (plane,), dtype=v.dtype)
        fi = idx.reshape(lead + (-1,))
        fv = v.reshape(lead + (-1,))
        if accumulate:
            rows = m.arange(math.prod(lead)).reshape(lead + (1,)) * plane
            xp.add.at(out.reshape(-1), (fi + rows).reshape(-1), fv.reshape(-1))
        else:
            xp.put_along_axis(out, fi, fv, axis=-1)
        return out.reshape(shape)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        return PlaneGather.apply(g, idx=ctx.idx, nd=ctx.nd)


def max_unpool_nd(input: Tensor, indices: Tensor, nd: int, kernel_size: Any, stride: Any = None,
                  padding: Any = 0, output_size: Any = None, op: str = "max_unpool") -> Tensor:
    """N-d max-unpooling behind ``max_unpool1d/2d/3d``: values back at their indices, zeros elsewhere."""
    x, unb = batched(input, nd, op)
    if not isinstance(indices, Tensor) or indices.dtype.kind not in "iu":
        raise TypeError(f"{op}: expected indices to be an integer tensor (as returned by max_pool)")
    idx = indices.array[None] if unb else indices.array
    if idx.shape != x.shape:
        raise ValueError(f"{op}: indices of shape {tuple(indices.shape)} do not match input of shape "
                         f"{tuple(input.shape)}")
    k = ntuple(kernel_size, nd, "kernel_size", op)
    s = k if stride is None else ntuple(stride, nd, "stride", op)
    p = ntuple(padding, nd, "padding", op, minimum=0)
    default = tuple((n - 1) * si - 2 * pi + ki for n, si, pi, ki in zip(x.shape[2:], s, p, k))
    if output_size is None:
        size = default
    else:
        size = tuple(as_int(v, "output_size", op)
                     for v in (output_size.tolist() if isinstance(output_size, Tensor) else output_size))
        if len(size) == nd + 2 or (unb and len(size) == nd + 1):
            size = size[len(size) - nd:]
        if len(size) != nd:
            raise ValueError(f"{op}: output_size must have {nd} or {nd + 2} elements, got {output_size!r}")
        for sz, dflt, si in zip(size, default, s):
            if not dflt - si < sz < dflt + si:
                raise ValueError(f"{op}: invalid output_size {size}: each size must lie strictly between "
                                 f"{tuple(d - t for d, t in zip(default, s))} and "
                                 f"{tuple(d + t for d, t in zip(default, s))}")
    plane = math.prod(size)
    if idx.size and (idx.min() < 0 or idx.max() >= plane):
        raise IndexError(f"{op}: found an index outside the output plane of size {size} ({plane} elements)")
    y = PlaneScatter.apply(x, idx=idx.astype(xp.int64), nd=nd, shape=x.shape[:2] + size, accumulate=False)
    return y.squeeze(0) if unb else y


# --- adaptive pooling ----------------------------------------------------------------------

def _adaptive_size(x: Tensor, nd: int, output_size: Any, op: str) -> tuple[int, ...]:
    if isinstance(output_size, (int, xp.integer)) or output_size is None:
        output_size = (output_size,) * nd
    if len(output_size) != nd:
        raise ValueError(f"{op}: output_size must be an int or a tuple of {nd}, got {output_size!r}")
    out = tuple(n if o is None else int(o) for o, n in zip(output_size, x.shape[2:]))
    if any(o < 0 for o in out):
        raise ValueError(f"{op}: output_size must be non-negative, got {output_size!r}")
    if any(n == 0 for n in x.shape[2:]):
        raise ValueError(f"{op}: input spatial size {tuple(x.shape[2:])} has an empty dim")
    return out


def _bounds(n: int, out: int) -> tuple[Any, Any]:
    """torch's adaptive windows: ``[⌊o·n/out⌋, ⌈(o+1)·n/out⌉)``."""
    o = xp.arange(out)
    return (o * n) // out, -((-(o + 1) * n) // out)


class SpatialMean(Function):
    """The mean over the last ``nd`` dims, kept as size-1 dims: the global average pool. The
    sum is an ``einsum`` over rows, several times faster than NumPy's pairwise reduction over
    short rows (and, unlike a BLAS matrix-vector product, unhurt by BLAS threads waiting on
    a busy machine); the backward spreads ``gy / L`` evenly."""

    @staticmethod
    def forward(ctx: Context, x: Any, nd: int) -> Any:
        lead = x.shape[:x.ndim - nd]
        size = math.prod(x.shape[x.ndim - nd:])
        ctx.shape, ctx.size = x.shape, size
        y = xp.einsum("ij->i", x.reshape(-1, size))
        y *= 1.0 / size
        return y.reshape(lead + (1,) * nd)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        return (gy * (1.0 / ctx.size)).expand(*ctx.shape).contiguous()


def _empty_like_windows(x: Tensor, out: tuple[int, ...]) -> Tensor:
    """An ``(N, C, *out)`` result with no elements, still in ``x``'s graph."""
    return x.reshape(*x.shape[:2], math.prod(x.shape[2:]))[..., :0].reshape(*x.shape[:2], *out)


def adaptive_avg_pool_nd(input: Tensor, nd: int, output_size: Any, op: str = "adaptive_avg_pool") -> Tensor:
    """Average over torch's adaptive windows; separable, so one small matrix product per dim
    (a plain mean where the windows tile the dim evenly)."""
    x, unb = batched(input, nd, op)
    out = _adaptive_size(x, nd, output_size, op)
    if 0 in out or x.numel() == 0:  # an empty output, as torch's (its gradient: zeros)
        y = _empty_like_windows(x, out)
        return y.squeeze(0) if unb else y
    sizes = x.shape[2:]
    if all(n % o == 0 for n, o in zip(sizes, out)):  # equal windows tile every dim: one mean
        if tuple(sizes) == out:
            return input.clone()  # a new tensor, as torch (the caller may write into it)
        if all(o == 1 for o in out) and x.dtype.kind == "f":
            y = SpatialMean.apply(x, nd=nd)
            return y.squeeze(0) if unb else y
        split = [v for n, o in zip(sizes, out) for v in (o, n // o)]
        y = x.reshape(*x.shape[:2], *split).mean(tuple(3 + 2 * i for i in range(nd)))
        return y.squeeze(0) if unb else y
    for i, (n, o) in enumerate(zip(sizes, out)):
        a = 2 + i
        if n % o == 0:
            if n != o:
                x = x.reshape(*x.shape[:a], o, n // o, *x.shape[a + 1:]).mean(a + 1)
            continue
        lo, hi = _bounds(n, o)
        m = xp_of(x).zeros((n, o), dtype=x.dtype)
        for j in range(o):
            m[lo[j]:hi[j], j] = 1.0 / (hi[j] - lo[j])
        x = (x.transpose(a, -1) @ const(m)).transpose(a, -1)
    return x.squeeze(0) if unb else x


def adaptive_max_pool_nd(input: Tensor, nd: int, output_size: Any, return_indices: bool = False,
                         op: str = "adaptive_max_pool") -> Any:
    """Max over torch's adaptive windows (first maximum in scan order on ties, as torch)."""
    x, unb = batched(input, nd, op)
    out = _adaptive_size(x, nd, output_size, op)
    if 0 in out or x.numel() == 0:  # an empty output, as torch's
        y, idx = _empty_like_windows(x, out), xp_of(x).zeros(x.shape[:2] + out, dtype=xp.int64)
        if unb:
            y, idx = y.squeeze(0), idx[0]
        return (y, const(idx)) if return_indices else y
    sizes = x.shape[2:]
    # per dim: (out, K) positions, the ragged tail clipped to the window's last element (a
    # repeat of an earlier element never changes which maximum is met first)
    grids = []
    for n, o in zip(sizes, out):
        lo, hi = _bounds(n, o)
        kmax = int((hi - lo).max())
        grids.append(xp.minimum(lo[:, None] + xp.arange(kmax)[None, :], hi[:, None] - 1))
    flat = xp.zeros((), dtype=xp.int64)
    for i, gr in enumerate(grids):
        shape = [1] * (2 * nd)
        shape[i], shape[nd + i] = gr.shape
        flat = flat * sizes[i] + gr.reshape(shape)
    flat = flat.reshape(out + (-1,))  # (*out, K)
    vals = xp.take(_flat(x.array, nd), flat, axis=-1)  # (N, C, *out, K)
    pick = xp.argmax(vals, axis=-1)[..., None]
    idx = xp.take_along_axis(xp.broadcast_to(flat, vals.shape), pick, axis=-1)[..., 0]
    y = PlaneGather.apply(x, idx=idx, nd=nd)
    if unb:
        y, idx = y.squeeze(0), idx[0]
    return (y, const(idx)) if return_indices else y
