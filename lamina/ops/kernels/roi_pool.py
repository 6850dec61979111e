"""Array kernels of RoI max pooling and position-sensitive RoI average pooling (no autograd).

The bins are worked out for all boxes at once (:func:`pool_bins`, the vectorized form of the
reference's ``_pool_bins``); then

- **roi_pool** gathers every bin's window from the channels-last map, padded to the largest
  window of a chunk of boxes, and takes the first maximum (``argmax`` in row-major order, the
  order torchvision's loop scans in); the gradient goes back to the element each bin chose;
- **ps_roi_pool** reads each bin's sum from an *integral image* (``S[r, q]`` = the sum of
  everything above and left of ``(r, q)``; a rectangle's sum is ``S[he, we] − S[hs, we] −
  S[he, ws] + S[hs, ws]``), whatever the bin's size; its transpose puts ``±g`` at the four
  corners of each bin and sums the result up the rows and along the columns, which spreads ``g``
  over exactly the bin.

See :mod:`.roi_reference` for the plain loops these are tested against.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ... import backend
from .roi_reference import FLT_MAX, round_half_away

__all__ = ["PoolBins", "pool_bins", "roi_pool_forward", "roi_pool_scatter", "roi_pool_gather", "ps_roi_pool_forward",
           "ps_roi_pool_transpose", "CHUNK_BYTES"]

xp = backend.xp

CHUNK_BYTES = 8 * 2**20  # roi_pool gathers this many bytes of windows at a time


class PoolBins(NamedTuple):
    """The half-open bins of every box: rows ``[hs, he)`` ``(K, ph)``, columns ``[ws, we)`` ``(K, pw)``."""

    batch: Any  # (K,)
    hs: Any
    he: Any
    ws: Any
    we: Any
    input_shape: tuple[int, int, int, int]


def pool_bins(rois: Any, input_shape: tuple[int, int, int, int], output_size: tuple[int, int],
              spatial_scale: float, plus_one: bool, last: tuple[int, int]) -> PoolBins:
    """The box rounded to whole pixels (C's ``round``), cut into bins of real size, each widened
    to whole pixels and clipped to ``[0, last]``; ``plus_one``: the box holds both end pixels
    (roi_pool) rather than one (ps_roi_pool)."""
    t = rois.dtype.type
    start_w, start_h, end_w, end_h = (round_half_away(rois[:, i] * t(spatial_scale)).astype(xp.int64)
                                      for i in range(1, 5))
    one = 1 if plus_one else 0
    roi_w, roi_h = xp.maximum(end_w - start_w + one, 1), xp.maximum(end_h - start_h + one, 1)

    def edges(start: Any, size: Any, bins: int, top: int) -> tuple[Any, Any]:
        b = (size.astype(rois.dtype) / t(bins))[:, None]
        p = xp.arange(bins, dtype=rois.dtype)[None, :]
        lo = xp.floor(p * b).astype(xp.int64) + start[:, None]
        hi = xp.ceil((p + t(1)) * b).astype(xp.int64) + start[:, None]
        return xp.clip(lo, 0, top), xp.clip(hi, 0, top)

    hs, he = edges(start_h, roi_h, output_size[0], last[0])
    ws, we = edges(start_w, roi_w, output_size[1], last[1])
    return PoolBins(rois[:, 0].astype(xp.int64), hs, he, ws, we, tuple(input_shape))


def roi_pool_forward(x: Any, bins: PoolBins) -> tuple[Any, Any]:
    """Max of every bin: ``(K, C, ph, pw)`` (a channels-last view) and ``arg (K, ph, pw, C)``,
    the flat index ``row·W + col`` of the chosen element, −1 where none was (empty bins are 0;
    a bin holding only values ≤ −FLT_MAX or NaN is −FLT_MAX, as torchvision's loop leaves it)."""
    n, c, h, w = x.shape
    k_, ph_, pw_ = len(bins.batch), bins.hs.shape[1], bins.ws.shape[1]
    out = xp.zeros((k_, ph_, pw_, c), x.dtype)
    arg = xp.full((k_, ph_, pw_, c), -1, xp.int64)
    if k_ == 0 or c == 0:
        return out.transpose(0, 3, 1, 2), arg
    xl = xp.ascontiguousarray(x.transpose(0, 2, 3, 1))  # (N, H, W, C)
    lh = max(int((bins.he - bins.hs).max()), 1)
    lw = max(int((bins.we - bins.ws).max()), 1)
    step = max(1, CHUNK_BYTES // (ph_ * lh * pw_ * lw * c * x.itemsize))
    for s in range(0, k_, step):
        sl = slice(s, s + step)
        rows = bins.hs[sl, :, None] + xp.arange(lh)  # (k, ph, lh)
        cols = bins.ws[sl, :, None] + xp.arange(lw)  # (k, pw, lw)
        inside = (rows < bins.he[sl, :, None])[:, :, :, None, None] & (cols < bins.we[sl, :, None])[:, None, None]
        win = xl[bins.batch[sl, None, None, None, None], xp.minimum(rows, h - 1)[:, :, :, None, None],
                 xp.minimum(cols, w - 1)[:, None, None]]  # (k, ph, lh, pw, lw, C)
        # torchvision's scan takes a value only if it beats the last (from -FLT_MAX): never NaN
        cand = inside[..., None] & (win > -FLT_MAX)
        win = xp.where(cand, win, -xp.inf).transpose(0, 1, 3, 5, 2, 4).reshape(*win.shape[:2], pw_, c, lh * lw)
        a = win.argmax(-1)  # the first maximum, row-major in the window
        best = xp.take_along_axis(win, a[..., None], -1)[..., 0]
        none = best == -xp.inf
        empty = ((bins.he[sl] <= bins.hs[sl])[:, :, None] | (bins.we[sl] <= bins.ws[sl])[:, None, :])[..., None]
        out[sl] = xp.where(none, xp.where(empty, 0, -FLT_MAX), best)
        at = (bins.hs[sl, :, None, None] + a // lw) * w + bins.ws[sl, None, :, None] + a % lw
        arg[sl] = xp.where(none, -1, at)
    return out.transpose(0, 3, 1, 2), arg


def _flat_targets(arg: Any, batch: Any, input_shape: tuple[int, ...]) -> tuple[Any, Any]:
    """Flat index into ``(N, C, H, W)`` of every chosen element, and where one was chosen."""
    _, c, h, w = input_shape
    chosen = arg >= 0
    target = (batch[:, None, None, None] * c + xp.arange(c)) * (h * w) + arg
    return target, chosen


def roi_pool_scatter(gy: Any, arg: Any, batch: Any, input_shape: tuple[int, ...]) -> Any:
    """The backward of :func:`roi_pool_forward`: each bin's gradient added to the element it
    chose (``gy (K, C, ph, pw)`` → ``(N, C, H, W)``; bins that chose nothing send nothing)."""
    target, chosen = _flat_targets(arg, batch, input_shape)
    g = gy.transpose(0, 2, 3, 1)[chosen]
    size = int(xp.prod(input_shape))
    gx = xp.bincount(target[chosen], weights=g, minlength=size) if size else xp.zeros(0)
    return gx.astype(gy.dtype, copy=False).reshape(input_shape)


def roi_pool_gather(gx: Any, arg: Any, batch: Any) -> Any:
    """The transpose of :func:`roi_pool_scatter`: every bin reads the element it chose (0 if none)."""
    target, chosen = _flat_targets(arg, batch, gx.shape)
    out = xp.where(chosen, xp.ravel(gx)[xp.where(chosen, target, 0)] if gx.size else 0, 0).astype(gx.dtype)
    return out.transpose(0, 3, 1, 2)


def _ps_corners(bins: PoolBins, output_size: tuple[int, int], dtype: Any) -> tuple[Any, ...]:
    """Index arrays ``(K, C', ph, pw)`` of every bin's image and channel, its corners, and
    ``1 / area`` (0 for an empty bin)."""
    _, c, _, _ = bins.input_shape
    ph_, pw_ = output_size
    co = c // (ph_ * pw_)
    b = bins.batch[:, None, None, None]
    ch = (xp.arange(co)[:, None, None] * (ph_ * pw_) + xp.arange(ph_)[:, None] * pw_ + xp.arange(pw_))[None]
    hs, he = bins.hs[:, None, :, None], bins.he[:, None, :, None]
    ws, we = bins.ws[:, None, None, :], bins.we[:, None, None, :]
    area = (he - hs) * (we - ws)
    inv = xp.where((he > hs) & (we > ws), 1.0 / xp.maximum(area, 1), 0.0).astype(dtype)
    return b, ch, hs, he, ws, we, inv


def ps_roi_pool_forward(x: Any, bins: PoolBins, output_size: tuple[int, int]) -> Any:
    """Position-sensitive average of every bin: ``(K, C / (ph·pw), ph, pw)``."""
    n, c, h, w = x.shape
    integral = xp.zeros((n, c, h + 1, w + 1), xp.float64)  # in float64: the differences cancel less
    xp.cumsum(xp.cumsum(x, axis=2, dtype=xp.float64), axis=3, out=integral[:, :, 1:, 1:])
    b, ch, hs, he, ws, we, inv = _ps_corners(bins, output_size, xp.float64)
    total = integral[b, ch, he, we] - integral[b, ch, hs, we] - integral[b, ch, he, ws] + integral[b, ch, hs, ws]
    return (total * inv).astype(x.dtype)


def ps_roi_pool_transpose(gy: Any, bins: PoolBins, output_size: tuple[int, int]) -> Any:
    """The transpose of :func:`ps_roi_pool_forward` (its backward): ``(K, C', ph, pw)`` → ``(N, C, H, W)``."""
    n, c, h, w = bins.input_shape
    b, ch, hs, he, ws, we, inv = _ps_corners(bins, output_size, xp.float64)
    g = gy * inv
    plane = (b * c + ch) * (h + 1)
    idx = xp.concatenate([xp.broadcast_to(v, g.shape).ravel() for v in
                          ((plane + hs) * (w + 1) + ws, (plane + hs) * (w + 1) + we,
                           (plane + he) * (w + 1) + ws, (plane + he) * (w + 1) + we)])
    corner = xp.concatenate([g.ravel(), -g.ravel(), -g.ravel(), g.ravel()])
    diff = xp.bincount(idx, weights=corner, minlength=n * c * (h + 1) * (w + 1)).reshape(n, c, h + 1, w + 1)
    return xp.cumsum(xp.cumsum(diff, axis=2), axis=3)[:, :, :h, :w].astype(gy.dtype)
