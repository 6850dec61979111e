"""Newton (exact and Newton-CG) and NonlinearCG: a convex quadratic in one step, the closed-form
linear-regression solution, a damped Newton step on an MLP against torch's Hessian, and the
Rosenbrock function minimized to 1e-6."""

import numpy as np
import pytest
import torch

import lamina
from lamina import nn
from tests.optim.mlp import lamina_loss, make_pair, torch_loss


def _spd(n, seed):
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((n, n))
    return m @ m.T + n * np.eye(n), rng.standard_normal(n)


@pytest.mark.parametrize("seed", range(3))
def test_newton_solves_convex_quadratic_in_one_step(seed):
    A, b = _spd(6, seed)
    w = nn.Parameter(lamina.tensor(np.random.default_rng(seed).standard_normal(6)))
    At, bt = lamina.tensor(A), lamina.tensor(b)
    opt = lamina.optim.Newton([w], hessian="exact")
    opt.step(lambda: 0.5 * (w @ At @ w) - bt @ w)
    np.testing.assert_allclose(w.array, np.linalg.solve(A, b), rtol=1e-10, atol=1e-12)


def test_newton_damping_and_hand_computed_1d():
    """f(w) = 2w² − 4w: g = 4w − 4, H = 4. From w = 0 with damping 4: d = 4 / 8 = 0.5."""
    w = nn.Parameter(lamina.tensor([0.0], dtype=lamina.float64))
    opt = lamina.optim.Newton([w], damping=4.0)
    loss = opt.step(lambda: (2 * w * w - 4 * w).sum())
    assert loss.item() == 0.0 and w.item() == 0.5
    A, b = _spd(5, 7)
    w = nn.Parameter(lamina.zeros(5, dtype=lamina.float64))
    opt = lamina.optim.Newton([w], damping=0.3, lr=0.7)
    opt.step(lambda: 0.5 * (w @ lamina.tensor(A) @ w) - lamina.tensor(b) @ w)
    np.testing.assert_allclose(w.array, 0.7 * np.linalg.solve(A + 0.3 * np.eye(5), b), rtol=1e-10)


def test_newton_reproduces_closed_form_linear_regression():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50, 4)), rng.standard_normal((50, 1))
    model = nn.Linear(4, 1).double()
    opt = lamina.optim.Newton(model.parameters())
    Xt, yt = lamina.tensor(X), lamina.tensor(y)
    opt.step(lambda: ((model(Xt) - yt) ** 2).mean())
    coef = np.linalg.lstsq(np.hstack([X, np.ones((50, 1))]), y, rcond=None)[0]
    np.testing.assert_allclose(model.weight.array.ravel(), coef[:4, 0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.bias.array, coef[4], rtol=1e-10, atol=1e-12)


def test_newton_step_on_mlp_matches_torch_hessian():
    """One damped exact Newton step on the MLP equals θ − (H + λI)⁻¹ g with torch's Hessian."""
    lmodel, tmodel, x, y = make_pair()
    names = [n for n, _ in tmodel.named_parameters()]
    shapes = [p.shape for p in tmodel.parameters()]
    theta = torch.cat([p.detach().reshape(-1) for p in tmodel.parameters()])

    def f(flat):
        params, off = {}, 0
        for n, s in zip(names, shapes):
            k = int(np.prod(s))
            params[n] = flat[off:off + k].reshape(s)
            off += k
        return torch_loss(lambda inp: torch.func.functional_call(tmodel, params, (inp,)), x, y)

    H = torch.autograd.functional.hessian(f, theta).numpy()
    g = torch.autograd.functional.jacobian(f, theta).numpy()
    lam = 2.0
    expected = theta.numpy() - np.linalg.solve(0.5 * (H + H.T) + lam * np.eye(len(g)), g)
    opt = lamina.optim.Newton(lmodel.parameters(), damping=lam, hessian="exact")
    opt.step(lambda: lamina_loss(lmodel, x, y))
    got = np.concatenate([p.array.ravel() for p in lmodel.parameters()])
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-11)


