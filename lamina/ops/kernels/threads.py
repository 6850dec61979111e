"""lamina's CPU threads: one set of worker threads for the matrix products and the chunked
kernels, with NumPy's BLAS on one thread while they run.

Why lamina splits the work itself: NumPy's OpenBLAS runs a large product on threads of its own,
and those threads then spin for a while waiting for the next call. On a small machine they take
the cores that lamina's next kernels (compiled loops, small products, column chunks)
need. So lamina's kernels run with BLAS on one thread (:class:`lamina.runtime.blas_one_thread`,
for the duration of their own calls; :func:`lamina.runtime.tune` does it for the whole process)
where threadpoolctl finds a BLAS whose threads it controls (elsewhere lamina runs its products
and chunks in the calling thread so as not to compete with BLAS's threads), and

- :func:`matmul` cuts a large product into row (or column, or batch) blocks, one per thread;
- :func:`run_parts` runs the parts of a chunked kernel (each a NumPy product or a compiled loop
  that releases the GIL) on the threads at once.

:func:`set_num_threads` / :func:`get_num_threads` (also ``lamina.set_num_threads``, as in torch)
set how many threads: by default the CPUs this process may use, or ``LAMINA_NUM_THREADS``.
One :func:`run_parts` call holds the pool at a time: work that a pool thread hands out again,
or that another thread starts meanwhile, runs in the thread that starts it (no nested waits,
no deadlock). DataLoader workers use one thread, as torch's do. A forked child starts without
the parent's pool threads and builds a pool of its own when it first needs one.

Where the workers run: in a tuned process (:func:`lamina.runtime.tune`, unless
``LAMINA_PIN_THREADS=0``) each hand-off pins the pool's threads to CPUs other than the one the
calling thread is on (Linux). Left free, a woken worker is often queued on the caller's own CPU,
so the two run one after the other. numba's OpenMP threads are pinned the same way before each
parallel kernel (:mod:`.numba_team`). The caller itself is never pinned.

The trade-off: handing work to another thread and waiting for it costs about as much as a
product of :data:`SPLIT_MIN_WORK` multiply-adds, so smaller products run on one thread, where
OpenBLAS's own threads would have split them. ``LAMINA_KEEP_BLAS_THREADS=1`` (before importing
lamina) leaves BLAS's threads alone and products unsplit, for workloads made of large products.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ... import runtime

__all__ = ["get_num_threads", "set_num_threads", "set_pool_threads", "run_parts", "parallel_slots", "busy",
           "matmul", "blas_controlled", "pin_others", "SPLIT_MIN_WORK", "SMALL_GEMM", "small_gemm_rows",
           "matmul_pieces", "matmul_t_pieces"]

# multiply-adds from which a product is split over the threads: handing work to another thread
# and waiting for it (waking an idle core) costs about as much as a few million multiply-adds
SPLIT_MIN_WORK = 1 << 24
# rows (or columns) per block at least: thinner blocks run at a fraction of BLAS's speed
_MIN_BLOCK = 32


def _default_threads() -> int:
    env = os.environ.get("LAMINA_NUM_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"LAMINA_NUM_THREADS: expected a positive integer, got {env!r}") from None
        if n < 1:
            raise ValueError(f"LAMINA_NUM_THREADS: expected a positive integer, got {env!r}")
        return n
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - platforms without affinity
        return max(1, os.cpu_count() or 1)


def _openblas_libs() -> list[Any]:
    """Every OpenBLAS that threadpoolctl found loaded in this process, opened by ctypes (for
    symbols of its own, such as the CBLAS entry points the compiled column-GEMM kernels call)."""
    libs = []
    for info in runtime.blas_info():
        if info.get("internal_api") != "openblas":
            continue
        try:
            libs.append(ctypes.CDLL(info["filepath"]))
        except OSError:  # pragma: no cover - a library that cannot be opened again
            continue
    return libs


# OpenBLAS builds for some cores multiply small products (m·n·k ≤ 100³, B not transposed) without
# packing their operands first, and there a product cut into pieces within that bound runs faster
# than whole. Which builds do is not something lamina can ask: the pieces are off unless
# ``LAMINA_SMALL_GEMM=1`` (measure with bench/bench_conv.py before turning it on).
SMALL_GEMM_WORK = 100**3
SMALL_GEMM = os.environ.get("LAMINA_SMALL_GEMM", "").strip() == "1"


# pieces thinner than this gain nothing (64 output channels: 104-row pieces, no faster)
SMALL_GEMM_MIN_ROWS = 192


def small_gemm_rows(k: int, n: int) -> int:
    """Rows of an ``(m, k) @ (k, n)`` product that keep it within OpenBLAS's small-product
    kernels (:data:`SMALL_GEMM_WORK`), or 0 where there are none, where BLAS keeps threads of
    its own (``LAMINA_KEEP_BLAS_THREADS=1``: it would split the whole product), or where the
    pieces would be thinner than :data:`SMALL_GEMM_MIN_ROWS`."""
    if not (SMALL_GEMM and runtime.blas_controlled()) or k * n <= 0:  # BLAS left its own threads: whole products
        return 0
    rows = SMALL_GEMM_WORK // (k * n)
    return rows if rows >= SMALL_GEMM_MIN_ROWS else 0


def matmul_pieces(a: Any, b: Any, out: Any, piece: int) -> Any:
    """``out[...] = a @ b`` for ``a (m, k)`` and a C-contiguous ``b (k, n)``, as one batch of
    ``piece``-row products (NumPy loops over the batch in one call; see :data:`SMALL_GEMM_WORK`)
    and one product for the rows left over."""
    whole = (a.shape[0] // piece) * piece if piece else 0
    if whole:
        np.matmul(a[:whole].reshape(-1, piece, a.shape[1]), b, out=out[:whole].reshape(-1, piece, b.shape[1]))
    if whole < a.shape[0]:
        np.matmul(a[whole:], b, out=out[whole:])
    return out


def matmul_t_pieces(a: Any, b: Any, piece: int) -> Any:
    """``a.T @ b`` for ``a (m, k)`` and ``b (m, n)``, the sum over ``m`` made of ``piece``-row
    products (a batch in one call, then summed) and one product for the rows left over."""
    whole = (a.shape[0] // piece) * piece if piece else 0
    total = np.matmul(a[whole:].T, b[whole:])
    if whole:
        total += np.matmul(a[:whole].reshape(-1, piece, a.shape[1]).transpose(0, 2, 1),
                           b[:whole].reshape(-1, piece, b.shape[1])).sum(axis=0)
    return total


def blas_controlled() -> bool:
    """Whether lamina's kernels run BLAS on one thread (and so split products themselves)."""
    return runtime.blas_controlled()


