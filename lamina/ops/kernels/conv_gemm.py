"""Convolution as im2col + GEMM, and its two adjoints, for 1-, 2- and 3-D: array functions only.

Notation: ``x (N, C, *S)``, weight ``w (K, C/g, *k)``, output ``y (N, K, *O)``, ``g`` groups,
``L = ∏O`` output positions, ``R = (C/g)·∏k`` the length of one window of one group.

- :func:`conv_forward`: ``y[n, group] = w[group] (K/g × R) @ colsᵀ[n, group] (R × L)``: one batched
  GEMM that writes NCHW directly (no layout transpose of the output).
- :func:`conv_input_grad`: ``cols_grad = gyᵀ @ w``, then :func:`col2im` (the transposed conv).
- :func:`conv_weight_grad`: ``gw[group] = Σ_n gy[n, group] @ cols[n, group]``.

A 1×1 convolution with stride 1 and no padding needs no column matrix at all: it is a plain GEMM
on the input viewed as ``(N, C, L)``. Each function keeps at most one column-sized buffer alive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .im2col import col2im, im2col

__all__ = ["conv_forward", "conv_input_grad", "conv_weight_grad", "conv_out_size"]


def conv_out_size(size: Sequence[int], ksize: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
                  pad_lo: Sequence[int], pad_hi: Sequence[int]) -> tuple[int, ...]:
    """``floor((S + lo + hi − d·(k − 1) − 1) / s) + 1`` per dim."""
    return tuple((sz + lo + hi - d * (k - 1) - 1) // s + 1
                 for sz, k, s, d, lo, hi in zip(size, ksize, stride, dilation, pad_lo, pad_hi))


def _pointwise(ksize: Sequence[int], stride: Sequence[int], pad_lo: Sequence[int], size: Sequence[int],
               out: Sequence[int]) -> bool:
    return all(k == 1 for k in ksize) and all(s == 1 for s in stride) and not any(pad_lo) and \
        tuple(size) == tuple(out)


def conv_forward(x: Any, w: Any, stride: Sequence[int], dilation: Sequence[int], pad_lo: Sequence[int],
                 out: Sequence[int], groups: int) -> Any:
    """``y (N, K, *out)`` = the cross-correlation of ``x`` with ``w`` (torch's conv)."""
    n, c = x.shape[:2]
    k_out = w.shape[0]
    ksize = w.shape[2:]
    g = groups
    length = int(np.prod(out))
    wg = w.reshape(g, k_out // g, -1)  # (g, K/g, R), R = C/g·∏k, in (c, k…) order
    if _pointwise(ksize, stride, pad_lo, x.shape[2:], out):
        xg = x.reshape(n, g, c // g, length)
        return np.matmul(wg, xg).reshape(n, k_out, *out)
    cols = im2col(x, ksize, stride, dilation, pad_lo, out)  # (N, *out, C, *k)
    colsg = cols.reshape(n, length, g, -1).transpose(0, 2, 3, 1)  # (N, g, R, L) view
    y = np.matmul(wg, colsg)  # (N, g, K/g, L)
    return y.reshape(n, k_out, *out)


def conv_input_grad(gy: Any, w: Any, size: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
                    pad_lo: Sequence[int], groups: int) -> Any:
    """Gradient of :func:`conv_forward` with respect to ``x`` of spatial shape ``size``, which is
    also the transposed convolution of ``gy`` with ``w``: ``gx (N, C, *size)``."""
    n, k_out = gy.shape[:2]
    out = gy.shape[2:]
    ksize = w.shape[2:]
    g = groups
    cg = w.shape[1]
    length = int(np.prod(out))
    wg = w.reshape(g, k_out // g, -1)
    gyg = gy.reshape(n, g, k_out // g, length)
    if _pointwise(ksize, stride, pad_lo, size, out):
        return np.matmul(wg.transpose(0, 2, 1), gyg).reshape(n, g * cg, *size)
    gcols = np.empty((n, length, g, wg.shape[2]), dtype=gy.dtype)
    # (N, g, L, K/g) @ (g, K/g, R) -> (N, g, L, R), written straight into the column layout
    np.matmul(gyg.transpose(0, 1, 3, 2), wg, out=gcols.transpose(0, 2, 1, 3))
    return col2im(gcols.reshape(n, *out, g * cg, *ksize), size, stride, dilation, pad_lo)


def conv_weight_grad(x: Any, gy: Any, ksize: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
                     pad_lo: Sequence[int], groups: int) -> Any:
    """Gradient of :func:`conv_forward` with respect to ``w`` of kernel shape ``ksize``:
    ``gw (K, C/g, *ksize)``, the correlation of ``x`` with ``gy``."""
    n, c = x.shape[:2]
    k_out = gy.shape[1]
    out = gy.shape[2:]
    g = groups
    length = int(np.prod(out))
    gyg = gy.reshape(n, g, k_out // g, length)
    if _pointwise(ksize, stride, pad_lo, x.shape[2:], out):
        xg = x.reshape(n, g, c // g, length)
        return np.matmul(gyg, xg.transpose(0, 1, 3, 2)).sum(0).reshape(k_out, c // g, *ksize)
    cols = im2col(x, ksize, stride, dilation, pad_lo, out)
    colsg = cols.reshape(n, length, g, -1).transpose(0, 2, 1, 3)  # (N, g, L, R)
    if n == 1:
        gw = np.matmul(gyg[0], colsg[0])
    else:
        # one GEMM per group over all images: (K/g, N·L) @ (N·L, R)
        gw = np.stack([np.tensordot(gyg[:, i], colsg[:, i], axes=([0, 2], [0, 1])) for i in range(g)]) \
            if g <= 4 else np.matmul(gyg, colsg).sum(0)
    return gw.reshape(k_out, c // g, *ksize)
