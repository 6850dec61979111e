"""Floor 0: lamina's process resources — BLAS threads, the allocator, thread pinning, fork.

Importing lamina and running its ops changes nothing process-wide: NumPy's BLAS keeps its
thread count, no environment variable is set, glibc's ``malloc`` keeps its settings and no
thread of the caller is pinned. What lamina's kernels need they take for the duration of
their own calls and give back:

- :class:`blas_one_thread` (a context manager and a decorator) keeps BLAS on one thread while
  a kernel splits its products over lamina's own threads or calls BLAS from compiled loops,
  and restores the thread count when the outermost such scope ends. The count is process-wide
  in every BLAS library, so another thread's product that runs meanwhile runs on one thread too.
- :func:`blas_info` / :func:`blas_controlled` / :func:`openblas_present` describe the BLAS
  libraries through threadpoolctl's API (one controller, built on first use: building one
  scans the loaded libraries and costs milliseconds). These are the BLAS libraries loaded by
  then, NumPy's among them: the one lamina's kernels call; a BLAS loaded later (another
  library's) is left alone.

Tuning that can only be process-wide is opt-in: :func:`tune` (or ``LAMINA_TUNE=1`` in the
environment when lamina is imported) puts BLAS on one thread for the whole process, sets
``OMP_WAIT_POLICY=PASSIVE`` for numba's OpenMP threads (only effective before numba starts
its threads; a value already set is kept), keeps freed memory for reuse (:mod:`.memory`) and
pins lamina's and numba's worker threads away from the calling thread (``LAMINA_PIN_THREADS=0``
leaves them free). The ``lamina`` command and the ``bench/`` scripts call it: they own their
process.

Fork: :func:`in_forked_child` tells the kernels that this process was forked from one that
may have started threads (lamina's pool, numba's threading layer), which do not exist in the
child; the kernels then rebuild their pool and run numba's serial builds.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from functools import wraps
from typing import Any

from . import memory

__all__ = ["blas_info", "blas_controlled", "openblas_present", "blas_one_thread", "tune", "tuned", "pinning",
           "in_forked_child", "memory"]

_controller: Any = None
_blas: list[Any] | None = None  # threadpoolctl's controllers of the BLAS libraries, found once
_lock = threading.Lock()
_depth = 0  # blas_one_thread scopes open now, all threads together
_saved: list[tuple[Any, int]] = []  # (library, its thread count) to restore when the last scope ends
_state = {"tuned": False, "pin": False, "forked": False}


def _blas_libs() -> list[Any]:
    """threadpoolctl's controllers of the loaded BLAS libraries (empty without threadpoolctl or
    with ``LAMINA_KEEP_BLAS_THREADS=1``, which leaves BLAS alone and products unsplit)."""
    global _controller, _blas
    if _blas is None:
        if os.environ.get("LAMINA_KEEP_BLAS_THREADS", "").strip() == "1":
            _blas = []
            return _blas
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency
            _blas = []
            return _blas
        import numpy  # noqa: F401 - its BLAS must be loaded before the controller scans

        _controller = ThreadpoolController()
        _blas = [lib for lib in _controller.lib_controllers if lib.user_api == "blas"]
    return _blas


def blas_info() -> list[dict[str, Any]]:
    """threadpoolctl's description of each BLAS library lamina controls (``internal_api``,
    ``num_threads``, ``architecture``, ``filepath`` …)."""
    return [lib.info() for lib in _blas_libs()]


def blas_controlled() -> bool:
    """Whether lamina can put BLAS on one thread for its kernels (and so splits products over
    threads of its own)."""
    return bool(_blas_libs())


def openblas_present() -> bool:
    """Whether an OpenBLAS is among the BLAS libraries (the compiled column-GEMM kernels call it)."""
    return any(lib.internal_api == "openblas" for lib in _blas_libs())


class blas_one_thread:  # noqa: N801 - used like a function: ``with blas_one_thread():``
    """BLAS on one thread inside the scope, its thread counts restored when the outermost scope
    (of any thread) ends. Cheap: after :func:`tune` a flag test; otherwise one query per
    library on entry (and a set where the count is not 1) and a set on exit. As a decorator,
    the whole call runs in the scope."""

    __slots__ = ()

    def __enter__(self) -> None:
        global _depth
        if _state["tuned"]:
            return
        libs = _blas_libs()
        if not libs:
            return
        with _lock:
            if _depth == 0:
                for lib in libs:
                    n = lib.get_num_threads()
                    if n is not None and n != 1:
                        lib.set_num_threads(1)
                        _saved.append((lib, n))
            _depth += 1

    def __exit__(self, *exc: object) -> None:
        global _depth
        if _state["tuned"] or not _blas:
            return
        with _lock:
            if _depth == 0:  # a scope opened before a fork, in another thread of the parent
                return
            _depth -= 1
            if _depth == 0:
                for lib, n in _saved:
                    lib.set_num_threads(n)
                _saved.clear()

    def __call__(self, fn: Any) -> Any:
        @wraps(fn)
        def scoped(*args: Any, **kwargs: Any) -> Any:
            with self:
                return fn(*args, **kwargs)

        return scoped


def tuned() -> bool:
    """Whether :func:`tune` has run in this process."""
    return _state["tuned"]


def pinning() -> bool:
    """Whether lamina pins its and numba's worker threads (only after :func:`tune`)."""
    return _state["pin"]


