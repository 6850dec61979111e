"""Optional numba kernels for training-mode batch norm: fused, parallel passes over the data.

Two memory layouts are served as they come, so that a batch norm between two convs never
transposes: ``rows (M, C)`` — channels-last underneath, the output of a lamina conv — and
``planes (N, C, S)`` — NCHW. Each kernel has a parallel build for large arrays (see
:data:`lamina.ops.kernels.conv_numba.PARALLEL_MIN_SIZE`) and a serial one, and the statistics
are summed in float64.

Forward (three passes): the channel means, the sums of squared deviations from them (the
two-pass variance, no cancellation), then ``y = x·scale + shift``. Backward (two passes):
``Σ gy`` and ``Σ gy·(x − mean)``, then ``gx = gy·α + x·β + γ`` per channel. The deviation
``x − mean`` is recomputed rather than stored, which saves an activation-sized buffer.
"""

from __future__ import annotations

from typing import Any

from . import conv_numba
from .conv_numba import AVAILABLE

__all__ = ["AVAILABLE", "stats_rows", "stats_planes", "affine_rows", "affine_planes", "back_sums_rows",
           "back_sums_planes", "affine2_rows", "affine2_planes"]

stats_rows: Any = None
stats_planes: Any = None
affine_rows: Any = None
affine_planes: Any = None
back_sums_rows: Any = None
back_sums_planes: Any = None
affine2_rows: Any = None
affine2_planes: Any = None

if AVAILABLE:
    import numpy as np
    from numba import prange

    _TASKS = 16  # row blocks of the rows layout: partial sums per block, then one small reduction

    def _stats_rows(x, mean, var):  # pragma: no cover - compiled
        """Per-channel mean and biased variance of ``x (M, C)`` (two passes, float64 sums)."""
        m, c_ = x.shape
        part = np.zeros((_TASKS, c_), np.float64)
        step = (m + _TASKS - 1) // _TASKS
        for t in prange(_TASKS):
            for r in range(t * step, min(m, (t + 1) * step)):
                for c in range(c_):
                    part[t, c] += x[r, c]
        for c in range(c_):
            mean[c] = part[:, c].sum() / m
        part[:] = 0
        for t in prange(_TASKS):
            for r in range(t * step, min(m, (t + 1) * step)):
                for c in range(c_):
                    d = x[r, c] - mean[c]
                    part[t, c] += d * d
        for c in range(c_):
            var[c] = part[:, c].sum() / m

    def _stats_planes(x, mean, var):  # pragma: no cover - compiled
        """Per-channel mean and biased variance of ``x (N, C, S)``, one channel per task."""
        n_, c_, s_ = x.shape
        m = n_ * s_
        for c in prange(c_):
            acc = 0.0
            for n in range(n_):
                for s in range(s_):
                    acc += x[n, c, s]
            mu = acc / m
            acc = 0.0
            for n in range(n_):
                for s in range(s_):
                    d = x[n, c, s] - mu
                    acc += d * d
            mean[c] = mu
            var[c] = acc / m

    def _affine_rows(x, scale, shift, y):  # pragma: no cover - compiled
        """``y[r, c] = x[r, c]·scale[c] + shift[c]``."""
        m, c_ = x.shape
        step = (m + _TASKS - 1) // _TASKS
        for t in prange(_TASKS):
            for r in range(t * step, min(m, (t + 1) * step)):
                for c in range(c_):
                    y[r, c] = x[r, c] * scale[c] + shift[c]

    def _affine_planes(x, scale, shift, y):  # pragma: no cover - compiled
        n_, c_, s_ = x.shape
        for t in prange(n_ * c_):
            n = t // c_
            c = t % c_
            a = scale[c]
            b = shift[c]
            for s in range(s_):
                y[n, c, s] = x[n, c, s] * a + b

    def _back_sums_rows(gy, x, mean, gb, sgd):  # pragma: no cover - compiled
        """``gb[c] = Σ gy``, ``sgd[c] = Σ gy·(x − mean)`` over the rows."""
        m, c_ = x.shape
        p1 = np.zeros((_TASKS, c_), np.float64)
        p2 = np.zeros((_TASKS, c_), np.float64)
        step = (m + _TASKS - 1) // _TASKS
        for t in prange(_TASKS):
            for r in range(t * step, min(m, (t + 1) * step)):
                for c in range(c_):
                    g = gy[r, c]
                    p1[t, c] += g
                    p2[t, c] += g * (x[r, c] - mean[c])
        for c in range(c_):
            gb[c] = p1[:, c].sum()
            sgd[c] = p2[:, c].sum()

    def _back_sums_planes(gy, x, mean, gb, sgd):  # pragma: no cover - compiled
        n_, c_, s_ = x.shape
        for c in prange(c_):
            a1 = 0.0
            a2 = 0.0
            mu = mean[c]
            for n in range(n_):
                for s in range(s_):
                    g = gy[n, c, s]
                    a1 += g
                    a2 += g * (x[n, c, s] - mu)
            gb[c] = a1
            sgd[c] = a2

    def _affine2_rows(gy, x, alpha, beta, gamma, gx):  # pragma: no cover - compiled
        """``gx[r, c] = gy[r, c]·alpha[c] + x[r, c]·beta[c] + gamma[c]``."""
        m, c_ = x.shape
        step = (m + _TASKS - 1) // _TASKS
        for t in prange(_TASKS):
            for r in range(t * step, min(m, (t + 1) * step)):
                for c in range(c_):
                    gx[r, c] = gy[r, c] * alpha[c] + x[r, c] * beta[c] + gamma[c]

    def _affine2_planes(gy, x, alpha, beta, gamma, gx):  # pragma: no cover - compiled
        n_, c_, s_ = x.shape
        for t in prange(n_ * c_):
            n = t // c_
            c = t % c_
            a = alpha[c]
            b = beta[c]
            g = gamma[c]
            for s in range(s_):
                gx[n, c, s] = gy[n, c, s] * a + x[n, c, s] * b + g

    def _jit(fn):
        return conv_numba.compile_pair(fn)

    def _jit_sum(fn):  # the channel-per-task sums reduce in vector lanes (reassociated), as torch's do
        return conv_numba.compile_pair(fn, fastmath={"reassoc"})

    stats_rows = _jit(_stats_rows)
    stats_planes = _jit_sum(_stats_planes)
    affine_rows = _jit(_affine_rows)
    affine_planes = _jit(_affine_planes)
    back_sums_rows = _jit(_back_sums_rows)
    back_sums_planes = _jit_sum(_back_sums_planes)
    affine2_rows = _jit(_affine2_rows)
    affine2_planes = _jit(_affine2_planes)
