"""RNN, LSTM, GRU and their cells against torch (outputs, final states, every gradient) and float64 gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lamina
from lamina import nn
from lamina.autograd import gradcheck


def _load_from(lam: nn.Module, ref: torch.nn.Module) -> None:
    sd = {k: lamina.tensor(v.detach().numpy()) for k, v in ref.state_dict().items()}
    lam.load_state_dict(sd)


def _configs(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        mode = ["RNN", "LSTM", "GRU"][i % 3]
        cfg = dict(mode=mode, input_size=int(rng.integers(1, 5)), hidden_size=int(rng.integers(2, 6)),
                   num_layers=int(rng.integers(1, 4)), bias=bool(rng.random() < 0.7),
                   batch_first=bool(rng.random() < 0.5), bidirectional=bool(rng.random() < 0.5),
                   steps=int(rng.integers(1, 6)), batch=int(rng.integers(0, 4)), init=bool(rng.random() < 0.5))
        if mode == "LSTM" and rng.random() < 0.4:
            cfg["proj_size"] = int(rng.integers(1, cfg["hidden_size"]))
        if mode == "RNN" and rng.random() < 0.5:
            cfg["nonlinearity"] = "relu"
        out.append(cfg)
    return out


@pytest.mark.parametrize("cfg", _configs(18, 0), ids=lambda c: f"{c['mode']}-L{c['num_layers']}")
def test_recurrent_layer_matches_torch(cfg: dict) -> None:
    cfg = dict(cfg)
    mode, steps, batch, use_init = cfg.pop("mode"), cfg.pop("steps"), cfg.pop("batch"), cfg.pop("init")
    ref = getattr(torch.nn, mode)(**cfg).double()
    lam = getattr(nn, mode)(**cfg, dtype=lamina.float64)
    assert list(lam.state_dict()) == list(ref.state_dict())
    assert all(tuple(lam.state_dict()[k].shape) == tuple(v.shape) for k, v in ref.state_dict().items())
    _load_from(lam, ref)
    rng = np.random.default_rng(1)
    d = 2 if cfg["bidirectional"] else 1
    h_out = cfg.get("proj_size") or cfg["hidden_size"]
    unbatched = batch == 0
    if unbatched:
        xs = rng.standard_normal((steps, cfg["input_size"]))
        lead = (d * cfg["num_layers"],)
    else:
        xs = rng.standard_normal((batch, steps, cfg["input_size"]) if cfg["batch_first"]
                                 else (steps, batch, cfg["input_size"]))
        lead = (d * cfg["num_layers"], batch)
    arrays = [xs]
    if use_init:
        arrays.append(rng.standard_normal((*lead, h_out)))
        if mode == "LSTM":
            arrays.append(rng.standard_normal((*lead, cfg["hidden_size"])))
    t_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    l_in = [lamina.tensor(a, requires_grad=True) for a in arrays]

    def run(m, ins):
        hx = None if len(ins) == 1 else (ins[1] if mode != "LSTM" else (ins[1], ins[2]))
        out, hn = m(ins[0], hx)
        return [out, *(hn if mode == "LSTM" else (hn,))]

    t_out, l_out = run(ref, t_in), run(lam, l_in)
    ups = [rng.standard_normal(tuple(t.shape)) for t in t_out]
    for t, v in zip(t_out, l_out):
        assert tuple(v.shape) == tuple(t.shape)
        np.testing.assert_allclose(v.array, t.detach().numpy(), rtol=1e-10, atol=1e-10)
    sum((t * torch.tensor(u)).sum() for t, u in zip(t_out, ups)).backward()
    sum((v * lamina.tensor(u)).sum() for v, u in zip(l_out, ups)).backward()
    for t, v in zip(t_in, l_in):
        np.testing.assert_allclose(v.grad.array, t.grad.numpy(), rtol=1e-9, atol=1e-10)
    lp = dict(lam.named_parameters())
    for k, p in ref.named_parameters():
        np.testing.assert_allclose(lp[k].grad.array, p.grad.numpy(), rtol=1e-9, atol=1e-10, err_msg=k)


@pytest.mark.parametrize("mode", ["RNNCell", "LSTMCell", "GRUCell"])
@pytest.mark.parametrize("batched", [True, False])
def test_cells_match_torch(mode: str, batched: bool) -> None:
    ref = getattr(torch.nn, mode)(3, 4).double()
    lam = getattr(nn, mode)(3, 4, dtype=lamina.float64)
    assert list(lam.state_dict()) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"] == list(ref.state_dict())
    _load_from(lam, ref)
    rng = np.random.default_rng(2)
    shape = (2, 3) if batched else (3,)
    hshape = (2, 4) if batched else (4,)
    arrays = [rng.standard_normal(shape), rng.standard_normal(hshape), rng.standard_normal(hshape)]
    if mode != "LSTMCell":
        arrays = arrays[:2]
    t_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    l_in = [lamina.tensor(a, requires_grad=True) for a in arrays]

    def run(m, ins):
        out = m(ins[0], (ins[1], ins[2]) if mode == "LSTMCell" else ins[1])
        return list(out) if mode == "LSTMCell" else [out]

    t_out, l_out = run(ref, t_in), run(lam, l_in)
    for t, v in zip(t_out, l_out):
        np.testing.assert_allclose(v.array, t.detach().numpy(), rtol=1e-10, atol=1e-12)
    sum(t.sum() * (i + 1) for i, t in enumerate(t_out)).backward()
    sum(v.sum() * (i + 1) for i, v in enumerate(l_out)).backward()
    for t, v in zip(t_in, l_in):
        np.testing.assert_allclose(v.grad.array, t.grad.numpy(), rtol=1e-9, atol=1e-12)
    for k, p in ref.named_parameters():
        np.testing.assert_allclose(getattr(lam, k).grad.array, p.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
def test_recurrent_layers_gradcheck(mode: str) -> None:
    lamina.manual_seed(0)
    m = getattr(nn, mode)(2, 3, num_layers=2, bidirectional=True, dtype=lamina.float64)
    x = lamina.randn(3, 2, 2, dtype=lamina.float64, requires_grad=True)
    h0 = lamina.randn(4, 2, 3, dtype=lamina.float64, requires_grad=True)

    def f(x, h0, w_ih, w_hh):  # the parameters are perturbed in place by gradcheck: m reads them
        out, _ = m(x, (h0, h0 * 0.5) if mode == "LSTM" else h0)
        return out

    assert gradcheck(f, (x, h0, m.weight_ih_l0, m.weight_hh_l1_reverse))


def test_init_is_uniform_within_one_over_sqrt_hidden() -> None:
    lamina.manual_seed(0)
    m = nn.LSTM(8, 25, num_layers=2)
    vals = np.concatenate([p.array.ravel() for p in m.parameters()])
    assert np.abs(vals).max() <= 0.2 and np.abs(vals).max() > 0.19
    assert abs(vals.mean()) < 0.01 and vals.std() == pytest.approx(0.2 / np.sqrt(3), rel=0.05)


def test_dropout_between_layers_only_in_training() -> None:
    lamina.manual_seed(0)
    m = nn.GRU(3, 4, num_layers=2, dropout=0.5)
    x = lamina.randn(5, 2, 3)
    a, _ = m(x)
    b, _ = m(x)
    assert not np.allclose(a.array, b.array)  # two dropout masks between the layers
    m.eval()
    c, _ = m(x)
    d, _ = m(x)
    np.testing.assert_array_equal(c.array, d.array)
    m1 = nn.GRU(3, 4, num_layers=1, dropout=0.5)  # no layer after the only one: nothing to drop
    np.testing.assert_array_equal(m1(x)[0].array, m1(x)[0].array)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="LSTM: expected input of shape \\(L, N, 3\\)"):
        nn.LSTM(3, 4)(lamina.randn(2, 5, 4))
    with pytest.raises(ValueError, match="GRU: expected h_0 of shape \\(1, 5, 4\\)"):
        nn.GRU(3, 4)(lamina.randn(2, 5, 3), lamina.zeros(1, 2, 4))
    with pytest.raises(ValueError, match="proj_size is an LSTM option"):
        nn.RNNBase("GRU", 3, 4, proj_size=2)
    with pytest.raises(ValueError, match="proj_size has to be smaller"):
        nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="RNN: unknown nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="LSTMCell: expected cx of shape \\(2, 4\\)"):
        nn.LSTMCell(3, 4)(lamina.randn(2, 3), (lamina.zeros(2, 4), lamina.zeros(1, 4)))


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_fused_steps_second_derivatives(mode: str) -> None:
    from lamina.autograd import gradgradcheck
    from lamina.ops.rnn import gru_step, lstm_step

    lamina.manual_seed(1)
    f64 = dict(dtype=lamina.float64, requires_grad=True)
    if mode == "LSTM":
        args = (lamina.randn(2, 3, **f64), lamina.randn(2, 2 + 4, **f64), lamina.randn(16, 3, **f64),
                lamina.randn(16, 2, **f64), lamina.randn(16, **f64), lamina.randn(2, 4, **f64))
        fn = lstm_step
    else:
        args = (lamina.randn(2, 3, **f64), lamina.randn(2, 4, **f64), lamina.randn(12, 3, **f64),
                lamina.randn(12, 4, **f64), lamina.randn(12, **f64), lamina.randn(12, **f64))
        fn = gru_step
    assert gradcheck(fn, args)
    assert gradgradcheck(fn, args)


def test_fused_step_shape_errors() -> None:
    from lamina.ops.rnn import lstm_step

    with pytest.raises(ValueError, match="lstm_step: shapes do not fit"):
        lstm_step(lamina.zeros(2, 3), lamina.zeros(2, 8), lamina.zeros(16, 2), lamina.zeros(16, 4))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lstm_step_compiled_kernel_matches_the_numpy_formulas(dtype) -> None:
    from lamina.ops import rnn as R
    from lamina.ops.kernels import rnn_numba
    from lamina.ops.kernels.im2col import use_numba

    if rnn_numba.lstm_gate_grads is None or not use_numba():
        pytest.skip("numba is not installed: the NumPy formulas are the only path")
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(s).astype(dtype) for s in [(5, 3), (5, 2 + 4), (16, 3), (16, 2), (16,), (2, 4)]]
    gout = rng.standard_normal((5, 6)).astype(dtype)
    results = []
    for fast in (True, False):
        use_numba(fast)
        try:
            ins = [lamina.tensor(a, requires_grad=True) for a in arrays]
            out = R.lstm_step(*ins)
            (out * lamina.tensor(gout)).sum().backward()
            results.append([out.array] + [t.grad.array for t in ins])
        finally:
            use_numba(True)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
