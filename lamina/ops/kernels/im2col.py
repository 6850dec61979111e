"""im2col and col2im for 1-, 2- and 3-D windows: plain array functions, no autograd.

``im2col`` copies every (dilated, strided) window of a zero-padded input into one row of a
column matrix; ``col2im`` is its adjoint: it adds each row back onto the positions it came from
(pixels shared by overlapping windows receive the sum).

Internally the work is channels-last (building columns from NCHW is several times slower: the
windows' reads would stride over whole planes; see ``bench/README.md``): the input is first
copied once into a zero-padded ``xpad (N, *E, C)``, and::

    cols[n, o_1, …, o_d, k_1, …, k_d, c]  =  xpad[n, o_1·s_1 + k_1·d_1, …, c]

``sliding_window_view`` builds the columns (one copy at memory speed); ``col2im`` is a compiled
parallel loop where numba is installed (see :mod:`.conv_numba`), otherwise one strided add per
kernel offset. ``pad_lo`` is the zero padding before each dim; the padding
after each dim is implied by the output size ``out``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import conv_numba

__all__ = ["im2col", "col2im", "pad_channels_last", "padded_buffer", "copy_channels_last", "crop_channels_first",
           "im2col_cl", "im2col_view", "col2im_cl", "padded_extent", "use_numba", "is_channels_last"]

_USE_NUMBA = [conv_numba.AVAILABLE]


def use_numba(flag: bool | None = None) -> bool:
    """Return whether the numba kernels are in use; ``use_numba(False)`` switches to the NumPy
    path (``True`` only takes effect where numba is installed)."""
    if flag is not None:
        _USE_NUMBA[0] = bool(flag) and conv_numba.AVAILABLE
    return _USE_NUMBA[0]


def is_channels_last(a: Any) -> bool:
    """Whether ``a (N, C, *S)`` lies channels-last in memory (as lamina's conv outputs do) and not
    also NCHW-contiguous (one channel, or one pixel)."""
    return (a.ndim >= 3 and a.shape[1] > 1 and not a.flags.c_contiguous
            and a.transpose(0, *range(2, a.ndim), 1).flags.c_contiguous)


def _lift(t: Sequence[int], fill: int) -> tuple[int, ...]:
    return (fill,) * (3 - len(t)) + tuple(int(v) for v in t)


def padded_extent(size: Sequence[int], ksize: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
                  pad_lo: Sequence[int], out: Sequence[int]) -> tuple[int, ...]:
    """Per dim, the size of the padded input that holds both the input and every window."""
    return tuple(max((o - 1) * s + d * (k - 1) + 1, p + sz)
                 for sz, k, s, d, p, o in zip(size, ksize, stride, dilation, pad_lo, out))


def pad_channels_last(x: Any, pad_lo: Sequence[int], ext: Sequence[int]) -> Any:
    """``x (N, C, *S)`` copied into a zeroed channels-last ``(N, *ext, C)`` at offset ``pad_lo``."""
    xpad, copy = padded_buffer(x, pad_lo, ext)
    if copy:
        copy_channels_last(x, xpad, pad_lo)
    return xpad


def padded_buffer(x: Any, pad_lo: Sequence[int], ext: Sequence[int]) -> tuple[Any, bool]:
    """What :func:`pad_channels_last` returns, with only its padding filled in, and whether the
    input must still be copied in (:func:`copy_channels_last`, which a chunked kernel may do
    a slice of images at a time). No copy is needed where ``x`` already lies channels-last
    underneath (the output of a conv) and has no padding: the buffer is then a view of ``x``."""
    n, c = x.shape[:2]
    size = x.shape[2:]
    nd = len(size)
    xcl = x.transpose(0, *range(2, 2 + nd), 1)
    if not any(pad_lo) and tuple(ext) == tuple(size):
        if xcl.flags.c_contiguous:
            return xcl, False
        return np.empty((n, *ext, c), dtype=x.dtype), True  # the copy overwrites all of it
    return np.zeros((n, *ext, c), dtype=x.dtype), True


def copy_channels_last(x: Any, xpad: Any, pad_lo: Sequence[int]) -> None:
    """``xpad[n, pad_lo + s, c] = x[n, c, s]``: ``x (N, C, *S)`` into the channels-last
    ``xpad (N, *E, C)`` at offset ``pad_lo`` (the rest of ``xpad`` left as it is)."""
    n, c = x.shape[:2]
    size = x.shape[2:]
    nd = len(size)
    xcl = x.transpose(0, *range(2, 2 + nd), 1)
    if (_USE_NUMBA[0] and nd <= 2 and c > 1 and x.dtype in (np.float32, np.float64) and x.size
            and xpad.flags.c_contiguous and not xcl.flags.c_contiguous):
        # channels-last underneath: NumPy's row copy is faster; from NCHW, NumPy's 4-D
        # transposing copy is 3–5× slower than this row-blocked loop
        copy = conv_numba.to_channels_last_wide if c >= conv_numba.WIDE_CHANNELS else conv_numba.to_channels_last
        copy(x.reshape(n, c, *_lift(size, 1)[1:]), xpad.reshape(n, *_lift(xpad.shape[1:-1], 1)[1:], c),
             *_lift(pad_lo, 0)[1:])
        return
    xpad[(slice(None), *[slice(p, p + s) for p, s in zip(pad_lo, size)])] = xcl


def crop_channels_first(gpad: Any, pad_lo: Sequence[int], size: Sequence[int]) -> Any:
    """The inverse of :func:`pad_channels_last`: the ``size`` window of ``gpad (N, *E, C)`` at
    ``pad_lo``, as an NCHW-shaped ``(N, C, *size)`` view (channels-last underneath)."""
    nd = len(size)
    inner = gpad[(slice(None), *[slice(p, p + s) for p, s in zip(pad_lo, size)])]
    return inner.transpose(0, nd + 1, *range(1, nd + 1))


def im2col_view(xpad: Any, ksize: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
                out: Sequence[int]) -> Any:
    """The columns ``(N, *out, *ksize, C)`` of the padded channels-last ``xpad (N, *E, C)`` as a
    strided view (no copy): ``view[n0:n1]`` copied is :func:`im2col_cl` of those images."""
    nd = len(ksize)
    if not nd:
        return xpad
    st = xpad.strides
    for e, o, s, d, k in zip(xpad.shape[1:1 + nd], out, stride, dilation, ksize):
        if o > 0 and k > 0 and (o - 1) * s + d * (k - 1) >= e:
            raise ValueError(f"im2col: windows ({o} outputs, stride {s}, kernel {k}, dilation {d}) "
                             f"overrun the padded input of extent {e}")
    # one as_strided call (sliding_window_view's checks cost a noticeable part of a small conv's
    # column copy)
    steps = [a * s for a, s in zip(st[1:1 + nd], stride)]
    taps = [a * d for a, d in zip(st[1:1 + nd], dilation)]
    return np.lib.stride_tricks.as_strided(xpad, (xpad.shape[0], *out, *ksize, xpad.shape[-1]),
                                           (st[0], *steps, *taps, st[-1]), writeable=False)


def im2col_cl(xpad: Any, ksize: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
              out: Sequence[int]) -> Any:
    """Columns ``(N, *out, *ksize, C)`` of the padded channels-last ``xpad (N, *E, C)``."""
    return np.array(im2col_view(xpad, ksize, stride, dilation, out), copy=True, order="C")


def col2im_cl(cols: Any, ext: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
              out: Any = None) -> Any:
    """Adjoint of :func:`im2col_cl`: ``cols (N, *o, *k, C)`` summed into a zeroed ``(N, *ext, C)``
    (or added into ``out``, a C-contiguous array of that shape)."""
    nd = len(ext)
    n, c = cols.shape[0], cols.shape[-1]
    osize = cols.shape[1:1 + nd]
    ksize = cols.shape[1 + nd:1 + 2 * nd]
    gpad = np.zeros((n, *ext, c), dtype=cols.dtype) if out is None else out
    if _USE_NUMBA[0] and cols.dtype in (np.float32, np.float64) and cols.size:
        c8 = np.ascontiguousarray(cols).reshape(n, *_lift(osize, 1), *_lift(ksize, 1), c)
        conv_numba.col2im_cl3d(c8, gpad.reshape(n, *_lift(ext, 1), c), *_lift(stride, 1), *_lift(dilation, 1))
        return gpad
    for offs in itertools.product(*[range(k) for k in ksize]):
        dst = (slice(None), *[slice(i * d, i * d + (o - 1) * s + 1, s)
                              for i, d, o, s in zip(offs, dilation, osize, stride)])
        gpad[dst] += cols[(slice(None), *[slice(None)] * nd, *offs)]
    return gpad


def im2col(x: Any, ksize: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
           pad_lo: Sequence[int], out: Sequence[int]) -> Any:
    """Column matrix of ``x (N, C, *S)`` in torch's ``unfold`` order: ``(N, *out, C, *ksize)``."""
    nd = len(ksize)
    ext = padded_extent(x.shape[2:], ksize, stride, dilation, pad_lo, out)
    cols = im2col_cl(pad_channels_last(x, pad_lo, ext), ksize, stride, dilation, out)
    return np.ascontiguousarray(np.moveaxis(cols, -1, 1 + nd))


def col2im(cols: Any, size: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
           pad_lo: Sequence[int]) -> Any:
    """Adjoint of :func:`im2col`: ``cols (N, *out, C, *ksize)`` summed into ``(N, C, *size)``."""
    nd = len(size)
    out = cols.shape[1:1 + nd]
    ksize = cols.shape[2 + nd:]
    ext = padded_extent(size, ksize, stride, dilation, pad_lo, out)
    gpad = col2im_cl(np.moveaxis(cols, 1 + nd, -1), ext, stride, dilation)
    return crop_channels_first(gpad, pad_lo, size)
