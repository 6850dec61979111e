"""nn.utils.parametrize, parametrizations.weight_norm / spectral_norm and the hook-based weight_norm:
torch's state_dict names, values and gradients (with torch's state loaded into lamina), the power
iteration's buffers step for step, removal, and errors."""

import numpy as np
import pytest
import torch

import lamina
import lamina.nn as nn


def _load(lm, tm):
    lm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})


def _grads_match(lm, tm, x, rtol=1e-10):
    lo, to = lm(lamina.tensor(x)), tm(torch.tensor(x))
    np.testing.assert_allclose(lo.detach().numpy(), to.detach().numpy(), rtol=rtol, atol=rtol)
    g = np.random.default_rng(5).standard_normal(to.shape)
    lo.backward(lamina.tensor(g))
    to.backward(torch.tensor(g))
    tp = dict(tm.named_parameters())
    for name, p in lm.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tp[name].grad.numpy(), rtol=rtol, atol=rtol, err_msg=name)


@pytest.mark.parametrize("dim", [0, 1, None])
@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_parametrized_weight_norm_matches_torch(dim, kind):
    if kind == "linear":
        lm, tm = nn.Linear(3, 4).double(), torch.nn.Linear(3, 4).double()
        x = np.random.default_rng(0).standard_normal((2, 3))
    else:
        lm, tm = nn.Conv2d(2, 3, 3).double(), torch.nn.Conv2d(2, 3, 3).double()
        x = np.random.default_rng(0).standard_normal((1, 2, 5, 5))
    lm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    nn.utils.parametrizations.weight_norm(lm, dim=dim)
    torch.nn.utils.parametrizations.weight_norm(tm, dim=dim)
    assert list(lm.state_dict()) == list(tm.state_dict())
    assert type(lm).__name__ == type(tm).__name__
    for k, v in tm.state_dict().items():
        np.testing.assert_allclose(lm.state_dict()[k].numpy(), v.numpy(), rtol=1e-12, err_msg=k)
    _grads_match(lm, tm, x)


def test_hook_weight_norm_matches_torch_and_removes():
    tm = torch.nn.Linear(3, 4).double()
    lm = nn.Linear(3, 4).double()
    lm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    nn.utils.weight_norm(lm)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.nn.utils.weight_norm(tm)
    assert list(lm.state_dict()) == list(tm.state_dict()) == ["bias", "weight_g", "weight_v"]
    _grads_match(lm, tm, np.random.default_rng(1).standard_normal((2, 3)))
    with lamina.no_grad():
        lm.weight_g.mul_(2.0)  # the hook recomputes the weight from g and v before each call
    assert lm(lamina.zeros(1, 3, dtype=lamina.float64)).shape == (1, 4)
    np.testing.assert_allclose(lm.weight.detach().numpy(), 2 * tm.weight.detach().numpy(), rtol=1e-12)
    nn.utils.remove_weight_norm(lm)
    torch.nn.utils.remove_weight_norm(tm)
    assert list(lm.state_dict()) == list(tm.state_dict()) == ["bias", "weight"]
    assert isinstance(lm.weight, nn.Parameter)
    with pytest.raises(ValueError, match="not found"):
        nn.utils.remove_weight_norm(lm)


