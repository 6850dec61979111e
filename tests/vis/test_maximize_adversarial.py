"""Activation maximization, fooling images, FGSM and PGD."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lamina
from lamina import vis

from .conftest import small_cnn, square_images, torch_twin


def test_maximization_raises_the_target_logit_monotonically(trained_square_cnn):
    # with backtracking every step goes uphill, even across the kinks of ReLU and max pooling
    r = vis.maximize_activation(trained_square_cnn, (1, 8, 8), target=1, steps=40, lr=0.02, l2=0.0)
    s = np.array(r.scores)
    assert len(s) == 41 and r.image.shape == (1, 1, 8, 8)
    assert np.all(np.diff(s) > 0), f"not monotone: {np.diff(s)}"
    assert s[-1] > s[0] + 0.1
    plain = vis.maximize_activation(trained_square_cnn, (1, 8, 8), target=1, steps=40, lr=0.02, l2=0.0,
                                    backtrack=False)
    assert plain.scores[-1] > plain.scores[0]


def test_maximization_of_a_unit_and_regularizers(trained_square_cnn):
    r = vis.maximize_activation(trained_square_cnn, (1, 8, 8), layer="features.3", unit=0, steps=25, lr=0.2,
                                jitter=1, blur_every=5, blur_sigma=0.5, clamp=(0.0, 1.0), seed=3)
    assert r.scores[-1] > r.scores[0]
    assert r.image.min() >= 0.0 and r.image.max() <= 1.0
    with pytest.raises(ValueError, match="unit must be a channel"):
        vis.maximize_activation(trained_square_cnn, (1, 8, 8), layer="features.3", unit=99, steps=1)
    with pytest.raises(ValueError, match="target must be a class"):
        vis.maximize_activation(trained_square_cnn, (1, 8, 8), target=2, steps=1)


def test_maximization_hand_computed_step():
    # logit = w·x with w = (1, 2), x0 = 0, no decay: one step of lr 0.5 moves x to 0.5·w.
    net = lamina.nn.Sequential(lamina.nn.Flatten(), lamina.nn.Linear(2, 1, bias=False))
    net[1].weight.data = lamina.tensor([[1.0, 2.0]])
    r = vis.maximize_activation(net, (1, 1, 2), target=0, steps=1, lr=0.5, l2=0.0, init=np.zeros((1, 1, 2)))
    np.testing.assert_allclose(r.image.ravel(), [0.5, 1.0])
    np.testing.assert_allclose(r.scores, [0.0, 2.5])


def test_gaussian_blur_keeps_constants_and_spreads_a_spike():
    const = np.full((1, 2, 6, 6), 0.3)
    np.testing.assert_allclose(vis.gaussian_blur(const, 1.0), const)
    spike = np.zeros((1, 1, 9, 9))
    spike[0, 0, 4, 4] = 1.0
    b = vis.gaussian_blur(spike, 1.0)
    np.testing.assert_allclose(b.sum(), 1.0)
    assert b[0, 0, 4, 4] < 1 and b[0, 0, 4, 4] == b.max() and np.allclose(b[0, 0], b[0, 0].T)


def test_fooling_image_from_noise(trained_square_cnn):
    r = vis.fooling_image(trained_square_cnn, (1, 8, 8), target=1, confidence=0.99, steps=200, lr=0.05)
    assert r.scores[-1] >= 0.99, r.scores[-5:]
    assert r.image.min() >= 0 and r.image.max() <= 1


def test_fgsm_raises_the_loss_and_flips_predictions(trained_square_cnn):
    x, y, _ = square_images(40, seed=21)
    r = vis.fgsm(trained_square_cnn, x, y, epsilon=0.1)
    correct = r.pred_before == y
    assert correct.mean() > 0.9
    assert np.all(r.loss_after > r.loss_before)
    assert r.flipped[correct].mean() >= 0.4, r.flipped.mean()
    np.testing.assert_allclose(r.linf, 0.1, atol=1e-6)  # no pixel is clipped: images lie in [0, 0.75]
    # a stronger iterative attack at the same budget flips more
    p = vis.pgd(trained_square_cnn, x, y, epsilon=0.1, steps=10)
    assert p.flipped.mean() >= r.flipped.mean() and np.all(p.linf <= 0.1 + 1e-6)


def test_fgsm_matches_torch():
    lamina.manual_seed(5)
    m = small_cnn().double()
    tm = torch_twin(m)
    x = np.random.default_rng(5).uniform(0, 1, (4, 1, 8, 8))
    y = np.array([1, 2, 3, 4])
    xt = torch.tensor(x, requires_grad=True)
    torch.nn.functional.cross_entropy(tm(xt), torch.tensor(y), reduction="sum").backward()
    ref = torch.clamp(xt + 0.03 * xt.grad.sign(), 0, 1).detach().numpy()
    r = vis.fgsm(m, x, y, epsilon=0.03)
    np.testing.assert_allclose(r.x_adv, ref, rtol=1e-12)
    with torch.no_grad():
        np.testing.assert_allclose(r.loss_after, torch.nn.functional.cross_entropy(
            tm(torch.tensor(ref)), torch.tensor(y), reduction="none").numpy(), rtol=1e-10)
    # targeted: the step goes down the target's loss
    xt.grad = None
    torch.nn.functional.cross_entropy(tm(xt), torch.tensor([0, 0, 0, 0]), reduction="sum").backward()
    ref_t = torch.clamp(xt - 0.03 * xt.grad.sign(), 0, 1).detach().numpy()
    np.testing.assert_allclose(vis.fgsm(m, x, y, epsilon=0.03, target=0).x_adv, ref_t, rtol=1e-12)


@pytest.mark.parametrize("norm", ["inf", "2"])
def test_pgd_stays_in_the_ball_and_targeted_attack_reaches_the_target(trained_square_cnn, norm):
    x, y, _ = square_images(12, seed=31)
    eps = 0.3 if norm == "inf" else 1.5
    r = vis.pgd(trained_square_cnn, x, y, epsilon=eps, steps=20, norm=norm, target=1 - y)
    size = r.linf if norm == "inf" else r.l2
    assert np.all(size <= eps + 1e-5)
    assert r.x_adv.min() >= 0 and r.x_adv.max() <= 1
    assert r.flipped.mean() >= 0.75 and np.all(r.flipped == (r.pred_after == 1 - y))
    assert np.all(r.target == 1 - y)


def test_pgd_l2_projection_hand_computed():
    # a linear model: the L2 attack moves along ±w; with a large step and no random start it
    # ends on the ball's surface, x + ε·w/‖w‖ for the loss-raising direction.
    net = lamina.nn.Sequential(lamina.nn.Flatten(), lamina.nn.Linear(2, 2, bias=False)).double()
    net[1].weight.data = lamina.tensor([[3.0, 4.0], [0.0, 0.0]], dtype=lamina.float64)
    x = np.array([[[[0.5, 0.5]]]])
    r = vis.pgd(net, x, y=[0], epsilon=0.1, alpha=1.0, steps=3, norm="2", random_start=False, clamp=None)
    np.testing.assert_allclose(r.x_adv.ravel(), [0.5 - 0.06, 0.5 - 0.08])
    np.testing.assert_allclose(r.l2, [0.1])
    with pytest.raises(ValueError, match="norm must be"):
        vis.pgd(net, x, epsilon=0.1, norm="1")
