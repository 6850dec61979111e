"""Array kernels for N-d pooling (no autograd): window geometry, max and average pooling.

Every kernel walks the *kernel offsets* (4 of them for a 2×2 window, 9 for 3×3), never the
pixels: for each offset one strided slice of the padded input holds, for every output
position, the input element that offset meets. A window op is then a handful of whole-array
ops per offset — vectorized, and the same code for 1-D, 2-D and 3-D.

Layout: arrays are ``(N, C, *spatial)`` (any leading dims); the kernels touch only the last
``len(kernel)`` dims.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ... import backend
from . import pool_numba
from . import pool_select as sel
from .im2col import is_channels_last

__all__ = ["empty_like_layout", "PoolGeom", "pool_out_size", "pool_geom", "window_slices", "pad_spatial",
           "crop_spatial", "max_pool_forward", "scatter_windows", "max_pool_scatter", "max_pool_gather",
           "arg_to_index", "avg_divisor", "avg_pool_forward", "avg_pool_backward"]

xp = backend.xp


@dataclass(frozen=True)
class PoolGeom:
    """The geometry of one pooling call, per spatial dim.

    ``pad_after`` is the right padding actually needed: ``padding`` or more in ceil mode (the
    last window may hang over the end), or less when the last input rows meet no window.
    """

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    in_size: tuple[int, ...]
    out_size: tuple[int, ...]
    pad_after: tuple[int, ...]

    @property
    def padded_size(self) -> tuple[int, ...]:
        return tuple(n + p + q for n, p, q in zip(self.in_size, self.padding, self.pad_after))

    @property
    def disjoint(self) -> bool:
        """Whether no input element belongs to two windows (stride ≥ window extent)."""
        return all(s >= d * (k - 1) + 1 for k, s, d in zip(self.kernel, self.stride, self.dilation))


def pool_out_size(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """torch's ``pooling_output_shape``: ``⌊(n + 2p − d(k−1) − 1)/s⌋ + 1`` (⌈⌉ in ceil mode,
    minus one if the last window would start in the right padding)."""
    span = n + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def pool_geom(in_size: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...],
              padding: tuple[int, ...], dilation: tuple[int, ...], ceil_mode: bool) -> PoolGeom:
    out = tuple(pool_out_size(n, k, s, p, d, ceil_mode)
                for n, k, s, p, d in zip(in_size, kernel, stride, padding, dilation))
    after = tuple(max(0, (o - 1) * s + d * (k - 1) + 1 - n - p) if o > 0 else 0
                  for o, n, k, s, p, d in zip(out, in_size, kernel, stride, padding, dilation))
    return PoolGeom(tuple(kernel), tuple(stride), tuple(padding), tuple(dilation), tuple(in_size), out, after)


def window_slices(g: PoolGeom) -> Iterator[tuple[Any, ...]]:
    """For each kernel offset (row-major, the order torch scans a window), the index into the
    padded array that gives that offset's element of every window: shape ``(*, *out_size)``."""
    for offs in itertools.product(*[range(k) for k in g.kernel]):
        yield (Ellipsis,) + tuple(slice(o * d, o * d + (n - 1) * s + 1, s)
                                  for o, d, n, s in zip(offs, g.dilation, g.out_size, g.stride))


def empty_like_layout(ref: Any, shape: tuple[int, ...], dtype: Any = None, fill: float | None = None) -> Any:
    """An array of ``shape`` whose dims lie in memory in the order of ``ref``'s (a channels-last
    activation under an NCHW shape gets a channels-last result), optionally filled."""
    order = sorted(range(ref.ndim), key=lambda i: -ref.strides[i])
    if order == list(range(ref.ndim)):
        base = xp.empty(shape, dtype=dtype or ref.dtype)
    else:
        base = xp.empty(tuple(shape[i] for i in order), dtype=dtype or ref.dtype)
        base = base.transpose([order.index(i) for i in range(ref.ndim)])
    if fill is not None:
        base.fill(fill)
    return base


def pad_spatial(x: Any, before: tuple[int, ...], after: tuple[int, ...], value: float) -> Any:
    """``x`` with its last ``len(before)`` dims padded by ``value`` (``x`` itself if no padding)."""
    if not any(before) and not any(after):
        return x
    k = len(before)
    lead = x.shape[:x.ndim - k]
    shape = lead + tuple(n + a + b for n, a, b in zip(x.shape[x.ndim - k:], before, after))
    out = empty_like_layout(x, shape, fill=value)
    out[(Ellipsis,) + tuple(slice(a, a + n) for a, n in zip(before, x.shape[x.ndim - k:]))] = x
    return out


