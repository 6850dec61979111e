"""Where lamina's worker threads run (``threads.pin_others``, ``numba_team``): pinned to CPUs
other than the calling thread's, the caller left free, and nothing pinned with
``LAMINA_PIN_THREADS=0`` or in a forked child."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from lamina.ops.kernels import conv_numba, numba_team, threads

needs_pinning = pytest.mark.skipif(
    threads._getcpu is None or not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="pinning needs Linux with glibc and two CPUs or more")


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


@needs_pinning
def test_pin_others_skips_repeats_and_survives_bad_ids(monkeypatch):
    calls = []
    real = os.sched_setaffinity
    monkeypatch.setattr(os, "sched_setaffinity", lambda tid, cpus: calls.append((tid, set(cpus))) or real(tid, cpus))
    helper_ready, stop = threading.Event(), threading.Event()
    tid = []

    def helper():
        tid.append(threading.get_native_id())
        helper_ready.set()
        stop.wait(30)

    t = threading.Thread(target=helper)
    t.start()
    helper_ready.wait(30)
    try:
        memo = [None]
        tids = [tid[0], 2**22 + 12345]  # the second names no thread: ignored
        threads.pin_others(tids, memo)
        assert [c[0] for c in calls] == tids
        assert len(os.sched_getaffinity(tid[0])) == 1
        threads.pin_others(tids, memo)  # same caller CPU, same threads: no system call
        if threads._getcpu() == memo[0][0]:
            assert len(calls) == 2
    finally:
        stop.set()
        t.join()


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
    cpu = numba_team._local.memo[0][0]
    for tid in tids:
        pinned = os.sched_getaffinity(tid)
        assert len(pinned) == 1 and cpu not in pinned


def test_no_pinning_when_switched_off():
    code = ("import os, threading\nimport lamina\nfrom lamina.ops.kernels import threads\n"
            "threads.set_num_threads(2)\n"
            "for _ in range(2): threads.run_parts(lambda j: None, 2)\n"
            "print(threads._getcpu is None, all(os.sched_getaffinity(t) == os.sched_getaffinity(0)"
            " for t in threads._workers))")
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, LAMINA_PIN_THREADS="0"),
                         check=True, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["True", "True"]


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
    p.join(timeout=60)
    assert p.exitcode == 0 and q.get(timeout=5) is None


def _child_team(q):
    q.put(getattr(numba_team._local, "tids", None))
