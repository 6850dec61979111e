"""Direct convolution on NCHW arrays (numba only; 1-D and 2-D): no column matrix.

For the convolutions that im2col serves badly — depthwise and grouped ones with few channels per
group, and convs over few input channels (a network's first layer: a 1-channel im2col copies
runs of one float) — the compiled loops of :mod:`.direct_numba` multiply-add input rows into
output rows per kernel tap. At stride 1 they work on flat zero-padded planes, one contiguous
multiply-add per tap over a whole plane (depthwise convs through per-thread scratch planes,
:mod:`.depthwise_numba`; the others on a padded copy of the input); otherwise row by row on the
input as it is, with the padding handled by the loop bounds. :mod:`.conv_select` says when they run.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from typing import Any

import numpy as np

from . import depthwise_numba, direct_numba, threads

__all__ = ["direct_forward", "direct_input_grad", "direct_weight_grad", "DIRECT_MAX_WINDOW",
           "FLAT_MAX_WINDOW"]

# grouped convs run on the direct kernels where one window of one output (C/g · ∏k multiply-adds)
# is at most this long (ResNeXt's 4 channels per group, 3×3: there im2col's per-group products are
# too thin to pay for the column copy); one channel per group always (depthwise, and 1-channel
# images such as LeNet's first layer).
DIRECT_MAX_WINDOW = 64
# with one group and stride 1, the flat kernels where the window is at most this long (a
# network's first layer, 3→16 channels 3×3, is faster there); longer windows go to im2col + GEMM
# (6→16 channels 5×5 is faster as one GEMM)
FLAT_MAX_WINDOW = 32
# multiply-adds from which the parallel build runs (below it, waking the pool costs more; lower
# than one might expect because in a tuned process numba's team is pinned away from the caller,
# numba_team.py, so that a woken thread does not queue behind it)
PARALLEL_MIN_WORK = 1 << 21


def _planes(a: Any) -> Any:
    """``(N, C, *S)`` as a C-contiguous ``(N, C, H, W)`` (1-D data with ``H = 1``)."""
    a = np.ascontiguousarray(a)
    return a.reshape(a.shape[0], a.shape[1], *((1,) * (4 - a.ndim)), *a.shape[2:])


def _hw(t: Sequence[int], fill: int) -> tuple[int, int]:
    """A 1- or 2-D size as (H, W), with ``fill`` for H in 1-D."""
    return ((fill,) * (2 - len(t)) + tuple(int(v) for v in t))  # type: ignore[return-value]


def _args(stride: Sequence[int], dilation: Sequence[int], pad_lo: Sequence[int]) -> tuple[int, ...]:
    return (*_hw(stride, 1), *_hw(dilation, 1), *_hw(pad_lo, 0))


def _run(kernel: Any, work: int, *args: Any) -> None:
    (kernel.parallel if work >= PARALLEL_MIN_WORK and not threads.busy() else kernel.serial)(*args)


def _run_chunks(kernel: Any, work: int, planes: int, *args: Any) -> None:
    """:func:`_run` for the depthwise flat kernels, which take the number of plane chunks last
    (four per thread in parallel, for balance; one in the serial build)."""
    if work >= PARALLEL_MIN_WORK and not threads.busy():
        kernel.parallel(*args, max(1, min(planes, 4 * threads.get_num_threads())))
    else:
        kernel.serial(*args, 1)


def _depthwise(wshape: Sequence[int], groups: int) -> bool:
    return wshape[1] == 1 and wshape[0] == groups


# ----------------------------------------------------------------------------- stride 1: flat planes

def _flat_input(x: Any, pad_lo: Sequence[int], ext: tuple[int, int]) -> Any:
    """``x (N, C, *S)`` zero-padded into flat planes ``(N, C, (E0 + 1)·E1)`` at ``pad_lo``."""
    n, c = x.shape[:2]
    (p0, p1), (s0, s1) = _hw(pad_lo, 0), _hw(x.shape[2:], 1)
    xp = np.zeros((n, c, ext[0] + 1, ext[1]), dtype=x.dtype)
    xp[:, :, p0:p0 + s0, p1:p1 + s1] = x.reshape(n, c, s0, s1)
    return xp.reshape(n, c, (ext[0] + 1) * ext[1])


def _flat_ext(out: Sequence[int], ksize: Sequence[int], dilation: Sequence[int], pad_lo: Sequence[int],
              size: Sequence[int]) -> tuple[int, int]:
    """The padded plane: every window, and the whole input at ``pad_lo`` (a transposed conv's
    output padding can put input rows past the last window)."""
    (o0, o1), (k0, k1), (d0, d1) = _hw(out, 1), _hw(ksize, 1), _hw(dilation, 1)
    (p0, p1), (s0, s1) = _hw(pad_lo, 0), _hw(size, 1)
    return max(o0 + d0 * (k0 - 1), p0 + s0), max(o1 + d1 * (k1 - 1), p1 + s1)


def _flat_grad(gy: Any, e1: int) -> Any:
    """``gy (N, K, *O)`` as full-width flat planes ``(N, K, O0·E1)``, zeros past each row."""
    n, k = gy.shape[:2]
    o0, o1 = _hw(gy.shape[2:], 1)
    gf = np.zeros((n, k, o0, e1), dtype=gy.dtype)
    gf[:, :, :, :o1] = gy.reshape(n, k, o0, o1)
    return gf.reshape(n, k, o0 * e1)


def _flat_forward(x: Any, w: Any, dilation: Sequence[int], pad_lo: Sequence[int], out: Sequence[int],
                  bias: Any) -> Any:
    n, k_out = x.shape[0], w.shape[0]
    ext = _flat_ext(out, w.shape[2:], dilation, pad_lo, x.shape[2:])
    o0, o1 = _hw(out, 1)
    yf = np.empty((n, k_out, o0, ext[1]), dtype=x.dtype)
    d0, d1 = _hw(dilation, 1)
    _run(direct_numba.flat_fwd, yf.size * prod(w.shape[1:]), _flat_input(x, pad_lo, ext), _planes(w),
         yf.reshape(n, k_out, o0 * ext[1]), d0, d1, ext[1], bias)
    return np.ascontiguousarray(yf[:, :, :, :o1]).reshape(n, k_out, *out)


def _flat_input_grad(gy: Any, w: Any, size: Sequence[int], dilation: Sequence[int], pad_lo: Sequence[int],
                     groups: int) -> Any:
    n, c = gy.shape[0], w.shape[1] * groups
    ext = _flat_ext(gy.shape[2:], w.shape[2:], dilation, pad_lo, size)
    gxp = np.zeros((n, c, ext[0] + 1, ext[1]), dtype=gy.dtype)
    d0, d1 = _hw(dilation, 1)
    _run(direct_numba.flat_gx, gy.size * prod(w.shape[1:]), _flat_grad(gy, ext[1]), _planes(w),
         gxp.reshape(n, c, (ext[0] + 1) * ext[1]), d0, d1, ext[1])
    (p0, p1), (s0, s1) = _hw(pad_lo, 0), _hw(size, 1)
    return np.ascontiguousarray(gxp[:, :, p0:p0 + s0, p1:p1 + s1]).reshape(n, c, *size)


def _flat_weight_grad(x: Any, gy: Any, ksize: Sequence[int], dilation: Sequence[int], pad_lo: Sequence[int],
                      groups: int) -> Any:
    k_out, cg = gy.shape[1], x.shape[1] // groups
    ext = _flat_ext(gy.shape[2:], ksize, dilation, pad_lo, x.shape[2:])
    gw = np.zeros((k_out, cg, *ksize), dtype=x.dtype)  # the kernel reads it for its accumulator's dtype
    d0, d1 = _hw(dilation, 1)
    _run(direct_numba.flat_gw, gy.size * cg * prod(ksize), _flat_input(x, pad_lo, ext), _flat_grad(gy, ext[1]),
         _planes(gw), d0, d1, ext[1])
    return gw


def _dw_geometry(out: Sequence[int], ksize: Sequence[int], dilation: Sequence[int], pad_lo: Sequence[int],
                 size: Sequence[int]) -> tuple[int, ...]:
    """``d0, d1, p0, p1, e0, e1`` of the depthwise flat kernels."""
    return (*_hw(dilation, 1), *_hw(pad_lo, 0), *_flat_ext(out, ksize, dilation, pad_lo, size))


def _dw_taps(w: Any) -> Any:
    """A depthwise weight ``(C, 1, *k)`` as the kernels' taps ``(C, k0, k1)``."""
    wk = _planes(w)
    return wk.reshape(wk.shape[0], *wk.shape[2:])


