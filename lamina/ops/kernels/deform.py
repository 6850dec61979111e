"""Deformable convolution as a deformable im2col + GEMM, and its backward: array functions only.

Notation: input ``x (N, C, H, W)``, offsets ``(N, 2·Go·K, Ho, Wo)`` for ``Go`` offset groups and
``K = kh·kw`` taps, mask ``(N, Go·K, Ho, Wo)``, weight ``w (C_out, C/g, kh, kw)`` for ``g``
groups, ``L = Ho·Wo``. The plain loops of :func:`.deform_reference.reference_deform_conv2d`
compute the same, one output value at a time.

- :func:`sampling_plan`: where each tap of each output pixel reads, once per offset group;
- :func:`deform_forward`: the deformable column matrix ``cols (g, N, L, K·C/g)`` — for weight
  group ``gw``, entry ``(n, l, k·C/g + c)`` is its channel ``c`` of image ``n`` bilinearly
  sampled at tap ``k`` of output pixel ``l``, times the mask — then one GEMM per group,
  ``y_g (N·L, C_out/g) = cols_g @ w_g (K·C/g, C_out/g)``: the output comes channels-last
  underneath, as lamina's conv2d's;
- :func:`deform_backward`: ``gcols_g = gy_g @ w_gᵀ`` (the GEMM's adjoint), then one pass over
  ``gcols`` scatters it into the input with the bilinear weights (col2im) and contracts it with
  the sample's derivatives in y and x (offsets) and with the sample itself (mask);
  ``gw_g = cols_gᵀ @ gy_g``.

Samples read a channels-last copy of the input padded by one ring of zeros (the channels of a
pixel lie together, and the kernels' innermost loops run over them): a sample with
``-1 <= y < H`` and ``-1 <= x < W`` then has its four neighbours inside the copy, and those outside the image are
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
from .im2col import pad_channels_last, use_numba
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
    """The kernel deformable convolutions of ``dtype`` run on: numba's loops for float32/float64
    where numba is on (:func:`.im2col.use_numba`) or where :func:`force_kernel` asked for them,
    else NumPy's (every floating dtype)."""
    numba_ok = deform_numba.AVAILABLE and np.dtype(dtype) in (np.float32, np.float64)
    if _FORCED[0] is not None:
        return "numba" if _FORCED[0] == "numba" and numba_ok else "numpy"
    return "numba" if numba_ok and use_numba() else "numpy"


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
    """``x (N, C, H, W)`` padded by one ring of zeros, channels-last: ``(N, (H + 2)·(W + 2), C)``."""
    n, c, h, w = x.shape
    return pad_channels_last(x, (1, 1), (h + 2, w + 2)).reshape(n, (h + 2) * (w + 2), c)


def _corners(wp: int, lh: Any, lw: Any) -> list[tuple[int, Any]]:
    """The four neighbours of a sample as (pixel step from ``base``, bilinear weight)."""
    return [(0, (1 - lh) * (1 - lw)), (1, (1 - lh) * lw), (wp, lh * (1 - lw)), (wp + 1, lh * lw)]


