"""Resampling: ``interpolate`` (nearest, linear, bilinear, trilinear, area) and
``pixel_shuffle`` / ``pixel_unshuffle``.

Interpolation is separable: along each spatial dim the output is a fixed linear map of the
input — a row selection for nearest, a banded two-tap matrix for linear — applied one dim at
a time. The maps and their transposes (the backward passes) run as blocked matrix products,
which on a CPU beat any gather/scatter-add by an order of magnitude.
Source coordinates follow torch's CPU kernels exactly, including their float32 arithmetic
(``UpSample.h``), so that the chosen pixels and weights agree bit for bit where it matters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .. import backend
from ..autograd.function import Context, Function
from ..autograd.tensor import Tensor
from ._ints import as_int
from .common import check_tensor, const
from .pooling import adaptive_avg_pool_nd

__all__ = ["interpolate", "pixel_shuffle", "pixel_unshuffle", "source_index_linear", "source_index_nearest",
           "AxisGather", "AxisSegmentSum", "AxisMap"]

xp = backend.xp

_RANK = {"linear": 1, "bilinear": 2, "trilinear": 3, "bicubic": 2}
_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area")


def source_index_nearest(n_in: int, n_out: int, scale: float | None, exact: bool, shortcut: bool = False) -> Any:
    """torch's ``nearest_idx`` / ``nearest_exact_idx``: the input index read by each output.

    NOTE: only torch's 2-D CPU kernel takes ``nearest_idx``'s same-size shortcut (a copy); the
    1-D and 3-D kernels always use the scale, so there ``scale_factor=1.3`` on a dim of 3
    (output 3) reads rows 0, 0, 1 — ``shortcut`` says which rule to follow.
    """
    o = xp.arange(n_out)
    if shortcut and not exact and n_out == n_in:
        return o
    f = xp.float32
    s = f(1.0 / scale) if scale is not None and scale > 0 else f(n_in) / f(n_out)
    src = (o.astype(f) + f(0.5)) * s if exact else o.astype(f) * s
    return xp.minimum(xp.floor(src).astype(xp.int64), n_in - 1)


def source_index_linear(n_in: int, n_out: int, scale: float | None, align_corners: bool,
                        dtype: Any) -> tuple[Any, Any, Any, Any]:
    """``(i0, i1, λ0, λ1)`` per output: torch's ``compute_source_index_and_lambda``."""
    o = xp.arange(n_out)
    if n_out == n_in:
        one = xp.ones(n_out, dtype=dtype)
        return o, o, one, xp.zeros(n_out, dtype=dtype)
    f = xp.dtype(dtype).type
    if align_corners:
        ratio = f(n_in - 1) / f(n_out - 1) if n_out > 1 else f(0)
        src = ratio * o.astype(dtype)
    else:
        ratio = f(1.0 / scale) if scale is not None and scale > 0 else f(n_in) / f(n_out)
        src = xp.maximum(ratio * (o.astype(dtype) + f(0.5)) - f(0.5), f(0))
    i0 = xp.minimum(xp.floor(src).astype(xp.int64), n_in - 1)
    lam1 = xp.clip(src - i0.astype(dtype), 0, 1).astype(dtype)
    i1 = i0 + (i0 < n_in - 1)
    return i0, i1, (f(1) - lam1).astype(dtype), lam1


class AxisGather(Function):
    """``x`` read at positions ``idx`` along ``axis`` (``numpy.take``); ``idx`` non-decreasing."""

    @staticmethod
    def forward(ctx: Context, x: Any, idx: Any, axis: int) -> Any:
        ctx.idx, ctx.axis, ctx.n = idx, axis, x.shape[axis]
        return xp.take(x, idx, axis=axis)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        return AxisSegmentSum.apply(gy, idx=ctx.idx, axis=ctx.axis, n=ctx.n)


def _along(x: Any, axis: int, m: Any, chunk: int = 64) -> Any:
    """``x`` with ``axis`` mapped through the banded matrix ``m`` (``n_src × n_dst``).

    On a CPU a matrix product beats any gather/scatter-add (``add.at``) by an order of
    magnitude at feature-map sizes, so the map is one GEMM over ``axis`` swapped last. Long
    axes are cut into blocks of ``chunk`` destination columns, each multiplied with only the
    source rows its band touches, so the cost stays linear in the size.
    """
    xs = xp.swapaxes(x, axis, -1)
    n_src, n_dst = m.shape
    if n_dst <= 2 * chunk:
        return xp.swapaxes(xs @ m, axis, -1)
    out = backend.get_array_module(x).empty(xs.shape[:-1] + (n_dst,), dtype=xp.result_type(x, m))
    for c0 in range(0, n_dst, chunk):
        c1 = min(c0 + chunk, n_dst)
        rows = xp.flatnonzero(m[:, c0:c1].any(axis=1))
        if len(rows) == 0:
            out[..., c0:c1] = 0
            continue
        r0, r1 = int(rows[0]), int(rows[-1]) + 1
        out[..., c0:c1] = xs[..., r0:r1] @ m[r0:r1, c0:c1]
    return xp.swapaxes(out, axis, -1)


