"""Deformable convolution as plain loops: the text to read, and the test oracle of
:mod:`.deform` (whose fast kernels compute the same numbers in another order).

A deformable convolution is an ordinary convolution whose kernel taps do not sit on the regular
grid: for output pixel ``(oy, ox)`` and tap ``(i, j)`` the input is read at

    y = oy·stride_h − pad_h + i·dilation_h + Δy,    x = ox·stride_w − pad_w + j·dilation_w + Δx

where ``(Δy, Δx)`` is the offset learnt for that pixel and tap (channels ``2·(i·kw + j)`` and
``2·(i·kw + j) + 1`` of the offset's group). ``(y, x)`` is not an integer, so the value is read by
bilinear interpolation between the four pixels around it, pixels outside the image counting as
zero; in DCNv2 it is then multiplied by a mask value in ``[0, 1]`` (the tap's "modulation").
Input channels are split into ``offset_groups`` groups, each with offsets (and masks) of its own,
and independently into the convolution's ``groups``. Matches ``torchvision.ops.deform_conv2d``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["bilinear", "reference_deform_conv2d"]


def bilinear(plane: Any, y: float, x: float) -> float:
    """The value of the 2-D array ``plane`` at the real point ``(y, x)``, interpolated between its
    four neighbours; pixels outside ``plane`` are zeros, and so is any point with ``y <= -1``,
    ``y >= H``, ``x <= -1`` or ``x >= W`` (torchvision's ``bilinear_interpolate``)."""
    height, width = plane.shape
    if y <= -1 or y >= height or x <= -1 or x >= width:
        return 0.0
    y0, x0 = math.floor(y), math.floor(x)
    ly, lx = y - y0, x - x0  # how far past the top-left neighbour
    total = 0.0
    for yy, wy in ((y0, 1 - ly), (y0 + 1, ly)):
        for xx, wx in ((x0, 1 - lx), (x0 + 1, lx)):
            if 0 <= yy < height and 0 <= xx < width:
                total += wy * wx * float(plane[yy, xx])
    return total


def reference_deform_conv2d(x: Any, offset: Any, weight: Any, bias: Any = None,
                            stride: Sequence[int] = (1, 1), padding: Sequence[int] = (0, 0),
                            dilation: Sequence[int] = (1, 1), mask: Any = None) -> Any:
    """Deformable convolution, one output value at a time (arrays in, array out; no checks).

    Args:
        x: input ``(N, C, H, W)``.
        offset: ``(N, 2·offset_groups·kh·kw, Ho, Wo)``, ``(Δy, Δx)`` per tap.
        weight: ``(C_out, C/groups, kh, kw)``.
        bias: ``(C_out,)`` or None.
        stride, padding, dilation: pairs of ints.
        mask: ``(N, offset_groups·kh·kw, Ho, Wo)`` or None (DCNv1: every mask value 1).

    Returns:
        ``(N, C_out, Ho, Wo)`` in float64.
    """
    n_, c_, _, _ = x.shape
    c_out, c_per_group, kh, kw = weight.shape
    groups = c_ // c_per_group
    taps = kh * kw
    offset_groups = offset.shape[1] // (2 * taps)
    c_per_offset_group = c_ // offset_groups
    out_h, out_w = offset.shape[2:]
    y_out = np.zeros((n_, c_out, out_h, out_w))
    for n in range(n_):
        for o in range(c_out):
            g = o // (c_out // groups)  # the group of this output channel: its input channels
            for oy in range(out_h):
                for ox in range(out_w):
                    acc = 0.0 if bias is None else float(bias[o])
                    for cc in range(c_per_group):
                        c = g * c_per_group + cc
                        og = c // c_per_offset_group  # this input channel's offset group
                        for i in range(kh):
                            for j in range(kw):
                                k = i * kw + j
                                dy = float(offset[n, og * 2 * taps + 2 * k, oy, ox])
                                dx = float(offset[n, og * 2 * taps + 2 * k + 1, oy, ox])
                                sy = oy * stride[0] - padding[0] + i * dilation[0] + dy
                                sx = ox * stride[1] - padding[1] + j * dilation[1] + dx
                                m = 1.0 if mask is None else float(mask[n, og * taps + k, oy, ox])
                                acc += float(weight[o, cc, i, j]) * m * bilinear(x[n, c], sy, sx)
                    y_out[n, o, oy, ox] = acc
    return y_out
