"""lamina in a forked child after the parent ran convolutions (on numba's threads where numba is
installed): ``multiprocessing`` fork processes, a fork-based ``Pool`` and DataLoader workers
running a conv model give the parent's results. Every wait has a timeout, so a hang fails."""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import subprocess
import sys
import time

import numpy as np
import pytest

import lamina

pytestmark = pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="no fork on this platform")

# large enough that the compiled kernels take their parallel builds (numba's threads start)
_SHAPE = (16, 32, 64, 64)


def _conv_step(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Output, input gradient and weight gradient of a 3×3 conv forward + backward."""
    rng = np.random.default_rng(seed)
    x = lamina.tensor(rng.standard_normal(_SHAPE).astype(np.float32), requires_grad=True)
    w = lamina.tensor(rng.standard_normal((32, 32, 3, 3)).astype(np.float32), requires_grad=True)
    y = lamina.nn.functional.conv2d(x, w, padding=1)
    y.sum().backward()
    return y.detach().numpy(), x.grad.numpy(), w.grad.numpy()


def _child(q, seed):
    q.put(_conv_step(seed))


def _assert_threads_started():
    """numba's threading layer runs in the parent (the state a fork must survive): started as
    the bench scripts start it, and by the parent's convs."""
    from lamina.ops.kernels import conv_numba

    conv_numba.start_threads()
    _conv_step(3)
    if conv_numba.AVAILABLE:
        from numba.np.ufunc import parallel

        assert parallel._is_initialized


def _assert_same(got, want):
    for g, e in zip(got, want):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-3)


def test_forked_processes_run_convs_after_the_parent():
    want = _conv_step(0)  # the parent's kernels (and threads) have run
    _assert_threads_started()
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(q, 0)) for _ in range(2)]
    for p in procs:
        p.start()
    results, deadline = [], time.monotonic() + 120
    try:
        while len(results) < len(procs):
            try:
                results.append(q.get(timeout=0.5))
            except queue.Empty:
                dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
                assert not dead, f"a forked child died (exit codes {dead})"
                assert time.monotonic() < deadline, "the forked children hung"
        for p in procs:
            p.join(timeout=30)
            assert p.exitcode == 0
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
    for got in results:
        _assert_same(got, want)


def _pool_task(seed):
    return _conv_step(seed)


def test_fork_pool_map_runs_convs_after_the_parent():
    want = [_conv_step(s) for s in (1, 2)]
    _assert_threads_started()
    with mp.get_context("fork").Pool(2) as pool:
        got = pool.map_async(_pool_task, [1, 2]).get(timeout=120)
    for g, w in zip(got, want):
        _assert_same(g, w)


_LOADER = """
import numpy as np
import lamina
from lamina.utils.data import DataLoader, Dataset

lamina.manual_seed(0)
model = lamina.nn.Sequential(lamina.nn.Conv2d(3, 32, 3, padding=1), lamina.nn.ReLU(),
                             lamina.nn.Conv2d(32, 32, 3, padding=1), lamina.nn.ReLU(),
                             lamina.nn.Conv2d(32, 4, 3, padding=1))
x = lamina.tensor(np.random.default_rng(0).standard_normal((16, 3, 64, 64)).astype(np.float32))


class Features(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):  # a forward and a backward of the conv model in the worker
        model.zero_grad()
        model(x * (i + 1)).sum().backward()
        return lamina.tensor(np.array([p.grad.numpy().sum() for p in model.parameters()]))


from lamina.ops.kernels import conv_numba
conv_numba.start_threads()
want = np.concatenate([Features()[i].numpy() for i in range(4)])  # the parent's convs first
model(x).sum().backward()
if conv_numba.AVAILABLE:
    from numba.np.ufunc import parallel
    assert parallel._is_initialized  # numba's threads run in the parent
loader = DataLoader(Features(), batch_size=None, num_workers=2, multiprocessing_context="fork", timeout=120)
got = np.concatenate([b.numpy() for b in loader])
np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-2)
print("ok")
"""


def test_dataloader_workers_run_a_conv_model_after_the_parent():
    out = subprocess.run([sys.executable, "-c", _LOADER], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=os.getcwd()))
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stdout + out.stderr
