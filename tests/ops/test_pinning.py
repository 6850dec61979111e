"""Where lamina's worker threads run (``threads.pin_others``, ``numba_team``): in a tuned process
pinned to CPUs other than the calling thread's, the caller left free; nothing pinned in a process
not tuned, with ``LAMINA_PIN_THREADS=0`` or in a forked child."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from lamina import runtime
from lamina.ops.kernels import conv_numba, numba_team, threads

needs_pinning = pytest.mark.skipif(
    threads._getcpu is None or not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="pinning needs Linux with glibc and two CPUs or more")


@pytest.fixture(autouse=True)
def pinning_on(monkeypatch):
    """These tests look at the pinning a tuned process does (``lamina.runtime.tune``)."""
    monkeypatch.setitem(runtime._state, "pin", True)


@pytest.fixture
def two_threads():
    old = threads.get_num_threads()
    threads.set_num_threads(2)
    yield
    threads.set_num_threads(old)


@needs_pinning
def test_pool_workers_run_on_another_cpu_than_the_caller(two_threads):
    if not threads.blas_controlled():
        pytest.skip("lamina leaves BLAS its own threads here: no pool")
    mine = os.sched_getaffinity(0)
    where = {}
    for _ in range(2):  # the first call starts the worker, the second pins it
        threads.run_parts(lambda j: where.setdefault(j, threading.get_native_id()), 2)
    assert where[1] != where[0] and where[1] in threads._workers
    cpu = threads._pinned_for[0][0]  # the caller's CPU when the worker was pinned
    pinned = os.sched_getaffinity(where[1])
    assert len(pinned) == 1 and pinned <= mine and cpu not in pinned
    assert os.sched_getaffinity(0) == mine  # the caller is never pinned


def _helper_thread():
    """A thread that waits until told: returns (its native id, stop event, thread)."""
    ready, stop, tid = threading.Event(), threading.Event(), []

    def helper():
        tid.append(threading.get_native_id())
        ready.set()
        stop.wait(30)

    t = threading.Thread(target=helper)
    t.start()
    ready.wait(30)
    return tid[0], stop, t


@needs_pinning
def test_pin_others_skips_repeats(monkeypatch):
    calls = []
    real = os.sched_setaffinity
    monkeypatch.setattr(os, "sched_setaffinity", lambda tid, cpus: calls.append((tid, set(cpus))) or real(tid, cpus))
    cpu = threads._getcpu()
    monkeypatch.setattr(threads, "_getcpu", lambda: cpu)  # the caller "stays" on one CPU
    tid, stop, t = _helper_thread()
    try:
        memo = [None]
        assert threads.pin_others([tid], memo)
        assert calls == [(tid, calls[0][1])] and cpu not in calls[0][1]
        assert os.sched_getaffinity(tid) == calls[0][1]
        assert threads.pin_others([tid], memo) and len(calls) == 1  # pinned already: no system call
        monkeypatch.setattr(threads, "_getcpu", lambda: calls[0][1].copy().pop())  # the caller moved there
        assert threads.pin_others([tid], memo) and len(calls) == 2 and os.sched_getaffinity(tid) == {cpu}
    finally:
        stop.set()
        t.join()


def _ended_thread() -> int:
    """The native id of a thread that has ended. ``join`` returns once the thread's Python code
    is done; the kernel removes the thread a little later (0.2–0.3 ms here), so wait for that."""
    tid, stop, t = _helper_thread()
    stop.set()
    t.join()
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/self/task/{tid}") and time.monotonic() < deadline:
        time.sleep(1e-4)
    return tid


@needs_pinning
def test_pin_others_pins_nothing_once_a_thread_has_ended(monkeypatch):
    """An id that no longer names one of this process's threads (it may name another's by now)
    stops the pinning: nothing is pinned and the caller is told."""
    calls = []
    monkeypatch.setattr(os, "sched_setaffinity", lambda tid, cpus: calls.append(tid))
    tid = _ended_thread()
    assert not threads.pin_others([threading.get_native_id(), tid], [None]) and calls == []


@needs_pinning
@pytest.mark.skipif(not conv_numba.AVAILABLE, reason="numba not installed")
def test_numba_team_pinned_before_a_parallel_kernel(monkeypatch):
    import numba

    if numba.get_num_threads() < 2:
        pytest.skip("numba runs one thread here")
    monkeypatch.setattr(conv_numba, "PARALLEL_MIN_SIZE", 0)
    cols = np.random.default_rng(0).random((2, 1, 1, 3, 1, 1, 2, 4)).astype(np.float32)
    gpad = np.zeros((2, 1, 1, 4, 4), np.float32)
    conv_numba.col2im_cl3d(cols, gpad, 1, 1, 1, 1, 1, 1)  # the parallel build, so the team is pinned
    want = np.zeros_like(gpad)
    for k in range(2):
        want[:, 0, 0, k:k + 3] += cols[:, 0, 0, :, 0, 0, k]
    np.testing.assert_allclose(gpad, want, rtol=1e-6)
    tids = numba_team.team_ids()
    if numba.threading_layer() not in ("omp", "workqueue"):
        assert tids == []
        return
    assert tids and threading.get_native_id() not in tids
    cpu = numba_team._local.memo[0][0]  # the caller's CPU when the team was pinned
    allowed = sorted(os.sched_getaffinity(0))
    pinned = [os.sched_getaffinity(tid) for tid in tids]
    assert all(len(p) == 1 and p <= set(allowed) for p in pinned)
    # one CPU each, the caller's last (omp: the caller works too; workqueue: it only waits)
    others = len(allowed) - 1
    assert all(cpu not in p for p in pinned[:others])
    assert len(set().union(*pinned[:len(allowed)])) == min(len(tids), len(allowed))


@needs_pinning
@pytest.mark.skipif(not conv_numba.AVAILABLE, reason="numba not installed")
def test_numba_team_found_again_when_one_has_ended(monkeypatch):
    numba_team.pin_team()
    live = numba_team.team_ids()
    if not live:
        pytest.skip("numba's threads cannot be pinned here")
    tid = _ended_thread()
    numba_team._local.tids = [*live, tid]  # as if the runtime had replaced one of its threads
    numba_team._local.memo[0] = None
    numba_team.pin_team()
    assert numba_team._local.tids == live  # found again by the team kernel, the ended one gone


@pytest.mark.skipif(not conv_numba.AVAILABLE, reason="numba not installed")
def test_a_pinning_failure_warns_once_and_leaves_the_kernels_working(monkeypatch):
    def broken(refresh=False):
        raise RuntimeError("no team")

    monkeypatch.setattr(numba_team, "team_ids", broken)
    monkeypatch.setattr(numba_team, "_failed", [False])
    monkeypatch.setattr(numba_team, "_gettid", numba_team._gettid or (lambda: 0))
    monkeypatch.setattr(conv_numba, "PARALLEL_MIN_SIZE", 0)
    cols = np.ones((1, 1, 1, 2, 1, 1, 1, 3), np.float32)
    gpad = np.zeros((1, 1, 1, 2, 3), np.float32)
    with pytest.warns(RuntimeWarning, match="could not pin numba's threads"):
        conv_numba.col2im_cl3d(cols, gpad, 1, 1, 1, 1, 1, 1)
    assert numba_team._failed[0]
    import warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        conv_numba.col2im_cl3d(cols, gpad, 1, 1, 1, 1, 1, 1)  # pinning is off now: no second warning
    assert not seen
    np.testing.assert_array_equal(gpad, 2 * np.ones_like(gpad))


@needs_pinning
@pytest.mark.parametrize("env,pinned", [({}, False), ({"LAMINA_TUNE": "1", "LAMINA_PIN_THREADS": "0"}, False),
                                        ({"LAMINA_TUNE": "1"}, True)])
def test_pinning_only_in_a_tuned_process(env, pinned):
    """Not tuned, or tuned with ``LAMINA_PIN_THREADS=0``: the pool's worker keeps the process's
    affinity; tuned: it is pinned to one CPU."""
    code = ("import os, threading\nimport lamina\nfrom lamina.ops.kernels import threads\n"
            "threads.set_num_threads(2)\n"
            "for _ in range(2): threads.run_parts(lambda j: None, 2)\n"
            "print(lamina.runtime.pinning(), all(os.sched_getaffinity(t) == os.sched_getaffinity(0)"
            " for t in threads._workers), len(threads._workers))")
    base = {k: v for k, v in os.environ.items() if k not in ("LAMINA_TUNE", "LAMINA_PIN_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], env=dict(base, **env), check=True, capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.split() == [str(pinned), str(not pinned), "1"], out.stdout + out.stderr


@pytest.mark.skipif(not conv_numba.AVAILABLE, reason="numba not installed")
def test_forked_child_forgets_the_parents_team():
    """A forked child has none of the parent's threads: their ids (which may name threads of
    other processes later) are never pinned there."""
    import multiprocessing as mp

    if "fork" not in mp.get_all_start_methods():
        pytest.skip("no fork on this platform")
    numba_team.team_ids()  # the parent knows its team
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_team, args=(q,))
    p.start()
    try:
        p.join(timeout=60)
        assert p.exitcode == 0 and q.get(timeout=5) is None
    finally:
        if p.is_alive():
            p.kill()


def _child_team(q):
    q.put(getattr(numba_team._local, "tids", None))