def _dw_flat_forward(x: Any, w: Any, dilation: Sequence[int], pad_lo: Sequence[int], out: Sequence[int],
                     bias: Any) -> Any:
    y = np.empty((x.shape[0], w.shape[0], *out), dtype=x.dtype)
    geometry = _dw_geometry(out, w.shape[2:], dilation, pad_lo, x.shape[2:])
    _run_chunks(depthwise_numba.dw_flat_fwd, y.size * prod(w.shape[2:]), x.shape[0] * x.shape[1],
                _planes(x), _dw_taps(w), _planes(y), *geometry, bias)
    return y


def _dw_flat_input_grad(gy: Any, w: Any, size: Sequence[int], dilation: Sequence[int],
                        pad_lo: Sequence[int]) -> Any:
    gx = np.empty((gy.shape[0], w.shape[0], *size), dtype=gy.dtype)
    geometry = _dw_geometry(gy.shape[2:], w.shape[2:], dilation, pad_lo, size)
    _run_chunks(depthwise_numba.dw_flat_gx, gy.size * prod(w.shape[2:]), gy.shape[0] * gy.shape[1],
                _planes(gy), _dw_taps(w), _planes(gx), *geometry)
    return gx


def _dw_flat_weight_grad(x: Any, gy: Any, ksize: Sequence[int], dilation: Sequence[int],
                         pad_lo: Sequence[int]) -> Any:
    gw = np.empty((gy.shape[1], 1, *ksize), dtype=x.dtype)
    _run(depthwise_numba.dw_flat_gw, gy.size * prod(ksize), _planes(x), _planes(gy), _dw_taps(gw),
         *_dw_geometry(gy.shape[2:], ksize, dilation, pad_lo, x.shape[2:]))
    return gw


