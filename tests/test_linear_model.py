"""Classic models: closed-form and gradient-descent linear regression against numpy's lstsq,
logistic/softmax regression against torch, and the lecture's point on the rings data set."""

import re
import warnings

import numpy as np
import pytest
import torch

import lamina
from lamina.datasets import (
    make_blobs,
    make_gaussian_regression,
    make_moons,
    make_plane,
    make_rings,
    make_spirals,
    make_xor,
)
from lamina.linear_model import DivergenceError, LinearRegression, LogisticRegression, MLPClassifier, MLPRegressor


def test_linear_regression_closed_form_and_gd_agree_with_lstsq():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    y = X @ np.array([1.5, -2.0, 0.3]) + 0.7 + 0.1 * rng.standard_normal(60)
    A = np.hstack([X, np.ones((60, 1))])
    theta, *_ = np.linalg.lstsq(A, y, rcond=None)
    cf = LinearRegression().fit(X, y)
    np.testing.assert_allclose(cf.coef_, theta[:3], rtol=1e-12)
    assert abs(cf.intercept_ - theta[3]) < 1e-12
    gd = LinearRegression(solver="gd", lr=0.1).fit(lamina.tensor(X), lamina.tensor(y))
    np.testing.assert_allclose(gd.coef_, theta[:3], atol=1e-6)
    assert abs(gd.intercept_ - theta[3]) < 1e-6
    assert gd.loss_history_[0] > gd.loss_history_[-1] and cf.loss_history_ == []
    assert cf.score(X, y) > 0.99
    np.testing.assert_allclose(cf.predict(X), A @ theta, rtol=1e-10)


def test_linear_regression_rank_deficient_gives_min_norm_solution():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((30, 1))
    X = np.hstack([x, 2 * x])  # collinear columns: XᵀX is singular
    y = 3 * x[:, 0]
    m = LinearRegression(fit_intercept=False).fit(X, y)
    theta, *_ = np.linalg.lstsq(X, y, rcond=None)
    np.testing.assert_allclose(m.coef_, theta, rtol=1e-10)
    np.testing.assert_allclose(m.coef_, [0.6, 1.2], rtol=1e-10)  # the minimum-norm split of 3 = a + 2b
    with pytest.raises(ValueError, match="X has 30 samples but y has 29"):
        LinearRegression().fit(X, y[:-1])