def crop_spatial(x: Any, before: tuple[int, ...], size: tuple[int, ...]) -> Any:
    if not any(before) and x.shape[x.ndim - len(size):] == tuple(size):
        return x
    return x[(Ellipsis,) + tuple(slice(a, a + n) for a, n in zip(before, size))]


def _arg_dtype(g: PoolGeom) -> Any:
    return xp.int8 if math.prod(g.kernel) <= 127 else xp.int32


def max_pool_forward(x: Any, g: PoolGeom, need_arg: bool) -> tuple[Any, Any]:
    """Max over each window and, if ``need_arg``, the kernel offset (row-major number) of the
    maximum (None otherwise), by :func:`.pool_select.select`'s ``"max_forward"`` implementation.

    NOTE (ties): among equal values the first in scan order is chosen — torch's rule, and the
    element that receives the gradient. A NaN wins over any number, as in torch. Every
    implementation gives the same maxima and offsets.
    """
    return sel.choose("max_forward", x, g).run(x, g, need_arg)


def _numba_max_forward(x: Any, g: PoolGeom, need_arg: bool) -> tuple[Any, Any]:
    """:mod:`.pool_numba`'s one pass over a channels-last input (channels vectorize in its inner
    loop); an NCHW input keeps :func:`_numpy_max_forward` (one ``maximum`` per offset over whole
    planes, much faster there than a compiled loop over single elements)."""
    if not is_channels_last(x):
        return _numpy_max_forward(x, g, need_arg)
    shape = (x.shape[0], *g.out_size, x.shape[1])  # channels-last, as x
    y, arg = xp.empty(shape, dtype=x.dtype), xp.empty(shape, dtype=_arg_dtype(g))
    pool_numba.max_pool2d_rows(x.transpose(0, 2, 3, 1), y, arg, *g.kernel, *g.stride, *g.padding, *g.dilation)
    return y.transpose(0, 3, 1, 2), (arg.transpose(0, 3, 1, 2) if need_arg else None)


def _numpy_max_forward(x: Any, g: PoolGeom, need_arg: bool) -> tuple[Any, Any]:
    """The maxima first (one ``maximum`` per offset); the offsets are then found by equality,
    walking the offsets backwards so the first match is written last (a slower loop handles
    NaNs)."""
    low = -xp.inf if x.dtype.kind == "f" else xp.iinfo(x.dtype).min
    xpad = pad_spatial(x, g.padding, g.pad_after, low)
    slices = list(window_slices(g))
    y = xpad[slices[0]].copy(order="K")
    for sl in slices[1:]:
        xp.maximum(y, xpad[sl], out=y)
    if not need_arg:
        return y, None
    if x.dtype.kind == "f" and xp.isnan(y).any():
        return y, _nan_arg(xpad, slices, y.shape, g)
    dt = _arg_dtype(g)
    arg = xp.zeros_like(y, dtype=dt)
    eq = xp.empty_like(y, dtype=bool)
    step = xp.empty_like(y, dtype=dt)
    for j in range(len(slices) - 1, -1, -1):
        xp.equal(xpad[slices[j]], y, out=eq)
        # arg ← j where eq: integer arithmetic, several times faster than a masked copy
        xp.subtract(arg, j, out=step)
        step *= eq
        arg -= step
    if any(g.padding) or any(g.pad_after):
        # a window whose input elements are all the lowest value ties with its padding: torch
        # never picks padding, but the first element inside the input (the numba loop too)
        hit = y == low
        if hit.any():
            first, inside, _ = _first_inside(g)
            xp.copyto(arg, first.astype(dt), where=hit & inside)
    return y, arg


