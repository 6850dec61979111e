"""The conv selector: every implementation of every pass that supports a problem against the
NumPy reference (itself against torch), the choice independent of the memory layout, ``force``
and ``explain``."""

import dataclasses
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import lamina
import lamina.nn.functional as F
from lamina.ops.conv import explain_conv
from lamina.ops.kernels import conv_gemm
from lamina.ops.kernels import conv_select as sel

# (x shape, w shape, stride, padding, dilation, groups): each implementation's ground at least once
PROBLEMS = [
    ((2, 16, 9, 10), (16, 16, 3, 3), (1, 1), (1, 1), (1, 1), 1),  # Winograd's
    ((2, 4, 7, 6), (5, 4, 3, 3), (1, 1), (2, 2), (1, 1), 1),  # Winograd's, padding 2 (input gradient too)
    ((2, 4, 7, 6), (5, 4, 3, 3), (1, 1), (3, 0), (1, 1), 1),  # padding 3: no Winograd input gradient
    ((2, 6, 5, 4), (3, 6, 1, 1), (1, 1), (0, 0), (1, 1), 1),  # pointwise
    ((2, 6, 5, 4), (6, 2, 1, 1), (1, 1), (0, 0), (1, 1), 3),  # pointwise, grouped
    ((2, 3, 9, 8), (8, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1),  # a first layer
    ((2, 8, 9, 10), (12, 2, 3, 3), (2, 2), (1, 1), (2, 1), 4),  # grouped, strided, dilated
    ((2, 6, 9, 8), (6, 1, 3, 2), (2, 1), (1, 0), (1, 2), 6),  # depthwise
    ((2, 4, 7, 7), (8, 1, 3, 3), (1, 2), (2, 0), (1, 1), 4),  # one channel per group, multiplier 2
    ((2, 4, 13), (6, 2, 4), (3,), (2,), (1,), 2),  # 1-D grouped
    ((2, 5, 12), (7, 5, 5), (1,), (3,), (2,), 1),  # 1-D
    ((2, 4, 5, 4, 6), (3, 4, 2, 3, 2), (1, 2, 1), (1, 0, 1), (2, 1, 1), 1),  # 3-D
    ((2, 3, 5, 4, 5), (3, 1, 3, 2, 3), (1, 1, 2), (1, 1, 0), (1, 1, 1), 3),  # 3-D depthwise
    ((3, 40, 6, 6), (48, 40, 3, 3), (2, 2), (1, 1), (1, 1), 1),  # many channels, strided
    ((2, 64, 8, 8), (64, 64, 3, 3), (1, 1), (1, 1), (1, 1), 1),  # Winograd's where colgemm runs too
]


def _out(xs, ws, stride, pad, dil):
    return tuple((i + 2 * p - d * (k - 1) - 1) // s + 1 for i, k, s, p, d in zip(xs[2:], ws[2:], stride, pad, dil))


def _problem(case, dtype="float64"):
    xs, ws, stride, pad, dil, g = case
    return sel.problem(xs, ws, np.dtype(dtype), stride, dil, pad, _out(xs, ws, stride, pad, dil), g)


def _supported():
    return [(i, pass_, impl.name) for i, case in enumerate(PROBLEMS) for pass_ in sel.PASSES
            for impl in sel.table(pass_) if impl.supports(_problem(case))]


def _arrays(case, dtype="float64", seed=0):
    xs, ws, stride, pad, dil, g = case
    rng = np.random.default_rng(seed)
    out = _out(xs, ws, stride, pad, dil)
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    gy = rng.standard_normal((xs[0], ws[0], *out)).astype(dtype)
    return x, w, gy, rng.standard_normal(ws[0]).astype(dtype), rng.standard_normal(xs[1]).astype(dtype)


def _run(pass_, case, x, w, gy, bias):
    xs, ws, stride, pad, dil, g = case
    if pass_ == "forward":
        return conv_gemm.conv_forward(x, w, stride, dil, pad, gy.shape[2:], g, bias=bias)
    if pass_ == "input_grad":
        return conv_gemm.conv_input_grad(gy, w, x.shape[2:], stride, dil, pad, g, bias=bias)
    return conv_gemm.conv_weight_grad(x, gy, ws[2:], stride, dil, pad, g)


@pytest.mark.parametrize("case", PROBLEMS, ids=[str(i) for i in range(len(PROBLEMS))])
def test_reference_matches_torch(case):
    """The NumPy reference (forward with a bias, both gradients) against torch, float64."""
    xs, ws, stride, pad, dil, g = case
    x, w, gy, b, _ = _arrays(case)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = getattr(TF, f"conv{len(xs) - 2}d")(tx, tw, tb, stride, pad, dil, g)
    ty.backward(torch.tensor(gy))
    with sel.force(forward="reference", input_grad="reference", weight_grad="reference"):
        y = _run("forward", case, x, w, gy, b)
        gx = _run("input_grad", case, x, w, gy, None)
        gw = _run("weight_grad", case, x, w, gy, None)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(gw, tw.grad.numpy(), rtol=1e-12, atol=1e-11)


@pytest.mark.parametrize("case_i,pass_,name", _supported())
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-11), ("float32", 2e-5)])
def test_every_supported_impl_matches_reference(case_i, pass_, name, dtype, tol):
    """Each pass forced onto each implementation that supports the problem (with a bias where the
    pass takes one) equals the NumPy reference."""
    case = PROBLEMS[case_i]
    assert sel.select(pass_, _problem(case, dtype)) is not None
    x, w, gy, bk, bc = _arrays(case, dtype, seed=case_i)
    bias = bk if pass_ == "forward" else bc if pass_ == "input_grad" else None
    with sel.force(**{pass_: name}):
        got = _run(pass_, case, x, w, gy, bias)
    with sel.force(**{pass_: "reference"}):
        want = _run(pass_, case, x.astype(np.float64), w.astype(np.float64), gy.astype(np.float64),
                    None if bias is None else bias.astype(np.float64))
    assert got.shape == want.shape and got.dtype == np.dtype(dtype)
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale)


