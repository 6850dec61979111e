"""Plain-loop references of the RoI operations: the text to read, and the oracle of the tests.

Each function follows torchvision's C++ CPU kernel (``torchvision/csrc/ops/cpu/*_kernel.cpp``)
line by line, one box, one channel, one bin and one sampling point at a time. The fast kernels
in :mod:`.roi` compute the same numbers for all boxes at once.

``rois`` is a NumPy array ``(K, 5)``: ``(batch index, x1, y1, x2, y2)`` per box, in the
coordinates of the image; ``spatial_scale`` maps them onto the feature map ``x (N, C, H, W)``.

Arithmetic is done in the dtype of ``x`` (NumPy scalars of that dtype), as the C++ kernels do in
their template type ``T``: a float32 sampling grid can differ from a float64 one where
``ceil(roi_height / pooled_height)`` lies on an integer.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["FLT_MAX", "round_half_away", "bilinear_taps", "bilinear_interpolate", "roi_align_samples",
           "roi_align_reference", "roi_align_backward_reference", "ps_roi_align_reference",
           "roi_pool_reference", "ps_roi_pool_reference"]

FLT_MAX = float(np.finfo(np.float32).max)  # roi_pool's starting maximum, C's FLT_MAX, in every dtype


def round_half_away(v: Any) -> Any:
    """C's ``round()``: halves go away from zero (``2.5 → 3``, ``-2.5 → -3``), where Python's
    ``round`` and ``np.round`` go to the even neighbour. Works on scalars and arrays."""
    t = np.trunc(v)
    return t + np.where(np.abs(v - t) >= 0.5, np.sign(v), 0.0)  # v - trunc(v) is exact


def bilinear_taps(height: int, width: int, y: Any, x: Any) -> list[tuple[int, int, Any]]:
    """The pixels ``(row, col, weight)`` that bilinear interpolation at the real point ``(y, x)``
    reads, as torchvision's ``bilinear_interpolate``:

    - a point more than one pixel outside the map (``y < -1``, ``y > H``, same for x) reads
      nothing: its value is 0;
    - a point between −1 and 0 is moved onto the border row (or column) 0;
    - a point at or past the last row ``H − 1`` is moved onto it (its upper neighbour is itself).
    """
    t = type(y)
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return []
    y = max(y, t(0))
    x = max(x, t(0))
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_high = y_low = height - 1
        y = t(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_high = x_low = width - 1
        x = t(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - t(y_low), x - t(x_low)
    hy, hx = t(1) - ly, t(1) - lx
    return [(y_low, x_low, hy * hx), (y_low, x_high, hy * lx), (y_high, x_low, ly * hx), (y_high, x_high, ly * lx)]


def bilinear_interpolate(plane: Any, y: Any, x: Any) -> Any:
    """The value of ``plane (H, W)`` at the real point ``(y, x)`` (see :func:`bilinear_taps`)."""
    h, w = plane.shape
    val = plane.dtype.type(0)
    for r, q, wt in bilinear_taps(h, w, y, x):
        val += wt * plane[r, q]
    return val


def roi_align_samples(roi: Any, pooled: tuple[int, int], spatial_scale: float, sampling_ratio: int,
                      aligned: bool, t: Any) -> tuple[list[list[list[tuple[Any, Any]]]], Any]:
    """RoI Align's sampling points: ``points[ph][pw]`` lists the ``(y, x)`` averaged into bin
    ``(ph, pw)``, and ``count`` is what their sum is divided by.

    The box is cut into ``pooled_h × pooled_w`` equal bins (no rounding anywhere). Each bin is
    sampled on a regular ``grid_h × grid_w`` grid of points at the centres of its cells;
    ``sampling_ratio > 0`` fixes the grid, otherwise it is ``ceil(roi_h / pooled_h)`` (about one
    point per pixel). ``aligned`` shifts the box by half a pixel, so that pixel centres sit at
    integer coordinates; without it a box is at least 1×1 (the legacy behaviour).
    """
    ph_, pw_ = pooled
    scale = t(spatial_scale)
    offset = t(0.5) if aligned else t(0)
    start_w, start_h = t(roi[1]) * scale - offset, t(roi[2]) * scale - offset
    end_w, end_h = t(roi[3]) * scale - offset, t(roi[4]) * scale - offset
    roi_w, roi_h = end_w - start_w, end_h - start_h
    if not aligned:
        roi_w, roi_h = max(roi_w, t(1)), max(roi_h, t(1))
    bin_h, bin_w = roi_h / t(ph_), roi_w / t(pw_)
    grid_h = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_h / t(ph_)))
    grid_w = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_w / t(pw_)))
    count = t(max(grid_h * grid_w, 1))  # an empty grid (an aligned box of size 0) gives 0, not 0/0
    points = [[[] for _ in range(pw_)] for _ in range(ph_)]
    for ph in range(ph_):
        for pw in range(pw_):
            for iy in range(grid_h):
                y = start_h + t(ph) * bin_h + t(iy + 0.5) * bin_h / t(grid_h)
                for ix in range(grid_w):
                    x = start_w + t(pw) * bin_w + t(ix + 0.5) * bin_w / t(grid_w)
                    points[ph][pw].append((y, x))
    return points, count


def roi_align_reference(x: Any, rois: Any, output_size: tuple[int, int], spatial_scale: float = 1.0,
                        sampling_ratio: int = -1, aligned: bool = False) -> Any:
    """RoI Align (Mask R-CNN): each bin is the mean of bilinear samples of the map. ``(K, C, ph, pw)``."""
    t = x.dtype.type
    out = np.zeros((len(rois), x.shape[1], *output_size), x.dtype)
    for k, roi in enumerate(rois):
        points, count = roi_align_samples(roi, output_size, spatial_scale, sampling_ratio, aligned, t)
        for c in range(x.shape[1]):
            plane = x[int(roi[0]), c]
            for ph in range(output_size[0]):
                for pw in range(output_size[1]):
                    val = t(0)
                    for y, xx in points[ph][pw]:
                        val += bilinear_interpolate(plane, y, xx)
                    out[k, c, ph, pw] = val / count
    return out


def roi_align_backward_reference(gy: Any, rois: Any, input_shape: tuple[int, ...], spatial_scale: float = 1.0,
                                 sampling_ratio: int = -1, aligned: bool = False) -> Any:
    """The gradient of :func:`roi_align_reference` with respect to ``x``: each bin's gradient,
    divided by ``count``, goes back to the pixels its samples read, with their weights."""
    t = gy.dtype.type
    _, c_, h, w = input_shape
    gx = np.zeros(input_shape, gy.dtype)
    for k, roi in enumerate(rois):
        points, count = roi_align_samples(roi, gy.shape[2:], spatial_scale, sampling_ratio, aligned, t)
        for c in range(c_):
            for ph in range(gy.shape[2]):
                for pw in range(gy.shape[3]):
                    g = gy[k, c, ph, pw] / count
                    for y, xx in points[ph][pw]:
                        for r, q, wt in bilinear_taps(h, w, y, xx):
                            gx[int(roi[0]), c, r, q] += wt * g
    return gx


def ps_roi_align_reference(x: Any, rois: Any, output_size: tuple[int, int], spatial_scale: float = 1.0,
                           sampling_ratio: int = -1) -> Any:
    """Position-sensitive RoI Align (R-FCN): as RoI Align with ``aligned=True``, but bin
    ``(ph, pw)`` of output channel ``c`` reads input channel ``c·ph_·pw_ + ph·pw_ + pw``: each
    bin position has a group of channels of its own. ``(K, C / (ph_·pw_), ph_, pw_)``."""
    ph_, pw_ = output_size
    t = x.dtype.type
    c_out = x.shape[1] // (ph_ * pw_)
    out = np.zeros((len(rois), c_out, ph_, pw_), x.dtype)
    for k, roi in enumerate(rois):
        points, count = roi_align_samples(roi, output_size, spatial_scale, sampling_ratio, True, t)
        for c in range(c_out):
            for ph in range(ph_):
                for pw in range(pw_):
                    plane = x[int(roi[0]), c * ph_ * pw_ + ph * pw_ + pw]
                    val = t(0)
                    for y, xx in points[ph][pw]:
                        val += bilinear_interpolate(plane, y, xx)
                    out[k, c, ph, pw] = val / count
    return out


def _pool_bins(roi: Any, output_size: tuple[int, int], spatial_scale: float, t: Any, plus_one: bool,
               last: tuple[int, int]) -> list[list[tuple[int, int, int, int]]]:
    """RoI pooling's bins ``(hstart, hend, wstart, wend)``, half-open: the box is rounded to whole
    pixels, cut into bins of real size, and each bin widened to whole pixels (floor of its start,
    ceil of its end), then clipped to rows ``[0, last[0]]`` and columns ``[0, last[1]]``."""
    start_w, start_h, end_w, end_h = (int(round_half_away(t(v) * t(spatial_scale))) for v in roi[1:5])
    one = 1 if plus_one else 0  # roi_pool counts both end pixels, ps_roi_pool one of them
    roi_w, roi_h = max(end_w - start_w + one, 1), max(end_h - start_h + one, 1)
    bin_h, bin_w = t(roi_h) / t(output_size[0]), t(roi_w) / t(output_size[1])
    bins = []
    for ph in range(output_size[0]):
        row = []
        for pw in range(output_size[1]):
            hstart = min(max(int(math.floor(t(ph) * bin_h)) + start_h, 0), last[0])
            hend = min(max(int(math.ceil(t(ph + 1) * bin_h)) + start_h, 0), last[0])
            wstart = min(max(int(math.floor(t(pw) * bin_w)) + start_w, 0), last[1])
            wend = min(max(int(math.ceil(t(pw + 1) * bin_w)) + start_w, 0), last[1])
            row.append((hstart, hend, wstart, wend))
        bins.append(row)
    return bins


def roi_pool_reference(x: Any, rois: Any, output_size: tuple[int, int], spatial_scale: float = 1.0) -> tuple[Any, Any]:
    """RoI max pooling (Fast R-CNN): the maximum of each bin, and where it is (``argmax``, the
    flat index ``row·W + col`` in the map; −1 for a bin where nothing was pooled).

    As torchvision: the scan starts at ``-FLT_MAX`` and takes a value only if strictly greater,
    so ties keep the first in row-major order and NaN is never taken; an empty bin is 0.
    """
    t = x.dtype.type
    k_, c_, h, w = len(rois), x.shape[1], x.shape[2], x.shape[3]
    out = np.zeros((k_, c_, *output_size), x.dtype)
    arg = np.full((k_, c_, *output_size), -1, np.int64)
    for k, roi in enumerate(rois):
        bins = _pool_bins(roi, output_size, spatial_scale, t, True, (h, w))
        for c in range(c_):
            plane = x[int(roi[0]), c]
            for ph in range(output_size[0]):
                for pw in range(output_size[1]):
                    hs, he, ws, we = bins[ph][pw]
                    best, where = (t(0) if he <= hs or we <= ws else t(-FLT_MAX)), -1
                    for r in range(hs, he):
                        for q in range(ws, we):
                            if plane[r, q] > best:
                                best, where = plane[r, q], r * w + q
                    out[k, c, ph, pw], arg[k, c, ph, pw] = best, where
    return out, arg


def ps_roi_pool_reference(x: Any, rois: Any, output_size: tuple[int, int], spatial_scale: float = 1.0) -> Any:
    """Position-sensitive RoI average pooling (R-FCN): bin ``(ph, pw)`` of output channel ``c`` is
    the mean of input channel ``c·ph_·pw_ + ph·pw_ + pw`` over the bin; an empty bin is 0.

    As torchvision's forward, bins are clipped to rows ``[0, H − 1)`` and columns ``[0, W − 1)``
    (half-open): the last row and column of the map are never pooled.
    """
    ph_, pw_ = output_size
    t = x.dtype.type
    h, w = x.shape[2], x.shape[3]
    c_out = x.shape[1] // (ph_ * pw_)
    out = np.zeros((len(rois), c_out, ph_, pw_), x.dtype)
    for k, roi in enumerate(rois):
        bins = _pool_bins(roi, output_size, spatial_scale, t, False, (h - 1, w - 1))
        for c in range(c_out):
            for ph in range(ph_):
                for pw in range(pw_):
                    hs, he, ws, we = bins[ph][pw]
                    if he <= hs or we <= ws:
                        continue
                    plane = x[int(roi[0]), c * ph_ * pw_ + ph * pw_ + pw]
                    total = t(0)
                    for r in range(hs, he):
                        for q in range(ws, we):
                            total += plane[r, q]
                    out[k, c, ph, pw] = total / t((he - hs) * (we - ws))
    return out