class AxisMap(Function):
    """``x`` mapped along ``axis`` by a constant banded matrix ``m`` (``n_in × n_out``); the
    backward maps by ``mᵀ``."""

    @staticmethod
    def forward(ctx: Context, x: Any, m: Any, axis: int) -> Any:
        if type(x) is not type(m):  # the matrix is built with NumPy: moved to x's array module
            m = backend.get_array_module(x).asarray(m)
        ctx.m, ctx.axis = m, axis
        return _along(x, axis, m)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        return AxisMap.apply(g, m=backend.get_array_module(ctx.m).ascontiguousarray(ctx.m.T), axis=ctx.axis)


class AxisSegmentSum(Function):
    """The adjoint of :class:`AxisGather`: ``out[i] = Σ_{j: idx[j] = i} g[j]`` along ``axis``,
    as a product with the 0/1 selection matrix (see :func:`_along`)."""

    @staticmethod
    def forward(ctx: Context, g: Any, idx: Any, axis: int, n: int) -> Any:
        ctx.idx, ctx.axis = idx, axis
        m = xp.zeros((len(idx), n), dtype=g.dtype)
        m[xp.arange(len(idx)), idx] = 1
        if type(g) is not xp.ndarray:  # built with NumPy: moved to g's array module
            m = backend.get_array_module(g).asarray(m)
        return _along(g, axis, m)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        return AxisGather.apply(g, idx=ctx.idx, axis=ctx.axis)


def _linear_matrix(n_in: int, n_out: int, scale: float | None, align_corners: bool, dtype: Any) -> Any:
    i0, i1, l0, l1 = source_index_linear(n_in, n_out, scale, align_corners, dtype)
    m = xp.zeros((n_in, n_out), dtype=dtype)
    cols = xp.arange(n_out)
    xp.add.at(m, (i0, cols), l0)
    xp.add.at(m, (i1, cols), l1)
    return m


def _cubic_matrix(n_in: int, n_out: int, scale: float | None, align_corners: bool, dtype: Any) -> Any:
    """torch's bicubic taps (Keys' cubic convolution, ``A = −0.75``) as an ``n_in × n_out``
    matrix: four source rows per output, clamped at the borders."""
    f = xp.dtype(dtype).type
    o = xp.arange(n_out)
    if align_corners:
        ratio = f(n_in - 1) / f(n_out - 1) if n_out > 1 else f(0)
        src = ratio * o.astype(dtype)
    else:  # NOTE: no clamp at 0 for cubic, unlike linear
        ratio = f(1.0 / scale) if scale is not None and scale > 0 else f(n_in) / f(n_out)
        src = ratio * (o.astype(dtype) + f(0.5)) - f(0.5)
    i = xp.minimum(xp.floor(src).astype(xp.int64), n_in - 1)
    t = xp.clip(src - i.astype(dtype), 0, 1).astype(dtype)
    a = f(-0.75)

    def near(x: Any) -> Any:  # |x| ≤ 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x: Any) -> Any:  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    weights = (far(t + 1), near(t), near(1 - t), far(2 - t))
    m = xp.zeros((n_in, n_out), dtype=dtype)
    for k, w in enumerate(weights):
        xp.add.at(m, (xp.clip(i - 1 + k, 0, n_in - 1), o), w.astype(dtype))
    return m