def test_tables_cover_each_implementation_somewhere():
    """Every implementation of every pass but the reference is the selector's choice for some
    problem above where numba and a CBLAS gemm are available (else it is never exercised unforced)."""
    chosen = {(pass_, sel.select(pass_, _problem(case)).name) for case in PROBLEMS for pass_ in sel.PASSES}
    p = _problem(PROBLEMS[0])
    for pass_ in sel.PASSES:
        for impl in sel.table(pass_):
            if impl.name == "reference" or (impl.name == "direct" and not p.numba):
                continue
            if impl.name == "colgemm" and not (p.numba and p.cblas_gemm and p.blas_one_thread):
                continue
            if impl.name in ("im2col",) and p.numba and p.cblas_gemm and p.blas_one_thread:
                continue  # colgemm takes the rest there
            assert (pass_, impl.name) in chosen, (pass_, impl.name)


@pytest.fixture
def record(monkeypatch):
    """The implementations that ran, by pass (each table's runs wrapped)."""
    seen = []
    tables = {}
    for pass_ in sel.PASSES:
        tables[pass_] = tuple(dataclasses.replace(
            impl, run=lambda *a, _r=impl.run, _n=(pass_, impl.name): (seen.append(_n), _r(*a))[1])
            for impl in sel.table(pass_))
    monkeypatch.setattr(sel.SELECTOR, "_tables", tables)
    sel.clear_cache()
    yield seen
    sel.clear_cache()


