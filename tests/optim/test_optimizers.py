"""Every torch-equivalent optimizer, over every option combination torch offers: 25 steps on a
small float64 MLP from identical weights and data match torch's parameters (and optimizer
state) to 1e-10. Plus the Optimizer API (groups, zero_grad, state_dict resume) and
hand-computed first steps."""

import itertools

import numpy as np
import pytest
import torch

import lamina
from lamina import nn
from tests.optim.mlp import assert_same_params, lamina_loss, make_pair, torch_loss, train

STEPS = 25


def _grid(**axes):
    keys = list(axes)
    return [dict(zip(keys, vals)) for vals in itertools.product(*axes.values())]


def _configs():
    cfgs = []
    for c in _grid(momentum=[0, 0.9], dampening=[0, 0.3], nesterov=[False, True], weight_decay=[0, 0.05],
                   maximize=[False, True]):
        if c["nesterov"] and (c["momentum"] == 0 or c["dampening"] != 0):
            continue
        cfgs.append(("SGD", dict(lr=0.05, **c)))
    for c in _grid(lr_decay=[0, 0.05], weight_decay=[0, 0.05], initial_accumulator_value=[0, 0.3],
                   maximize=[False, True]):
        cfgs.append(("Adagrad", dict(lr=0.05, **c)))
    for c in _grid(rho=[0.9, 0.6], weight_decay=[0, 0.05], maximize=[False, True]):
        cfgs.append(("Adadelta", dict(lr=0.5, **c)))
    for c in _grid(alpha=[0.99, 0.8], centered=[False, True], momentum=[0, 0.8], weight_decay=[0, 0.05],
                   maximize=[False, True]):
        cfgs.append(("RMSprop", dict(lr=0.005, **c)))
    for c in _grid(amsgrad=[False, True], weight_decay=[0, 0.05], decoupled_weight_decay=[False, True],
                   maximize=[False, True]):
        cfgs.append(("Adam", dict(lr=0.02, betas=(0.8, 0.95), **c)))
    for c in _grid(amsgrad=[False, True], weight_decay=[0, 0.05, 0.01], maximize=[False, True]):
        cfgs.append(("AdamW", dict(lr=0.02, betas=(0.8, 0.9), **c)))
    for c in _grid(weight_decay=[0, 0.05], maximize=[False, True], betas=[(0.9, 0.999), (0.5, 0.8)]):
        cfgs.append(("Adamax", dict(lr=0.02, **c)))
    for c in _grid(weight_decay=[0, 0.05], decoupled_weight_decay=[False, True], momentum_decay=[4e-3, 0.1],
                   maximize=[False, True]):
        cfgs.append(("NAdam", dict(lr=0.02, betas=(0.85, 0.99), **c)))
    # betas[1] = 0.7 makes rho_t pass 5 within the 25 steps, so both branches run
    for c in _grid(weight_decay=[0, 0.05], decoupled_weight_decay=[False, True], maximize=[False, True],
                   betas=[(0.9, 0.999), (0.9, 0.7)]):
        cfgs.append(("RAdam", dict(lr=0.02, **c)))
    for c in _grid(lambd=[1e-4, 1e-2], alpha=[0.75, 0.5], t0=[1e6, 10], weight_decay=[0, 0.05],
                   maximize=[False, True]):
        cfgs.append(("ASGD", dict(lr=0.05, **c)))
    for c in _grid(etas=[(0.5, 1.2), (0.3, 1.5)], step_sizes=[(1e-6, 50), (1e-3, 0.02)], maximize=[False, True]):
        cfgs.append(("Rprop", dict(lr=0.02, **c)))
    return cfgs


CONFIGS = _configs()


