"""Every scheduler's learning-rate (and momentum) sequence against torch's over 100 steps, with
two param groups; state_dict resume; hand-computed sequences."""

import math
import warnings

import numpy as np
import pytest
import torch

import lamina
from lamina import nn
from lamina.optim import lr_scheduler as L

T = torch.optim.lr_scheduler
STEPS = 100


def _opts(kind="SGD"):
    lp = [nn.Parameter(lamina.zeros(2)), nn.Parameter(lamina.zeros(3))]
    tp = [torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)]
    if kind == "SGD":
        make = lambda lib, ps: lib.optim.SGD([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.3}], lr=0.1,
                                             momentum=0.9)
    else:
        make = lambda lib, ps: lib.optim.Adam([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.3}], lr=0.1)
    return make(lamina, lp), make(torch, tp)


def _momenta(opt):
    return [g["betas"][0] if "betas" in g else g.get("momentum", 0.0) for g in opt.param_groups]


# name -> (builder taking (module, optimizer), optimizer kind)
CASES = {
    "LambdaLR": (lambda M, o: M.LambdaLR(o, [lambda e: 0.95**e, lambda e: 1 / (1 + e)]), "SGD"),
    "MultiplicativeLR": (lambda M, o: M.MultiplicativeLR(o, lambda e: 0.97 if e % 3 else 1.01), "SGD"),
    "StepLR": (lambda M, o: M.StepLR(o, step_size=7, gamma=0.7), "SGD"),
    "MultiStepLR": (lambda M, o: M.MultiStepLR(o, milestones=[10, 25, 25, 60], gamma=0.5), "SGD"),
    "ConstantLR": (lambda M, o: M.ConstantLR(o, factor=0.25, total_iters=13), "SGD"),
    "LinearLR": (lambda M, o: M.LinearLR(o, start_factor=0.1, end_factor=0.9, total_iters=40), "SGD"),
    "LinearLR-down": (lambda M, o: M.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=30), "SGD"),
    "ExponentialLR": (lambda M, o: M.ExponentialLR(o, gamma=0.96), "SGD"),
    "PolynomialLR": (lambda M, o: M.PolynomialLR(o, total_iters=60, power=2.0), "SGD"),
    "CosineAnnealingLR": (lambda M, o: M.CosineAnnealingLR(o, T_max=30, eta_min=0.01), "SGD"),
    "CosineAnnealingWarmRestarts": (lambda M, o: M.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=2, eta_min=1e-3),
                                    "SGD"),
    "CosineAnnealingWarmRestarts-1": (lambda M, o: M.CosineAnnealingWarmRestarts(o, T_0=7), "SGD"),
    "CyclicLR-triangular": (lambda M, o: M.CyclicLR(o, 0.01, [0.1, 0.2], step_size_up=9, step_size_down=5), "SGD"),
    "CyclicLR-triangular2": (lambda M, o: M.CyclicLR(o, 0.01, 0.1, step_size_up=6, mode="triangular2"), "SGD"),
    "CyclicLR-exp_range": (lambda M, o: M.CyclicLR(o, 0.01, 0.1, step_size_up=6, mode="exp_range", gamma=0.98),
                           "Adam"),
    "CyclicLR-scale_fn": (lambda M, o: M.CyclicLR(o, 0.01, 0.1, step_size_up=4, scale_fn=lambda x: 0.9**x,
                                                  scale_mode="iterations", cycle_momentum=False), "Adam"),
    "OneCycleLR-cos": (lambda M, o: M.OneCycleLR(o, max_lr=[0.5, 1.0], total_steps=STEPS + 1), "SGD"),
    "OneCycleLR-linear-3phase": (lambda M, o: M.OneCycleLR(o, max_lr=0.5, epochs=10, steps_per_epoch=11,
                                                           anneal_strategy="linear", three_phase=True,
                                                           pct_start=0.25), "Adam"),
    "SequentialLR": (lambda M, o: M.SequentialLR(o, [M.LinearLR(o, 0.2, total_iters=10),
                                                     M.CosineAnnealingLR(o, T_max=20),
                                                     M.ExponentialLR(o, 0.9)], milestones=[15, 50]), "SGD"),
    "ChainedScheduler": (lambda M, o: M.ChainedScheduler([M.ConstantLR(o, 0.5, total_iters=7),
                                                          M.ExponentialLR(o, 0.98), M.StepLR(o, 11, 0.5)]), "SGD"),
}


def _run(sched, opt, n=STEPS):
    lrs, moms = [], []
    for _ in range(n):
        lrs.append(list(sched.get_last_lr()))
        moms.append(_momenta(opt))
        opt.step()
        sched.step()
    lrs.append(list(sched.get_last_lr()))
    return np.array(lrs, dtype=float), np.array(moms, dtype=float)