def test_logistic_regression_matches_torch_gradient_descent():
    X, y = make_blobs(80, centers=2, std=0.8, seed=3)
    X = X.double()
    m = LogisticRegression(lr=0.5, max_iter=50, tol=0).fit(X, y)
    w = torch.zeros(2, 1, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    Xt, yt = torch.from_numpy(X.array), torch.from_numpy(y.array.astype(np.float64))[:, None]
    for _ in range(50):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(Xt @ w + b, yt)
        gw, gb = torch.autograd.grad(loss, [w, b])
        with torch.no_grad():
            w -= 0.5 * gw
            b -= 0.5 * gb
    np.testing.assert_allclose(m.coef_, w.detach().numpy().T, rtol=1e-10)
    np.testing.assert_allclose(m.intercept_, b.detach().numpy(), rtol=1e-10)
    assert m.score(X, y) > 0.9 and m.predict_proba(X).shape == (80, 2)
    np.testing.assert_allclose(m.predict_proba(X).sum(1), 1.0)


def test_softmax_regression_on_three_blobs():
    X, y = make_blobs(300, centers=3, std=0.4, seed=0)
    m = LogisticRegression(lr=0.5, max_iter=500).fit(X, y)
    assert m.coef_.shape == (3, 2) and m.score(X, y) > 0.95
    assert set(m.predict(X)) == {0, 1, 2}


def test_lecture_point_linear_model_fails_on_rings_and_mlp_succeeds():
    Xtr, ytr = make_rings(400, noise=0.05, seed=0)
    Xte, yte = make_rings(400, noise=0.05, seed=1)
    logreg = LogisticRegression(lr=0.5, max_iter=500).fit(Xtr, ytr)
    assert logreg.score(Xte, yte) < 0.7  # no line separates concentric circles: near chance
    mlp = MLPClassifier(hidden_layer_sizes=(16,), activation="tanh", learning_rate_init=0.03, max_iter=300,
                        random_state=0).fit(Xtr, ytr)
    assert mlp.score(Xte, yte) >= 0.95
    assert mlp.loss_history_[-1] < mlp.loss_history_[0]


def test_mlp_regressor_fits_what_a_line_cannot():
    X, y = make_gaussian_regression(400, seed=0)
    lin = LinearRegression().fit(X, y)
    mlp = MLPRegressor(hidden_layer_sizes=(32, 32), activation="tanh", learning_rate_init=0.01, max_iter=300,
                       random_state=0).fit(X, y)
    assert lin.score(X, y) < 0.2 and mlp.score(X, y) > 0.85


def test_synthetic_data_sets_shapes_labels_and_seeds():
    for fn in (make_rings, make_xor, make_blobs, make_spirals, make_moons):
        X, y = fn(101, seed=5)
        X2, y2 = fn(101, seed=5)
        assert X.shape == (101, 2) and y.shape == (101,) and X.dtype == lamina.float32 and y.dtype == lamina.int64
        assert lamina.equal(X, X2) and lamina.equal(y, y2)
        counts = np.bincount(y.array)
        assert len(counts) >= 2
        if fn is not make_xor:  # xor draws uniformly; the others split n evenly between classes
            assert counts.min() >= 101 // len(counts) - 1
    X, y = make_plane(50, noise=0.0, seed=0)
    np.testing.assert_allclose(y.array, X.array @ np.array([1.0, -2.0]) + 0.5, rtol=1e-5, atol=1e-6)
    X, y = make_rings(200, noise=0.0, factor=0.5, seed=0)
    r = np.linalg.norm(X.array, axis=1)
    np.testing.assert_allclose(np.sort(np.unique(np.round(r, 4))), [0.5, 1.0])
    assert np.all(r[y.array == 1] < 0.75)
    X, y = make_xor(200, seed=0)
    assert np.all((X.array[:, 0] * X.array[:, 1] > 0) == (y.array == 1))
    with pytest.raises(ValueError, match="make_rings: n must be a positive integer"):
        make_rings(0)


def _first_nonfinite_gd_iteration(A, y, lr, max_iter):
    """Plain NumPy gradient descent on the MSE from zero: the first iteration whose loss is not finite."""
    w = np.zeros(A.shape[1])
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(max_iter):
            r = A @ w - y
            if not np.isfinite(np.mean(r * r)):
                return i + 1
            w = w - lr * 2 * A.T @ r / len(y)
    return None


@pytest.mark.parametrize("make, lr_name, where", [
    (lambda: LinearRegression(solver="gd", lr=10.0, max_iter=1000), "lr", r"iteration (\d+) of 1000"),
    (lambda: LogisticRegression(lr=1e300, max_iter=100), "lr", r"iteration \d+ of 100"),
    (lambda: MLPClassifier((8,), solver="sgd", learning_rate_init=1e300, max_iter=20, random_state=0),
     "learning_rate_init", r"epoch \d+, batch \d+"),
    (lambda: MLPClassifier((8,), solver="gd", learning_rate_init=1e300, max_iter=20, random_state=0),
     "learning_rate_init", r"epoch \d+, batch 1"),
    (lambda: MLPRegressor((8,), solver="gd", learning_rate_init=10.0, max_iter=200, random_state=0),
     "learning_rate_init", r"epoch \d+, batch 1"),
    (lambda: MLPRegressor((8,), solver="adam", learning_rate_init=1e300, max_iter=20, random_state=0),
     "learning_rate_init", r"epoch \d+, batch \d+"),
])
def test_diverging_fit_raises_naming_the_step_and_the_learning_rate(make, lr_name, where):
    X, y = make_plane(60, seed=0)
    X, y = X.numpy().astype(np.float64) * 10, y.numpy().astype(np.float64) * 10
    model = make()
    target = (y > 0).astype(int) if isinstance(model, (LogisticRegression, MLPClassifier)) else y
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # NumPy's overflow warnings must not leak out of lamina
        with pytest.raises(DivergenceError, match=f"{type(model).__name__}.fit: the optimization diverged at {where}: "
                                                  f"the (loss|largest gradient entry|largest parameter) is (inf|nan|-inf);"
                                                  f" lower the learning rate \\({lr_name}=") as err:
            model.fit(X, target)
    if isinstance(model, LinearRegression):  # the very iteration where plain NumPy's loss leaves the floats
        A = np.hstack([X, np.ones((60, 1))])
        assert int(re.search(where, str(err.value)).group(1)) == _first_nonfinite_gd_iteration(A, y, 10.0, 1000)


def test_regression_targets_are_checked():
    X = np.zeros((4, 2))
    for model in (LinearRegression(), MLPRegressor((2,), max_iter=1)):
        name = type(model).__name__
        with pytest.raises(ValueError, match=f"{name}.fit: y contains NaN or infinity"):
            model.fit(X, [0.0, np.nan, 1.0, 2.0])
        with pytest.raises(ValueError, match=f"{name}.fit: X has 4 samples but y has 5"):
            model.fit(X, np.zeros(5))
        with pytest.raises(ValueError, match=rf"{name}.fit: expected y of shape \(4,\) or \(4, n_targets\)"):
            model.fit(X, np.zeros((4, 1, 1)))
