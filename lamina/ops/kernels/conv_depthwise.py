"""Depthwise convolution (one input and one output channel per group), channels-last, no column
matrix: the forward, the input gradient and the weight gradient as array functions.

(An NCHW input that is not channels-last already goes to :mod:`.conv_direct` instead, with
numba: no padded copy at all.)

Arrays: ``xpad (N, *E, C)`` the zero-padded input, ``wk (*k, C)`` the kernel taps per channel,
``gy (N, *O, C)``. With numba (see :mod:`.conv_numba`) each is one compiled parallel loop that
reads every input once per tap from cache; without it, one multiply-add of shifted views per
kernel offset (``∏k`` passes over the activation).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from . import conv_numba
from .im2col import use_numba

__all__ = ["depthwise_forward", "depthwise_input_grad", "depthwise_weight_grad"]


def _lift(t: Sequence[int], fill: int) -> tuple[int, ...]:
    return (fill,) * (3 - len(t)) + tuple(int(v) for v in t)


def _fast(*arrays: Any) -> bool:
    return use_numba() and all(a.dtype in (np.float32, np.float64) for a in arrays)


def _taps(ksize: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
          out: Sequence[int]) -> Iterator[tuple[tuple[int, ...], tuple[slice, ...]]]:
    """Each kernel offset and the strided window of the padded input it multiplies."""
    for idx in np.ndindex(*ksize):
        sl = tuple(slice(i * d, i * d + (o - 1) * s + 1, s) for i, d, o, s in zip(idx, dilation, out, stride))
        yield idx, (slice(None), *sl)


def depthwise_forward(xpad: Any, wk: Any, stride: Sequence[int], dilation: Sequence[int],
                      out: Sequence[int]) -> Any:
    """``y (N, *out, C)``, ``y[n, o, c] = Σ_k xpad[n, o·s + k·d, c]·wk[k, c]``."""
    n, c = xpad.shape[0], xpad.shape[-1]
    ksize = wk.shape[:-1]
    y = np.empty((n, *out, c), dtype=xpad.dtype)
    if _fast(xpad, wk):
        conv_numba.depthwise_fwd_cl3d(xpad.reshape(n, *_lift(xpad.shape[1:-1], 1), c),
                                      np.ascontiguousarray(wk).reshape(*_lift(ksize, 1), c),
                                      y.reshape(n, *_lift(out, 1), c), *_lift(stride, 1), *_lift(dilation, 1))
        return y
    y[...] = 0
    for idx, sl in _taps(ksize, stride, dilation, out):
        y += xpad[sl] * wk[idx]
    return y


def depthwise_input_grad(gy: Any, wk: Any, ext: Sequence[int], stride: Sequence[int],
                         dilation: Sequence[int]) -> Any:
    """Gradient in ``xpad``: ``(N, *ext, C)``."""
    n, c = gy.shape[0], gy.shape[-1]
    out = gy.shape[1:-1]
    ksize = wk.shape[:-1]
    gpad = np.zeros((n, *ext, c), dtype=gy.dtype)
    if _fast(gy, wk):
        conv_numba.depthwise_gx_cl3d(np.ascontiguousarray(gy).reshape(n, *_lift(out, 1), c),
                                     np.ascontiguousarray(wk).reshape(*_lift(ksize, 1), c),
                                     gpad.reshape(n, *_lift(ext, 1), c), *_lift(stride, 1), *_lift(dilation, 1))
        return gpad
    for idx, sl in _taps(ksize, stride, dilation, out):
        gpad[sl] += gy * wk[idx]
    return gpad


def depthwise_weight_grad(xpad: Any, gy: Any, ksize: Sequence[int], stride: Sequence[int],
                          dilation: Sequence[int]) -> Any:
    """Gradient in ``wk``: ``(*ksize, C)``."""
    n, c = gy.shape[0], gy.shape[-1]
    out = gy.shape[1:-1]
    if _fast(xpad, gy):
        gw_n = np.empty((n, *_lift(ksize, 1), c), dtype=gy.dtype)
        conv_numba.depthwise_gw_cl3d(xpad.reshape(n, *_lift(xpad.shape[1:-1], 1), c),
                                     np.ascontiguousarray(gy).reshape(n, *_lift(out, 1), c), gw_n,
                                     *_lift(stride, 1), *_lift(dilation, 1))
        return gw_n.sum(0).reshape(*ksize, c)
    gw = np.empty((*ksize, c), dtype=gy.dtype)
    sub = "abcd"[:len(out) + 1] + "z"
    for idx, sl in _taps(ksize, stride, dilation, out):
        gw[idx] = np.einsum(f"{sub},{sub}->z", xpad[sl], gy)
    return gw
