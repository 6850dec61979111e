"""The pooling and batch-norm selectors: every implementation of every pass that supports a
problem (forced) against the NumPy implementation and torch, the choice independent of the
memory layout, ``force`` and ``explain``."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import lamina
import lamina.nn.functional as F
from lamina.ops.kernels import conv_gemm, norm_select, pool_select
from lamina.ops.normalization import explain_norm, force_norm
from lamina.ops.pooling import explain_pool, force_pool

# (x shape, kernel, stride, padding, dilation, ceil_mode)
POOLS = [
    ((2, 3, 8, 9), (2, 2), (2, 2), (0, 0), (1, 1), False),
    ((2, 4, 9, 9), (3, 3), (2, 2), (1, 1), (1, 1), False),  # overlapping windows, padding
    ((2, 3, 10, 7), (3, 2), (2, 1), (1, 0), (2, 1), True),  # dilated, ceil mode
    ((2, 1, 6, 6), (2, 2), (1, 1), (1, 1), (1, 1), False),  # one channel
    ((2, 3, 11), (3,), (2,), (1,), (1,), True),  # 1-D
    ((1, 2, 5, 6, 4), (2, 3, 2), (2, 2, 1), (1, 1, 0), (1, 1, 1), False),  # 3-D
]
NORMS = [(4, 3), (3, 5, 4, 6), (2, 4, 3, 5, 2)]


def _pool_problem(case, dtype="float64"):
    xs, k, s, p, d, ceil = case
    from lamina.ops.kernels.pool import pool_geom

    return pool_select.problem(xs, np.dtype(dtype), pool_geom(xs[2:], k, s, p, d, ceil))


def _supported(pass_, p):
    return [impl.name for impl in pool_select.table(pass_) if impl.supports(p)]


def _pool(case, x, kind, lib):
    _, k, s, p, d, ceil = case
    if kind == "max":
        return getattr(lib, f"max_pool{len(k)}d")(x, k, s, p, d, ceil_mode=ceil)
    return getattr(lib, f"avg_pool{len(k)}d")(x, k, s, p, ceil_mode=ceil)


def _check_pool(case, dtype, kind, fwd, bwd):
    """Forward and input gradient of the pooling forced onto ``fwd``/``bwd``, checked against torch."""
    n = int(np.prod(case[0]))
    x = ((np.random.default_rng(1).permutation(n) - n / 2) * 0.1).reshape(case[0]).astype(dtype)  # no ties
    tx = torch.tensor(x, requires_grad=True)
    yt = _pool(case, tx, kind, TF)
    gy = np.random.default_rng(2).standard_normal(tuple(yt.shape)).astype(dtype)
    yt.backward(torch.tensor(gy))
    lx = lamina.tensor(x, requires_grad=True)
    with force_pool(**{f"{kind}_forward": fwd, f"{kind}_backward": bwd}):
        yl = _pool(case, lx, kind, F)
        yl.backward(lamina.tensor(gy))
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(yl.detach().numpy(), yt.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=tol, atol=tol)
    return yl.detach().numpy(), lx.grad.numpy()


POOL_CASES = [(i, kind, f, b) for i, case in enumerate(POOLS) for kind in ("max", "avg")
              for f in _supported(f"{kind}_forward", _pool_problem(case))
              for b in _supported(f"{kind}_backward", _pool_problem(case))]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("i,kind,fwd,bwd", POOL_CASES)
def test_every_pool_implementation_against_numpy_and_torch(i, kind, fwd, bwd, dtype):
    """Each implementation (forced) equals torch, and the NumPy implementation: max pooling's
    forward exactly (maxima are exact); the gradients to the last bits (overlapping windows add
    into one element in another order)."""
    case = POOLS[i]
    got = _check_pool(case, dtype, kind, fwd, bwd)
    ref = _check_pool(case, dtype, kind, "numpy", "numpy")
    if kind == "max":
        np.testing.assert_array_equal(got[0], ref[0])
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_the_numba_pool_implementations_are_exercised():
    """Where numba runs, the 2-D problems above select the numba max-pool passes unforced."""
    if not lamina.ops.kernels.im2col.use_numba():
        pytest.skip("numba not installed")
    p = _pool_problem(POOLS[1])
    assert explain_pool(np.zeros(POOLS[1][0]), 3, 2, 1) == {
        "max_forward": "numba", "max_backward": "numba", "avg_forward": "numpy", "avg_backward": "numpy"}
    assert pool_select.select("max_forward", p).name == "numba"
    assert pool_select.select("max_forward", _pool_problem(POOLS[4])).name == "numpy"  # 1-D


@pytest.fixture
def record(monkeypatch):
    """The (selector, pass, implementation) that ran, every table's runs wrapped."""
    seen = []
    for sel in (pool_select, norm_select):
        tables = {}
        for pass_ in sel.PASSES:
            tables[pass_] = tuple(dataclasses.replace(
                impl, run=lambda *a, _r=impl.run, _n=(pass_, impl.name): (seen.append(_n), _r(*a))[1])
                for impl in sel.table(pass_))
        monkeypatch.setattr(sel.SELECTOR, "_tables", tables)
        sel.clear_cache()
    yield seen
    pool_select.clear_cache()
    norm_select.clear_cache()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_values_same_path_whatever_the_layout(dtype, record, path):
    """A batch norm then a 3×3/2 max pool on the same values laid out NCHW or channels-last take
    the same implementations and give equal outputs and gradients (max pooling's bit for bit)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 6, 9, 9)).astype(dtype)
    w, b = rng.standard_normal(6).astype(dtype), rng.standard_normal(6).astype(dtype)
    gy = rng.standard_normal((4, 6, 4, 4)).astype(dtype)
    results = []
    for cl in (False, True):
        xa, gya = (conv_gemm.channels_last(x), conv_gemm.channels_last(gy)) if cl else (x, gy)
        record.clear()
        xt, wt, bt = (lamina.tensor(a, requires_grad=True) for a in (xa, w, b))
        y = F.max_pool2d(F.batch_norm(xt, None, None, wt, bt, training=True), 3, 2)
        y.backward(lamina.tensor(gya))
        results.append((sorted(record), y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()))
    (path0, *a0), (path1, *a1) = results
    assert path0 == path1
    assert {p for p, _ in path0} == {"max_forward", "max_backward", "batch_norm_forward", "batch_norm_backward"}
    tol = 1e-6 if dtype == "float32" else 1e-13
    for u, v in zip(a0, a1):
        np.testing.assert_allclose(u, v, rtol=tol, atol=tol)
    # and torch agrees
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = TF.max_pool2d(TF.batch_norm(tx, None, None, tw, tb, training=True), 3, 2)
    ty.backward(torch.tensor(gy))
    ttol = 1e-4 if dtype == "float32" else 1e-10
    for u, v in zip(a0, (ty, tx.grad, tw.grad, tb.grad)):
        np.testing.assert_allclose(u, v.detach().numpy(), rtol=ttol, atol=ttol)


NORM_CASES = [(shape, f, bk) for shape in NORMS
              for f in [i.name for i in norm_select.table("batch_norm_forward")
                        if i.supports(norm_select.problem(shape, np.float64))]
              for bk in [i.name for i in norm_select.table("batch_norm_backward")
                         if i.supports(norm_select.problem(shape, np.float64))]]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape,fwd,bwd", NORM_CASES)
def test_every_norm_implementation_against_torch(shape, fwd, bwd, dtype):
    rng = np.random.default_rng(4)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    w, b = rng.standard_normal(shape[1]).astype(dtype), rng.standard_normal(shape[1]).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    xt, wt, bt = (lamina.tensor(a, requires_grad=True) for a in (x, w, b))
    with force_norm(batch_norm_forward=fwd, batch_norm_backward=bwd):
        assert explain_norm(xt) == {"batch_norm_forward": fwd, "batch_norm_backward": bwd}
        y = F.batch_norm(xt, None, None, wt, bt, training=True)
        y.backward(lamina.tensor(gy))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = TF.batch_norm(tx, None, None, tw, tb, training=True)
    ty.backward(torch.tensor(gy))
    tol = 2e-5 if dtype == "float32" else 1e-11
    for u, v in zip((y, xt.grad, wt.grad, bt.grad), (ty, tx.grad, tw.grad, tb.grad)):
        np.testing.assert_allclose(u.detach().numpy(), v.detach().numpy(), rtol=tol, atol=tol)


def test_force_rejects_unknown_and_unsupported():
    with pytest.raises(ValueError, match="pool_select.force: no max_forward implementation 'fft'.*numba, numpy"):
        with force_pool(max_forward="fft"):
            pass
    x = lamina.randn(2, 3, 11)  # 1-D: the numba kernels are 2-D
    if lamina.ops.kernels.im2col.use_numba():
        with force_pool(max_forward="numba"):
            with pytest.raises(ValueError, match=r"max_forward implementation 'numba' does not support.*\(2, 3, 11\)"):
                F.max_pool1d(x, 2)
        with force_norm(batch_norm_forward="numba"):
            with pytest.raises(ValueError, match="batch_norm_forward implementation 'numba' does not support.*int64"):
                explain_norm(np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="norm_select: unknown pass 'forward'"):
        norm_select.table("forward")


def test_explain_names_the_choice_and_force_changes_it():
    x = lamina.randn(2, 3, 8, 8)
    with force_pool(max_forward="numpy", avg_backward="numpy"):
        got = explain_pool(x, 2)
        assert got["max_forward"] == "numpy" and got["avg_backward"] == "numpy"
    assert explain_pool(x, 2)["max_forward"] == ("numba" if lamina.ops.kernels.im2col.use_numba() else "numpy")
    with pytest.raises(ValueError, match="explain_pool: expected a batched"):
        explain_pool(lamina.randn(3), 2)
    with pytest.raises(ValueError, match="explain_pool: kernel_size must be"):
        explain_pool(x, (2, 2, 2))
