"""Convolution as im2col + GEMM, and its two adjoints, for 1-, 2- and 3-D: array functions only.

Notation: ``x (N, C, *S)``, weight ``w (K, C/g, *k)``, output ``y (N, K, *O)``, ``g`` groups,
``L = N·∏O`` output rows, ``R = ∏k·C/g`` the length of one window of one group. Internally
channels-last (rows of pixels, channels contiguous), which makes the column copy and the GEMMs
run at memory speed:

- :func:`conv_forward`: ``y_rows (L, K) = cols (L, R) @ w_mat (R, K)``;
- :func:`conv_input_grad`: ``cols_grad = gy_rows @ w_matᵀ``, then col2im — the transposed conv;
- :func:`conv_weight_grad`: ``gw_mat = colsᵀ @ gy_rows`` — the weight-gradient correlation.

Which implementation runs each pass is :mod:`.conv_select`'s choice, from the problem (shapes,
dtype, settings, capabilities; never the memory layout): the three functions build the problem
and run ``select(pass, problem)``. The implementations, tried in this order (:func:`.conv_select.table`):

- ``pointwise``: a 1×1 convolution with stride 1 and no padding: a plain batched GEMM on the NCHW
  input (no column matrix, no transpose);
- ``direct``: depthwise and grouped convs with short windows, 1-channel-per-group convs, and
  stride-1 convs with short windows: the direct kernels of :mod:`.conv_direct` (numba);
- ``depthwise``: the depthwise convs the direct kernels do not take: compiled loops over the padded
  channels-last copy, or ∏k multiply-adds of shifted views (NumPy);
- ``colgemm``: where numba runs and lamina keeps NumPy's OpenBLAS on one thread:
  :mod:`.colgemm_numba`'s compiled loops build and multiply the columns a few hundred rows at
  a time (a product per group), so no column matrix is written at all (this gains most where
  the column matrix outgrows the L2 cache, as in LeNet's c3 layer and grouped 3×3 layers);
- ``im2col``: the rest: the channels-last column matrix a chunk of images at a time, one GEMM;
- ``reference``: :mod:`.conv_reference`, NumPy per kernel tap, only when forced.

Each function keeps at most one column-sized buffer alive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ... import runtime
from . import colgemm_numba, threads
from . import conv_plan as plan
from . import conv_select as sel
from .conv_depthwise import depthwise_forward, depthwise_input_grad, depthwise_weight_grad
from .conv_direct import direct_forward, direct_input_grad, direct_weight_grad
from .conv_reference import reference_forward, reference_input_grad, reference_weight_grad
from .im2col import (
    col2im_cl,
    copy_channels_last,
    crop_channels_first,
    im2col_cl,
    im2col_view,
    pad_channels_last,
    padded_buffer,
    padded_extent,
)
from .threads import matmul

__all__ = ["conv_forward", "conv_input_grad", "conv_weight_grad", "conv_out_size", "padded_input", "channels_last",
           "wants_channels_last"]


def conv_out_size(size: Sequence[int], ksize: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
                  pad_lo: Sequence[int], pad_hi: Sequence[int]) -> tuple[int, ...]:
    """``floor((S + lo + hi − d·(k − 1) − 1) / s) + 1`` per dim."""
    return tuple((sz + lo + hi - d * (k - 1) - 1) // s + 1
                 for sz, k, s, d, lo, hi in zip(size, ksize, stride, dilation, pad_lo, pad_hi))


def _w_mat(w: Any, groups: int) -> Any:
    """``w (K, C/g, *k)`` as ``(g, ∏k·C/g, K/g)``: rows in the column order (kernel offset, channel)."""
    nd = w.ndim - 2
    k_out, cg = w.shape[:2]
    wt = w.transpose(0, *range(2, 2 + nd), 1)  # (K, *k, C/g)
    return wt.reshape(groups, k_out // groups, -1).transpose(0, 2, 1)


def _rows(a: Any) -> Any:
    """NCHW ``(N, C, *S)`` as channels-last rows ``(N·∏S, C)`` (a copy unless already so laid out)."""
    nd = a.ndim - 2
    return pad_channels_last(a, (0,) * nd, a.shape[2:]).reshape(-1, a.shape[1])


def _from_rows(rows: Any, n: int, out: Sequence[int]) -> Any:
    """Rows ``(N·∏O, K)`` as an NCHW-shaped ``(N, K, *O)`` view: the data stays channels-last
    underneath (NumPy ops keep that memory order; the next conv reads it without a transpose)."""
    nd = len(out)
    return rows.reshape(n, *out, rows.shape[-1]).transpose(0, nd + 1, *range(1, nd + 1))


def _cl(a: Any) -> Any:
    """NCHW-shaped ``a`` as a channels-last ``(N, *S, C)`` view."""
    return a.transpose(0, *range(2, a.ndim), 1)


def channels_last(a: Any) -> Any:
    """``a (N, C, *S)`` with the same shape, laid out channels-last in memory (a copy unless it
    already is)."""
    nd = a.ndim - 2
    return pad_channels_last(a, (0,) * nd, a.shape[2:]).transpose(0, nd + 1, *range(1, nd + 1))


def wants_channels_last(x: Any, w: Any, groups: int, stride: Sequence[int], dilation: Sequence[int],
                        pad_lo: Sequence[int], out: Sequence[int]) -> bool:
    """Whether the backward of this conv reads its output gradient as channels-last rows: not
    the direct kernels' nor a 1×1 conv's, which read it NCHW (handing them a channels-last copy
    made them copy it back). False for arrays other than ndarrays (their kernels choose their layouts)."""
    if type(x) is not np.ndarray:
        return False
    return sel.choose("input_grad", x.shape, w.shape, x.dtype, stride, dilation, pad_lo, out, groups)[1].name \
        not in _NCHW_READERS


_NCHW_READERS = ("pointwise", "direct", "reference")


def _padded_extent(p: sel.ConvProblem, name: str) -> tuple[int, ...] | None:
    """The extent of :func:`padded_input` for the forward implementation ``name``, or None where
    it reads no padded copy."""
    if name in _NCHW_READERS:
        return None
    return padded_extent(p.size, p.ksize, p.stride, p.dilation, p.pad_lo, p.out)


def padded_input(x: Any, w: Any, stride: Sequence[int], dilation: Sequence[int],
                 pad_lo: Sequence[int], out: Sequence[int], groups: int = 1) -> Any:
    """The zero-padded channels-last copy ``(N, *E, C)`` that the conv kernels read (an
    activation-sized buffer; the forward hands it to the weight gradient to save a copy), or
    None for a 1×1 conv and the convs the direct kernels take, which need none. None for
    arrays other than ndarrays."""
    if type(x) is not np.ndarray:
        return None
    p, impl = sel.choose("forward", x.shape, w.shape, x.dtype, stride, dilation, pad_lo, out, groups)
    ext = _padded_extent(p, impl.name)
    return None if ext is None else pad_channels_last(x, pad_lo, ext)


# each pass runs with BLAS on one thread (the products are split over lamina's threads and the
# column-GEMM kernels call BLAS from compiled loops); one scope per pass, not per product
_one_blas_thread = runtime.blas_one_thread()


@_one_blas_thread
def conv_forward(x: Any, w: Any, stride: Sequence[int], dilation: Sequence[int], pad_lo: Sequence[int],
                 out: Sequence[int], groups: int, xpad: Any = None, bias: Any = None,
                 return_xpad: bool = False) -> Any:
    """``y (N, K, *out)`` = the cross-correlation of ``x`` with ``w`` (torch's conv), plus ``bias (K,)``
    if given; ``xpad`` optionally gives :func:`padded_input` already made. With ``return_xpad``,
    ``(y, xpad)``: the padded input the forward made (or was given), for the weight gradient.
    The implementation is :func:`.conv_select.select`'s for the ``"forward"`` pass."""
    p, impl = sel.choose("forward", x.shape, w.shape, x.dtype, stride, dilation, pad_lo, out, groups, type(x))
    y, xpad = impl.run(p, x, w, xpad, bias)
    return (y, xpad) if return_xpad else y


def _with_xpad(p: sel.ConvProblem, name: str, x: Any, xpad: Any, copy_now: bool) -> tuple[Any, bool]:
    """``xpad`` made if not given, and whether the input must still be copied in (left to the
    im2col chunks, which copy their images in parallel, unless ``copy_now``)."""
    if xpad is not None:
        return xpad, False
    xpad, fill = padded_buffer(x, p.pad_lo, _padded_extent(p, name))
    if fill and copy_now:
        copy_channels_last(x, xpad, p.pad_lo)
        fill = False
    return xpad, fill


def _pointwise_forward(p: sel.ConvProblem, x: Any, w: Any, xpad: Any, bias: Any) -> tuple[Any, Any]:
    n, c, k_out, g = p.n, p.c, p.k, p.groups
    wg = w.reshape(g, k_out // g, c // g)
    y = matmul(wg, x.reshape(n, g, c // g, int(np.prod(p.out)))).reshape(n, k_out, *p.out)
    return _add_bias(y, bias), xpad


def _direct_forward(p: sel.ConvProblem, x: Any, w: Any, xpad: Any, bias: Any) -> tuple[Any, Any]:
    return direct_forward(x, w, p.stride, p.dilation, p.pad_lo, p.out, p.groups, bias), xpad


def _depthwise_forward(p: sel.ConvProblem, x: Any, w: Any, xpad: Any, bias: Any) -> tuple[Any, Any]:
    xpad, _ = _with_xpad(p, "depthwise", x, xpad, True)
    y = depthwise_forward(xpad, _cl(w[:, 0][None])[0], p.stride, p.dilation, p.out)
    return _add_bias(_from_rows(y, p.n, p.out), bias), xpad


def _colgemm_forward(p: sel.ConvProblem, x: Any, w: Any, xpad: Any, bias: Any) -> tuple[Any, Any]:
    xpad, fill = _with_xpad(p, "colgemm", x, xpad, False)
    return _conv_forward(x, w, p.stride, p.dilation, p.pad_lo, p.out, p.groups, xpad, bias, fill, True), xpad


def _im2col_forward(p: sel.ConvProblem, x: Any, w: Any, xpad: Any, bias: Any) -> tuple[Any, Any]:
    xpad, fill = _with_xpad(p, "im2col", x, xpad, False)
    return _conv_forward(x, w, p.stride, p.dilation, p.pad_lo, p.out, p.groups, xpad, bias, fill, False), xpad


def _reference_forward(p: sel.ConvProblem, x: Any, w: Any, xpad: Any, bias: Any) -> tuple[Any, Any]:
    y = reference_forward(x, w, p.stride, p.dilation, p.pad_lo, p.out, p.groups)
    return _add_bias(y, bias), xpad


def _add_bias(y: Any, bias: Any) -> Any:
    if bias is not None:
        y += bias.reshape((1, -1) + (1,) * (y.ndim - 2))
    return y


def _conv_forward(x: Any, w: Any, stride: Sequence[int], dilation: Sequence[int], pad_lo: Sequence[int],
                  out: Sequence[int], groups: int, xpad: Any, bias: Any, fill: bool, fused_ok: bool) -> Any:
    """The im2col forward (on the colgemm kernels with ``fused_ok`` where their arguments allow);
    with ``fill``, ``xpad`` has its padding but not yet the input, which each chunk copies in
    for its images (in parallel)."""
    n, c = x.shape[:2]
    k_out = w.shape[0]
    ksize = w.shape[2:]
    g = groups
    wm = _w_mat(w, g)
    length = int(np.prod(out))
    y = np.empty((n * length, k_out), dtype=x.dtype)
    win = im2col_view(xpad, ksize, stride, dilation, out)  # copied a chunk at a time
    # where BLAS has small-product kernels, each chunk's product is made as a batch of products
    # small enough for them (one call for the batch: a call per piece makes the threads contend
    # for the GIL)
    slots, chunks, step, piece = plan.plan(n, length * wm.shape[1] * g * x.itemsize, length, wm.shape[1], k_out, g)
    bufs: list[Any] = [None] * slots  # one column buffer per part, reused for its chunks
    # where the colgemm kernels run, one compiled loop per chunk builds and multiplies its columns
    # a piece at a time, no column matrix written (the pieces stay in cache; see colgemm_numba)
    fpiece = plan.fused_piece(piece, slots, step * length, step * length * wm.shape[1] * k_out // g,
                              wm.shape[1] * g, x.itemsize)
    if fused_ok and not fpiece:  # forced where the plan would not take them
        fpiece = plan.forced_piece(step * length, wm.shape[1] * g, x.itemsize)
    fused = plan.fused_args(x, xpad, fpiece, stride, dilation, ksize, out, g, (w, bias)) if fused_ok else None
    if fused is not None:  # the groups' weight matrices one under the other
        w0 = np.ascontiguousarray(wm).reshape(-1, k_out // g)
        b = np.zeros(0, dtype=x.dtype) if bias is None else np.ascontiguousarray(bias)
    else:
        w0 = np.ascontiguousarray(wm[0]) if piece else wm[0]  # the small kernels take B untransposed

    def body(n0: int, n1: int, j: int) -> None:
        if fill:  # xpad holds these images only from here: nothing reads it before the chunks run
            copy_channels_last(x[n0:n1], xpad[n0:n1], pad_lo)
        if fused is not None:
            if bufs[j] is None:
                bufs[j] = np.empty((fpiece, wm.shape[1] * g), dtype=x.dtype)
            colgemm_numba.colgemm_fwd(fused[0], w0, y, n0 * length, n1 * length, bufs[j], fused[1], b, fused[2])
            return
        if bufs[j] is None:
            bufs[j] = np.empty((step, *win.shape[1:]), dtype=x.dtype)
        cols = bufs[j][:n1 - n0]
        cols[...] = win[n0:n1]
        cols = cols.reshape((n1 - n0) * length, -1)
        rows = y[n0 * length:n1 * length]
        if piece:
            threads.matmul_pieces(cols, w0, rows, piece)
        elif g == 1:
            matmul(cols, w0, out=rows)
        else:
            cg, kg = c // g, k_out // g
            c3 = cols.reshape(cols.shape[0], -1, c)
            for i in range(g):
                rows[:, i * kg:(i + 1) * kg] = c3[:, :, i * cg:(i + 1) * cg].reshape(c3.shape[0], -1) @ wm[i]
        if bias is not None:
            rows += bias  # while the rows are in this thread's cache

    plan.run_chunks(chunks, body, slots)
    return _from_rows(y, n, out)


@_one_blas_thread
def conv_input_grad(gy: Any, w: Any, size: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
                    pad_lo: Sequence[int], groups: int, bias: Any = None) -> Any:
    """Gradient of :func:`conv_forward` with respect to ``x`` of spatial shape ``size``, which is
    also the transposed convolution of ``gy`` with ``w``: ``gx (N, C, *size)``, plus ``bias (C,)``
    if given (the transposed conv's; the im2col path starts its buffer from it instead of zeros,
    which saves an add over a strided view, a sizeable part of a conv_transpose2d forward).
    The implementation is :func:`.conv_select.select`'s for the ``"input_grad"`` pass."""
    p, impl = sel.choose("input_grad", (gy.shape[0], w.shape[1] * groups, *size), w.shape, gy.dtype, stride,
                         dilation, pad_lo, gy.shape[2:], groups, type(gy))
    return impl.run(p, gy, w, bias)


def _pointwise_input_grad(p: sel.ConvProblem, gy: Any, w: Any, bias: Any) -> Any:
    n, c, k_out, g = p.n, p.c, p.k, p.groups
    wg = w.reshape(g, k_out // g, c // g).transpose(0, 2, 1)
    gx = matmul(wg, gy.reshape(n, g, k_out // g, int(np.prod(p.out)))).reshape(n, c, *p.size)
    return _add_bias(gx, bias)


def _direct_input_grad(p: sel.ConvProblem, gy: Any, w: Any, bias: Any) -> Any:
    return _add_bias(direct_input_grad(gy, w, p.size, p.stride, p.dilation, p.pad_lo, p.groups), bias)


def _depthwise_input_grad(p: sel.ConvProblem, gy: Any, w: Any, bias: Any) -> Any:
    ext = padded_extent(p.size, p.ksize, p.stride, p.dilation, p.pad_lo, p.out)
    gpad = depthwise_input_grad(_cl(channels_last(gy)), _cl(w[:, 0][None])[0], ext, p.stride, p.dilation)
    return _add_bias(crop_channels_first(gpad, p.pad_lo, p.size), bias)


def _colgemm_input_grad(p: sel.ConvProblem, gy: Any, w: Any, bias: Any) -> Any:
    return _gemm_input_grad(gy, w, p.size, p.stride, p.dilation, p.pad_lo, p.groups, bias, True)


def _im2col_input_grad(p: sel.ConvProblem, gy: Any, w: Any, bias: Any) -> Any:
    return _gemm_input_grad(gy, w, p.size, p.stride, p.dilation, p.pad_lo, p.groups, bias, False)


def _reference_input_grad(p: sel.ConvProblem, gy: Any, w: Any, bias: Any) -> Any:
    return _add_bias(reference_input_grad(gy, w, p.size, p.stride, p.dilation, p.pad_lo, p.groups), bias)


def _gemm_input_grad(gy: Any, w: Any, size: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
                     pad_lo: Sequence[int], groups: int, bias: Any, fused_ok: bool) -> Any:
    """The im2col input gradient: ``gy_rows @ w_matᵀ`` scattered by col2im (on the colgemm kernels
    with ``fused_ok`` where their arguments allow)."""
    n, k_out = gy.shape[:2]
    out = gy.shape[2:]
    ksize = w.shape[2:]
    g = groups
    c = w.shape[1] * g
    ext = padded_extent(size, ksize, stride, dilation, pad_lo, out)
    rows = _rows(gy)  # (N·L, K)
    wm = _w_mat(w, g)
    length = int(np.prod(out))
    cg, kg = c // g, k_out // g
    kk = int(np.prod(ksize))
    if bias is None:
        gpad = np.zeros((n, *ext, c), dtype=gy.dtype)
    else:  # channels-last: the bias along the last axis (the padding is cropped away)
        gpad = np.empty((n, *ext, c), dtype=gy.dtype)
        gpad[...] = bias

    # see _conv_forward
    slots, chunks, step, piece = plan.plan(n, length * kk * c * gy.itemsize, length, k_out, kk * c, g)
    fpiece = plan.fused_piece(piece, slots, step * length, step * length * kk * c * k_out // g, kk * c, gy.itemsize)
    if fused_ok and not fpiece:  # forced where the plan would not take them
        fpiece = plan.forced_piece(step * length, kk * c, gy.itemsize)
    fused = plan.fused_args(gy, gpad, fpiece, stride, dilation, ksize, out, g, (w,)) if fused_ok else None
    if fused is not None:  # the column gradients made and scattered a piece at a time
        wt = np.ascontiguousarray(wm.transpose(0, 2, 1)).reshape(k_out, -1)  # each group's (K/g, ∏k·C/g) in turn
        rows = np.ascontiguousarray(rows)
        bufs = [np.empty((fpiece, kk * c), dtype=gy.dtype) for _ in range(slots)]

        def fused_body(n0: int, n1: int, j: int) -> None:
            colgemm_numba.colgemm_gx(rows, wt, fused[0], n0 * length, n1 * length, bufs[j], fused[1], fused[2])

        plan.run_chunks(chunks, fused_body, slots)
        return crop_channels_first(gpad, pad_lo, size)

    wt = np.ascontiguousarray(wm[0].T) if piece else None

    def body(n0: int, n1: int, _: int) -> None:  # each chunk scatters into its own images
        r = rows[n0 * length:n1 * length]
        if piece:
            gcols = threads.matmul_pieces(r, wt, np.empty((r.shape[0], kk * c), dtype=gy.dtype), piece)
        elif g == 1:
            gcols = matmul(r, wm[0].T)
        else:
            gcols = np.empty((r.shape[0], kk, c), dtype=gy.dtype)
            for i in range(g):
                gcols[:, :, i * cg:(i + 1) * cg] = (r[:, i * kg:(i + 1) * kg] @ wm[i].T).reshape(-1, kk, cg)
        col2im_cl(gcols.reshape(n1 - n0, *out, *ksize, c), ext, stride, dilation, out=gpad[n0:n1])

    plan.run_chunks(chunks, body, slots)
    return crop_channels_first(gpad, pad_lo, size)


@_one_blas_thread
def conv_weight_grad(x: Any, gy: Any, ksize: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
                     pad_lo: Sequence[int], groups: int, xpad: Any = None) -> Any:
    """Gradient of :func:`conv_forward` with respect to ``w`` of kernel shape ``ksize``:
    ``gw (K, C/g, *ksize)``, the correlation of ``x`` with ``gy`` (``xpad`` as in :func:`conv_forward`).
    The implementation is :func:`.conv_select.select`'s for the ``"weight_grad"`` pass."""
    p, impl = sel.choose("weight_grad", x.shape, (gy.shape[1], x.shape[1] // groups, *ksize), x.dtype, stride,
                         dilation, pad_lo, gy.shape[2:], groups, type(x))
    return impl.run(p, x, gy, xpad)


def _pointwise_weight_grad(p: sel.ConvProblem, x: Any, gy: Any, xpad: Any) -> Any:
    n, k_out, g = p.n, p.k, p.groups
    cg, kg = p.cg, k_out // g
    xg = x.reshape(n, g, cg, int(np.prod(p.out)))
    gyg = gy.reshape(n, g, kg, int(np.prod(p.out)))
    if n * k_out * cg <= x.size:  # per-image products (split over the threads), then their sum
        return matmul(gyg, xg.swapaxes(-1, -2)).sum(axis=0).reshape(k_out, cg, *p.ksize)
    # many channels on small planes: that (N, K, C) temporary would outgrow the input (ten
    # times its size for a 512-channel layer at 4×4), and writing it costs more than the sum
    return np.einsum("ngkl,ngcl->gkc", gyg, xg, optimize=True).reshape(k_out, cg, *p.ksize)


def _direct_weight_grad(p: sel.ConvProblem, x: Any, gy: Any, xpad: Any) -> Any:
    return direct_weight_grad(x, gy, p.ksize, p.stride, p.dilation, p.pad_lo, p.groups)  # reads x as it is


def _depthwise_weight_grad(p: sel.ConvProblem, x: Any, gy: Any, xpad: Any) -> Any:
    xpad = _xpad_for(p, x, xpad)
    gw = depthwise_weight_grad(xpad, _cl(channels_last(gy)), p.ksize, p.stride, p.dilation)  # (*k, C)
    return np.ascontiguousarray(np.moveaxis(gw, -1, 0))[:, None]


def _colgemm_weight_grad(p: sel.ConvProblem, x: Any, gy: Any, xpad: Any) -> Any:
    return _gemm_weight_grad(x, gy, p.ksize, p.stride, p.dilation, p.pad_lo, p.groups, _xpad_for(p, x, xpad), True)


def _im2col_weight_grad(p: sel.ConvProblem, x: Any, gy: Any, xpad: Any) -> Any:
    return _gemm_weight_grad(x, gy, p.ksize, p.stride, p.dilation, p.pad_lo, p.groups, _xpad_for(p, x, xpad), False)


def _reference_weight_grad(p: sel.ConvProblem, x: Any, gy: Any, xpad: Any) -> Any:
    return reference_weight_grad(x, gy, p.ksize, p.stride, p.dilation, p.pad_lo, p.groups)


def _xpad_for(p: sel.ConvProblem, x: Any, xpad: Any) -> Any:
    """``xpad`` if given (the forward's, holding every window), else the padded input made."""
    if xpad is None:
        xpad = pad_channels_last(x, p.pad_lo, padded_extent(p.size, p.ksize, p.stride, p.dilation, p.pad_lo, p.out))
    return xpad


def _gemm_weight_grad(x: Any, gy: Any, ksize: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
                      pad_lo: Sequence[int], groups: int, xpad: Any, fused_ok: bool) -> Any:
    """The im2col weight gradient ``colsᵀ @ gy_rows`` summed over chunks (on the colgemm kernels
    with ``fused_ok`` where their arguments allow)."""
    n, c = x.shape[:2]
    k_out = gy.shape[1]
    out = gy.shape[2:]
    nd = len(out)
    g = groups
    cg, kg = c // g, k_out // g
    rows = _rows(gy)
    length = int(np.prod(out))
    kk = int(np.prod(ksize))
    # see _conv_forward
    slots, chunks, step, piece = plan.plan(n, length * kk * c * x.itemsize, length, kk * c, k_out, g)
    fpiece = plan.fused_piece(piece, slots, step * length, step * length * kk * c * k_out // g, kk * c, x.itemsize)
    if fused_ok and not fpiece:  # forced where the plan would not take them
        fpiece = plan.forced_piece(step * length, kk * c, x.itemsize)
    fused = plan.fused_args(x, xpad, fpiece, stride, dilation, ksize, out, g, (gy,)) if fused_ok else None
    if fused is not None:  # the columns built and multiplied a piece at a time (see _conv_forward)
        return _fused_weight_grad(np.ascontiguousarray(rows), fused, slots, chunks, length, fpiece, ksize, k_out, g)
    gms = [np.zeros((k_out, kk * cg), dtype=x.dtype) for _ in range(slots)]  # one partial sum per part

    def body(n0: int, n1: int, j: int) -> None:
        cols = im2col_cl(xpad[n0:n1], ksize, stride, dilation, out).reshape((n1 - n0) * length, -1)
        r = rows[n0 * length:n1 * length]
        gm = gms[j]
        # (colsᵀ r)ᵀ, not rᵀ cols: OpenBLAS runs the latter shape (64 × 6144 @ 6144 × 576) 8× slower
        if piece:
            gm += threads.matmul_t_pieces(cols, r, piece).T
        elif g == 1:
            gm += matmul(cols.T, r).T
        else:
            c3 = cols.reshape(cols.shape[0], kk, c)
            for i in range(g):
                gm[i * kg:(i + 1) * kg] += (c3[:, :, i * cg:(i + 1) * cg].reshape(cols.shape[0], -1).T
                                            @ r[:, i * kg:(i + 1) * kg]).T

    plan.run_chunks(chunks, body, slots)
    gm = gms[0]
    for other in gms[1:]:
        gm += other
    return np.ascontiguousarray(gm.reshape(k_out, *ksize, cg).transpose(0, nd + 1, *range(1, nd + 1)))


def _fused_weight_grad(rows: Any, fused: tuple[Any, tuple[int, ...], int], slots: int, chunks: list[tuple[int, int]],
                       length: int, piece: int, ksize: Sequence[int], k_out: int, groups: int) -> Any:
    """:func:`conv_weight_grad` through :mod:`.colgemm_numba`: each part sums ``colsᵀ @ gy_rows``
    (by groups) over its pieces into a ``(g·∏k·C/g, K/g)`` partial sum of its own."""
    nd = len(ksize)
    xpad, geom, addr = fused
    cg = xpad.shape[-1] // groups
    kg = k_out // groups
    width = int(np.prod(ksize)) * cg * groups
    gms = [np.zeros((width, kg), dtype=rows.dtype) for _ in range(slots)]
    bufs = [np.empty((piece, width), dtype=rows.dtype) for _ in range(slots)]

    def body(n0: int, n1: int, j: int) -> None:
        colgemm_numba.colgemm_wgrad(xpad, rows, gms[j], n0 * length, n1 * length, bufs[j], geom, addr)

    plan.run_chunks(chunks, body, slots)
    gm = gms[0]
    for other in gms[1:]:
        gm += other
    # (g, *k, C/g, K/g) -> (g, K/g, C/g, *k) -> (K, C/g, *k)
    gm = gm.reshape(groups, *ksize, cg, kg).transpose(0, nd + 2, nd + 1, *range(1, nd + 1))
    return np.ascontiguousarray(gm).reshape(k_out, cg, *ksize)