_num_threads = 1
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_local = threading.local()  # .in_pool: this thread is one of the pool's
_active = 0  # run_parts calls now running their parts on several threads
_workers: list[int] = []  # the current pool's threads' native ids, as they start
_pinned_for: list[Any] = [None]  # (caller's CPU, workers pinned) of the last pinning


def get_num_threads() -> int:
    """The number of threads lamina's CPU kernels use."""
    return _num_threads


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for lamina's CPU kernels (products, chunked kernels, numba's loops;
    numba's setting holds for the calling thread, as in numba)."""
    _set(n, numba_too=True)


def set_pool_threads(n: int) -> None:
    """Like :func:`set_num_threads` but leaving numba's pool alone (for a forked child, which
    must not touch an OpenMP runtime its parent started)."""
    _set(n, numba_too=False)


def _set(n: int, numba_too: bool) -> None:
    global _num_threads, _pool
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive integer, got {n!r}")
    with _pool_lock:
        _num_threads = int(n)
        old, _pool = _pool, None
    if old is not None:
        old.shutdown(wait=False)  # a run_parts still using it keeps its own reference
    if not numba_too:
        return
    from . import conv_numba

    if conv_numba.AVAILABLE:
        import numba

        numba.set_num_threads(min(int(n), numba.config.NUMBA_NUM_THREADS))


