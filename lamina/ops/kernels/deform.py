"""Deformable convolution as a deformable im2col + GEMM, and its backward: array functions only.

Notation: input ``x (N, C, H, W)``, offsets ``(N, 2·Go·K, Ho, Wo)`` for ``Go`` offset groups and
``K = kh·kw`` taps, mask ``(N, Go·K, Ho, Wo)``, weight ``w (C_out, C/g, kh, kw)`` for ``g``
groups, ``L = Ho·Wo``. The plain loops of :func:`.deform_reference.reference_deform_conv2d`
compute the same, one output value at a time.

- :func:`sampling_plan`: where each tap of each output pixel reads, once per offset group;
- :func:`deform_forward`: the deformable column matrix ``cols (N, C·K, L)`` — entry
  ``(c·K + k, l)`` is channel ``c`` bilinearly sampled at tap ``k`` of pixel ``l``, times the
  mask — then one GEMM per group, ``y_g = w_g (C_out/g, C/g·K) @ cols_g``;
- :func:`deform_backward`: ``gcols_g = w_gᵀ @ gy_g`` (the GEMM's adjoint), then one pass over
  ``gcols`` scatters it into the input with the bilinear weights (col2im) and contracts it with
  the sample's derivatives in y and x (offsets) and with the sample itself (mask);
  ``gw_g = Σ_n gy_g @ cols_gᵀ``.

Samples read a copy of the input padded by one ring of zeros: a sample with ``-1 <= y < H`` and
``-1 <= x < W`` then has its four neighbours inside the copy, and those outside the image are
the ring's zeros, as torchvision's (which tests each neighbour); samples beyond are zero and get
the 2×2 block at the copy's top-left corner, all zeros, with weights ``(1, 0, 0, 0)``, so their
value and every derivative are zero too. That is torchvision's forward and gradient exactly,
including at the edges ``y = -1`` (value 0, derivative from the inside) and ``y = H`` (zero).

Kernels: the compiled loops of :mod:`.deform_numba`, or NumPy gathers and ``bincount``
scatters; :func:`select_kernel` chooses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import deform_numba
from .im2col import use_numba
from .threads import matmul

__all__ = ["KERNELS", "select_kernel", "force_kernel", "sampling_plan", "deform_columns", "deform_forward",
           "deform_backward"]

KERNELS = ("numba", "numpy")
_FORCED: list[str | None] = [None]


def force_kernel(name: str | None) -> None:
    """Make :func:`select_kernel` return ``name`` (one of :data:`KERNELS`; ``"numba"`` only where
    numba runs), or choose again with None (for tests and benchmarks)."""
    if name is not None and name not in KERNELS:
        raise ValueError(f"deform_conv2d: kernel must be one of {KERNELS} or None, got {name!r}")
    if name == "numba" and not deform_numba.AVAILABLE:
        raise ValueError("deform_conv2d: the numba kernel was asked for but numba is not available")
    _FORCED[0] = name


def select_kernel(dtype: Any) -> str:
    """The kernel deformable convolutions of ``dtype`` run on: the one :func:`force_kernel` set,
    else numba's loops for float32/float64 where numba is on (:func:`.im2col.use_numba`), else
    NumPy's."""
    if _FORCED[0] is not None:
        return _FORCED[0]
    if deform_numba.AVAILABLE and use_numba() and np.dtype(dtype) in (np.float32, np.float64):
        return "numba"
    return "numpy"


def sampling_plan(offset: Any, size: Sequence[int], ksize: Sequence[int], stride: Sequence[int],
                  padding: Sequence[int], dilation: Sequence[int]) -> tuple[Any, Any, Any]:
    """Where every tap of every output pixel samples, per offset group: ``(base, lh, lw)``, each
    ``(N, Go, K, L)``. ``base`` is the flat index, in the ``(H + 2) × (W + 2)`` zero-padded
    plane, of the top-left of the 2×2 block around the sample; ``lh, lw`` (offset's dtype) how
    far the sample lies below and right of it. Samples outside ``-1 <= y < H, -1 <= x < W``
    get ``base = 0`` and ``lh = lw = 0`` (the padded corner, all zeros: see the module text)."""
    n, _, out_h, out_w = offset.shape
    (h, w), (kh, kw) = size, ksize
    dt = offset.dtype
    go = offset.shape[1] // (2 * kh * kw)
    off = offset.reshape(n, go, kh, kw, 2, out_h, out_w)
    # the regular grid, as torchvision: integers first, then the offset added in the input's dtype
    grid_y = (np.arange(kh) * dilation[0])[:, None, None, None] + (np.arange(out_h) * stride[0] - padding[0])[:, None]
    grid_x = (np.arange(kw) * dilation[1])[:, None, None] + (np.arange(out_w) * stride[1] - padding[1])
    y = grid_y.astype(dt) + off[:, :, :, :, 0]  # (N, Go, kh, kw, Ho, Wo)
    x = grid_x.astype(dt) + off[:, :, :, :, 1]
    inside = (y >= -1) & (y < h) & (x >= -1) & (x < w)
    y = np.where(inside, y, dt.type(-1))  # outside: the padded corner (also keeps inf/nan out of the casts)
    x = np.where(inside, x, dt.type(-1))
    y0 = np.floor(y)
    x0 = np.floor(x)
    base = (y0.astype(np.int64) + 1) * (w + 2) + (x0.astype(np.int64) + 1)
    shape = (n, go, kh * kw, out_h * out_w)
    return base.reshape(shape), (y - y0).reshape(shape), (x - x0).reshape(shape)


