"""im2col and col2im for 1-, 2- and 3-D windows: plain array functions, no autograd.

``im2col`` copies every (dilated, strided) window of a zero-padded input into one row of a
column matrix; ``col2im`` is its adjoint: it adds each row back onto the positions it came
from (pixels shared by overlapping windows receive the sum). Column layout::

    cols[n, o_1, …, o_d, c, k_1, …, k_d]   =   x_padded[n, c, o_1·s_1 + k_1·d_1, …]

so that ``cols.reshape(N·L, C·∏k)`` multiplied by the weight ``(K, C·∏k)`` transposed is the
convolution. With numba installed (see :mod:`.conv_numba`) both run as compiled parallel loops;
otherwise ``sliding_window_view`` builds the columns and ``col2im`` adds one strided slice per
kernel offset. ``pad_lo`` is the zero padding before each dim; the padding after each dim is
implied by the output size ``out`` (windows that would run past the padded input are simply
not asked for).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import conv_numba

__all__ = ["im2col", "col2im", "use_numba"]

_USE_NUMBA = [conv_numba.AVAILABLE]


def use_numba(flag: bool | None = None) -> bool:
    """Return whether the numba kernels are in use; ``use_numba(False)`` switches to the NumPy
    path (``True`` only works where numba is installed)."""
    if flag is not None:
        _USE_NUMBA[0] = bool(flag) and conv_numba.AVAILABLE
    return _USE_NUMBA[0]


def _lift(t: Sequence[int], fill: int) -> tuple[int, ...]:
    return (fill,) * (3 - len(t)) + tuple(int(v) for v in t)


def im2col(x: Any, ksize: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
           pad_lo: Sequence[int], out: Sequence[int]) -> Any:
    """Column matrix of ``x`` ``(N, C, *S)``: shape ``(N, *out, C, *ksize)``."""
    nd = len(ksize)
    n, c = x.shape[:2]
    if _USE_NUMBA[0] and x.dtype in (np.float32, np.float64):
        cols = np.empty((n, *out, c, *ksize), dtype=x.dtype)
        x5 = x.reshape(n, c, *_lift(x.shape[2:], 1))
        c8 = cols.reshape(n, *_lift(out, 1), c, *_lift(ksize, 1))
        conv_numba.im2col3d(x5, c8, *_lift(stride, 1), *_lift(dilation, 1), *_lift(pad_lo, 0))
        return cols
    # extent of the padded input that the windows reach, per dim
    ext = [(o - 1) * s + d * (k - 1) + 1 for o, s, d, k in zip(out, stride, dilation, ksize)]
    src = x
    if any(p > 0 for p in pad_lo) or any(e > p + sz for e, p, sz in zip(ext, pad_lo, x.shape[2:])):
        shape = (n, c, *[max(e, p + sz) for e, p, sz in zip(ext, pad_lo, x.shape[2:])])
        src = np.zeros(shape, dtype=x.dtype)
        src[(slice(None), slice(None), *[slice(p, p + sz) for p, sz in zip(pad_lo, x.shape[2:])])] = x
    span = [d * (k - 1) + 1 for d, k in zip(dilation, ksize)]
    src = src[(slice(None), slice(None), *[slice(0, e) for e in ext])]
    win = np.lib.stride_tricks.sliding_window_view(src, span, axis=tuple(range(2, 2 + nd)))
    win = win[(slice(None), slice(None), *[slice(None, None, s) for s in stride],
               *[slice(None, None, d) for d in dilation])]
    # (N, C, *out, *k) -> (N, *out, C, *k)
    perm = (0, *range(2, 2 + nd), 1, *range(2 + nd, 2 + 2 * nd))
    return np.ascontiguousarray(win.transpose(perm))


def col2im(cols: Any, size: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
           pad_lo: Sequence[int]) -> Any:
    """Adjoint of :func:`im2col`: ``cols`` ``(N, *out, C, *ksize)`` summed back into an array of
    shape ``(N, C, *size)``."""
    nd = len(size)
    n = cols.shape[0]
    out = cols.shape[1:1 + nd]
    c = cols.shape[1 + nd]
    ksize = cols.shape[2 + nd:]
    if _USE_NUMBA[0] and cols.dtype in (np.float32, np.float64):
        gx = np.zeros((n, c, *size), dtype=cols.dtype)
        c8 = cols.reshape(n, *_lift(out, 1), c, *_lift(ksize, 1))
        conv_numba.col2im3d(c8, gx.reshape(n, c, *_lift(size, 1)), *_lift(stride, 1), *_lift(dilation, 1),
                            *_lift(pad_lo, 0))
        return gx
    ext = [max((o - 1) * s + d * (k - 1) + 1, p + sz)
           for o, s, d, k, p, sz in zip(out, stride, dilation, ksize, pad_lo, size)]
    gpad = np.zeros((n, c, *ext), dtype=cols.dtype)
    # (N, *out, C, *k) -> (N, C, *out, *k): one strided add per kernel offset
    perm = (0, 1 + nd, *range(1, 1 + nd), *range(2 + nd, 2 + 2 * nd))
    cv = cols.transpose(perm)
    for offs in itertools.product(*[range(k) for k in ksize]):
        dst = (slice(None), slice(None),
               *[slice(i * d, i * d + (o - 1) * s + 1, s) for i, d, o, s in zip(offs, dilation, out, stride)])
        gpad[dst] += cv[(Ellipsis, *offs)]
    return gpad[(slice(None), slice(None), *[slice(p, p + sz) for p, sz in zip(pad_lo, size)])].copy()
