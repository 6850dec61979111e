"""Deconvnet and guided backpropagation: the ReLU rules on a hand-built network, and the whole
CNN against torch references built on torch's own full backward hooks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lamina
from lamina import nn, vis

from .conftest import small_cnn, torch_twin


def _hand_net() -> nn.Module:
    # x (2 values) → W1 (3×2) → ReLU → W2 (1×3) → one logit
    net = nn.Sequential(nn.Flatten(), nn.Linear(2, 3, bias=False), nn.ReLU(), nn.Linear(3, 1, bias=False)).double()
    net[1].weight.data = lamina.tensor([[1.0, 2.0], [1.0, -1.0], [2.0, 0.0]], dtype=lamina.float64)
    net[3].weight.data = lamina.tensor([[1.0, -1.0, 1.0]], dtype=lamina.float64)
    return net


def test_relu_rules_hand_computed():
    # x = (1, −1): pre-activations W1 x = (−1, 2, 2), so the ReLU mask is (0, 1, 1); the gradient
    # arriving at the ReLU is W2ᵀ = (1, −1, 1).
    #   backprop:  g·mask         = (0, −1, 1) → W1ᵀ(0, −1, 1) = (1, 1)
    #   deconvnet: ReLU(g)        = (1,  0, 1) → W1ᵀ(1, 0, 1)  = (3, 2)
    #   guided:    ReLU(g)·mask   = (0,  0, 1) → W1ᵀ(0, 0, 1)  = (2, 0)
    net, x = _hand_net(), np.array([[[[1.0, -1.0]]]])
    np.testing.assert_allclose(vis.input_gradient(net, x, target=0).ravel(), [1.0, 1.0])
    np.testing.assert_allclose(vis.deconvnet(net, x, target=0).ravel(), [3.0, 2.0])
    np.testing.assert_allclose(vis.guided_backprop(net, x, target=0).ravel(), [2.0, 0.0])
    # the hooks are gone afterwards: plain gradients again, and the model was not changed
    np.testing.assert_allclose(vis.input_gradient(net, x, target=0).ravel(), [1.0, 1.0])
    assert not net[2]._backward_hooks


def test_relu_rule_unit_of_a_layer():
    # the unit "layer 2 (ReLU), feature 1": its value is ReLU(x0 − x1); every rule gives W1 row 1
    # where the unit is active ((1, −1) here), and the deconvnet passes the positive seed through.
    net, x = _hand_net(), np.array([[[[1.0, -1.0]]]])
    for fn in (vis.deconvnet, vis.guided_backprop):
        np.testing.assert_allclose(fn(net, x, layer="2", unit=1).ravel(), [1.0, -1.0])


def _torch_rule(tm: torch.nn.Module, x: np.ndarray, target: list[int], rule: str) -> np.ndarray:
    def hook(mod, gin, gout):
        return (torch.relu(gout[0]),) if rule == "deconvnet" else (torch.relu(gin[0]),)

    handles = [m.register_full_backward_hook(hook) for m in tm.modules() if isinstance(m, torch.nn.ReLU)]
    xt = torch.tensor(x, requires_grad=True)
    out = tm(xt)
    out[torch.arange(len(x)), torch.tensor(target)].sum().backward()
    for h in handles:
        h.remove()
    return xt.grad.numpy()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_guided_and_deconvnet_match_torch(seed):
    lamina.manual_seed(seed)
    m = small_cnn().double()
    tm = torch_twin(m)
    x = np.random.default_rng(seed).uniform(-1, 1, (3, 1, 8, 8))
    t = [seed, 3, 9]
    np.testing.assert_allclose(vis.guided_backprop(m, x, target=t), _torch_rule(tm, x, t, "guided"), rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(vis.deconvnet(m, x, target=t), _torch_rule(tm, x, t, "deconvnet"), rtol=1e-10,
                               atol=1e-12)


def test_unit_reconstruction_matches_torch_and_stays_in_the_receptive_field():
    lamina.manual_seed(4)
    m = small_cnn().double()
    tm = torch_twin(m)
    x = np.random.default_rng(4).uniform(0, 1, (2, 1, 8, 8))
    # torch: seed the strongest position of channel 2 of the first conv's output, guided rule
    for mod in tm.modules():
        if isinstance(mod, torch.nn.ReLU):
            mod.register_full_backward_hook(lambda mod, gin, gout: (torch.relu(gin[0]),))
    xt = torch.tensor(x, requires_grad=True)
    a = tm.features[:2](xt)
    seed = torch.zeros_like(a)
    flat = a[:, 2].reshape(2, -1).argmax(1)
    for i in range(2):
        seed[i, 2].view(-1)[flat[i]] = 1
    (a * seed).sum().backward()
    ours = vis.guided_backprop(m, x, layer="features.1", unit=2)
    np.testing.assert_allclose(ours, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    for i in range(2):  # a first-layer unit sees a 3×3 window around its position only
        r, c = divmod(int(flat[i]), 8)
        outside = np.ones((8, 8), bool)
        outside[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2] = False
        assert np.all(ours[i, 0][outside] == 0)


def test_rule_errors():
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="no nn.ReLU modules"):
        vis.guided_backprop(net, np.ones((1, 1, 2, 2)))
    with pytest.raises(ValueError, match="rule must be one of"):
        with vis.relu_backward_rule(net, "magic"):
            pass