def _mark_pool_thread(registry: list[int]) -> None:
    _local.in_pool = True
    registry.append(threading.get_native_id())  # the pool's own list: a retired pool's threads are never pinned


def _pin_setup() -> Any:
    """libc's ``sched_getcpu`` where threads can be pinned (Linux), else None."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        fn = ctypes.CDLL(None).sched_getcpu
    except (OSError, AttributeError):  # pragma: no cover - no glibc
        return None
    fn.argtypes = []
    fn.restype = ctypes.c_int
    return fn


_getcpu = _pin_setup()


def _present(tids: list[int]) -> bool:
    """Whether every id in ``tids`` still names a thread of this process."""
    try:
        present = {int(t) for t in os.listdir("/proc/self/task")}
    except (OSError, ValueError):  # pragma: no cover
        return False
    return all(t in present for t in tids)


def pin_others(tids: list[int], memo: list[Any]) -> bool:
    """Pin the threads ``tids`` (native ids of this process's threads) one CPU each, in turn
    after the calling thread's among the CPUs it may use (so none shares the caller's CPU
    unless there are more threads than other CPUs), unless ``memo[0]`` says they already are:
    it keeps the caller's CPU, its allowed CPUs and the list last pinned. A no-op where threads
    are not pinned (a process not tuned, see :func:`lamina.runtime.pinning`; not Linux with
    glibc; one CPU allowed). Returns False, pinning nothing, where one of ``tids`` has ended (its
    id could name another thread by now); never raises."""
    if _getcpu is None or not tids or not runtime.pinning():
        return True
    try:
        cpu = _getcpu()
        allowed = sorted(os.sched_getaffinity(0))
    except OSError:  # pragma: no cover
        return True
    key = (cpu, tuple(allowed), len(tids), id(tids))
    if memo[0] == key:
        return True
    if not _present(tids):
        return False
    if cpu in allowed and len(allowed) >= 2:
        start = allowed.index(cpu)
        for k, tid in enumerate(list(tids)):
            try:
                os.sched_setaffinity(tid, {allowed[(start + 1 + k) % len(allowed)]})
            except OSError:  # CPUs taken away meanwhile: leave it where it is
                pass
    memo[0] = key
    return True


def _acquire() -> ThreadPoolExecutor | None:
    """The pool, reserved for one run_parts call (``_active`` raised), or None where parts
    must run in the calling thread: one thread, a pool thread, or another call's parts running."""
    global _pool, _active, _workers
    if getattr(_local, "in_pool", False):
        return None
    with _pool_lock:
        if _active or _num_threads == 1 or not runtime.blas_controlled():
            return None
        if _pool is None:
            _workers = []
            _pool = ThreadPoolExecutor(max_workers=_num_threads - 1, thread_name_prefix="lamina",
                                       initializer=_mark_pool_thread, initargs=(_workers,))
            _pinned_for[0] = None
        _active += 1
        return _pool


def _release() -> None:
    global _active
    with _pool_lock:
        _active -= 1


def _after_fork_in_child() -> None:
    """A forked child has none of the parent's pool threads, and a lock or a count of running
    parts that another parent thread held at the fork would never be released there."""
    global _pool, _pool_lock, _active, _workers
    _pool, _pool_lock, _active, _workers = None, threading.Lock(), 0, []
    _pinned_for[0] = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def busy() -> bool:
    """Whether parts of a :func:`run_parts` call are running on several threads now: work
    started then runs in the thread that starts it (numba's parallel loops included, which
    must not start from two threads at once)."""
    return _active > 0


def parallel_slots(parts: int) -> int:
    """How many threads :func:`run_parts` would use for ``parts`` parts from this thread now
    (1 where NumPy's BLAS keeps threads of its own: lamina's would only compete with them).
    A caller that sizes per-thread buffers by it must pass the same number to run_parts and
    index them by part, not by thread."""
    if _active or getattr(_local, "in_pool", False) or not runtime.blas_controlled():
        return 1
    return max(1, min(_num_threads, parts))