def test_newton_cg_on_quadratic_matches_exact_after_few_steps():
    A, b = _spd(8, 3)
    w = nn.Parameter(lamina.zeros(8, dtype=lamina.float64))
    opt = lamina.optim.Newton([w], hessian="cg")
    for _ in range(8):  # inexact (forcing-sequence) CG solves: superlinear convergence
        opt.step(lambda: 0.5 * (w @ lamina.tensor(A) @ w) - lamina.tensor(b) @ w)
    np.testing.assert_allclose(w.array, np.linalg.solve(A, b), rtol=1e-8, atol=1e-10)


def _rosenbrock(w):
    n = w.shape[0]
    return ((1 - w[: n - 1]) ** 2 + 100 * (w[1:] - w[: n - 1] ** 2) ** 2).sum()


def _start(n):
    """The classic (-1.2, 1) in 2-D; the origin in higher dimensions (from (-1.2, 1, -1.2, …)
    the 6-D function's local minimum near (-1, 1, …, 1) attracts every method)."""
    return nn.Parameter(lamina.tensor(np.array([-1.2, 1.0]) if n == 2 else np.zeros(n)))


@pytest.mark.parametrize("n", [2, 6])
@pytest.mark.parametrize("hessian", ["cg", "exact"])
def test_newton_minimizes_rosenbrock(n, hessian):
    w = _start(n)
    opt = lamina.optim.Newton([w], hessian=hessian, line_search="backtracking")
    for _ in range(200):
        opt.step(lambda: _rosenbrock(w))
        if np.abs(w.array - 1).max() < 1e-9:
            break
    np.testing.assert_allclose(w.array, np.ones(n), atol=1e-6)


@pytest.mark.parametrize("n", [2, 6])
@pytest.mark.parametrize("beta", ["PR+", "FR"])
def test_nonlinear_cg_minimizes_rosenbrock(n, beta):
    w = _start(n)
    opt = lamina.optim.NonlinearCG([w], beta=beta)

    def closure():
        opt.zero_grad()
        loss = _rosenbrock(w)
        loss.backward()
        return loss

    for _ in range(2000):
        opt.step(closure)
        if np.abs(w.array - 1).max() < 1e-9:
            break
    np.testing.assert_allclose(w.array, np.ones(n), atol=1e-6)


def test_nonlinear_cg_converges_on_quadratic_in_n_steps():
    """With exact-enough line searches, CG on an n-dimensional quadratic needs about n steps."""
    A, b = _spd(5, 11)
    w = nn.Parameter(lamina.zeros(5, dtype=lamina.float64))
    opt = lamina.optim.NonlinearCG([w], c2=0.01)

    def closure():
        opt.zero_grad()
        loss = 0.5 * (w @ lamina.tensor(A) @ w) - lamina.tensor(b) @ w
        loss.backward()
        return loss

    for _ in range(15):
        opt.step(closure)
    np.testing.assert_allclose(w.array, np.linalg.solve(A, b), rtol=1e-6, atol=1e-8)


def test_errors():
    w = nn.Parameter(lamina.zeros(2, dtype=lamina.float64))
    with pytest.raises(ValueError, match="hessian"):
        lamina.optim.Newton([w], hessian="bfgs")
    with pytest.raises(RuntimeError, match="closure"):
        lamina.optim.Newton([w]).step(None)
    with pytest.raises(RuntimeError, match="no graph"):
        lamina.optim.Newton([w]).step(lambda: (w * w).sum().detach())
    with pytest.raises(ValueError, match="beta"):
        lamina.optim.NonlinearCG([w], beta="HS")
    with pytest.raises(ValueError, match="parameter groups"):
        lamina.optim.Newton([{"params": [w]}, {"params": [nn.Parameter(lamina.zeros(1))]}])