@pytest.mark.parametrize("case", [PROBLEMS[0], PROBLEMS[5], PROBLEMS[6], PROBLEMS[7], PROBLEMS[13]],
                         ids=["3x3", "first-layer", "grouped", "depthwise", "strided"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_values_same_path_whatever_the_layout(case, dtype, record, path):
    """The same values laid out NCHW or channels-last take the same implementation in every pass
    and give bit-identical outputs and input and weight gradients, whatever the layouts of the
    input and of the output gradient (an RGB first layer used to take the direct kernels from NCHW
    and im2col from channels-last, 1e-5 apart). The bias gradient is NumPy's sum over the output
    gradient, whose rounding follows its memory order: equal to the last bits only."""
    xs, ws, stride, pad, dil, g = case
    x, w, gy, b, _ = _arrays(case, dtype)
    nd = len(xs) - 2
    conv = getattr(F, f"conv{nd}d")
    results = []
    for cl in (False, True):
        xa, gya = x, gy
        if cl:
            xa, gya = conv_gemm.channels_last(x), conv_gemm.channels_last(gy)
            assert not xa.flags.c_contiguous and np.array_equal(xa, x)
        record.clear()
        xt, wt, bt = (lamina.tensor(a, requires_grad=True) for a in (xa, w, b))
        y = conv(xt, wt, bt, stride, pad, dil, g)
        y.backward(lamina.tensor(gya))
        results.append((sorted(record), y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()))
    (path0, *arrays0), (path1, *arrays1) = results
    assert path0 == path1 and {p for p, _ in path0} == set(sel.PASSES)
    for a0, a1 in zip(arrays0[:3], arrays1[:3]):
        np.testing.assert_array_equal(a0, a1)
    tol = 1e-5 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(arrays0[3], arrays1[3], rtol=tol, atol=tol * float(np.abs(arrays0[3]).max()))


def test_force_rejects_unknown_and_unsupported():
    with pytest.raises(ValueError, match="no forward implementation 'fft'.*pointwise"):
        with sel.force(forward="fft"):
            pass
    x, w = np.zeros((2, 3, 8, 8)), np.zeros((4, 3, 5, 5))
    with sel.force(forward="pointwise"):
        with pytest.raises(ValueError, match=r"forward implementation 'pointwise' does not support.*\(4, 3, 5, 5\)"):
            F.conv2d(lamina.tensor(x), lamina.tensor(w))
    with pytest.raises(ValueError, match="unknown pass 'backward'"):
        sel.table("backward")


def test_force_is_per_thread_and_restored():
    """A force in one thread leaves another thread's choice alone, and ends with its block."""
    x, w = np.zeros((2, 6, 5, 4)), np.zeros((3, 6, 1, 1))
    inside, other = threading.Event(), {}
    done = threading.Event()

    def forced():
        with sel.force(forward="reference"):
            other["forced"] = explain_conv(x, w)["forward"]
            inside.set()
            done.wait(5)

    t = threading.Thread(target=forced)
    t.start()
    inside.wait(5)
    try:
        assert explain_conv(x, w)["forward"] == "pointwise"
    finally:
        done.set()
        t.join()
    assert other["forced"] == "reference"
    with sel.force(forward="im2col", weight_grad="reference"):
        assert explain_conv(x, w) == {"forward": "im2col", "input_grad": "pointwise", "weight_grad": "reference"}
    assert explain_conv(x, w)["forward"] == "pointwise"


def test_explain_conv_names_each_pass(path):
    """explain_conv takes torch's arguments (tensors or arrays), for convs and transposed convs."""
    x, w = lamina.zeros(2, 6, 5, 4), lamina.zeros(3, 6, 1, 1)
    assert explain_conv(x, w) == {p: "pointwise" for p in sel.PASSES}
    assert explain_conv(x, w, padding=1)["forward"] != "pointwise"
    # conv_transpose2d of (2, 16, 8, 8) with a (16, 8, 4, 4) weight, stride 2: the forward is the input
    # gradient of the (2, 8, 16, 16) -> (2, 16, 8, 8) conv
    xt, wt = np.zeros((2, 16, 8, 8), np.float32), np.zeros((16, 8, 4, 4), np.float32)
    got = explain_conv(xt, wt, stride=2, padding=1, transposed=True)
    p = sel.problem((2, 8, 16, 16), (16, 8, 4, 4), np.float32, (2, 2), (1, 1), (1, 1), (8, 8), 1, transposed=True)
    assert got == {"forward": sel.select("input_grad", p).name, "input_grad": sel.select("forward", p).name,
                   "weight_grad": sel.select("weight_grad", p).name}
    if not path:
        assert set(got.values()) <= {"im2col", "pointwise", "depthwise"}
    with pytest.raises(ValueError, match="explain_conv: padding must be an int or a tuple of 2 ints"):
        explain_conv(x, w, padding="same")


def test_choice_follows_the_capabilities(path):
    """Without numba no compiled implementation is chosen; the problem records the capability."""
    p = _problem(PROBLEMS[0])
    assert p.numba == path
    names = {sel.select(pass_, _problem(case)).name for case in PROBLEMS for pass_ in sel.PASSES}
    if not path:
        assert names <= {"pointwise", "depthwise", "im2col"}