def _state_arrays(opt):
    out = []
    for p in (p for g in opt.param_groups for p in g["params"]):
        st = opt.state[p]
        for k in sorted(st):
            v = st[k]
            out.append((k, np.asarray(v.detach().numpy() if isinstance(v, torch.Tensor) else v.array)))
    return out


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_matches_torch_25_steps(name, kwargs):
    lmodel, tmodel, x, y = make_pair(seed=len(kwargs))
    lopt = getattr(lamina.optim, name)(lmodel.parameters(), **kwargs)
    topt = getattr(torch.optim, name)(tmodel.parameters(), **kwargs)
    ll = train(lmodel, lopt, lamina_loss, x, y, STEPS)
    tl = train(tmodel, topt, torch_loss, x, y, STEPS)
    np.testing.assert_allclose(ll, tl, rtol=1e-10, atol=1e-10)
    assert_same_params(lmodel, tmodel)
    ls, ts = _state_arrays(lopt), _state_arrays(topt)
    assert [k for k, _ in ls] == [k for k, _ in ts]
    for (k, a), (_, b) in zip(ls, ts):
        assert a.dtype == b.dtype, f"state {k}: {a.dtype} vs torch {b.dtype}"
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10, err_msg=f"state {k}")


def test_grid_covers_every_option():
    """Each torch option of each optimizer (but eps, a constant in a denominator) takes a
    non-default value somewhere in the grid."""
    import inspect

    ignored = {"self", "params", "foreach", "differentiable", "capturable", "fused", "eps"}
    for name in {n for n, _ in CONFIGS}:
        sig = inspect.signature(getattr(torch.optim, name).__init__)
        defaults = {k: v.default for k, v in sig.parameters.items() if k not in ignored}
        varied = {k for n, kw in CONFIGS if n == name for k, v in kw.items() if v != defaults.get(k)}
        missing = set(defaults) - varied
        assert not missing, f"{name}: options never varied: {missing}"


@pytest.mark.parametrize("name,kwargs", [("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
                                         ("Adam", dict(lr=0.02, amsgrad=True)),
                                         ("NAdam", dict(lr=0.02)), ("ASGD", dict(lr=0.05, t0=5)),
                                         ("Rprop", dict(lr=0.01)), ("Adagrad", dict(lr=0.05)),
                                         ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5))])
def test_state_dict_resume_is_exact(name, kwargs, tmp_path):
    cls = getattr(lamina.optim, name)
    ref, _, x, y = make_pair()
    opt = cls(ref.parameters(), **kwargs)
    train(ref, opt, lamina_loss, x, y, 20)
    model, _, _, _ = make_pair()
    opt1 = cls(model.parameters(), **kwargs)
    train(model, opt1, lamina_loss, x, y, 10)
    sd = opt1.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert sd["param_groups"][0]["params"] == [0, 1, 2, 3]
    assert all(isinstance(v, lamina.Tensor) for v in sd["state"][0].values())
    lamina.save(sd, tmp_path / "opt.lamina")  # the no-pickle format keeps every state tensor
    sd = lamina.load(tmp_path / "opt.lamina")
    weights = {k: v.array.copy() for k, v in model.state_dict().items()}
    # a fresh model and optimizer, restored from the two state dicts, continue identically
    model2, _, _, _ = make_pair(seed=5)
    model2.load_state_dict(weights)
    opt2 = cls(model2.parameters(), **{k: v for k, v in kwargs.items() if k != "lr"}, lr=123.0)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == kwargs["lr"]
    train(model2, opt2, lamina_loss, x, y, 10)
    train(model, opt1, lamina_loss, x, y, 10)  # the loaded state is a copy: opt1 is undisturbed
    for a, b, c in zip(ref.parameters(), model2.parameters(), model.parameters()):
        np.testing.assert_array_equal(a.array, b.array)
        np.testing.assert_array_equal(a.array, c.array)


def test_load_torch_state_dict():
    """A torch optimizer's state dict loads into lamina's, and the runs continue together."""
    lmodel, tmodel, x, y = make_pair()
    topt = torch.optim.Adam(tmodel.parameters(), lr=0.02)
    train(tmodel, topt, torch_loss, x, y, 5)
    lmodel.load_state_dict(tmodel.state_dict())
    lopt = lamina.optim.Adam(lmodel.parameters(), lr=0.02)
    lopt.load_state_dict(topt.state_dict())
    train(tmodel, topt, torch_loss, x, y, 10)
    train(lmodel, lopt, lamina_loss, x, y, 10)
    assert_same_params(lmodel, tmodel)


