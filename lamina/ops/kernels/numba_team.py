"""Pinning numba's worker threads away from the thread that starts a parallel kernel.

In a tuned process (:func:`lamina.runtime.tune`) numba's OpenMP threads sleep between kernels
(``OMP_WAIT_POLICY=PASSIVE``). Woken for the next kernel, Linux often queues them on the
caller's own CPU, so the "parallel" kernel runs on one core. There :func:`pin_team` pins the
team's threads to the other CPUs, as :mod:`.threads` does for lamina's pool; numba's threading
layer keeps a team per calling thread, so the team's thread ids are found (once, by a tiny
parallel kernel) and remembered per calling thread. Only the ``omp`` and ``workqueue`` layers
are pinned (``tbb`` hands work to threads of its own choosing). Outside a tuned process
nothing is pinned.
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Any

import numpy as np

from ... import runtime
from . import threads

__all__ = ["pin_team", "team_ids"]

_local = threading.local()  # .tids: this thread's team (native ids, the caller excluded); .memo


def _after_fork_in_child() -> None:  # a child has none of the parent's threads: never pin their ids
    global _local
    _local = threading.local()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _gettid_fn() -> Any:
    try:
        fn = ctypes.CDLL(None).gettid  # glibc 2.30+
    except (OSError, AttributeError):  # pragma: no cover - other libcs
        return None
    fn.argtypes = []
    fn.restype = ctypes.c_int
    return fn


_gettid = _gettid_fn() if threads._getcpu is not None else None
_team_kernel: Any = None


def _compile() -> Any:
    import numba
    from numba import prange

    @numba.njit(parallel=True, cache=True)
    def team(out, gettid):  # pragma: no cover - compiled
        for _i in prange(out.shape[0]):  # one iteration per thread of the team
            t = numba.get_thread_id()
            if 0 <= t < out.shape[0]:
                out[t] = gettid()

    return team


def team_ids(refresh: bool = False) -> list[int]:
    """Native ids of the threads numba's parallel kernels started from this thread run on, this
    thread excluded (empty where they cannot be found or pinned); found again when numba's
    thread count changes, or with ``refresh`` (an OpenMP runtime may replace its threads)."""
    global _team_kernel
    if _gettid is None:
        return []
    import numba

    size = numba.get_num_threads()
    tids = getattr(_local, "tids", None)
    if tids is not None and _local.size == size and not refresh:
        return tids
    if _team_kernel is None:
        _team_kernel = _compile()
    out = np.zeros(size, np.int64)
    _team_kernel(out, _gettid)
    tids = []
    if numba.threading_layer() in ("omp", "workqueue"):
        tids = sorted({int(t) for t in out if t > 0} - {threading.get_native_id()})
    _local.tids, _local.size, _local.memo = tids, size, [None]
    return tids


_failed = [False]


def pin_team() -> None:
    """Pin this thread's numba team to CPUs other than this thread's (see the module's text).
    Pinning is only an optimisation: a failure turns it off for the process, with a warning,
    and never reaches the kernel's caller. A no-op unless :func:`lamina.runtime.pinning`."""
    if _gettid is None or _failed[0] or not runtime.pinning():
        return
    try:
        if not threads.pin_others(team_ids(), _local.memo):  # one of them has ended
            threads.pin_others(team_ids(refresh=True), _local.memo)
    except Exception as e:  # noqa: BLE001 - an optimisation must not break the kernel
        _failed[0] = True
        import warnings

        warnings.warn(f"lamina: could not pin numba's threads ({e!r}); they are left unpinned",
                      RuntimeWarning, stacklevel=2)