def deform_columns(x: Any, plan: tuple[Any, Any, Any], mask: Any, groups: int, kernel: str | None = None) -> Any:
    """The deformable column matrix ``cols (g, N, L, K·C/g)``: ``cols[gw, n, l, k·C/g + c]`` is
    ``mask[n, og, k, l]`` times channel ``gw·C/g + c`` of image ``n`` sampled where ``plan``
    says for its offset group ``og``, tap ``k`` and output pixel ``l``. ``mask (N, Go, K, L)``."""
    base, lh, lw = plan
    n, c, _, w = x.shape
    go, taps, length = base.shape[1:]
    xcl = _padded(x)
    if (kernel or select_kernel(x.dtype)) == "numba":
        cols = np.empty((groups, n, length, taps * (c // groups)), dtype=x.dtype)
        deform_numba.deform_columns(cols, xcl, base, lh, lw, mask, w + 2, x.dtype.type(1))
        return cols
    cgo = c // go
    image = np.arange(n)[:, None, None]
    by_tap = np.zeros((n, length, taps, c), dtype=x.dtype)  # (N, L, K, C): every channel at every tap
    for og in range(go):
        part = xcl[:, :, og * cgo:(og + 1) * cgo]
        acc = np.zeros((n, taps, length, cgo), dtype=x.dtype)
        for step, weight in _corners(w + 2, lh[:, og], lw[:, og]):
            acc += (weight * mask[:, og])[..., None] * part[image, base[:, og] + step]
        by_tap[:, :, :, og * cgo:(og + 1) * cgo] = acc.transpose(0, 2, 1, 3)
    return _to_groups(by_tap, groups)


def _to_groups(by_tap: Any, groups: int) -> Any:
    """``(N, L, K, C)`` as the columns' ``(g, N, L, K·C/g)``."""
    n, length, taps, c = by_tap.shape
    cg = c // groups
    return np.ascontiguousarray(by_tap.reshape(n, length, taps, groups, cg).transpose(3, 0, 1, 2, 4)).reshape(
        groups, n, length, taps * cg)


def _from_groups(cols: Any, taps: int) -> Any:
    """The columns' ``(g, N, L, K·C/g)`` as ``(N, L, K, C)``."""
    groups, n, length, width = cols.shape
    cg = width // taps
    return cols.reshape(groups, n, length, taps, cg).transpose(1, 2, 3, 0, 4).reshape(n, length, taps, groups * cg)


def _weight_mat(w: Any, groups: int) -> Any:
    """``w (C_out, C/g, kh, kw)`` as ``(g, K·C/g, C_out/g)``: rows in the (tap, channel) order of cols."""
    c_out, cg, kh, kw = w.shape
    return w.reshape(groups, c_out // groups, cg, kh, kw).transpose(0, 3, 4, 2, 1).reshape(
        groups, kh * kw * cg, c_out // groups)


def deform_forward(x: Any, offset: Any, w: Any, bias: Any, mask: Any, stride: Sequence[int],
                   padding: Sequence[int], dilation: Sequence[int], keep_cols: bool = False,
                   kernel: str | None = None) -> tuple[Any, Any]:
    """``y (N, C_out, Ho, Wo)`` (channels-last underneath), and the column matrix where
    ``keep_cols`` (the weight gradient reads it) else None. ``mask`` None means ones (DCNv1)."""
    n, c = x.shape[:2]
    c_out, cg, kh, kw = w.shape
    groups = c // cg
    out_h, out_w = offset.shape[2:]
    rows = n * out_h * out_w
    plan = sampling_plan(np.ascontiguousarray(offset), x.shape[2:], (kh, kw), stride, padding, dilation)
    m = _mask_planes(mask, plan[0].shape, x.dtype)
    cols = deform_columns(x, plan, m, groups, kernel)
    y = matmul(cols.reshape(groups, rows, kh * kw * cg), _weight_mat(w, groups))  # (g, N·L, C_out/g)
    y = y[0] if groups == 1 else y.transpose(1, 0, 2).reshape(rows, c_out)
    if bias is not None:
        y += bias
    return y.reshape(n, out_h, out_w, c_out).transpose(0, 3, 1, 2), (cols if keep_cols else None)


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
    offset = np.ascontiguousarray(offset)
    n, c, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    groups = c // cg
    length = offset.shape[2] * offset.shape[3]
    rows = n * length
    # gy as channels-last rows (N·L, C_out) (free where gy lies so, as this op's output does), by group
    gy_g = np.ascontiguousarray(gy.transpose(0, 2, 3, 1)).reshape(rows, groups, c_out // groups).transpose(1, 0, 2)
    plan = sampling_plan(offset, (h, wd), (kh, kw), stride, padding, dilation)
    m = _mask_planes(mask, plan[0].shape, x.dtype)
    gw = None
    if need_w:
        if cols is None:
            cols = deform_columns(x, plan, m, groups, kernel)
        gw = matmul(cols.reshape(groups, rows, kh * kw * cg).transpose(0, 2, 1), gy_g)  # (g, K·C/g, C_out/g)
        gw = gw.reshape(groups, kh, kw, cg, c_out // groups).transpose(0, 4, 3, 1, 2).reshape(w.shape)
    if not (need_x or need_off or need_mask):
        return None, None, gw, None
    gcols = matmul(gy_g, _weight_mat(w, groups).transpose(0, 2, 1)).reshape(groups, n, length, kh * kw * cg)
    gxcl, goff, gmask = _sample_grads(gcols, x, plan, m, (need_x, need_off, need_mask), kernel)
    gx = None
    if need_x:
        gx = np.ascontiguousarray(gxcl.reshape(n, h + 2, wd + 2, c)[:, 1:-1, 1:-1].transpose(0, 3, 1, 2))
    goff = goff.reshape(offset.shape) if need_off else None
    gmask = gmask.reshape(mask.shape) if need_mask else None
    return gx, goff, gw, gmask


def _sample_grads(gcols: Any, x: Any, plan: tuple[Any, Any, Any], mask: Any, needs: tuple[bool, bool, bool],
                  kernel: str | None) -> tuple[Any, Any, Any]:
    """``(gxcl (N, Hp·Wp, C), goff (N, Go, K, 2, L), gmask (N, Go, K, L))`` from the column gradient."""
    base, lh, lw = plan
    n, c, _, w = x.shape
    go, taps, length = base.shape[1:]
    xcl = _padded(x)
    gxcl = np.zeros_like(xcl)
    goff = np.zeros((n, go, taps, 2, length), dtype=x.dtype)
    gmask = np.zeros((n, go, taps, length), dtype=x.dtype)
    wp = w + 2
    if (kernel or select_kernel(x.dtype)) == "numba":
        deform_numba.deform_grads(gcols, xcl, base, lh, lw, mask, gxcl, goff, gmask, wp, x.dtype.type(1), *needs)
        return gxcl, goff, gmask
    need_x, need_off, need_mask = needs
    cgo = c // go
    image = np.arange(n)[:, None, None]
    by_tap = _from_groups(gcols, taps)  # (N, L, K, C)
    for og in range(go):
        chans = slice(og * cgo, (og + 1) * cgo)
        gc = by_tap[:, :, :, chans].transpose(0, 2, 1, 3)  # (N, K, L, C/Go)
        b = base[:, og]
        a, e, m = lh[:, og, ..., None], lw[:, og, ..., None], mask[:, og, ..., None]
        v = [xcl[:, :, chans][image, b + step] for step, _ in _corners(wp, a, e)]  # the 4 neighbours
        if need_x:  # scatter-add: one bincount over (image, pixel, channel) per neighbour
            for step, weight in _corners(wp, a, e):
                where = ((image * xcl.shape[1] + b + step)[..., None] * c + np.arange(og * cgo, (og + 1) * cgo))
                gxcl += np.bincount(where.ravel(), (gc * weight * m).ravel(),
                                    minlength=gxcl.size).astype(x.dtype).reshape(gxcl.shape)
        if need_off:
            goff[:, og, :, 0] = (gc * m * ((1 - e) * (v[2] - v[0]) + e * (v[3] - v[1]))).sum(axis=-1)
            goff[:, og, :, 1] = (gc * m * ((1 - a) * (v[1] - v[0]) + a * (v[3] - v[2]))).sum(axis=-1)
        if need_mask:
            value = (1 - a) * ((1 - e) * v[0] + e * v[1]) + a * ((1 - e) * v[2] + e * v[3])
            gmask[:, og] = (gc * value).sum(axis=-1)
    return gxcl, goff, gmask