def in_forked_child() -> bool:
    """Whether this process is a fork of one that imported lamina (its threads are gone here)."""
    return _state["forked"]


def tune(pin: bool | None = None) -> dict[str, bool]:
    """Apply lamina's process-wide tuning (see the module's text) for a process that lamina owns.

    Args:
        pin: pin worker threads; by default unless ``LAMINA_PIN_THREADS=0``.

    Returns:
        What is in force: ``blas_one_thread``, ``passive_wait`` (numba's OpenMP threads sleep
        between kernels), ``keep_memory``, ``pin``.
    """
    for lib in _blas_libs():
        lib.set_num_threads(1)
    with _lock:
        _saved.clear()  # one thread now for good: a scope open meanwhile restores nothing
    _state["tuned"] = bool(_blas)
    parallel = sys.modules.get("numba.np.ufunc.parallel")
    started = bool(getattr(parallel, "_is_initialized", False))
    if not started:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        threads = os.environ.get("LAMINA_NUM_THREADS")
        if threads and "numba" not in sys.modules:  # numba reads its pool size when imported
            os.environ.setdefault("NUMBA_NUM_THREADS", threads)
    elif os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE":
        warnings.warn("lamina.runtime.tune: numba's threads are already running; OMP_WAIT_POLICY=PASSIVE takes "
                      "effect only when set before the first parallel kernel", RuntimeWarning, stacklevel=2)
    if pin is None:
        pin = os.environ.get("LAMINA_PIN_THREADS", "").strip() != "0"
    _state["pin"] = bool(pin)
    return {"blas_one_thread": _state["tuned"], "passive_wait": os.environ.get("OMP_WAIT_POLICY") == "PASSIVE",
            "keep_memory": memory.keep_freed_memory(), "pin": _state["pin"]}


def rescan_blas() -> None:
    """Look for BLAS libraries again (one loaded after the first scan, e.g. scipy's, which numba's
    import loads): a tuned process puts the new ones on one thread too."""
    global _blas
    with _lock:
        _blas = None
    if _state["tuned"]:
        for lib in _blas_libs():
            lib.set_num_threads(1)


def _after_fork_in_child() -> None:
    """A lock or a scope that another parent thread held at the fork is never released here."""
    global _lock, _depth
    _lock, _depth = threading.Lock(), 0
    _saved.clear()
    _state["forked"] = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