def _sizes(op: str, x: Tensor, nd: int, size: Any, scale_factor: Any,
           recompute: bool | None, allow_empty: bool = False) -> tuple[tuple[int, ...], tuple[float | None, ...]]:
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: exactly one of size or scale_factor should be defined")
    if size is not None:
        out = (tuple(as_int(s, "size", op) for s in size) if isinstance(size, Sequence)
               else (as_int(size, "size", op),) * nd)
        if len(out) != nd:
            raise ValueError(f"{op}: input with {nd} spatial dims (shape {tuple(x.shape)}) needs a size of "
                             f"{nd} elements, got {size!r}")
        scales: tuple[float | None, ...] = (None,) * nd
    else:
        seq = isinstance(scale_factor, Sequence)
        sf = tuple(float(s) for s in scale_factor) if seq else (float(scale_factor),) * nd
        if len(sf) != nd:
            raise ValueError(f"{op}: input with {nd} spatial dims (shape {tuple(x.shape)}) needs a scale_factor "
                             f"of {nd} elements, got {scale_factor!r}")
        out = tuple(math.floor(n * s) for n, s in zip(x.shape[2:], sf))
        scales = (None,) * nd if recompute else sf
    if any(o < 0 for o in out) or (not allow_empty and 0 in out):
        raise ValueError(f"{op}: output size {out} must be positive (input shape {tuple(x.shape)})")
    return out, scales


def antialias_matrix(n_in: int, n_out: int, scale: float | None, align_corners: bool, cubic: bool,
                      dtype: Any) -> Any:
    """torch's ``antialias=True`` taps as an ``n_in × n_out`` matrix (Pillow's rule): the
    triangle (bilinear) or Keys' cubic with ``A = −0.5`` (bicubic) filter, widened by the
    downscale factor, each output's taps normalized to sum to one (so the borders are not
    clamped but renormalized)."""
    if align_corners:
        ratio = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    else:
        ratio = 1.0 / scale if scale is not None and scale > 0 else n_in / n_out
    half = 2.0 if cubic else 1.0  # half the filter's support
    support = half * ratio if ratio >= 1.0 else half
    invscale = 1.0 / ratio if ratio >= 1.0 else 1.0

    def taps(x: Any) -> Any:
        x = xp.abs(x)
        if not cubic:
            return xp.maximum(0.0, 1.0 - x)
        a = -0.5
        near = ((a + 2) * x - (a + 3)) * x * x + 1
        far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
        return xp.where(x < 1.0, near, xp.where(x < 2.0, far, 0.0))

    m = xp.zeros((n_in, n_out), dtype=xp.float64)
    for o in range(n_out):
        center = ratio * (o + 0.5)
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        if hi <= lo:
            continue
        w = taps((xp.arange(lo, hi) - center + 0.5) * invscale)
        total = w.sum()
        if total != 0:
            m[lo:hi, o] = w / total
    return m.astype(dtype)


