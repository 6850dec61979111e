"""Array kernels of RoI Align and position-sensitive RoI Align (no autograd): for every box at once.

:func:`roi_align_reference <lamina.ops.kernels.roi_reference.roi_align_reference>` reads one
sampling point at a time; here the sampling geometry is worked out first for all boxes
(:func:`align_plan`), then applied to every channel at once. Two facts make that cheap:

- *Bilinear interpolation is separable.* A sample at ``(y, x)`` reads rows ``y_lo, y_hi`` with
  weights ``(1 − ly, ly)`` and columns ``x_lo, x_hi`` with ``(1 − lx, lx)``; its four weights are
  the products. The zero rule (a sample more than a pixel outside reads nothing) and the border
  clamps are separable too. So a box needs only its *row taps* ``ry, wy (ph, 2·grid_h)`` and its
  *column taps* ``cx, wx (pw, 2·grid_w)``: bin ``(p, q)`` is
  ``Σ_ij wy[p, i]·wx[q, j]·x[ry[p, i], cx[q, j]] / count``.
- *Channels last.* With the map as ``(N, H, W, C)`` every tap reads ``C`` contiguous values.

Boxes are grouped by their sampling grid (one group when ``sampling_ratio > 0``). The NumPy
path gathers each group's taps (``np.take``) and contracts them with the weights (einsum); the
backward scatters the weighted gradients back (``np.add.at``). The numba path
(:mod:`.roi_numba`) runs the same taps in compiled loops. :func:`align_impl` chooses.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, NamedTuple

from ... import backend
from . import roi_numba, threads
from .im2col import use_numba

__all__ = ["AlignGroup", "AlignPlan", "align_plan", "axis_taps", "align_impl", "force_impl", "roi_align_forward",
           "roi_align_backward", "CHUNK_BYTES"]

xp = backend.xp

CHUNK_BYTES = 8 * 2**20  # the NumPy path gathers the taps of this many bytes of boxes at a time
PARALLEL_MIN_WORK = 1 << 20  # multiply-adds from which the numba kernels run on several threads


class AlignGroup(NamedTuple):
    """Boxes that share one sampling grid, and their taps (row taps ``(k, ph, 2·grid_h)``,
    column taps ``(k, pw, 2·grid_w)``; a tap of weight 0 reads row or column 0 and adds nothing)."""

    index: Any  # (k,) the boxes' places in the output
    batch: Any  # (k,) their images
    ry: Any
    wy: Any
    cx: Any
    wx: Any
    count: Any  # (k,) samples per bin, the divisor


class AlignPlan(NamedTuple):
    """Everything the forward and the backward of one RoI Align call need."""

    batch: Any  # (K,) image of every box
    groups: tuple[AlignGroup, ...]  # boxes whose grid is empty are in none: their output is 0
    input_shape: tuple[int, int, int, int]
    output_size: tuple[int, int]
    ps: bool  # position-sensitive: bin p of output channel c reads input channel c·ph·pw + p


def axis_taps(coord: Any, size: int) -> tuple[Any, Any]:
    """Along one axis of length ``size``, the two taps ``(index, weight)`` of each real coordinate
    (shape ``coord.shape + (2,)``), with torchvision's rules: outside ``[−1, size]`` both weights
    are 0; below 0 the coordinate moves to 0; at or past ``size − 1`` it moves there, and its upper
    neighbour is itself (weight 0)."""
    t = coord.dtype.type
    valid = (coord >= -1.0) & (coord <= size)
    c = xp.where(valid, xp.maximum(coord, t(0)), t(0))  # c ≥ 0 here: truncation is the floor
    low = c.astype(xp.int64)
    at_end = low >= size - 1
    low = xp.where(at_end, size - 1, low)
    high = xp.where(at_end, size - 1, low + 1)
    c = xp.where(at_end, low.astype(coord.dtype), c)
    frac = c - low.astype(coord.dtype)
    w_high = xp.where(valid, frac, t(0))
    w_low = xp.where(valid, t(1) - frac, t(0))
    return xp.stack([low, high], -1), xp.stack([w_low, w_high], -1)


def align_plan(rois: Any, input_shape: tuple[int, int, int, int], output_size: tuple[int, int],
               spatial_scale: float, sampling_ratio: int, aligned: bool, ps: bool = False) -> AlignPlan:
    """The sampling taps of every box ``rois (K, 5)`` (in the input's dtype; checked by the caller)."""
    _, _, h, w = input_shape
    ph_, pw_ = output_size
    t = rois.dtype.type
    offset = t(0.5) if aligned else t(0)
    start_w, start_h, end_w, end_h = (rois[:, i] * t(spatial_scale) - offset for i in range(1, 5))
    roi_w, roi_h = end_w - start_w, end_h - start_h
    if not aligned:  # the legacy rule: a box is at least one pixel wide and high
        roi_w, roi_h = xp.maximum(roi_w, t(1)), xp.maximum(roi_h, t(1))
    bin_h, bin_w = roi_h / t(ph_), roi_w / t(pw_)
    if sampling_ratio > 0:
        grid_h = grid_w = xp.full(len(rois), int(sampling_ratio), xp.int64)
    else:  # about one sample per pixel: ceil(roi size / bins)
        grid_h, grid_w = xp.ceil(roi_h / t(ph_)).astype(xp.int64), xp.ceil(roi_w / t(pw_)).astype(xp.int64)
    batch = rois[:, 0].astype(xp.int64)
    live = (grid_h > 0) & (grid_w > 0)
    groups = []
    pairs = xp.stack([grid_h[live], grid_w[live]], 1)
    for gh, gw in (xp.unique(pairs, axis=0) if len(pairs) else ()):
        sel = xp.flatnonzero(live & (grid_h == gh) & (grid_w == gw))
        ry, wy = _grid_taps(start_h[sel], bin_h[sel], ph_, int(gh), h)
        cx, wx = _grid_taps(start_w[sel], bin_w[sel], pw_, int(gw), w)
        groups.append(AlignGroup(sel, batch[sel], ry, wy, cx, wx, xp.full(len(sel), t(gh * gw))))
    return AlignPlan(batch, tuple(groups), tuple(input_shape), (ph_, pw_), bool(ps))


def _grid_taps(start: Any, bin_size: Any, bins: int, grid: int, size: int) -> tuple[Any, Any]:
    """Taps ``(k, bins, 2·grid)`` of the sample coordinates ``start + p·bin + (i + ½)·bin / grid``."""
    t = start.dtype.type
    p = xp.arange(bins, dtype=start.dtype)[None, :, None]
    i = (xp.arange(grid, dtype=start.dtype) + t(0.5))[None, None, :]
    b = bin_size[:, None, None]
    coord = (start[:, None, None] + p * b) + i * b / t(grid)  # torchvision's order of operations
    idx, wt = axis_taps(coord, size)
    k = len(start)
    return idx.reshape(k, bins, 2 * grid), wt.reshape(k, bins, 2 * grid)


# --- which kernel -----------------------------------------------------------------------------

_FORCED: list[str | None] = [None]


def align_impl(dtype: Any) -> str:
    """The one place that picks RoI Align's kernel: ``"numba"`` (compiled loops) where numba is
    in use (see :func:`lamina.ops.kernels.im2col.use_numba`) for float32/float64, else ``"numpy"``.
    :func:`force_impl` overrides it (the tests run both)."""
    if _FORCED[0] is not None:
        return _FORCED[0]
    if roi_numba.AVAILABLE and use_numba() and dtype in (xp.float32, xp.float64):
        return "numba"
    return "numpy"


@contextlib.contextmanager
def force_impl(impl: str) -> Iterator[None]:
    """Run RoI Align on ``impl`` (``"numpy"`` or ``"numba"``) inside the block."""
    if impl not in ("numpy", "numba"):
        raise ValueError(f"roi_align: unknown kernel {impl!r} (expected 'numpy' or 'numba')")
    if impl == "numba" and not roi_numba.AVAILABLE:
        raise RuntimeError("roi_align: the numba kernel was asked for, but numba is not installed")
    before, _FORCED[0] = _FORCED[0], impl
    try:
        yield
    finally:
        _FORCED[0] = before


# --- forward and backward ------------------------------------------------------------------------

def _bins_layout(x: Any, plan: AlignPlan) -> Any:
    """``x (N, C, H, W)`` as ``(N, H, W, P, C')``: P = 1 and C' = C, or for the position-sensitive
    op P = ph·pw and C' = C / P, so that bin p's channels lie contiguous."""
    n, c, h, w = x.shape
    if not plan.ps:
        return xp.ascontiguousarray(x.transpose(0, 2, 3, 1)).reshape(n, h, w, 1, c)
    p = plan.output_size[0] * plan.output_size[1]
    return xp.ascontiguousarray(x.reshape(n, c // p, p, h, w).transpose(0, 3, 4, 2, 1))


def _flat_rows(g: AlignGroup, plan: AlignPlan) -> Any:
    """Row of every tap pair in the ``(N·H·W·P, C')`` view of :func:`_bins_layout`: ``(k, ph, Ty, pw, Tx)``."""
    _, _, h, w = plan.input_shape
    ph_, pw_ = plan.output_size
    p = ph_ * pw_ if plan.ps else 1
    rows = ((g.batch[:, None, None, None, None] * h + g.ry[:, :, :, None, None]) * w
            + g.cx[:, None, None, :, :]) * p
    if plan.ps:
        rows = rows + (xp.arange(ph_)[:, None, None, None] * pw_ + xp.arange(pw_)[None, None, :, None])
    return rows


def _chunks(g: AlignGroup, channels: int, itemsize: int) -> Iterator[slice]:
    per_box = g.ry.shape[1] * g.ry.shape[2] * g.cx.shape[1] * g.cx.shape[2] * channels * itemsize
    step = max(1, CHUNK_BYTES // max(per_box, 1))
    for s in range(0, len(g.index), step):
        yield slice(s, s + step)


def _numba_call(kernel: Any, work: int, *args: Any) -> None:
    (kernel.parallel if work >= PARALLEL_MIN_WORK and not threads.busy() else kernel.serial)(*args)


def roi_align_forward(x: Any, plan: AlignPlan) -> Any:
    """RoI Align of ``x (N, C, H, W)``: ``(K, C', ph, pw)`` (a channels-last view)."""
    xb = _bins_layout(x, plan)
    ph_, pw_ = plan.output_size
    co = xb.shape[4]
    out = xp.zeros((len(plan.batch), ph_, pw_, co), x.dtype)
    numba = align_impl(x.dtype) == "numba"
    for g in plan.groups:
        if numba:
            work = len(g.index) * ph_ * pw_ * g.ry.shape[2] * g.cx.shape[2] * co
            _numba_call(roi_numba.align_forward, work, out, xb, g.index, g.batch, g.ry, g.wy, g.cx, g.wx,
                        g.count, plan.ps)
            continue
        x2 = xb.reshape(-1, co)
        rows = _flat_rows(g, plan)
        for s in _chunks(g, co, x.itemsize):
            taps = xp.take(x2, rows[s], axis=0)  # (k, ph, Ty, pw, Tx, C')
            per_row = xp.einsum("kpiqjc,kqj->kpiqc", taps, g.wx[s])
            out[g.index[s]] = xp.einsum("kpiqc,kpi->kpqc", per_row, g.wy[s]) / g.count[s, None, None, None]
    return out.transpose(0, 3, 1, 2)


def roi_align_backward(gy: Any, plan: AlignPlan) -> Any:
    """The adjoint of :func:`roi_align_forward`: ``gy (K, C', ph, pw)`` → ``(N, C, H, W)``."""
    n, c, h, w = plan.input_shape
    ph_, pw_ = plan.output_size
    p = ph_ * pw_ if plan.ps else 1
    co = c // p
    gyl = xp.ascontiguousarray(gy.transpose(0, 2, 3, 1))  # (K, ph, pw, C')
    gxb = xp.zeros((n, h, w, p, co), gy.dtype)
    numba = align_impl(gy.dtype) == "numba"
    for g in plan.groups:
        if numba:
            work = len(g.index) * ph_ * pw_ * g.ry.shape[2] * g.cx.shape[2] * co
            blocks = min(co, 2 * roi_numba.team_size()) if work >= PARALLEL_MIN_WORK else 1
            _numba_call(roi_numba.align_backward, work, gyl, gxb, g.index, g.batch, g.ry, g.wy, g.cx, g.wx,
                        g.count, plan.ps, blocks)
            continue
        _numpy_backward(gyl, gxb, g, plan)
    if not plan.ps:
        return gxb.reshape(n, h, w, c).transpose(0, 3, 1, 2)
    return xp.ascontiguousarray(gxb.transpose(0, 4, 3, 1, 2)).reshape(n, c, h, w)


def _dense(idx: Any, wt: Any, size: int) -> Any:
    """Taps ``(k, bins, T)`` as dense weights ``(k, bins, size)`` (taps on one pixel add up)."""
    k, bins, _ = idx.shape
    out = xp.zeros((k, bins, size), wt.dtype)
    xp.add.at(out, (xp.arange(k)[:, None, None], xp.arange(bins)[None, :, None], idx), wt)
    return out


def _numpy_backward(gyl: Any, gxb: Any, g: AlignGroup, plan: AlignPlan) -> None:
    """Add one group's gradient into ``gxb (N, H, W, P, C')``, one box at a time: with dense
    weights ``ay (ph, H)``, ``ax (pw, W)`` cut to the rows and columns the box reads, its
    gradient is ``ayᵀ · gy · ax`` — a few small products, where a scatter of every tap
    (``np.add.at``) costs ten times more."""
    _, _, h, w = plan.input_shape
    ph_, pw_ = plan.output_size
    ay, ax = _dense(g.ry, g.wy, h), _dense(g.cx, g.wx, w)
    rows_read, cols_read = ay.any(1), ax.any(1)
    for t in range(len(g.index)):
        rs, cs = xp.flatnonzero(rows_read[t]), xp.flatnonzero(cols_read[t])
        if not len(rs) or not len(cs):  # every sample outside the map
            continue
        r0, r1, c0, c1 = rs[0], rs[-1] + 1, cs[0], cs[-1] + 1
        gk = gyl[g.index[t]] / g.count[t]  # (ph, pw, C')
        a, b = ay[t, :, r0:r1], ax[t, :, c0:c1]
        if plan.ps:  # bin (p, q) goes to its own channel group
            contrib = xp.einsum("ph,qw,pqc->hwpqc", a, b, gk).reshape(r1 - r0, c1 - c0, ph_ * pw_, -1)
        else:
            contrib = xp.einsum("ph,pqc,qw->hwc", a, gk, b, optimize=True)[:, :, None, :]
        gxb[g.batch[t], r0:r1, c0:c1] += contrib