def test_param_groups_and_add_param_group():
    lmodel, tmodel, x, y = make_pair()
    lp, tp = list(lmodel.parameters()), list(tmodel.parameters())
    lopt = lamina.optim.SGD([{"params": lp[:2]}, {"params": lp[2:3], "lr": 0.2, "momentum": 0.5}], lr=0.05)
    topt = torch.optim.SGD([{"params": tp[:2]}, {"params": tp[2:3], "lr": 0.2, "momentum": 0.5}], lr=0.05)
    lopt.add_param_group({"params": lp[3], "weight_decay": 0.1})
    topt.add_param_group({"params": tp[3], "weight_decay": 0.1})
    for lg, tg in zip(lopt.param_groups, topt.param_groups):
        assert {k: v for k, v in lg.items() if k != "params"} == {k: v for k, v in tg.items() if k != "params"}
    train(lmodel, lopt, lamina_loss, x, y, STEPS)
    train(tmodel, topt, torch_loss, x, y, STEPS)
    assert_same_params(lmodel, tmodel)
    with pytest.raises(ValueError, match="more than one parameter group"):
        lopt.add_param_group({"params": lp[0]})


def test_errors():
    w = nn.Parameter(lamina.zeros(2))
    with pytest.raises(ValueError, match="empty parameter list"):
        lamina.optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Tensors"):
        lamina.optim.SGD(w, lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        lamina.optim.Adam([w], lr=-1)
    with pytest.raises(ValueError, match="Nesterov"):
        lamina.optim.SGD([w], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="non-leaf"):
        lamina.optim.SGD([w * 2], lr=0.1)
    with pytest.raises(ValueError, match="required optimization parameter lr"):
        lamina.optim.GradientDescent([w])
    with pytest.raises(ValueError, match="beta parameter at index 1"):
        lamina.optim.Adam([w], betas=(0.9, 1.0))


def test_zero_grad_and_skips_params_without_grad():
    a, b = nn.Parameter(lamina.ones(2)), nn.Parameter(lamina.ones(2))
    opt = lamina.optim.Adam([a, b], lr=0.1)
    (a * a).sum().backward()
    opt.step()
    assert b.tolist() == [1.0, 1.0] and len(opt.state[b]) == 0
    opt.zero_grad(set_to_none=False)
    assert a.grad.tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert a.grad is None


def test_step_bumps_version_and_runs_closure():
    w = nn.Parameter(lamina.tensor([2.0]))
    opt = lamina.optim.SGD([w], lr=0.5)
    v = w._version

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with lamina.no_grad():  # the closure still records a graph
        loss = opt.step(closure)
    assert loss.item() == 4.0 and w.item() == 0.0 and w._version > v


def test_hand_computed_sgd_momentum_and_adam():
    """Two steps on f(w) = w²/2 (gradient w) from w = 1, by hand.

    SGD(lr=0.1, momentum=0.5): b1 = 1, w1 = 0.9; b2 = 0.5 + 0.9 = 1.4, w2 = 0.9 - 0.14 = 0.76.
    Adam(lr=0.1): the first step is lr · m̂/√v̂ = lr · sign(g) (up to eps), w1 = 0.9.
    """
    w = nn.Parameter(lamina.tensor([1.0], dtype=lamina.float64))
    opt = lamina.optim.SGD([w], lr=0.1, momentum=0.5)
    for _ in range(2):
        opt.zero_grad()
        (w * w / 2).sum().backward()
        opt.step()
    assert abs(w.item() - 0.76) < 1e-15
    w = nn.Parameter(lamina.tensor([1.0], dtype=lamina.float64))
    opt = lamina.optim.Adam([w], lr=0.1)
    (w * w / 2).sum().backward()
    opt.step()
    assert abs(w.item() - 0.9) < 1e-8


def test_gradient_descent_equals_plain_sgd():
    lmodel, tmodel, x, y = make_pair()
    train(lmodel, lamina.optim.GradientDescent(lmodel.parameters(), lr=0.1, weight_decay=0.01),
          lamina_loss, x, y, STEPS)
    train(tmodel, torch.optim.SGD(tmodel.parameters(), lr=0.1, weight_decay=0.01), torch_loss, x, y, STEPS)
    assert_same_params(lmodel, tmodel)


@pytest.mark.parametrize("name,kwargs", [("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
                                         ("Adam", dict(lr=0.02, amsgrad=True)), ("NAdam", dict(lr=0.02)),
                                         ("RAdam", dict(lr=0.02, betas=(0.9, 0.7))), ("Adamax", dict(lr=0.02)),
                                         ("Adagrad", dict(lr=0.05)), ("Adadelta", dict(lr=0.5)),
                                         ("RMSprop", dict(lr=0.005, centered=True)), ("ASGD", dict(lr=0.05, t0=5)),
                                         ("Rprop", dict(lr=0.02))])
def test_float32_parameters_stay_float32_and_match_torch(name, kwargs):
    lmodel, tmodel, x, y = make_pair()
    lmodel.float()
    tmodel.float()
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    lopt = getattr(lamina.optim, name)(lmodel.parameters(), **kwargs)
    topt = getattr(torch.optim, name)(tmodel.parameters(), **kwargs)
    train(lmodel, lopt, lamina_loss, x32, y32, 10)
    train(tmodel, topt, torch_loss, x32, y32, 10)
    for p in lmodel.parameters():
        assert p.dtype == np.float32
    for v in lopt.state[next(iter(lmodel.parameters()))].values():
        if isinstance(v, lamina.Tensor) and v.ndim > 0:
            assert v.dtype == np.float32
    assert_same_params(lmodel, tmodel, rtol=1e-4, atol=1e-5)


def test_torch_only_flags_are_accepted():
    w = nn.Parameter(lamina.zeros(2))
    lamina.optim.SGD([w], lr=0.1, foreach=True, differentiable=False, fused=None)
    lamina.optim.Adam([w], lr=0.1, foreach=False, capturable=False, fused=None)
    named = lamina.optim.Adam([("w", w)], lr=0.1)
    assert named.param_groups[0]["param_names"] == ["w"] and named.param_groups[0]["params"] == [w]


def test_step_hooks():
    w = nn.Parameter(lamina.tensor([1.0]))
    opt = lamina.optim.SGD([w], lr=0.5)
    calls = []
    pre = opt.register_step_pre_hook(lambda o, a, k: calls.append(("pre", w.item())))
    opt.register_step_post_hook(lambda o, a, k: calls.append(("post", w.item())))
    w.grad = lamina.tensor([1.0])
    opt.step()
    pre.remove()
    opt.step()
    assert calls == [("pre", 1.0), ("post", 0.5), ("post", 0.0)]
    # a pre-hook may replace the arguments (here: inject a closure)
    opt2 = lamina.optim.Adam([w], lr=0.1)
    opt2.register_step_pre_hook(lambda o, a, k: ((lambda: lamina.tensor(7.0),), {}))
    assert opt2.step().item() == 7.0


def test_load_state_dict_fills_options_missing_from_an_older_state():
    w = nn.Parameter(lamina.ones(2))
    opt = lamina.optim.Adam([w], lr=0.1)
    sd = opt.state_dict()
    del sd["param_groups"][0]["decoupled_weight_decay"]
    opt2 = lamina.optim.Adam([w], lr=0.5)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["decoupled_weight_decay"] is False and opt2.param_groups[0]["lr"] == 0.1
    with pytest.raises(ValueError, match="number of parameter groups"):
        opt2.load_state_dict({"state": {}, "param_groups": []})
