"""LBFGS with and without the strong-Wolfe line search against torch, on the MLP and on the
Rosenbrock function; state_dict resume."""

import numpy as np
import pytest
import torch

import lamina
from lamina import nn
from tests.optim.mlp import assert_same_params, lamina_loss, make_pair, torch_loss, train

CASES = [
    dict(),
    dict(line_search_fn="strong_wolfe"),
    dict(lr=0.5, max_iter=7, history_size=3),
    dict(line_search_fn="strong_wolfe", max_iter=4, history_size=2, max_eval=6),
    dict(line_search_fn="strong_wolfe", tolerance_grad=1e-4, tolerance_change=1e-6),
    dict(lr=0.8, max_iter=1),
]


@pytest.mark.parametrize("kwargs", CASES, ids=[str(i) for i in range(len(CASES))])
def test_lbfgs_matches_torch_on_mlp(kwargs):
    lmodel, tmodel, x, y = make_pair(seed=2)
    lopt = lamina.optim.LBFGS(lmodel.parameters(), **kwargs)
    topt = torch.optim.LBFGS(tmodel.parameters(), **kwargs)
    ll = train(lmodel, lopt, lamina_loss, x, y, 5, closure=True)
    tl = train(tmodel, topt, torch_loss, x, y, 5, closure=True)
    np.testing.assert_allclose(ll, tl, rtol=1e-10, atol=1e-12)
    assert_same_params(lmodel, tmodel, rtol=1e-9, atol=1e-10)
    ls, ts = lopt.state[next(iter(lmodel.parameters()))], topt.state[next(iter(tmodel.parameters()))]
    assert ls["func_evals"] == ts["func_evals"] and ls["n_iter"] == ts["n_iter"]


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_rosenbrock_matches_torch_and_converges(line_search_fn):
    def rosen(w):
        return (1 - w[0]) ** 2 + 100 * (w[1] - w[0] ** 2) ** 2

    wl = nn.Parameter(lamina.tensor([-1.2, 1.0], dtype=lamina.float64))
    wt = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
    kw = dict(lr=1 if line_search_fn else 0.1, max_iter=50, line_search_fn=line_search_fn, tolerance_grad=1e-12,
              tolerance_change=1e-14)
    lopt, topt = lamina.optim.LBFGS([wl], **kw), torch.optim.LBFGS([wt], **kw)

    def closure(opt, w):
        def fn():
            opt.zero_grad()
            loss = rosen(w)
            loss.backward()
            return loss
        return fn

    for _ in range(4 if line_search_fn else 40):
        lopt.step(closure(lopt, wl))
        topt.step(closure(topt, wt))
    np.testing.assert_allclose(wl.array, wt.detach().numpy(), rtol=1e-8, atol=1e-9)
    if line_search_fn:
        np.testing.assert_allclose(wl.array, [1.0, 1.0], atol=1e-6)


def test_lbfgs_state_dict_resume(tmp_path):
    ref, _, x, y = make_pair()
    opt = lamina.optim.LBFGS(ref.parameters(), max_iter=3, line_search_fn="strong_wolfe")
    train(ref, opt, lamina_loss, x, y, 6, closure=True)
    model, _, _, _ = make_pair()
    opt1 = lamina.optim.LBFGS(model.parameters(), max_iter=3, line_search_fn="strong_wolfe")
    train(model, opt1, lamina_loss, x, y, 3, closure=True)
    lamina.save(opt1.state_dict(), tmp_path / "lbfgs.lamina")  # through the no-pickle format
    sd = lamina.load(tmp_path / "lbfgs.lamina")
    model2, _, _, _ = make_pair(seed=9)
    model2.load_state_dict({k: v.array.copy() for k, v in model.state_dict().items()})
    opt2 = lamina.optim.LBFGS(model2.parameters(), max_iter=3, line_search_fn="strong_wolfe")
    opt2.load_state_dict(sd)
    train(model2, opt2, lamina_loss, x, y, 3, closure=True)
    for a, b in zip(ref.parameters(), model2.parameters()):
        np.testing.assert_array_equal(a.array, b.array)


def test_lbfgs_errors():
    w = nn.Parameter(lamina.zeros(2))
    with pytest.raises(ValueError, match="parameter groups"):
        lamina.optim.LBFGS([{"params": [w]}, {"params": [nn.Parameter(lamina.zeros(1))]}])
    with pytest.raises(ValueError, match="line_search_fn"):
        lamina.optim.LBFGS([w], line_search_fn="armijo")
    with pytest.raises(RuntimeError, match="closure"):
        lamina.optim.LBFGS([w]).step(None)
