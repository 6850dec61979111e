"""Shared set-up and timing for the benchmarks (lamina beside torch in one process).

Two libraries with thread pools of their own share the cores here: numpy's OpenBLAS (pthreads)
and numba's OpenMP pool on lamina's side, torch's OpenMP pool on the other. Two things keep
them from distorting each other's times:

- :func:`start_lamina_threads` runs before ``import torch``. numba then starts its pool on its
  own OpenMP runtime, with lamina's wait policy (threads sleep between kernels). Started after
  torch, numba binds torch's already-loaded ``libgomp`` instead, whose threads spin after every
  kernel and fight OpenBLAS's: a conv's backward GEMMs then took 23 ms instead of 13.
- :func:`block_medians` times each library in a block of its own after a pause, not call by
  call alternately: threads that one library leaves spinning after a call (torch's OpenMP
  threads, OpenBLAS's workers) otherwise slow the other library's next call.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

PAUSE_S = 0.15  # long enough for the other library's spinning threads to go to sleep


def start_lamina_threads() -> None:
    """Import lamina and start numba's thread pool (a no-op without numba)."""
    from lamina.ops.kernels import conv_numba

    conv_numba.start_threads()


def block_medians(fns: Sequence[Callable[[], object]], repeats: int, rounds: int = 2) -> list[list[float]]:
    """Seconds per call of each fn: ``rounds`` rounds, in each a pause, one warm-up call and
    ``repeats`` timed calls per fn in turn. Returns every timed call per fn (pooled over rounds)."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for fn, t in zip(fns, times):
            time.sleep(PAUSE_S)
            fn()
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn()
                t.append(time.perf_counter() - t0)
    return times


def median_ms(times: Sequence[float]) -> float:
    return 1e3 * statistics.median(times)
