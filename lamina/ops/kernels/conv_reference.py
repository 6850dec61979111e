"""The NumPy reference convolution and its two adjoints, for any number of spatial dims: one
``einsum`` per kernel tap over strided views of the zero-padded NCHW input. Slow and plain, it
is the yardstick the fast implementations of :mod:`.conv_select` are tested against (and the
one the selector falls back to, should no other support a problem). Array functions only."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product
from typing import Any

import numpy as np

__all__ = ["reference_forward", "reference_input_grad", "reference_weight_grad"]


def _extent(size: Sequence[int], ksize: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
            pad_lo: Sequence[int], out: Sequence[int]) -> tuple[int, ...]:
    """Per dim, a padded length holding the input at ``pad_lo`` and every window."""
    return tuple(max((o - 1) * s + d * (k - 1) + 1, p + sz)
                 for sz, k, s, d, p, o in zip(size, ksize, stride, dilation, pad_lo, out))


def _window(tap: Sequence[int], stride: Sequence[int], dilation: Sequence[int], out: Sequence[int]) -> tuple:
    """The index of the inputs that kernel offset ``tap`` meets, for every output position."""
    return (Ellipsis, *[slice(t * d, t * d + s * (o - 1) + 1, s) for t, s, d, o in zip(tap, stride, dilation, out)])


def _padded_groups(x: Any, ext: Sequence[int], pad_lo: Sequence[int], groups: int) -> Any:
    """``x (N, C, *S)`` zero-padded to ``ext`` (``pad_lo`` before each dim), as ``(N, g, C/g, *ext)``."""
    n, c = x.shape[:2]
    xpad = np.zeros((n, c, *ext), dtype=x.dtype)
    xpad[(slice(None), slice(None), *[slice(p, p + s) for p, s in zip(pad_lo, x.shape[2:])])] = x
    return xpad.reshape(n, groups, c // groups, *ext)


def reference_forward(x: Any, w: Any, stride: Sequence[int], dilation: Sequence[int], pad_lo: Sequence[int],
                      out: Sequence[int], groups: int) -> Any:
    """``y (N, K, *out)``, the cross-correlation of ``x (N, C, *S)`` with ``w (K, C/g, *k)``."""
    n, c = x.shape[:2]
    k_out, ksize, g = w.shape[0], w.shape[2:], groups
    size = x.shape[2:]
    xg = _padded_groups(x, _extent(size, ksize, stride, dilation, pad_lo, out), pad_lo, g)
    wg = w.reshape(g, k_out // g, c // g, *ksize)
    y = np.zeros((n, g, k_out // g, *out), dtype=np.result_type(x, w))
    for tap in product(*(range(k) for k in ksize)):
        y += np.einsum("ngc...,gkc->ngk...", xg[_window(tap, stride, dilation, out)], wg[(Ellipsis, *tap)])
    return y.reshape(n, k_out, *out)


def reference_input_grad(gy: Any, w: Any, size: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
                         pad_lo: Sequence[int], groups: int) -> Any:
    """``gx (N, C, *size)``: the gradient of :func:`reference_forward` with respect to ``x``."""
    n, k_out = gy.shape[:2]
    out, ksize, g = gy.shape[2:], w.shape[2:], groups
    c = w.shape[1] * g
    ext = _extent(size, ksize, stride, dilation, pad_lo, out)
    gpad = np.zeros((n, g, c // g, *ext), dtype=np.result_type(gy, w))
    gyg = gy.reshape(n, g, k_out // g, *out)
    wg = w.reshape(g, k_out // g, c // g, *ksize)
    for tap in product(*(range(k) for k in ksize)):
        gpad[_window(tap, stride, dilation, out)] += np.einsum("ngk...,gkc->ngc...", gyg, wg[(Ellipsis, *tap)])
    gpad = gpad.reshape(n, c, *ext)
    return np.ascontiguousarray(gpad[(slice(None), slice(None), *[slice(p, p + s) for p, s in zip(pad_lo, size)])])


def reference_weight_grad(x: Any, gy: Any, ksize: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
                          pad_lo: Sequence[int], groups: int) -> Any:
    """``gw (K, C/g, *ksize)``: the gradient of :func:`reference_forward` with respect to ``w``."""
    n, c = x.shape[:2]
    k_out, out, g = gy.shape[1], gy.shape[2:], groups
    size = x.shape[2:]
    xg = _padded_groups(x, _extent(size, ksize, stride, dilation, pad_lo, out), pad_lo, g)
    gyg = gy.reshape(n, g, k_out // g, -1)
    gw = np.zeros((g, k_out // g, c // g, *ksize), dtype=np.result_type(x, gy))
    for tap in product(*(range(k) for k in ksize)):
        win = xg[_window(tap, stride, dilation, out)].reshape(n, g, c // g, -1)
        gw[(Ellipsis, *tap)] = np.einsum("ngkl,ngcl->gkc", gyg, win)
    return gw.reshape(k_out, c // g, *ksize)
