"""Direct convolution on NCHW arrays (numba only; 1-D and 2-D): no column matrix, no padded copy.

For the convolutions that im2col serves badly — depthwise and grouped ones with few channels per
group, and convs over few input channels (a network's first layer: a 1-channel im2col copies
runs of one float) — the compiled loops of :mod:`.conv_numba` multiply-add whole rows of the
input image into rows of the output per kernel tap, with the padding handled by the loop bounds.
:func:`direct_ok` says when they run.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from typing import Any

import numpy as np

from . import conv_numba
from .im2col import use_numba

__all__ = ["direct_ok", "direct_forward", "direct_input_grad", "direct_weight_grad", "DIRECT_MAX_WINDOW"]

# grouped convs run on the direct kernels where one window of one output (C/g · ∏k multiply-adds)
# is at most this long (ResNeXt's 4 channels per group, 3×3: 14 against 8 ms forward, 85 against
# 21 ms forward + backward); one channel per group always (depthwise, and 1-channel images:
# LeNet's first layer 13 against 5 ms forward + backward). With several input channels and one
# group, im2col + GEMM wins (3→16 channels 3×3: 1.3 against 3.6 ms forward; 6→16 5×5: 0.7
# against 6.3 ms), so those stay there.
DIRECT_MAX_WINDOW = 64
# multiply-adds from which the parallel build runs (below it, waking the pool costs more)
PARALLEL_MIN_WORK = 1 << 23


def _is_channels_last(a: Any) -> bool:
    return a.shape[1] > 1 and not a.flags.c_contiguous and a.transpose(0, *range(2, a.ndim), 1).flags.c_contiguous


def direct_ok(x: Any, wshape: Sequence[int], groups: int) -> bool:
    """Whether a conv of ``x`` (or the transposed conv of an output gradient ``x``) with a weight
    of shape ``wshape`` runs on the direct kernels: numba on, 1-D or 2-D, float32/float64, ``x``
    not channels-last underneath (the output of an im2col conv, which the column path reads with
    no transpose), and one channel per group or a grouped conv with a short window."""
    if not (use_numba() and x.ndim in (3, 4) and x.dtype in (np.float32, np.float64)) or _is_channels_last(x):
        return False
    cg = wshape[1]
    return cg == 1 or (groups > 1 and cg * prod(wshape[2:]) <= DIRECT_MAX_WINDOW)


def _planes(a: Any) -> Any:
    """``(N, C, *S)`` as a C-contiguous ``(N, C, H, W)`` (1-D data with ``H = 1``)."""
    a = np.ascontiguousarray(a)
    return a.reshape(a.shape[0], a.shape[1], *((1,) * (4 - a.ndim)), *a.shape[2:])


def _args(stride: Sequence[int], dilation: Sequence[int], pad_lo: Sequence[int]) -> tuple[int, ...]:
    def two(t: Sequence[int], fill: int) -> tuple[int, ...]:
        return (fill,) * (2 - len(t)) + tuple(int(v) for v in t)
    return (*two(stride, 1), *two(dilation, 1), *two(pad_lo, 0))


def _run(kernel: Any, work: int, *args: Any) -> None:
    (kernel.parallel if work >= PARALLEL_MIN_WORK else kernel.serial)(*args)


def _kernel(name: str, k_out: int, groups: int, wk: Any) -> tuple[Any, Any]:
    """The depthwise kernel (taps ``(C, k0, k1)``) where each group has one input and one output
    channel, else the general one (``(K, C/g, k0, k1)``)."""
    if wk.shape[1] == 1 and k_out == groups:
        return getattr(conv_numba, f"depthwise_{name}_nc2d"), wk.reshape(wk.shape[0], *wk.shape[2:])
    return getattr(conv_numba, f"direct_{name}_nc2d"), wk


def direct_forward(x: Any, w: Any, stride: Sequence[int], dilation: Sequence[int], pad_lo: Sequence[int],
                   out: Sequence[int], groups: int) -> Any:
    """``y (N, K, *out)`` of ``x (N, C, *S)`` and ``w (K, C/g, *k)``."""
    y = np.empty((x.shape[0], w.shape[0], *out), dtype=x.dtype)
    kernel, wk = _kernel("fwd", w.shape[0], groups, _planes(w))
    _run(kernel, y.size * prod(w.shape[1:]), _planes(x), wk, _planes(y), *_args(stride, dilation, pad_lo))
    return y


def direct_input_grad(gy: Any, w: Any, size: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
                      pad_lo: Sequence[int], groups: int) -> Any:
    """Gradient in ``x``: ``(N, C, *size)``."""
    gx = np.zeros((gy.shape[0], w.shape[1] * groups, *size), dtype=gy.dtype)
    kernel, wk = _kernel("gx", w.shape[0], groups, _planes(w))
    _run(kernel, gy.size * prod(w.shape[1:]), _planes(gy), wk, _planes(gx), *_args(stride, dilation, pad_lo))
    return gx


def direct_weight_grad(x: Any, gy: Any, ksize: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
                       pad_lo: Sequence[int], groups: int) -> Any:
    """Gradient in ``w``: ``(K, C/g, *ksize)``."""
    k_out, cg = gy.shape[1], x.shape[1] // groups
    gw = np.empty((k_out, cg, *ksize), dtype=x.dtype)
    kernel, gwk = _kernel("gw", k_out, groups, _planes(gw))
    _run(kernel, gy.size * cg * prod(ksize), _planes(x), _planes(gy), gwk, *_args(stride, dilation, pad_lo))
    return gw
