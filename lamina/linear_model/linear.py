"""Linear and logistic regression, scikit-learn style, on lamina's autograd.

``LinearRegression`` solves the normal equations ``θ = (XᵀX)⁻¹Xᵀy`` in closed form — stably,
through the SVD (``lstsq``), which also gives the minimum-norm solution when ``X`` is rank
deficient — or by gradient descent on the mean squared error (``solver='gd'``).
``LogisticRegression`` fits ``σ(Xw + b)`` with the binary cross-entropy, or the softmax with the
cross-entropy for more than two classes, by gradient descent through ``backward()``.
"""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd.tensor import Tensor
from ..nn import functional as F
from ._base import as_1d, as_2d_float, as_targets, gradient_descent

__all__ = ["LinearRegression", "LogisticRegression"]

xp = backend.xp


class LinearRegression:
    """Ordinary least squares: ``y ≈ X·coef_ + intercept_``.

    Args:
        fit_intercept: learn an intercept (a column of ones appended to ``X``).
        solver: ``'closed_form'`` (normal equations via SVD) or ``'gd'`` (gradient descent on
            the MSE through lamina's autograd).
        lr, max_iter, tol: gradient-descent step size, iteration cap, and the gradient size
            below which it stops.

    Attributes:
        coef_: ``(n_features,)`` (or ``(n_targets, n_features)``) NumPy array.
        intercept_: float (or ``(n_targets,)``).
        loss_history_: the MSE per iteration (gradient descent; empty for the closed form).

    Raises:
        DivergenceError: (``fit``, ``solver='gd'``) the loss or a gradient became NaN or infinite;
            the message names the iteration and says to lower ``lr``.

    Example:
        >>> import numpy as np
        >>> from lamina.linear_model import LinearRegression
        >>> X = np.array([[0.0], [1.0], [2.0]]); y = 1 + 2 * X[:, 0]
        >>> m = LinearRegression().fit(X, y)
        >>> round(float(m.coef_[0]), 6), round(float(m.intercept_), 6)
        (2.0, 1.0)
    """

    def __init__(self, fit_intercept: bool = True, solver: str = "closed_form", lr: float = 0.1,
                 max_iter: int = 10_000, tol: float = 1e-10) -> None:
        if solver not in ("closed_form", "gd"):
            raise ValueError(f"LinearRegression: solver must be 'closed_form' or 'gd', got {solver!r}")
        self.fit_intercept, self.solver, self.lr, self.max_iter, self.tol = fit_intercept, solver, lr, max_iter, tol
        self.loss_history_: list[float] = []

    def _design(self, X: Any) -> Any:
        return xp.hstack([X, xp.ones((len(X), 1))]) if self.fit_intercept else X

    def fit(self, X: Any, y: Any) -> LinearRegression:
        X = as_2d_float(X, "LinearRegression.fit")
        Y = as_targets(y, X.shape[0], "LinearRegression.fit")
        single = Y.ndim == 1
        Y2 = Y[:, None] if single else Y
        A = self._design(X)
        if self.solver == "closed_form":
            theta, *_ = xp.linalg.lstsq(A, Y2, rcond=None)
            self.loss_history_ = []
        else:
            w = Tensor._wrap(xp.zeros((A.shape[1], Y2.shape[1]))).requires_grad_()
            At, Yt = Tensor._wrap(A), Tensor._wrap(Y2)
            self.loss_history_ = gradient_descent(
                [w], lambda: F.mse_loss(At @ w, Yt), self.lr, self.max_iter, self.tol, op="LinearRegression.fit")
            theta = w.array
        coef = theta[:-1] if self.fit_intercept else theta
        inter = theta[-1] if self.fit_intercept else xp.zeros(Y2.shape[1])
        self.coef_ = coef[:, 0] if single else coef.T
        self.intercept_ = float(inter[0]) if single else inter
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: Any) -> Any:
        X = as_2d_float(X, "LinearRegression.predict")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"LinearRegression.predict: X has {X.shape[1]} features, the model {self.n_features_in_}")
        coef = self.coef_ if self.coef_.ndim == 1 else self.coef_.T
        return X @ coef + self.intercept_

    def score(self, X: Any, y: Any) -> float:
        """The coefficient of determination R²."""
        y = xp.asarray(y.detach().array if isinstance(y, Tensor) else y, dtype=xp.float64)
        p = self.predict(X)
        return float(1 - ((y - p) ** 2).sum() / ((y - y.mean(0)) ** 2).sum())