@pytest.mark.parametrize("make", ["linear", "conv", "convT"])
def test_spectral_norm_matches_torch_step_for_step(make):
    ctor = {"linear": lambda m: m.Linear(5, 4), "conv": lambda m: m.Conv2d(2, 3, 3),
            "convT": lambda m: m.ConvTranspose2d(3, 2, 3)}[make]
    shape = {"linear": (2, 5), "conv": (1, 2, 5, 5), "convT": (1, 3, 4, 4)}[make]
    torch.manual_seed(0)
    tm = ctor(torch.nn).double()
    torch.nn.utils.parametrizations.spectral_norm(tm)
    lm = ctor(nn).double()
    nn.utils.parametrizations.spectral_norm(lm)
    assert list(lm.state_dict()) == list(tm.state_dict())
    _load(lm, tm)  # the same weight and the same u, v: the iterations must then agree exactly
    x = np.random.default_rng(2).standard_normal(shape)
    for _ in range(3):  # training mode: one power iteration per call
        for m in (lm, tm):
            for p in m.parameters():
                p.grad = None
        _grads_match(lm, tm, x, rtol=1e-9)
    for k, v in tm.state_dict().items():
        np.testing.assert_allclose(lm.state_dict()[k].numpy(), v.numpy(), rtol=1e-9, atol=1e-12, err_msg=k)
    lm.eval()
    tm.eval()
    u = lm.parametrizations.weight[0]._u.numpy().copy()
    lm(lamina.tensor(x))
    assert np.array_equal(lm.parametrizations.weight[0]._u.numpy(), u)  # eval: no iteration


def test_spectral_norm_bounds_the_largest_singular_value():
    lm = nn.Linear(6, 5)
    with lamina.no_grad():
        lm.weight.mul_(10.0)
    nn.utils.parametrizations.spectral_norm(lm)
    for _ in range(30):
        lm(lamina.zeros(1, 6))
    assert np.linalg.svd(lm.weight.detach().numpy(), compute_uv=False)[0] == pytest.approx(1.0, rel=1e-3)


def test_register_and_remove_parametrization_keep_the_parameter_object():
    class Symmetric(nn.Module):
        def forward(self, x):
            return x.triu() + x.triu(1).mT

    lm = nn.Linear(3, 3)
    w = lm.weight
    nn.utils.parametrize.register_parametrization(lm, "weight", Symmetric())
    assert lm.parametrizations.weight.original is w and nn.utils.parametrize.is_parametrized(lm, "weight")
    sym = lm.weight.detach().numpy()
    np.testing.assert_allclose(sym, sym.T)
    nn.utils.parametrize.remove_parametrizations(lm, "weight")
    assert type(lm) is nn.Linear and lm.weight is w and not nn.utils.parametrize.is_parametrized(lm)
    np.testing.assert_allclose(lm.weight.detach().numpy(), sym)
    with pytest.raises(ValueError, match="does not have a parameter"):
        nn.utils.parametrize.register_parametrization(lm, "nope", Symmetric())
    with pytest.raises(ValueError, match="n_power_iterations"):
        nn.utils.parametrizations.spectral_norm(nn.Linear(2, 2), n_power_iterations=0)


@pytest.mark.parametrize("make", ["linear", "convT"])
def test_hook_spectral_norm_matches_torch_and_removes(make):
    ctor = {"linear": lambda m: m.Linear(5, 4), "convT": lambda m: m.ConvTranspose2d(3, 2, 3)}[make]
    shape = {"linear": (2, 5), "convT": (1, 3, 4, 4)}[make]
    torch.manual_seed(0)
    tm = torch.nn.utils.spectral_norm(ctor(torch.nn).double(), n_power_iterations=2)
    lm = nn.utils.spectral_norm(ctor(nn).double(), n_power_iterations=2)
    assert list(lm.state_dict()) == list(tm.state_dict())  # bias, weight_orig, weight_u, weight_v
    _load(lm, tm)
    x = np.random.default_rng(3).standard_normal(shape)
    for _ in range(2):
        for m in (lm, tm):
            for p in m.parameters():
                p.grad = None
        _grads_match(lm, tm, x, rtol=1e-9)
    for k, v in tm.state_dict().items():
        np.testing.assert_allclose(lm.state_dict()[k].numpy(), v.numpy(), rtol=1e-9, atol=1e-12, err_msg=k)
    nn.utils.remove_spectral_norm(lm)
    torch.nn.utils.remove_spectral_norm(tm)
    assert list(lm.state_dict()) == list(tm.state_dict())
    np.testing.assert_allclose(lm.weight.detach().numpy(), tm.weight.detach().numpy(), rtol=1e-9)
    with pytest.raises(ValueError, match="not found"):
        nn.utils.remove_spectral_norm(lm)