def _padded(x: Any) -> Any:
    """``x (N, C, H, W)`` padded by one ring of zeros, as flat planes ``(N, C, (H + 2)·(W + 2))``."""
    n, c, h, w = x.shape
    xpad = np.zeros((n, c, h + 2, w + 2), dtype=x.dtype)
    xpad[:, :, 1:-1, 1:-1] = x
    return xpad.reshape(n, c, (h + 2) * (w + 2))  # sizes spelt out: -1 fails for an empty batch


def _corners(wp: int, lh: Any, lw: Any) -> list[tuple[int, Any]]:
    """The four neighbours of a sample as (index step from ``base``, bilinear weight)."""
    return [(0, (1 - lh) * (1 - lw)), (1, (1 - lh) * lw), (wp, lh * (1 - lw)), (wp + 1, lh * lw)]


def deform_columns(x: Any, plan: tuple[Any, Any, Any], mask: Any, kernel: str | None = None) -> Any:
    """The deformable column matrix ``cols (N, C·K, L)``: ``cols[n, c·K + k, l]`` is
    ``mask[n, og, k, l]`` times channel ``c`` of image ``n`` sampled where ``plan`` says for
    offset group ``og = c // (C/Go)``, tap ``k`` and output pixel ``l``. ``mask (N, Go, K, L)``."""
    base, lh, lw = plan
    n, c, _, w = x.shape
    go, taps, length = base.shape[1:]
    xpad = _padded(x)
    if (kernel or select_kernel(x.dtype)) == "numba":
        cols = np.empty((n, c * taps, length), dtype=x.dtype)
        deform_numba.deform_columns(cols, xpad, base, lh, lw, mask, w + 2, x.dtype.type(1))
        return cols
    per_group = (n, go, 1, taps * length)
    xg = xpad.reshape(n, go, c // go, xpad.shape[2])
    cols = np.zeros((n, go, c // go, taps * length), dtype=x.dtype)
    for step, weight in _corners(w + 2, lh, lw):
        idx = (base + step).reshape(per_group)
        cols += (weight * mask).reshape(per_group) * np.take_along_axis(xg, idx, axis=3)
    return cols.reshape(n, c * taps, length)


def _weight_mat(w: Any, groups: int) -> Any:
    """``w (C_out, C/g, kh, kw)`` as ``(g, C_out/g, C/g·K)``: columns in the (channel, tap) order of cols."""
    return w.reshape(groups, w.shape[0] // groups, w[0].size)


def deform_forward(x: Any, offset: Any, w: Any, bias: Any, mask: Any, stride: Sequence[int],
                   padding: Sequence[int], dilation: Sequence[int], keep_cols: bool = False,
                   kernel: str | None = None) -> tuple[Any, Any]:
    """``y (N, C_out, Ho, Wo)``, and the column matrix where ``keep_cols`` (the weight gradient
    reads it) else None. ``mask`` None means ones (DCNv1)."""
    x = np.ascontiguousarray(x)
    n, c = x.shape[:2]
    c_out, cg, kh, kw = w.shape
    groups = c // cg
    out_h, out_w = offset.shape[2:]
    plan = sampling_plan(np.ascontiguousarray(offset), x.shape[2:], (kh, kw), stride, padding, dilation)
    m = _mask_planes(mask, plan[0].shape, x.dtype)
    cols = deform_columns(x, plan, m, kernel)
    y = matmul(_weight_mat(w, groups), cols.reshape(n, groups, cg * kh * kw, out_h * out_w))
    y = y.reshape(n, c_out, out_h, out_w)
    if bias is not None:
        y += bias.reshape(-1, 1, 1)
    return y, (cols if keep_cols else None)


def _mask_planes(mask: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    return np.ones(shape, dtype=dtype) if mask is None else np.ascontiguousarray(mask).reshape(shape)


def deform_backward(gy: Any, x: Any, offset: Any, w: Any, mask: Any, cols: Any, stride: Sequence[int],
                    padding: Sequence[int], dilation: Sequence[int], needs: Sequence[bool],
                    kernel: str | None = None) -> tuple[Any, Any, Any, Any]:
    """The gradients ``(gx, goffset, gw, gmask)`` of :func:`deform_forward`'s output for the
    output gradient ``gy``; ``needs`` says which (None for the others, and ``gmask`` is None
    without a mask). ``cols`` (from the forward) is recomputed where None and the weight's is
    asked for."""
    need_x, need_off, need_w, need_mask = needs
    need_mask = need_mask and mask is not None
    x = np.ascontiguousarray(x)
    offset = np.ascontiguousarray(offset)
    n, c, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    groups = c // cg
    length = offset.shape[2] * offset.shape[3]
    gy = np.ascontiguousarray(gy).reshape(n, groups, c_out // groups, length)
    plan = sampling_plan(offset, (h, wd), (kh, kw), stride, padding, dilation)
    m = _mask_planes(mask, plan[0].shape, x.dtype)
    gw = None
    if need_w:
        if cols is None:
            cols = deform_columns(x, plan, m, kernel)
        gw = matmul(gy, cols.reshape(n, groups, cg * kh * kw, length).transpose(0, 1, 3, 2)).sum(axis=0)
        gw = gw.reshape(w.shape)
    if not (need_x or need_off or need_mask):
        return None, None, gw, None
    gcols = matmul(_weight_mat(w, groups).transpose(0, 2, 1), gy).reshape(n, c * kh * kw, length)
    gxpad, goff, gmask = _sample_grads(gcols, x, plan, m, (need_x, need_off, need_mask), kernel)
    gx = gxpad.reshape(n, c, h + 2, wd + 2)[:, :, 1:-1, 1:-1].copy() if need_x else None
    goff = goff.reshape(offset.shape) if need_off else None
    gmask = gmask.reshape(mask.shape) if need_mask else None
    return gx, goff, gw, gmask


def _sample_grads(gcols: Any, x: Any, plan: tuple[Any, Any, Any], mask: Any, needs: tuple[bool, bool, bool],
                  kernel: str | None) -> tuple[Any, Any, Any]:
    """``(gxpad (N, C, Hp·Wp), goff (N, Go, K, 2, L), gmask (N, Go, K, L))`` from the column gradient."""
    base, lh, lw = plan
    n, c, _, w = x.shape
    go, taps, length = base.shape[1:]
    xpad = _padded(x)
    gxpad = np.zeros_like(xpad)
    goff = np.zeros((n, go, taps, 2, length), dtype=x.dtype)
    gmask = np.zeros((n, go, taps, length), dtype=x.dtype)
    wp = w + 2
    if (kernel or select_kernel(x.dtype)) == "numba":
        deform_numba.deform_grads(gcols, xpad, base, lh, lw, mask, gxpad, goff, gmask, wp, x.dtype.type(1), *needs)
        return gxpad, goff, gmask
    need_x, need_off, need_mask = needs
    cg = c // go
    gc = gcols.reshape(n, go, cg, taps * length)
    per_group = (n, go, 1, taps * length)
    xg = xpad.reshape(n, go, cg, xpad.shape[2])
    m = mask.reshape(per_group)
    flat = base.reshape(per_group)
    # v[q]: the four neighbours of every sample, in the order of _corners
    v = [np.take_along_axis(xg, flat + step, axis=3) for step, _ in _corners(wp, lh, lw)]
    if need_x:
        # scatter-add into the padded planes: one bincount over (image, channel, pixel) per corner
        plane = (np.arange(n * c).reshape(n, go, cg, 1)) * xpad.shape[2]
        for step, weight in _corners(wp, lh, lw):
            where = (plane + flat + step).ravel()
            contrib = (gc * (weight.reshape(per_group) * m)).ravel()
            gxpad += np.bincount(where, contrib, minlength=gxpad.size).astype(x.dtype).reshape(gxpad.shape)
    a = lh.reshape(per_group)
    e = lw.reshape(per_group)
    if need_off:
        gm = gc * m
        gy_ = (gm * ((1 - e) * (v[2] - v[0]) + e * (v[3] - v[1]))).sum(axis=2)
        gx_ = (gm * ((1 - a) * (v[1] - v[0]) + a * (v[3] - v[2]))).sum(axis=2)
        goff[:, :, :, 0] = gy_.reshape(n, go, taps, length)
        goff[:, :, :, 1] = gx_.reshape(n, go, taps, length)
    if need_mask:
        value = (1 - a) * ((1 - e) * v[0] + e * v[1]) + a * ((1 - e) * v[2] + e * v[3])
        gmask[:] = (gc * value).sum(axis=2).reshape(n, go, taps, length)
    return gxpad, goff, gmask