def run_parts(fn: Callable[[int], object], parts: int) -> None:
    """Call ``fn(0) … fn(parts − 1)``, at once on up to :func:`get_num_threads` threads (part 0
    in the calling thread), or all in the calling thread where the threads are taken (see
    :func:`parallel_slots`); the first exception raised by a part is raised here, after every
    part handed out has ended."""
    if parts <= 0:
        return
    pool = _acquire() if parts > 1 else None
    if pool is None:
        for j in range(parts):
            fn(j)
        return
    with _ONE_THREAD:  # each part's products on one BLAS thread, as the split assumes
        _run_on_pool(pool, fn, parts)


_ONE_THREAD = runtime.blas_one_thread()


def _run_on_pool(pool: ThreadPoolExecutor, fn: Callable[[int], object], parts: int) -> None:
    error: BaseException | None = None
    futures = []
    try:
        pin_others(_workers, _pinned_for)
        local = [0]
        for j in range(1, parts):
            try:
                futures.append(pool.submit(fn, j))
            except RuntimeError:  # the pool was shut down (interpreter exit, set_num_threads)
                local.append(j)
        for j in local:
            try:
                fn(j)
            except BaseException as e:  # noqa: BLE001 - re-raised below, once the other parts are done
                error = error or e
    finally:
        for f in futures:
            try:
                f.result()
            except BaseException as e:  # noqa: BLE001
                error = error or e
        _release()
    if error is not None:
        raise error


def _blocks(size: int, parts: int) -> list[tuple[int, int]]:
    step = -(-size // parts)
    return [(i, min(size, i + step)) for i in range(0, size, step)]


def matmul(a: Any, b: Any, out: Any = None) -> Any:
    """``np.matmul(a, b, out=out)``, split into blocks over the threads when it is large (by
    the leading batch dim, else rows of ``a``, else columns of ``b``). The blocks write
    disjoint parts of the result: the values are those of ``np.matmul``. Other array types
    (subclasses, CuPy) and outputs that overlap an input go to ``np.matmul`` whole."""
    if (_num_threads == 1 or not runtime.blas_controlled() or type(a) is not np.ndarray or type(b) is not np.ndarray
            or a.ndim < 2 or b.ndim < 2):
        return np.matmul(a, b, out=out)
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    if a.ndim == 2 and b.ndim == 2:
        batch: tuple[int, ...] = ()
        work = m * k * n
    else:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        work = int(np.prod(batch)) * m * k * n
    if (work < SPLIT_MIN_WORK or parallel_slots(_num_threads) == 1
            or (out is not None and (np.may_share_memory(out, a) or np.may_share_memory(out, b)))):
        return np.matmul(a, b, out=out)  # (NumPy copies an output that overlaps an input; blocks would not)
    if out is None:
        out = np.empty((*batch, m, n), dtype=np.result_type(a, b))
    threads = _num_threads
    if batch and batch[0] >= threads:  # by the leading batch dim
        lead = len(batch)
        a_lead = a.ndim == lead + 2 and a.shape[0] != 1
        b_lead = b.ndim == lead + 2 and b.shape[0] != 1
        blocks = _blocks(batch[0], threads)

        def part(j: int) -> None:
            i0, i1 = blocks[j]
            np.matmul(a[i0:i1] if a_lead else a, b[i0:i1] if b_lead else b, out=out[i0:i1])
    elif m >= threads * _MIN_BLOCK:  # by rows
        blocks = _blocks(m, threads)

        def part(j: int) -> None:
            i0, i1 = blocks[j]
            np.matmul(a[..., i0:i1, :], b, out=out[..., i0:i1, :])
    elif n >= threads * _MIN_BLOCK:  # by columns
        blocks = _blocks(n, threads)

        def part(j: int) -> None:
            i0, i1 = blocks[j]
            np.matmul(a, b[..., i0:i1], out=out[..., i0:i1])
    else:
        return np.matmul(a, b, out=out)
    run_parts(part, len(blocks))
    return out


_set(_default_threads(), numba_too=False)
