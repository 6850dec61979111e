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

Each block runs for at least :data:`MIN_BLOCK_S` of timed calls (more than ``repeats`` where
calls are short), so that the median is one of back-to-back calls, as in a training loop, and
not of the first few calls after the pause: on this VM those run slower for several calls
(LeNet's c3 forward: lamina 0.6–1.0 ms over the seven calls after a pause, 0.47 ms back to
back; torch 0.37–0.41 either way: its c3 hardly uses its second thread, 0.33 ms on one). A side effect
for ``bench_models.py``: the two libraries now take different numbers of SGD steps on their
fixed batch while timed, so their weights drift apart (dense float arithmetic either way).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

PAUSE_S = 0.15  # long enough for the other library's spinning threads to go to sleep
MIN_BLOCK_S = 0.1  # timed calls per block at least this long (see above)


def start_lamina_threads() -> None:
    """Import lamina, turn on its process-wide tuning (the benchmark owns its process, as the
    ``lamina`` command does) and start numba's thread pool (a no-op without numba)."""
    from lamina import runtime
    from lamina.ops.kernels import conv_numba

    runtime.tune()

    conv_numba.start_threads()


def set_min_block(seconds: float) -> None:
    """Set :data:`MIN_BLOCK_S` (the scripts' ``--block-s``; 0 gives blocks of ``repeats`` calls
    right after the pause, as before 21:00 UTC on 2026-11-22)."""
    global MIN_BLOCK_S
    MIN_BLOCK_S = max(0.0, float(seconds))


def block_medians(fns: Sequence[Callable[[], object]], repeats: int, rounds: int = 2,
                  min_block_s: float | None = None) -> list[list[float]]:
    """Seconds per call of each fn: ``rounds`` rounds, in each a pause, one warm-up call and
    ``repeats`` timed calls per fn in turn, or more until the block's timed calls take
    ``min_block_s`` (default :data:`MIN_BLOCK_S`). Returns every timed call per fn (pooled
    over rounds)."""
    if min_block_s is None:
        min_block_s = MIN_BLOCK_S
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for fn, t in zip(fns, times):
            time.sleep(PAUSE_S)
            fn()
            spent, count = 0.0, 0
            while count < repeats or spent < min_block_s:
                t0 = time.perf_counter()
                fn()
                dt = time.perf_counter() - t0
                t.append(dt)
                spent += dt
                count += 1
    return times


def median_ms(times: Sequence[float]) -> float:
    return 1e3 * statistics.median(times)