class LogisticRegression:
    """Logistic (binary) or softmax (multinomial) regression by gradient descent.

    Args:
        lr: step size of full-batch gradient descent.
        max_iter, tol: iteration cap, and the gradient size below which it stops.
        alpha: L2 penalty ``alpha·‖w‖²/2`` (not on the intercept).
        fit_intercept: learn the bias.

    Attributes:
        classes_: the sorted class labels.
        coef_: ``(1, n_features)`` for two classes, ``(n_classes, n_features)`` otherwise.
        intercept_: ``(1,)`` or ``(n_classes,)``.
        loss_history_: the training loss per iteration.

    Raises:
        DivergenceError: (``fit``) the loss or a gradient became NaN or infinite; the message
            names the iteration and says to lower ``lr``.
    """

    def __init__(self, lr: float = 0.5, max_iter: int = 2000, tol: float = 1e-6, alpha: float = 0.0,
                 fit_intercept: bool = True) -> None:
        self.lr, self.max_iter, self.tol, self.alpha, self.fit_intercept = lr, max_iter, tol, alpha, fit_intercept
        self.loss_history_: list[float] = []

    def fit(self, X: Any, y: Any) -> LogisticRegression:
        X = as_2d_float(X, "LogisticRegression.fit")
        y = as_1d(y, len(X), "LogisticRegression.fit")
        self.classes_, idx = xp.unique(y, return_inverse=True)
        k = len(self.classes_)
        if k < 2:
            raise ValueError(f"LogisticRegression.fit: need at least 2 classes, got {k}")
        outputs = 1 if k == 2 else k
        Xt = Tensor._wrap(X)
        w = Tensor._wrap(xp.zeros((X.shape[1], outputs))).requires_grad_()
        b = Tensor._wrap(xp.zeros(outputs)).requires_grad_(self.fit_intercept)

        if k == 2:
            target = Tensor._wrap(idx.astype(xp.float64)[:, None])

            def loss_fn() -> Tensor:
                return F.binary_cross_entropy_with_logits(Xt @ w + b, target) + (w * w).sum() * (self.alpha / 2)
        else:
            target = Tensor._wrap(idx.astype(xp.int64))

            def loss_fn() -> Tensor:
                return F.cross_entropy(Xt @ w + b, target) + (w * w).sum() * (self.alpha / 2)

        params = [w, b] if self.fit_intercept else [w]
        self.loss_history_ = gradient_descent(params, loss_fn, self.lr, self.max_iter, self.tol,
                                              op="LogisticRegression.fit")
        self.coef_ = w.array.T.copy()
        self.intercept_ = b.array.copy()
        self.n_features_in_ = X.shape[1]
        return self

    def decision_function(self, X: Any) -> Any:
        X = as_2d_float(X, "LogisticRegression.decision_function")
        s = X @ self.coef_.T + self.intercept_
        return s[:, 0] if s.shape[1] == 1 else s

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities ``(n_samples, n_classes)`` (computed stably)."""
        s = self.decision_function(X)
        if s.ndim == 1:
            p1 = xp.where(s >= 0, 1 / (1 + xp.exp(-xp.abs(s))), xp.exp(-xp.abs(s)) / (1 + xp.exp(-xp.abs(s))))
            return xp.stack([1 - p1, p1], 1)
        e = xp.exp(s - s.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    def predict(self, X: Any) -> Any:
        return self.classes_[self.predict_proba(X).argmax(1)]

    def score(self, X: Any, y: Any) -> float:
        """Mean accuracy."""
        y = as_1d(y, len(as_2d_float(X, "score")), "LogisticRegression.score")
        return float((self.predict(X) == y).mean())
