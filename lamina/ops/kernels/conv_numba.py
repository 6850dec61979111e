"""Optional numba kernels for im2col / col2im (``pip install numba``).

When numba is importable, :data:`AVAILABLE` is True and :func:`im2col3d` / :func:`col2im3d`
are compiled (lazily, on first call, with an on-disk cache). Otherwise the pure-NumPy kernels
in :mod:`lamina.ops.kernels.im2col` do the same work; both paths are tested against each other.
Set the environment variable ``LAMINA_NO_NUMBA=1`` to force the NumPy path.

The kernels work on 3 spatial dims; 1-D and 2-D data come in with singleton dims added.
Column layout: ``cols[n, o0, o1, o2, c, k0, k1, k2]`` (what ``torch.nn.functional.unfold``
returns, transposed so that each output position is one contiguous row).
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["AVAILABLE", "im2col3d", "col2im3d"]

AVAILABLE = False
im2col3d: Any = None
col2im3d: Any = None

if not os.environ.get("LAMINA_NO_NUMBA"):
    try:  # numba is an optional accelerator: any failure leaves the NumPy path in charge
        import numba as _nb

        AVAILABLE = True
    except Exception:  # pragma: no cover - depends on the environment
        AVAILABLE = False

if AVAILABLE:

    @_nb.njit(parallel=True, cache=True, nogil=True)
    def im2col3d(x, cols, s0, s1, s2, d0, d1, d2, p0, p1, p2):  # pragma: no cover - compiled
        """Fill ``cols`` (N, O0, O1, O2, C, K0, K1, K2) from ``x`` (N, C, S0, S1, S2);
        positions outside ``x`` (the zero padding) get 0."""
        n_, c_, S0, S1, S2 = x.shape
        O0, O1, O2 = cols.shape[1], cols.shape[2], cols.shape[3]
        K0, K1, K2 = cols.shape[5], cols.shape[6], cols.shape[7]
        for t in _nb.prange(n_ * O0):
            n = t // O0
            a = t % O0
            for b in range(O1):
                for e in range(O2):
                    for c in range(c_):
                        for i in range(K0):
                            ii = a * s0 + i * d0 - p0
                            for j in range(K1):
                                jj = b * s1 + j * d1 - p1
                                for k in range(K2):
                                    kk = e * s2 + k * d2 - p2
                                    if 0 <= ii < S0 and 0 <= jj < S1 and 0 <= kk < S2:
                                        cols[n, a, b, e, c, i, j, k] = x[n, c, ii, jj, kk]
                                    else:
                                        cols[n, a, b, e, c, i, j, k] = 0

    @_nb.njit(parallel=True, cache=True, nogil=True)
    def col2im3d(cols, gx, s0, s1, s2, d0, d1, d2, p0, p1, p2):  # pragma: no cover - compiled
        """Scatter-add ``cols`` (N, O0, O1, O2, C, K0, K1, K2) into the zeroed ``gx``
        (N, C, S0, S1, S2); entries that fall into the padding are dropped."""
        n_, c_, S0, S1, S2 = gx.shape
        O0, O1, O2 = cols.shape[1], cols.shape[2], cols.shape[3]
        K0, K1, K2 = cols.shape[5], cols.shape[6], cols.shape[7]
        for n in _nb.prange(n_):  # one image per task: no write races; gx[n] stays in cache
            for a in range(O0):
                for b in range(O1):
                    for e in range(O2):
                        for c in range(c_):
                            for i in range(K0):
                                ii = a * s0 + i * d0 - p0
                                if ii < 0 or ii >= S0:
                                    continue
                                for j in range(K1):
                                    jj = b * s1 + j * d1 - p1
                                    if jj < 0 or jj >= S1:
                                        continue
                                    for k in range(K2):
                                        kk = e * s2 + k * d2 - p2
                                        if 0 <= kk < S2:
                                            gx[n, c, ii, jj, kk] += cols[n, a, b, e, c, i, j, k]
