"""lamina.runtime: importing lamina and running its ops leaves the process as it was (BLAS thread
counts as threadpoolctl reports them, environment variables, malloc settings, affinities), each
checked in a fresh process; one-thread BLAS scoped to lamina's kernels; process-wide tuning only
through ``tune()`` / ``LAMINA_TUNE=1`` / the ``lamina`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import lamina
from lamina import runtime

_CLEAN = {k: v for k, v in os.environ.items()
          if k not in ("LAMINA_TUNE", "OMP_WAIT_POLICY", "NUMBA_NUM_THREADS", "LAMINA_KEEP_BLAS_THREADS")}

# the process's state at three moments: before importing lamina, after, and after a conv forward
# + backward large enough to use lamina's thread pool and numba's parallel kernels; every ctypes
# symbol looked up is recorded (mallopt would be glibc's malloc settings)
_PROBE = """
import ctypes, json, os
seen = set()
for name in ("__getattr__", "__getitem__"):
    orig = getattr(ctypes.CDLL, name)
    def spy(self, key, _orig=orig):
        seen.add(str(key))
        return _orig(self, key)
    setattr(ctypes.CDLL, name, spy)
import numpy as np
from threadpoolctl import threadpool_info

def state():
    tasks = sorted(int(t) for t in os.listdir("/proc/self/task"))
    return {"blas": [(i["internal_api"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"],
            "env": dict(os.environ), "affinity": sorted(os.sched_getaffinity(0)),
            "tasks": [sorted(os.sched_getaffinity(t)) for t in tasks], "mallopt": "mallopt" in seen}

before = state()
import lamina
after_import = state()
x = lamina.randn(32, 64, 32, 32, requires_grad=True)
conv = lamina.nn.Conv2d(64, 64, 3, padding=1)
conv(x).sum().backward()
lamina.nn.Conv2d(3, 16, 5)(lamina.randn(64, 3, 28, 28, requires_grad=True)).sum().backward()
from lamina.ops.kernels import conv_numba, threads
if conv_numba.AVAILABLE:
    from numba.np.ufunc import parallel
    assert parallel._is_initialized, "numba's threads should have run"
assert lamina.get_num_threads() < 2 or threads._workers, "lamina's pool should have run"
print(json.dumps([before, after_import, state()]))
"""


def _probe(**env: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-c", _PROBE], env=dict(_CLEAN, PYTHONPATH=os.getcwd(), **env),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="affinities: Linux only")
@pytest.mark.parametrize("env", [{}, {"OPENBLAS_NUM_THREADS": "2"}])
def test_import_and_convs_leave_the_process_as_it_was(env):
    before, after_import, after_conv = _probe(**env)
    assert before["blas"], "NumPy's BLAS should be visible to threadpoolctl"
    for now in (after_import, after_conv):
        assert now["blas"][:len(before["blas"])] == before["blas"]  # thread counts as before
        assert now["env"] == before["env"]
        assert now["affinity"] == before["affinity"]
        assert all(t == before["affinity"] for t in now["tasks"])  # no thread pinned, lamina's or numba's
        assert not now["mallopt"]


def test_tune_and_lamina_tune_variable_apply_the_process_wide_settings():
    code = ("import os, lamina\nfrom threadpoolctl import threadpool_info\n"
            "got = {} if os.environ.get('LAMINA_TUNE') else lamina.runtime.tune()\n"
            "print(lamina.runtime.tuned(), lamina.runtime.pinning(), os.environ.get('OMP_WAIT_POLICY'),"
            " lamina.runtime.memory.applied, {i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'})")
    for env in ({}, {"LAMINA_TUNE": "1"}):
        out = subprocess.run([sys.executable, "-c", code], env=dict(_CLEAN, PYTHONPATH=os.getcwd(), **env),
                             capture_output=True, text=True, timeout=120)
        assert out.stdout.split() == ["True", "True", "PASSIVE", "True", "{1}"], out.stdout + out.stderr


def test_a_user_wait_policy_is_kept_by_tune():
    code = "import os, lamina\nlamina.runtime.tune()\nprint(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=dict(_CLEAN, PYTHONPATH=os.getcwd(), OMP_WAIT_POLICY="ACTIVE"))
    assert out.stdout.strip() == "ACTIVE", out.stderr


def test_the_lamina_command_tunes_its_process_and_main_from_python_does_not():
    code = ("import sys\nfrom lamina import cli, runtime\n"
            "sys.argv = ['lamina']\n"
            "import contextlib, io\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert cli.main([]) == 0\n"
            "print(runtime.tuned())\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert cli.main() == 0\n"
            "print(runtime.tuned())")
    out = subprocess.run([sys.executable, "-c", code], env=dict(_CLEAN, PYTHONPATH=os.getcwd()),
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "True"], out.stdout + out.stderr


def _blas_threads() -> set[int]:
    """Thread counts of the BLAS libraries lamina controls (NumPy's; one the tests load later,
    such as torch's or scipy's, is not lamina's to limit)."""
    mine = {i["filepath"] for i in runtime.blas_info()}
    return {i["num_threads"] for i in threadpool_info() if i["filepath"] in mine}


@pytest.mark.skipif(not runtime.blas_controlled(), reason="no BLAS that threadpoolctl controls")
def test_blas_one_thread_scope_nests_and_restores(monkeypatch):
    monkeypatch.setitem(runtime._state, "tuned", False)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(2, user_api="blas"):
        with runtime.blas_one_thread():
            assert _blas_threads() == {1}
            with runtime.blas_one_thread():
                assert _blas_threads() == {1}
            assert _blas_threads() == {1}  # the outer scope still holds
        assert _blas_threads() == {2}

        @runtime.blas_one_thread()
        def inside():
            return _blas_threads()

        assert inside() == {1} and _blas_threads() == {2}
        with pytest.raises(ZeroDivisionError), runtime.blas_one_thread():
            1 / 0
        assert _blas_threads() == {2}


@pytest.mark.skipif(not runtime.blas_controlled(), reason="no BLAS that threadpoolctl controls")
def test_conv_passes_run_with_blas_on_one_thread(monkeypatch):
    """A conv pass sees BLAS on one thread (its products are split over lamina's threads) and the
    caller's setting afterwards."""
    from threadpoolctl import threadpool_limits

    from lamina.ops.kernels import conv_gemm

    monkeypatch.setitem(runtime._state, "tuned", False)
    seen = []
    for name in ("_conv_forward", "direct_forward"):  # the im2col and the direct forward bodies
        real = getattr(conv_gemm, name)
        monkeypatch.setattr(conv_gemm, name, lambda *a, _real=real, **k: (seen.append(_blas_threads()),
                                                                          _real(*a, **k))[1])
    rng = np.random.default_rng(0)
    with threadpool_limits(2, user_api="blas"):
        for c, k, size, ks in ((4, 5, 6, 3), (16, 32, 12, 3)):
            x, w = rng.standard_normal((2, c, size, size)), rng.standard_normal((k, c, ks, ks))
            y = conv_gemm.conv_forward(x, w, (1, 1), (1, 1), (1, 1), (size, size), 1)
            assert y.shape == (2, k, size, size)
            assert _blas_threads() == {2}
    assert seen and all(s == {1} for s in seen)


def test_vendor_detection_follows_threadpoolctl():
    infos = [i for i in threadpool_info() if i["user_api"] == "blas"]
    assert runtime.openblas_present() == any(i["internal_api"] == "openblas" for i in infos)
    assert {i["filepath"] for i in runtime.blas_info()} <= {i["filepath"] for i in infos}
    from lamina.ops.kernels import colgemm_numba

    if colgemm_numba.AVAILABLE:  # the column-GEMM kernels call OpenBLAS's CBLAS: found only where there is one
        assert (colgemm_numba.gemm_address(np.float32) != 0) == runtime.openblas_present()


def test_lamina_exports_the_runtime():
    assert lamina.runtime is runtime and callable(runtime.tune)
