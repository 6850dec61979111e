"""Optional numba kernel for the gate arithmetic of one LSTM step's backward (:mod:`lamina.ops.rnn`):
one pass over the batch instead of some fifteen NumPy calls on small arrays. The matmuls stay in
NumPy, and so does the forward (its tanh and sigmoid are faster vectorized by NumPy than as a
compiled scalar loop). The NumPy formulas in ``lamina/ops/rnn.py`` are the reference (and the
path without numba)."""

from __future__ import annotations

from typing import Any

from . import conv_numba

__all__ = ["lstm_gate_grads"]

lstm_gate_grads: Any = None

if conv_numba.AVAILABLE:
    import numba

    def _gate_grads(dhp, dc_out, c, act, tc, slope, da, dcf):  # pragma: no cover - compiled
        """``da`` (N, 4H), the gradient of the pre-activations, and ``dcf = dc2 f`` (the cell's)."""
        n = c.shape[1]
        for r in range(c.shape[0]):
            for j in range(n):
                i, f, g, o = act[r, j], act[r, n + j], act[r, 2 * n + j], act[r, 3 * n + j]
                t = tc[r, j]
                dc2 = dc_out[r, j] + dhp[r, j] * o * (1 - t * t)
                da[r, j] = dc2 * g * slope[r, j]
                da[r, n + j] = dc2 * c[r, j] * slope[r, n + j]
                da[r, 2 * n + j] = dc2 * i * slope[r, 2 * n + j]
                da[r, 3 * n + j] = dhp[r, j] * t * slope[r, 3 * n + j]
                dcf[r, j] = dc2 * f

    lstm_gate_grads = numba.njit(cache=True, nogil=True)(_gate_grads)