def _kernel(name: str, k_out: int, groups: int, wk: Any) -> tuple[Any, Any]:
    """The depthwise kernel (taps ``(C, k0, k1)``) where each group has one input and one output
    channel, else the general one (``(K, C/g, k0, k1)``)."""
    if wk.shape[1] == 1 and k_out == groups:
        return getattr(direct_numba, f"depthwise_{name}_nc2d"), wk.reshape(wk.shape[0], *wk.shape[2:])
    return getattr(direct_numba, f"direct_{name}_nc2d"), wk


def direct_forward(x: Any, w: Any, stride: Sequence[int], dilation: Sequence[int], pad_lo: Sequence[int],
                   out: Sequence[int], groups: int, bias: Any = None) -> Any:
    """``y (N, K, *out)`` of ``x (N, C, *S)`` and ``w (K, C/g, *k)``, plus ``bias (K,)`` if given
    (the kernels start each output plane from it: no extra pass over the output)."""
    b = np.zeros(w.shape[0], dtype=x.dtype) if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)
    if all(s == 1 for s in stride):
        if _depthwise(w.shape, groups):
            return _dw_flat_forward(x, w, dilation, pad_lo, out, b)
        return _flat_forward(x, w, dilation, pad_lo, out, b)
    y = np.empty((x.shape[0], w.shape[0], *out), dtype=x.dtype)
    kernel, wk = _kernel("fwd", w.shape[0], groups, _planes(w))
    _run(kernel, y.size * prod(w.shape[1:]), _planes(x), wk, _planes(y), *_args(stride, dilation, pad_lo), b)
    return y


def direct_input_grad(gy: Any, w: Any, size: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
                      pad_lo: Sequence[int], groups: int) -> Any:
    """Gradient in ``x``: ``(N, C, *size)``."""
    if all(s == 1 for s in stride):
        if _depthwise(w.shape, groups):
            return _dw_flat_input_grad(gy, w, size, dilation, pad_lo)
        return _flat_input_grad(gy, w, size, dilation, pad_lo, groups)
    gx = np.zeros((gy.shape[0], w.shape[1] * groups, *size), dtype=gy.dtype)
    kernel, wk = _kernel("gx", w.shape[0], groups, _planes(w))
    _run(kernel, gy.size * prod(w.shape[1:]), _planes(gy), wk, _planes(gx), *_args(stride, dilation, pad_lo))
    return gx


def direct_weight_grad(x: Any, gy: Any, ksize: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
                       pad_lo: Sequence[int], groups: int) -> Any:
    """Gradient in ``w``: ``(K, C/g, *ksize)``."""
    k_out, cg = gy.shape[1], x.shape[1] // groups
    if all(s == 1 for s in stride):
        if _depthwise((k_out, cg), groups):
            return _dw_flat_weight_grad(x, gy, ksize, dilation, pad_lo)
        return _flat_weight_grad(x, gy, ksize, dilation, pad_lo, groups)
    gw = np.empty((k_out, cg, *ksize), dtype=x.dtype)
    kernel, gwk = _kernel("gw", k_out, groups, _planes(gw))
    _run(kernel, gy.size * cg * prod(ksize), _planes(x), _planes(gy), gwk, *_args(stride, dilation, pad_lo))
    return gw
