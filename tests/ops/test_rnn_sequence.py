"""The whole-sequence LSTM and GRU primitives against the per-step fused steps they replace: outputs,
every gradient, second derivatives, and one graph node per layer direction."""

from __future__ import annotations

import numpy as np
import pytest

import lamina
from lamina import nn
from lamina.autograd import gradcheck, gradgradcheck
from lamina.ops.rnn import gru_step, lstm_step
from lamina.ops.rnn_sequence import GRUSequence, LSTMSequence, gru_sequence, lstm_sequence


def _inputs(mode: str, steps: int, batch: int, feat: int, hidden: int, proj: int, bias: bool, dtype, seed: int):
    rng = np.random.default_rng(seed)
    gates = 4 if mode == "LSTM" else 3
    out = proj or hidden
    shapes = [(steps, batch, feat), (batch, out + (hidden if mode == "LSTM" else 0)), (gates * hidden, feat),
              (gates * hidden, out)]
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
    extra: list = [None, None]
    if bias:
        extra = [rng.standard_normal(gates * hidden).astype(dtype), None]
        if mode == "GRU":
            extra[1] = rng.standard_normal(gates * hidden).astype(dtype)
    if proj:
        extra[1] = rng.standard_normal((proj, hidden)).astype(dtype)
    return arrays + extra


def _per_step(mode: str, ins: list, reverse: bool) -> lamina.Tensor:
    x, s = ins[0], ins[1]
    steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    out = [None] * x.shape[0]
    step = lstm_step if mode == "LSTM" else gru_step
    for t in steps:
        s = out[t] = step(x[t], s, *ins[2:])
    return lamina.stack(out, 0)


CASES = [("LSTM", 0, True, False), ("LSTM", 0, False, True), ("LSTM", 2, True, True), ("GRU", 0, True, False),
         ("GRU", 0, True, True), ("GRU", 0, False, False)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode,proj,bias,reverse", CASES)
def test_sequence_equals_the_per_step_path(mode: str, proj: int, bias: bool, reverse: bool, dtype) -> None:
    arrays = _inputs(mode, 7, 3, 4, 5, proj, bias, dtype, seed=len(mode) + proj + 2 * bias + 4 * reverse)
    gout = np.random.default_rng(9).standard_normal((7, 3, arrays[1].shape[1])).astype(dtype)
    results = []
    for whole in (True, False):
        ins = [None if a is None else lamina.tensor(a, requires_grad=True) for a in arrays]
        if whole:
            fn = lstm_sequence if mode == "LSTM" else gru_sequence
            y = fn(*ins, reverse=reverse)
            assert y.grad_fn.fn is (LSTMSequence if mode == "LSTM" else GRUSequence)
        else:
            y = _per_step(mode, ins, reverse)
        (y * lamina.tensor(gout)).sum().backward()
        results.append([y.array] + [t.grad.array for t in ins if t is not None])
    # the forward is the same arithmetic in the same order; the gradients are sums over the steps taken
    # in another order (one matmul over all steps instead of one per step)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for k, (a, b) in enumerate(zip(*results)):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=f"output/gradient {k}")


@pytest.mark.parametrize("mode,proj,bias,reverse", [("LSTM", 2, True, True), ("GRU", 0, True, False)])
def test_sequence_first_and_second_derivatives(mode: str, proj: int, bias: bool, reverse: bool) -> None:
    arrays = _inputs(mode, 3, 2, 2, 3, proj, bias, np.float64, seed=5)
    args = tuple(None if a is None else lamina.tensor(a, requires_grad=True) for a in arrays)
    fn = lstm_sequence if mode == "LSTM" else gru_sequence

    def f(*a):
        return fn(*a, reverse=reverse)

    assert gradcheck(f, args)
    assert gradgradcheck(f, args)


def _count(root, fn) -> int:
    seen, stack, n = set(), [root], 0
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        n += getattr(node, "fn", None) is fn
        stack.extend(nxt for nxt, _ in getattr(node, "next_functions", ()))  # torch's (node, index) pairs
    return n


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_layer_graph_has_one_node_per_layer_direction(mode: str) -> None:
    from lamina.ops.rnn import GRUStep, LSTMStep

    lamina.manual_seed(0)
    m = getattr(nn, mode)(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    out, _ = m(lamina.randn(2, 6, 3))
    seq, step = (LSTMSequence, LSTMStep) if mode == "LSTM" else (GRUSequence, GRUStep)
    assert _count(out.grad_fn, seq) == 4  # 2 layers × 2 directions
    assert _count(out.grad_fn, step) == 0


def test_sequence_shape_errors_are_named() -> None:
    with pytest.raises(ValueError, match="lstm_sequence: expected a non-empty input sequence"):
        lstm_sequence(lamina.zeros(2, 3), lamina.zeros(2, 8), lamina.zeros(16, 3), lamina.zeros(16, 4))
    with pytest.raises(ValueError, match="gru_sequence: shapes do not fit"):
        gru_sequence(lamina.zeros(5, 2, 3), lamina.zeros(2, 4), lamina.zeros(12, 2), lamina.zeros(12, 4))
