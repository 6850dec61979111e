"""clip_grad_norm_, clip_grad_value_, parameters_to_vector, vector_to_parameters against torch."""

import numpy as np
import pytest
import torch

import lamina
from lamina import nn
from lamina.nn.utils import clip_grad_norm_, clip_grad_value_, parameters_to_vector, vector_to_parameters
from tests.helpers import check_grads


def _pair(seed, dtype="float64", shapes=((3, 4), (4,), (2, 2, 2))):
    rng = np.random.default_rng(seed)
    ws = [rng.standard_normal(s).astype(dtype) for s in shapes]
    gs = [rng.standard_normal(s).astype(dtype) * rng.uniform(0.1, 3) for s in shapes]
    lp = [nn.Parameter(lamina.tensor(w)) for w in ws]
    tp = [torch.tensor(w, requires_grad=True) for w in ws]
    for p, g in zip(lp, gs):
        p.grad = lamina.tensor(g)
    for p, g in zip(tp, gs):
        p.grad = torch.tensor(g)
    return lp, tp


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.5, float("inf"), 0.5])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_clip_grad_norm_matches_torch(seed, norm_type, max_norm, dtype):
    lp, tp = _pair(seed, dtype)
    ln = clip_grad_norm_(lp, max_norm, norm_type)
    tn = torch.nn.utils.clip_grad_norm_(tp, max_norm, norm_type)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == "float64" else dict(rtol=1e-6, atol=1e-6)
    assert ln.dtype == np.dtype(dtype)
    np.testing.assert_allclose(ln.item(), tn.item(), **tol)
    for a, b in zip(lp, tp):
        np.testing.assert_allclose(a.grad.array, b.grad.numpy(), **tol)


def test_clip_grad_norm_hand_computed_and_edge_cases():
    w = nn.Parameter(lamina.zeros(2, dtype=lamina.float64))
    w.grad = lamina.tensor([6.0, 8.0], dtype=lamina.float64)  # norm 10 → scaled by 2 / (10 + 1e-6)
    assert clip_grad_norm_(w, 2.0).item() == 10.0
    np.testing.assert_allclose(w.grad.array, np.array([6.0, 8.0]) * 2 / (10 + 1e-6), rtol=1e-15)
    assert clip_grad_norm_([nn.Parameter(lamina.zeros(2))], 1.0).item() == 0.0  # no gradients
    w.grad = lamina.tensor([np.inf, 1.0], dtype=lamina.float64)
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(w, 1.0, error_if_nonfinite=True)


@pytest.mark.parametrize("seed", range(3))
def test_clip_grad_value_matches_torch(seed):
    lp, tp = _pair(seed)
    clip_grad_value_(lp, 0.7)
    torch.nn.utils.clip_grad_value_(tp, 0.7)
    for a, b in zip(lp, tp):
        np.testing.assert_array_equal(a.grad.array, b.grad.numpy())


def test_parameters_to_vector_and_back():
    lp, tp = _pair(0)
    lv = parameters_to_vector(lp)
    tv = torch.nn.utils.parameters_to_vector(tp)
    np.testing.assert_array_equal(lv.detach().array, tv.detach().numpy())
    assert lv.requires_grad  # differentiable, as torch's
    new = np.arange(lv.numel(), dtype=np.float64)
    vector_to_parameters(lamina.tensor(new), lp)
    torch.nn.utils.vector_to_parameters(torch.tensor(new), tp)
    for a, b in zip(lp, tp):
        np.testing.assert_array_equal(a.array, b.detach().numpy())
    with pytest.raises(ValueError, match="elements"):
        vector_to_parameters(lamina.zeros(3), lp)
    with pytest.raises(TypeError, match="lamina Tensor"):
        vector_to_parameters(np.zeros(3), lp)


def test_parameters_to_vector_gradcheck():
    check_grads(lambda a, b: parameters_to_vector([a, b]) * 2.0, (2, 3), (4,))