@pytest.mark.parametrize("name", sorted(CASES))
def test_schedule_matches_torch(name):
    build, kind = CASES[name]
    lopt, topt = _opts(kind)
    lrs_l, mom_l = _run(build(L, lopt), lopt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lrs_t, mom_t = _run(build(T, topt), topt)
    np.testing.assert_allclose(lrs_l, lrs_t, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(mom_l, mom_t, rtol=1e-12, atol=1e-15)
    assert [g["lr"] for g in lopt.param_groups] == pytest.approx([g["lr"] for g in topt.param_groups], rel=1e-12)


PLATEAU = [
    dict(),
    dict(mode="max", factor=0.5, patience=2, threshold=0.01, threshold_mode="abs", cooldown=3),
    dict(mode="min", factor=0.3, patience=0, threshold=0.05, cooldown=1, min_lr=[0.01, 0.05]),
    dict(mode="max", factor=0.7, patience=4, threshold_mode="rel", min_lr=0.02, eps=1e-3),
]


@pytest.mark.parametrize("i", range(len(PLATEAU)))
def test_reduce_lr_on_plateau_matches_torch(i):
    rng = np.random.default_rng(i)
    metric = np.cumsum(rng.normal(0, 1, STEPS)) * 0.1 + np.where(rng.random(STEPS) < 0.2, 1.0, 0.0)
    lopt, topt = _opts()
    ls = L.ReduceLROnPlateau(lopt, **PLATEAU[i])
    ts = T.ReduceLROnPlateau(topt, **PLATEAU[i])
    for m in metric:
        lopt.step()
        topt.step()
        ls.step(float(m))
        ts.step(float(m))
        assert ls.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-12)
        assert ls.num_bad_epochs == ts.num_bad_epochs and ls.cooldown_counter == ts.cooldown_counter


def test_reduce_lr_on_plateau_hand_computed():
    """patience 2: the lr halves on the third epoch without improvement."""
    lopt, _ = _opts()
    s = L.ReduceLROnPlateau(lopt, factor=0.5, patience=2)
    seen = []
    for m in [1.0, 0.5, 0.6, 0.7, 0.8, 0.4]:
        s.step(m)
        seen.append(s.get_last_lr()[0])
    assert seen == [0.1, 0.1, 0.1, 0.1, 0.05, 0.05]


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR", "CyclicLR-triangular2", "OneCycleLR-cos",
                                  "SequentialLR", "ChainedScheduler", "CosineAnnealingWarmRestarts"])
def test_state_dict_resume(name):
    build, kind = CASES[name]
    ref_opt, _ = _opts(kind)
    ref, _ = _run(build(L, ref_opt), ref_opt)
    opt, _ = _opts(kind)
    sched = build(L, opt)
    first, _ = _run(sched, opt, 30)
    osd, ssd = opt.state_dict(), sched.state_dict()
    assert "optimizer" not in ssd
    opt2, _ = _opts(kind)
    sched2 = build(L, opt2)
    opt2.load_state_dict(osd)
    sched2.load_state_dict(ssd)
    rest, _ = _run(sched2, opt2, STEPS - 30)
    np.testing.assert_allclose(np.concatenate([first[:-1], rest]), ref, rtol=1e-14)


def test_hand_computed_step_and_cosine():
    """StepLR(step 3, γ 0.5) from lr 0.1 gives 0.1 ×3, 0.05 ×3, 0.025; cosine with T_max 4 from 1
    gives 1, (1+cos(π/4))/2, 1/2, (1-cos(π/4))/2, 0."""
    w = nn.Parameter(lamina.zeros(1))
    opt = lamina.optim.SGD([w], lr=0.1)
    lrs, _ = _run(L.StepLR(opt, 3, 0.5), opt, 6)
    np.testing.assert_allclose(lrs[:, 0], [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025])
    opt = lamina.optim.SGD([w], lr=1.0)
    lrs, _ = _run(L.CosineAnnealingLR(opt, 4), opt, 4)
    c = math.cos(math.pi / 4)
    np.testing.assert_allclose(lrs[:, 0], [1, (1 + c) / 2, 0.5, (1 - c) / 2, 0], atol=1e-15)


def test_closed_form_epoch_argument_and_warm_restart_fractions():
    lopt, topt = _opts()
    ls, ts = L.CosineAnnealingWarmRestarts(lopt, T_0=5, T_mult=2), T.CosineAnnealingWarmRestarts(topt, T_0=5, T_mult=2)
    for e in np.linspace(0, 40, 97):
        ls.step(float(e))
        ts.step(float(e))
        assert ls.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-12)
    lopt, topt = _opts()
    ls, ts = L.MultiStepLR(lopt, [3, 8], 0.5), T.MultiStepLR(topt, [3, 8], 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for e in [5, 2, 9, 0]:
            ls.step(e)
            ts.step(e)
            assert ls.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-12)


def test_errors():
    lopt, _ = _opts()
    with pytest.raises(TypeError, match="is not an Optimizer"):
        L.StepLR(object(), 3)
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        L.ReduceLROnPlateau(lopt, factor=1.0)
    with pytest.raises(ValueError, match="milestone"):
        L.SequentialLR(lopt, [L.StepLR(lopt, 2)], milestones=[3])
    with pytest.raises(KeyError, match="initial_lr"):
        L.StepLR(_opts()[0], 3, last_epoch=4)
    with pytest.raises(ValueError, match="total_steps"):
        L.OneCycleLR(lopt, 0.1)


@pytest.mark.parametrize("name", ["MultiStepLR", "OneCycleLR-cos", "SequentialLR", "CyclicLR-exp_range"])
def test_state_dicts_survive_lamina_save(name, tmp_path):
    """Optimizer and scheduler state go through lamina.save / lamina.load (no pickle) and resume."""
    build, kind = CASES[name]
    ref_opt, _ = _opts(kind)
    ref, _ = _run(build(L, ref_opt), ref_opt)
    opt, _ = _opts(kind)
    sched = build(L, opt)
    first, _ = _run(sched, opt, 40)
    lamina.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, tmp_path / "ckpt.lamina")
    ck = lamina.load(tmp_path / "ckpt.lamina")
    opt2, _ = _opts(kind)
    sched2 = build(L, opt2)
    opt2.load_state_dict(ck["opt"])
    sched2.load_state_dict(ck["sched"])
    rest, _ = _run(sched2, opt2, STEPS - 40)
    np.testing.assert_allclose(np.concatenate([first[:-1], rest]), ref, rtol=1e-14)
    if name == "MultiStepLR":
        sched2.step(30)  # the closed form needs the milestones Counter back