def interpolate(input: Tensor, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Tensor:
    """Resize the spatial dims of ``input`` (``torch.nn.functional.interpolate``).

    Args:
        input: ``(N, C, L)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)``.
        size: the output spatial size (int or tuple).
        scale_factor: or a multiplier per spatial dim; the output size is ``⌊n · scale⌋``.
        mode: ``'nearest'`` (torch's legacy rule ``⌊o · n_in/n_out⌋``), ``'nearest-exact'``
            (pixel centres, as Pillow), ``'linear'`` (3-D input), ``'bilinear'`` (4-D),
            ``'trilinear'`` (5-D), ``'bicubic'`` (4-D; Keys' cubic with ``A = −0.75``, may
            overshoot the input range, as torch), or ``'area'`` (adaptive average pooling).
        align_corners: for the linear and cubic modes: map the corner pixels' centres onto each other
            (``src = o·(n_in − 1)/(n_out − 1)``) instead of the pixel edges
            (``src = (o + ½)·n_in/n_out − ½``, default False).
        recompute_scale_factor: with ``scale_factor``, interpolate with ``n_in/n_out`` rather
            than ``1/scale_factor``.
        antialias: for ``'bilinear'`` and ``'bicubic'``: when downsampling, widen the filter by the
            downscale factor so that every input pixel contributes (torch's and Pillow's rule;
            the bicubic filter is Keys' with ``A = −0.5`` then).

    Shape:
        ``(N, C, *in)`` → ``(N, C, *out)``.

    Example:
        >>> import lamina
        >>> interpolate(lamina.tensor([[[1., 2.]]]), scale_factor=2, mode='linear').tolist()
        [[[1.0, 1.25, 1.75, 2.0]]]
    """
    op = "interpolate"
    check_tensor(input, op)
    if mode not in _MODES:
        raise ValueError(f"{op}: mode must be one of {', '.join(_MODES)}, got {mode!r}")
    if antialias and (mode not in ("bilinear", "bicubic") or input.ndim != 4):
        raise ValueError(f"{op}: anti-alias option is restricted to bilinear and bicubic modes and requires a 4-D "
                         f"tensor as input, got mode {mode!r} and a {input.ndim}-D input")
    if input.ndim < 3 or input.ndim > 5:
        raise ValueError(f"{op}: expected a 3-D, 4-D or 5-D input (N, C, *spatial), got shape {tuple(input.shape)}")
    nd = input.ndim - 2
    if mode in _RANK and _RANK[mode] != nd:
        raise ValueError(f"{op}: mode '{mode}' expects a {_RANK[mode] + 2}-D input, got a {input.ndim}-D input "
                         f"of shape {tuple(input.shape)}")
    if align_corners is not None and mode not in _RANK:
        raise ValueError(f"{op}: align_corners option can only be set with the interpolating modes: "
                         f"linear | bilinear | bicubic | trilinear (got mode '{mode}')")
    # 'area' is adaptive average pooling, which torch lets return an empty result
    out, scales = _sizes(op, input, nd, size, scale_factor, recompute_scale_factor, allow_empty=mode == "area")
    if mode == "area":
        return adaptive_avg_pool_nd(input, nd, out, op)
    if input.dtype.kind != "f" and mode != "nearest":
        raise TypeError(f"{op}: mode '{mode}' needs a floating-point input, got {input.dtype}")
    x = input
    for i, (n, o, s) in enumerate(zip(input.shape[2:], out, scales)):
        a = 2 + i
        if antialias:
            x = AxisMap.apply(x, m=antialias_matrix(n, o, s, bool(align_corners), mode == "bicubic", x.dtype),
                              axis=a)
        elif mode in ("nearest", "nearest-exact"):
            idx = source_index_nearest(n, o, s, mode == "nearest-exact", shortcut=nd == 2)
            if not (o == n and xp.array_equal(idx, xp.arange(n))):
                x = AxisGather.apply(x, idx=idx, axis=a) if x.dtype.kind == "f" else const(xp.take(x.array, idx, a))
        elif mode == "bicubic":
            if o != n or s not in (None, 1.0):  # (an unscaled same-size dim maps to itself)
                x = AxisMap.apply(x, m=_cubic_matrix(n, o, s, bool(align_corners), x.dtype), axis=a)
        elif o != n:
            x = AxisMap.apply(x, m=_linear_matrix(n, o, s, bool(align_corners), x.dtype), axis=a)
    return x


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """Rearrange ``(*, C·r², H, W)`` into ``(*, C, H·r, W·r)`` (``torch.nn.functional.pixel_shuffle``),
    the sub-pixel convolution's upsampling step: channel ``c·r² + i·r + j`` becomes the pixel
    at offset ``(i, j)`` of each ``r × r`` block.

    Example:
        >>> import lamina
        >>> pixel_shuffle(lamina.arange(4.).reshape(1, 4, 1, 1), 2).tolist()
        [[[[0.0, 1.0], [2.0, 3.0]]]]
    """
    op = "pixel_shuffle"
    check_tensor(input, op)
    r = int(upscale_factor)
    if input.ndim < 3:
        raise ValueError(f"{op}: expected an input of at least 3 dims (*, C, H, W), got shape {tuple(input.shape)}")
    if r <= 0:
        raise ValueError(f"{op}: upscale_factor must be positive, got {upscale_factor}")
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise ValueError(f"{op}: the number of input channels ({c}) must be divisible by the square of "
                         f"upscale_factor ({r}² = {r * r})")
    k = len(lead)
    y = input.reshape(*lead, c // (r * r), r, r, h, w)
    y = y.permute(*range(k), k, k + 3, k + 1, k + 4, k + 2)
    return y.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """Rearrange ``(*, C, H·r, W·r)`` into ``(*, C·r², H, W)``, the inverse of :func:`pixel_shuffle`.

    Example:
        >>> import lamina
        >>> pixel_unshuffle(lamina.arange(4.).reshape(1, 1, 2, 2), 2).reshape(-1).tolist()
        [0.0, 1.0, 2.0, 3.0]
    """
    op = "pixel_unshuffle"
    check_tensor(input, op)
    r = int(downscale_factor)
    if input.ndim < 3:
        raise ValueError(f"{op}: expected an input of at least 3 dims (*, C, H, W), got shape {tuple(input.shape)}")
    if r <= 0:
        raise ValueError(f"{op}: downscale_factor must be positive, got {downscale_factor}")
    *lead, c, h, w = input.shape
    if h % r or w % r:
        raise ValueError(f"{op}: the spatial size ({h}, {w}) must be divisible by downscale_factor ({r})")
    k = len(lead)
    y = input.reshape(*lead, c, h // r, r, w // r, r)
    y = y.permute(*range(k), k, k + 2, k + 4, k + 1, k + 3)
    return y.reshape(*lead, c * r * r, h // r, w // r)
