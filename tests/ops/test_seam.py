"""The device seam: an array type that is not an ndarray (:mod:`tests.seam_backend`) runs
lamina's ops through its own registered conv, pooling and batch-norm kernels and its own array
module, and stays that type through forward and backward."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import lamina
import lamina.nn.functional as F
from lamina import backend
from lamina.ops.conv import explain_conv
from lamina.ops.kernels import conv_select, norm_select, pool_select
from lamina.ops.normalization import explain_norm
from lamina.ops.pooling import explain_pool
from tests import seam_backend as S

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def seam():
    """The seam backend registered for the test (and left registered where the whole run is on it)."""
    S.install()
    S.CALLS.clear()
    yield S
    if not S.enabled():
        S.uninstall()


def test_get_array_module(seam):
    a = S.to_seam(np.zeros(3))
    assert backend.get_array_module(np.zeros(3)) is np
    assert backend.get_array_module(1.5, None, np.float32(2)) is np
    assert backend.get_array_module() is np
    assert backend.get_array_module(np.zeros(2), a) is S.seam_xp
    assert type(S.seam_xp.zeros((2, 3))) is S.SeamArray
    assert backend.is_array(a) and backend.is_array(np.zeros(1)) and not backend.is_array([1.0])
    with pytest.raises(ValueError, match="numpy.ndarray's module is numpy"):
        backend.register_array_module(np.ndarray, S.seam_xp)


def test_the_seam_array_is_no_ndarray_and_refuses_silent_conversion_inside_lamina(seam):
    a = S.to_seam(np.arange(6.0).reshape(2, 3))
    assert not isinstance(a, np.ndarray)
    assert type(np.exp(a)) is S.SeamArray and type(np.concatenate([a, a])) is S.SeamArray
    assert type(a.sum()) is S.SeamArray and float(a.sum()) == 15.0  # 0-d results stay arrays, as CuPy's
    assert type(a + np.float32(1)) is S.SeamArray and type(a * np.asarray(2.0)) is S.SeamArray
    with pytest.raises(TypeError, match=r"an ndarray operand of shape \(2, 3\) in add"):
        a + np.ones((2, 3))  # as CuPy: no whole ndarray operands
    assert type(np.asarray(a)) is np.ndarray  # outside lamina (the tests' comparisons): allowed
    with pytest.raises(TypeError, match="implicit conversion to a NumPy array in lamina.somewhere"):
        eval("np.asarray(a)", {"__name__": "lamina.somewhere", "np": np, "a": a})
    from lamina.autograd.tensor import as_array
    from lamina.ops.common import const
    assert const(a).array is a and as_array(a) is a


def test_each_family_takes_the_kernels_registered_for_the_type(seam):
    x, w = S.to_seam(np.zeros((2, 3, 8, 8), np.float32)), S.to_seam(np.zeros((4, 3, 3, 3), np.float32))
    assert explain_conv(x, w, padding=1) == {p: "seam" for p in conv_select.PASSES}
    assert explain_pool(x, 2) == {p: "seam" for p in pool_select.PASSES}
    assert explain_norm(x) == {p: "seam" for p in norm_select.PASSES}
    # ndarrays keep the built-in tables
    assert explain_norm(np.zeros((2, 3, 8, 8), np.float32))["batch_norm_forward"] in ("numba", "numpy")


def test_a_type_without_kernels_gets_a_clear_error(seam):
    class Other(S.SeamArray):
        pass

    x = Other(np.zeros((2, 3, 8), np.float32))
    with pytest.raises(TypeError, match="pool_select: no max_forward implementation registered for arrays of type "
                                        ".*Other"):
        explain_pool(x, 2)
    with pytest.raises(ValueError, match="numpy.ndarray's tables are built in"):
        pool_select.register(np.ndarray, "max_forward", pool_select.table("max_forward")[0])


def _cnn(lib, x, w, b, g, be):
    y = lib.conv2d(x, w, b, padding=1)
    y = lib.batch_norm(y, None, None, g, be, training=True)
    return lib.max_pool2d(lib.relu(y), 2)


def test_conv_bn_relu_maxpool_on_the_seam(seam):
    """Forward and backward on SeamArrays equal the NumPy arrays' and torch's; every registered
    kernel ran; the output and every gradient are SeamArrays."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float64) for s in ((2, 3, 8, 8), (4, 3, 3, 3), (4,), (4,), (4,))]
    gy = rng.standard_normal((2, 4, 4, 4))
    on_seam = [S.seam_tensor(a.copy(), requires_grad=True) for a in arrays]
    y = _cnn(F, *on_seam)
    y.backward(S.seam_tensor(gy))
    assert type(y.array) is S.SeamArray and all(type(t.grad.array) is S.SeamArray for t in on_seam)
    assert S.CALLS == {("conv", "forward"): 1, ("conv", "input_grad"): 1, ("conv", "weight_grad"): 1,
                       ("norm", "batch_norm_forward"): 1, ("norm", "batch_norm_backward"): 1,
                       ("pool", "max_forward"): 1, ("pool", "max_backward"): 1}
    on_numpy = [lamina.tensor(a, requires_grad=True) for a in arrays]
    yn = _cnn(F, *on_numpy)
    yn.backward(lamina.tensor(gy))
    on_torch = [torch.tensor(a, requires_grad=True) for a in arrays]
    yt = _cnn(TF, *on_torch)
    yt.backward(torch.tensor(gy))
    np.testing.assert_allclose(S.to_host(y), yn.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(S.to_host(y), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    for ts, tn, tt in zip(on_seam, on_numpy, on_torch):
        np.testing.assert_allclose(S.to_host(ts.grad), tn.grad.numpy(), rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(S.to_host(ts.grad), tt.grad.numpy(), rtol=1e-9, atol=1e-11)


def test_avg_pool_and_conv_transpose_on_the_seam(seam):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 4, 6, 6)), rng.standard_normal((4, 2, 3, 3))
    xs, ws = S.seam_tensor(x, True), S.seam_tensor(w, True)
    y = F.avg_pool2d(F.conv_transpose2d(xs, ws, stride=2), 3, 2, 1)
    y.sum().backward()
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    yt = TF.avg_pool2d(TF.conv_transpose2d(xt, wt, stride=2), 3, 2, 1)
    yt.sum().backward()
    assert type(y.array) is S.SeamArray and type(xs.grad.array) is S.SeamArray
    assert S.CALLS["pool", "avg_forward"] == 1 and S.CALLS["pool", "avg_backward"] == 1
    assert S.CALLS["conv", "input_grad"] == 1 and S.CALLS["conv", "forward"] == 1  # the transposed conv's adjoint
    np.testing.assert_allclose(S.to_host(y), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(S.to_host(xs.grad), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(S.to_host(ws.grad), wt.grad.numpy(), rtol=1e-10, atol=1e-12)


# the op test files run through the seam (their oracle tests; the rest run on ndarrays as usual)
SEAM_FILES = ["test_conv.py", "test_conv_transpose.py", "test_pooling.py", "test_normalization.py",
              "test_arithmetic.py", "test_reduce.py", "test_shape.py", "test_trig.py", "test_indexing.py",
              "test_resample.py", "test_diagonal.py", "test_stats_tiling_sets.py"]


def test_the_op_tests_pass_through_the_seam(tmp_path):
    """The oracle tests of the files above in a subprocess with ``LAMINA_TEST_ARRAY=seam``: their
    lamina inputs are SeamArrays, the oracle checks every output and gradient stays one, and every
    pass of the conv, pooling and batch-norm kernels registered for the type ran."""
    report = tmp_path / "seam.json"
    env = dict(os.environ, LAMINA_TEST_ARRAY="seam", LAMINA_SEAM_REPORT=str(report),
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-x", "-k", "oracle",
           *[os.path.join(ROOT, "tests", "ops", f) for f in SEAM_FILES]]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    got = json.loads(report.read_text())
    assert got["failed"] == 0 and got["collected"] > 600, got
    passes = [f"conv.{p}" for p in conv_select.PASSES] + [f"pool.{p}" for p in pool_select.PASSES] + \
             [f"norm.{p}" for p in norm_select.PASSES]
    assert all(got["calls"].get(p, 0) > 10 for p in passes), got["calls"]