def _first_inside(g: PoolGeom, m: Any = xp) -> tuple[Any, Any, Any]:
    """Per window (shape ``out_size``): the kernel offset of its first element inside the input
    in scan order, whether it has one (with dilation a window can lie wholly in padding), and
    torch's index for it (the window's start moved right by the dilation until it is no longer
    negative; past the window, or past the input, where it has no element inside); arrays of the
    array module ``m``."""
    first = m.zeros(g.out_size, dtype=xp.int64)
    inside = m.ones(g.out_size, dtype=bool)
    start = m.zeros(g.out_size, dtype=xp.int64)
    nd = len(g.kernel)
    for i in range(nd):
        shape = [1] * nd
        shape[i] = g.out_size[i]
        base = m.arange(g.out_size[i]) * g.stride[i] - g.padding[i]
        o = -(xp.minimum(base, 0) // g.dilation[i])  # offsets skipped in the left padding
        ok = (o < g.kernel[i]) & (base + o * g.dilation[i] < g.in_size[i])
        first = first * g.kernel[i] + xp.minimum(o, g.kernel[i] - 1).reshape(shape)
        inside = inside & ok.reshape(shape)
        start = start * g.in_size[i] + (base + o * g.dilation[i]).reshape(shape)
    return first, inside, start


def _nan_arg(xpad: Any, slices: list[Any], shape: tuple[int, ...], g: PoolGeom) -> Any:
    """torch's scan with NaNs: a later element replaces the running maximum if it is greater
    or NaN (so the last NaN of a window wins)."""
    best = xpad[slices[0]].copy(order="K")
    arg = xp.zeros_like(best, dtype=_arg_dtype(g))
    for j, sl in enumerate(slices[1:], start=1):
        v = xpad[sl]
        better = xp.greater(v, best) | xp.isnan(v)
        xp.copyto(best, v, where=better)
        xp.copyto(arg, j, where=better)
    return arg


def scatter_windows(contrib: Callable[[int], Any], like: Any, g: PoolGeom, dtype: Any) -> Any:
    """Σ over kernel offsets ``j`` of ``contrib(j)`` (shape ``(*, *out_size)``) added into a
    zero array of the padded input's shape (in ``like``'s memory order) at that offset's
    positions; cropped to the input.

    (Measured: splitting the positions by stride phase into compact buffers, to make the adds
    unit-stride, saves less than the extra buffers cost at the benchmark shapes.)
    """
    lead = like.shape[:like.ndim - len(g.kernel)]
    gx = empty_like_layout(like, lead + g.padded_size, dtype, fill=0)
    for j, sl in enumerate(window_slices(g)):
        if g.disjoint:  # every input element meets at most one window: plain strided writes
            gx[sl] = contrib(j)
        else:
            gx[sl] += contrib(j)
    return crop_spatial(gx, g.padding, g.in_size)


def max_pool_scatter(gy: Any, arg: Any, g: PoolGeom) -> Any:
    """The adjoint of :func:`max_pool_gather`: each ``gy`` goes to the element its window chose,
    by :func:`.pool_select.select`'s ``"max_backward"`` implementation."""
    return sel.choose("max_backward", gy, g).run(gy, arg, g)


def _numba_max_scatter(gy: Any, arg: Any, g: PoolGeom) -> Any:
    """One compiled scatter, over channels-last rows where the offsets lie so (as the forward's
    input did), else over NCHW planes (one plane per task, no channel loop)."""
    n, c = gy.shape[:2]
    args = (g.kernel[1], *g.stride, *g.padding, *g.dilation)
    if c > 1 and arg.transpose(0, 2, 3, 1).flags.c_contiguous:
        gx = xp.zeros((n, *g.in_size, c), dtype=gy.dtype)
        pool_numba.max_pool2d_rows_backward(xp.ascontiguousarray(gy.transpose(0, 2, 3, 1)),
                                            arg.transpose(0, 2, 3, 1), gx, *args)
        return gx.transpose(0, 3, 1, 2)
    gx = xp.zeros((n, c, *g.in_size), dtype=gy.dtype)
    pool_numba.max_pool2d_planes_backward(xp.ascontiguousarray(gy).reshape(n * c, *g.out_size),
                                          xp.ascontiguousarray(arg).reshape(n * c, *g.out_size),
                                          gx.reshape(n * c, *g.in_size), *args)
    return gx


def _numpy_max_scatter(gy: Any, arg: Any, g: PoolGeom) -> Any:
    """One masked strided add per kernel offset."""
    return scatter_windows(lambda j: gy * (arg == j), gy, g, gy.dtype)


def max_pool_gather(x: Any, arg: Any, g: PoolGeom) -> Any:
    """``x`` read at the element each window chose (``arg``); shape ``(*, *out_size)``."""
    xpad = pad_spatial(x, g.padding, g.pad_after, 0.0)
    y = xp.zeros_like(arg, dtype=x.dtype)
    for j, sl in enumerate(window_slices(g)):
        xp.copyto(y, xpad[sl], where=arg == j)
    return y


def arg_to_index(arg: Any, g: PoolGeom) -> Any:
    """Kernel offsets → torch's indices: the flat position of the maximum in its input plane.
    A window wholly in the padding (possible with dilation) gets torch's index too (see
    :func:`_first_inside`). The result is of ``arg``'s array module."""
    m = backend.get_array_module(arg)
    offs = xp.unravel_index(arg, g.kernel)
    nd = len(g.kernel)
    flat = m.zeros(arg.shape, dtype=xp.int64)
    for i in range(nd):
        shape = [1] * nd
        shape[i] = g.out_size[i]
        base = (m.arange(g.out_size[i]) * g.stride[i] - g.padding[i]).reshape(shape)
        flat = flat * g.in_size[i] + (base + offs[i].astype(xp.int64) * g.dilation[i])
    if any(g.padding) and any(d > 1 for d in g.dilation):
        _, inside, start = _first_inside(g, m)
        if not inside.all():
            flat = xp.where(inside, flat, start)
    return flat


def avg_divisor(g: PoolGeom, count_include_pad: bool, divisor_override: int | None, dtype: Any,
                like: Any = None) -> Any:
    """The divisor of each window, broadcastable to ``(*out_size)`` (torch's rule: with padding
    counted, the window is clipped to the padded input; else to the input itself), an array of
    ``like``'s array module (NumPy's by default)."""
    m = backend.get_array_module(like)
    if divisor_override is not None:
        return m.asarray(divisor_override, dtype=dtype)
    div = m.ones((), dtype=dtype)
    nd = len(g.kernel)
    for i in range(nd):
        start = m.arange(g.out_size[i]) * g.stride[i] - g.padding[i]
        end = xp.minimum(start + g.kernel[i], g.in_size[i] + g.padding[i])
        if count_include_pad:
            count = end - start
        else:
            count = xp.minimum(end, g.in_size[i]) - xp.maximum(start, 0)
        shape = [1] * nd
        shape[i] = g.out_size[i]
        div = div * count.reshape(shape).astype(dtype)
    return div


def avg_pool_forward(x: Any, g: PoolGeom, div: Any) -> Any:
    """Sum of each window divided by ``div``, by :func:`.pool_select.select`'s ``"avg_forward"``
    implementation."""
    return sel.choose("avg_forward", x, g).run(x, g, div)


def _numpy_avg_forward(x: Any, g: PoolGeom, div: Any) -> Any:
    """The window is a box, so the sum is taken one dim
    at a time, the last first: ``2k`` strided adds instead of ``k²`` for a 2-D window, and the
    second pass reads whole rows. (Adding the ``k²`` strided slices of the input straight into
    the output ran several times slower for some relative placements of the two arrays in
    memory, cache-set conflicts; one dim at a time is steady.)"""
    y = pad_spatial(x, g.padding, g.pad_after, 0.0)
    nd = len(g.kernel)
    owned = False  # y is an array of this function's (so it may be divided in place)
    for i in reversed(range(nd)):
        axis = y.ndim - nd + i
        k, s, d, o = g.kernel[i], g.stride[i], g.dilation[i], g.out_size[i]

        def tap(j: int, y: Any = y, axis: int = axis, s: int = s, d: int = d, o: int = o) -> Any:
            idx = [slice(None)] * y.ndim
            idx[axis] = slice(j * d, j * d + (o - 1) * s + 1, s)
            return y[tuple(idx)]

        if k == 1:
            y, owned = tap(0), False
            continue
        t = tap(0) + tap(1)
        for j in range(2, k):
            t += tap(j)
        y, owned = t, True
    if owned:
        y /= div
        return y
    return y / div


def avg_pool_backward(gy: Any, g: PoolGeom, div: Any) -> Any:
    """The adjoint of :func:`avg_pool_forward`: ``gy / div`` spread over each window, by
    :func:`.pool_select.select`'s ``"avg_backward"`` implementation."""
    return sel.choose("avg_backward", gy, g).run(gy, g, div)


def _numpy_avg_backward(gy: Any, g: PoolGeom, div: Any) -> Any:
    q = gy / div
    return scatter_windows(lambda j: q, gy, g, gy.dtype)
