"""GradientNoise (annealed Gaussian gradient noise) and EarlyStopping."""

import numpy as np
import pytest

import lamina
from lamina import nn
from lamina.optim import EarlyStopping, GradientNoise
from tests.optim.mlp import lamina_loss, make_pair, train


def test_gradient_noise_variance_follows_schedule():
    """With zero gradients and SGD(lr=1), the step is minus the noise: its variance at step t
    must be η / (1 + t)^γ."""
    w = nn.Parameter(lamina.zeros(200_000, dtype=lamina.float64))
    opt = GradientNoise(lamina.optim.SGD([w], lr=1.0), eta=0.3, gamma=0.55,
                        generator=np.random.default_rng(0))
    for t in range(3):
        before = w.array.copy()
        w.grad = lamina.zeros(200_000, dtype=lamina.float64)
        opt.step()
        step = w.array - before
        expected = 0.3 / (1 + t) ** 0.55
        assert abs(step.var() / expected - 1) < 0.02, (t, step.var(), expected)
        assert abs(step.mean()) < 0.01
    assert opt.noise_step == 3 and opt.sigma(0) == pytest.approx(0.3**0.5)


def test_gradient_noise_with_eta_zero_is_the_wrapped_optimizer():
    a, _, x, y = make_pair()
    b, _, _, _ = make_pair()
    train(a, lamina.optim.Adam(a.parameters(), lr=0.01), lamina_loss, x, y, 10)
    train(b, GradientNoise(lamina.optim.Adam(b.parameters(), lr=0.01), eta=0.0), lamina_loss, x, y, 10)
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.array, q.array)


def test_gradient_noise_seeded_by_manual_seed_and_works_with_schedulers_and_closures():
    def run():
        lamina.manual_seed(5)
        m, _, x, y = make_pair()
        opt = GradientNoise(lamina.optim.SGD(m.parameters(), lr=0.05), eta=0.01)
        sched = lamina.optim.lr_scheduler.StepLR(opt, 3, 0.5)
        losses = train(m, opt, lamina_loss, x, y, 6, closure=True)
        sched.step()
        return [p.array.copy() for p in m.parameters()], losses, opt

    p1, l1, opt = run()
    p2, l2, _ = run()
    for a, b in zip(p1, p2):
        np.testing.assert_array_equal(a, b)
    assert l1 == l2
    sd = opt.state_dict()
    assert sd["noise"]["step"] == 6 and "param_groups" in sd


def _model(value):
    lin = nn.Linear(1, 1, bias=False)
    lin.weight.array[...] = value
    return lin


def test_early_stopping_min_mode_and_restore_best_weights():
    model = _model(0.0)
    stopper = EarlyStopping(patience=2, min_delta=0.01, restore_best_weights=True)
    values = [1.0, 0.5, 0.495, 0.6, 0.2]  # 0.495 is not better than 0.5 by more than min_delta
    stops = []
    for epoch, v in enumerate(values):
        model.weight.array[...] = epoch  # the "weights" of each epoch
        stops.append(stopper.step(v, model))
        if stops[-1]:
            break
    assert stops == [False, False, False, True]
    assert stopper.best == 0.5 and stopper.best_epoch == 1 and stopper.stopped_epoch == 3
    assert model.weight.item() == 1.0  # the weights of epoch 1 are back


def test_early_stopping_max_mode_dict_metrics_baseline_and_state():
    stopper = EarlyStopping(monitor="val_acc", mode="max", patience=2, baseline=0.7)
    assert not stopper.step({"val_acc": 0.6, "loss": 1.0})  # does not beat the baseline
    assert stopper.step({"val_acc": 0.65, "loss": 1.0}) and stopper.best_epoch is None
    s2 = EarlyStopping(monitor="val_acc", mode="max", patience=3)
    for v in [0.5, 0.6, 0.6, 0.7]:
        assert not s2.step({"val_acc": v})
    sd = s2.state_dict()
    s3 = EarlyStopping(monitor="val_acc", mode="max", patience=3)
    s3.load_state_dict(sd)
    assert s3.best == 0.7 and s3.best_epoch == 3
    with pytest.raises(KeyError, match="val_acc"):
        s3.step({"loss": 1.0})
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="up")
    with pytest.raises(RuntimeError, match="no best weights"):
        EarlyStopping().restore(_model(1.0))


def test_early_stopping_patience_zero_and_nan():
    s = EarlyStopping(patience=0)
    assert not s.step(1.0)
    assert s.step(float("nan"))  # nan never improves
