"""``out=`` as torch's (add, sub, mul, div, matmul, mm, cat, stack): the result is written into ``out``, which
is returned; its dtype is kept (torch's casting rule); a shape mismatch resizes it, with torch's
warning when it had elements; no gradient flows through ``out=``."""

import warnings

import numpy as np
import pytest
import torch

import lamina

A = np.arange(6.0).reshape(2, 3) - 2.5
B = np.arange(9.0).reshape(3, 3) / 4 + 1
CALLS = {
    "add": (lambda m, a, b, out: m.add(a, b[:2], alpha=2, out=out), (2, 3)),
    "sub": (lambda m, a, b, out: m.sub(a, b[:2], out=out), (2, 3)),
    "mul": (lambda m, a, b, out: m.mul(a, 3, out=out), (2, 3)),
    "div": (lambda m, a, b, out: m.div(a, b[:2], out=out), (2, 3)),
    "div_floor": (lambda m, a, b, out: m.div(a, b[:2], rounding_mode="floor", out=out), (2, 3)),
    "matmul": (lambda m, a, b, out: m.matmul(a, b, out=out), (2, 3)),
    "mm": (lambda m, a, b, out: m.mm(a, b, out=out), (2, 3)),
    "cat": (lambda m, a, b, out: m.cat([a, b[:1]], out=out), (3, 3)),
    "stack": (lambda m, a, b, out: m.stack([a, b[1:]], dim=1, out=out), (2, 2, 3)),
}


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("out_dtype", ["float32", "float64"])
def test_out_is_written_and_returned_as_torch(name, out_dtype):
    call, shape = CALLS[name]
    if name in ("matmul", "mm") and out_dtype == "float64":  # torch's matmul wants out of its own dtype
        for m in (lamina, torch):
            a, b = m.tensor(A, dtype=m.float32), m.tensor(B, dtype=m.float32)
            with pytest.raises(RuntimeError, match="Expected out tensor to have dtype float, but got double instead"):
                call(m, a, b, m.zeros(shape, dtype=m.float64))
        return
    results = []
    for m in (lamina, torch):
        a, b = m.tensor(A, dtype=m.float32), m.tensor(B, dtype=m.float32)
        out = m.zeros(shape, dtype=getattr(m, out_dtype))
        view = out[0]
        r = call(m, a, b, out)
        assert r is out and str(out.dtype).endswith(out_dtype)
        results.append((out.numpy().copy(), view.numpy().copy()))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)  # a view of out sees the values too


def test_out_resizes_with_torchs_warning_and_keeps_an_empty_out_quiet():
    for m in (lamina, torch):
        out = m.zeros(3)
        with pytest.warns(UserWarning, match="resized since it had shape \\[3\\]"):
            m.matmul(m.ones(2, 2), m.ones(2, 2), out=out)
        assert tuple(out.shape) == (2, 2) and out.numpy().tolist() == [[2.0, 2.0], [2.0, 2.0]]
        empty = m.empty(0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            m.mul(m.ones(2), 2, out=empty)
        assert empty.numpy().tolist() == [2.0, 2.0]


def test_out_errors_as_torch():
    for m in (lamina, torch):
        x = m.ones(2, requires_grad=True)
        with pytest.raises(RuntimeError, match=r"mul\(\): functions with out=... arguments don't support automatic"):
            m.mul(x, 2, out=m.empty(2))
        with pytest.raises(RuntimeError, match=r"add\(\): functions with out=... arguments don't support automatic"):
            m.add(m.ones(2), 1, out=m.empty(2, requires_grad=True))
        with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
            m.mul(m.ones(2), 2.5, out=m.empty(2, dtype=m.int64))
        with pytest.raises(TypeError, match=r"mul\(\): argument 'out' must be Tensor, not list"):
            m.mul(m.ones(2), 2, out=[1])
        with m.no_grad():  # outside grad mode out= is allowed, and out gets no graph
            out = m.zeros(2)
            assert m.mul(x, 2, out=out) is out and not out.requires_grad
        ints = m.zeros(2, dtype=m.int64)
        assert m.add(m.ones(2, dtype=m.int32), 1, out=ints).numpy().tolist() == [2, 2]


def test_out_bumps_the_version_so_saved_tensors_see_it():
    for m in (lamina, torch):
        w = m.ones(2, requires_grad=True)
        buf = m.ones(2)
        y = (w * buf).sum()  # mul saves buf for backward
        m.mul(m.ones(2), 3, out=buf)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.backward()