def _closures(opt, loss_fn):
    """The two closure conventions for one loss: loss only, and torch's (zero_grad, backward, return)."""
    def torch_style():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    return {"loss only": loss_fn, "torch": torch_style}


def _trajectories(make_opt, loss_fn, start, steps):
    """The parameters after each step, for each closure convention, from the same start."""
    out = {}
    for style in ("loss only", "torch"):
        w = nn.Parameter(lamina.tensor(np.array(start, dtype=np.float64)))
        opt = make_opt([w])
        closure = _closures(opt, lambda: loss_fn(w))[style]
        out[style] = []
        for _ in range(steps):
            opt.step(closure)
            out[style].append(w.array.copy())
    return out


def test_newton_torch_closure_hand_computed_quadratic():
    """f(w) = ½wᵀAw − bᵀw with A = [[3, 1], [1, 2]], b = (1, 1), from w = (1, −1): g = Aw − b = (1, −2).
    Damping 1: (A + I)⁻¹ = [[3, −1], [−1, 4]] / 11, so d = −(A + I)⁻¹g = −(5, −9)/11 and w ← (6/11, −2/11)."""
    A, b = lamina.tensor([[3.0, 1.0], [1.0, 2.0]]).double(), lamina.tensor([1.0, 1.0]).double()
    for style in ("loss only", "torch"):
        w = nn.Parameter(lamina.tensor([1.0, -1.0]).double())
        opt = lamina.optim.Newton([w], damping=1.0, hessian="exact")
        loss = opt.step(_closures(opt, lambda: 0.5 * (w @ A @ w) - b @ w)[style])
        np.testing.assert_allclose(w.array, [6 / 11, -2 / 11], rtol=1e-14)
        assert loss.item() == 0.5 * (3 - 2 + 2) - 0.0  # the loss at the start: ½·3 − (1 − 1)
        if style == "torch":  # the closure's own backward filled p.grad at the start point
            np.testing.assert_allclose(w.grad.array, [1.0, -2.0])


@pytest.mark.parametrize("hessian, line_search", [("exact", None), ("cg", None), ("exact", "backtracking"),
                                                  ("cg", "backtracking")])
def test_newton_both_closure_conventions_give_the_same_steps(hessian, line_search):
    paths = _trajectories(lambda p: lamina.optim.Newton(p, hessian=hessian, line_search=line_search),
                          _rosenbrock, [-1.2, 1.0], 6)
    assert not np.allclose(paths["torch"][0], [-1.2, 1.0])  # it moved
    for a, b in zip(paths["loss only"], paths["torch"]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("opt_class", [lamina.optim.NonlinearCG, lamina.optim.LBFGS])
def test_gradient_optimizers_take_a_loss_only_closure(opt_class):
    # a closure that only returns the loss used to leave p.grad empty: a zero gradient, and no step at all
    paths = _trajectories(lambda p: opt_class(p), _rosenbrock, [-1.2, 1.0], 4)
    assert not np.allclose(paths["loss only"][0], [-1.2, 1.0])
    for a, b in zip(paths["loss only"], paths["torch"]):
        np.testing.assert_array_equal(a, b)


def test_closure_without_graph_or_backward_is_a_clear_error():
    w = nn.Parameter(lamina.zeros(2, dtype=lamina.float64))
    for opt_class in (lamina.optim.NonlinearCG, lamina.optim.LBFGS, lamina.optim.Newton):
        with pytest.raises(RuntimeError, match=f"{opt_class.__name__}.step: the loss returned by the closure has "
                                               "no graph and the closure did not call backward"):
            opt_class([w]).step(lambda: (w * w).sum().detach())
        with pytest.raises(RuntimeError, match=f"{opt_class.__name__}.step: the closure must return the scalar "
                                               "loss as a lamina Tensor, got float"):
            opt_class([w]).step(lambda: 1.0)
