"""Multi-layer perceptrons with a scikit-learn interface: ``MLPClassifier``, ``MLPRegressor``.

The network is a ``lamina.nn.Sequential`` of ``Linear`` layers and the chosen activation,
trained on mini-batches with a ``lamina.optim`` optimizer (Adam by default), or by full-batch
gradient descent (``solver='gd'``).
"""

from __future__ import annotations

import math
from typing import Any

from .. import backend, nn
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..nn import functional as F
from ..nn import init
from ._base import as_1d, as_2d_float, as_targets, check_finite_params, divergence_error, ignore_fp_errors

__all__ = ["MLPClassifier", "MLPRegressor"]

xp = backend.xp

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "logistic": nn.Sigmoid, "identity": nn.Identity}


class _BaseMLP:
    def __init__(self, hidden_layer_sizes: Any = (100,), activation: str = "relu", solver: str = "adam",
                 alpha: float = 1e-4, batch_size: Any = "auto", learning_rate_init: float = 1e-3,
                 max_iter: int = 200, tol: float = 1e-4, n_iter_no_change: int = 10, momentum: float = 0.9,
                 shuffle: bool = True, random_state: int | None = None) -> None:
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"{type(self).__name__}: activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}"
            )
        if solver not in ("adam", "sgd", "gd"):
            raise ValueError(f"{type(self).__name__}: solver must be 'adam', 'sgd' or 'gd', got {solver!r}")
        sizes = hidden_layer_sizes
        self.hidden_layer_sizes = (sizes,) if isinstance(sizes, int) else tuple(sizes)
        self.activation, self.solver, self.alpha, self.batch_size = activation, solver, alpha, batch_size
        self.learning_rate_init, self.max_iter, self.tol = learning_rate_init, max_iter, tol
        self.n_iter_no_change, self.momentum = n_iter_no_change, momentum
        self.shuffle, self.random_state = shuffle, random_state
        self.loss_history_: list[float] = []

    def _build(self, n_in: int, n_out: int, rng: Any) -> nn.Sequential:
        sizes = (n_in,) + self.hidden_layer_sizes + (n_out,)
        layers: list[nn.Module] = []
        for i in range(len(sizes) - 1):
            lin = nn.Linear(sizes[i], sizes[i + 1]).double()
            init.kaiming_uniform_(lin.weight, a=math.sqrt(5), generator=rng)  # torch's default, seeded
            bound = 1 / math.sqrt(sizes[i])
            init.uniform_(lin.bias, -bound, bound, generator=rng)
            layers.append(lin)
            if i < len(sizes) - 2:
                layers.append(_ACTIVATIONS[self.activation]())
        return nn.Sequential(*layers)

    def _optimizer(self, params: list[Tensor]) -> Any:
        from .. import optim

        if self.solver == "adam":
            return optim.Adam(params, lr=self.learning_rate_init)
        return optim.SGD(params, lr=self.learning_rate_init, momentum=self.momentum if self.solver == "sgd" else 0.0)

    def _fit(self, X: Any, target: Any, loss_fn: Any, n_out: int) -> None:
        rng = xp.random.default_rng(self.random_state) if self.random_state is not None else backend.generator()
        self.model_ = self._build(X.shape[1], n_out, rng)
        params = list(self.model_.parameters())
        opt = self._optimizer(params)
        n = len(X)
        bs = n if self.solver == "gd" else (min(200, n) if self.batch_size == "auto" else int(self.batch_size))
        weights = [m.weight for m in self.model_ if isinstance(m, nn.Linear)]
        best, stall = math.inf, 0
        self.loss_history_ = []
        op = f"{type(self).__name__}.fit"
        with ignore_fp_errors():
            for epoch in range(self.max_iter):
                order = rng.permutation(n) if self.shuffle and bs < n else xp.arange(n)
                total = 0.0
                for b, start in enumerate(range(0, n, bs)):
                    idx = order[start:start + bs]
                    xb, tb = Tensor._wrap(X[idx]), Tensor._wrap(target[idx])
                    opt.zero_grad()
                    loss = loss_fn(self.model_(xb), tb)
                    if self.alpha:
                        loss = loss + sum((w * w).sum() for w in weights) * (self.alpha / (2 * len(idx)))
                    value = float(loss.item())
                    if not math.isfinite(value):
                        raise divergence_error(op, f"epoch {epoch + 1}, batch {b + 1}", "loss", value,
                                               "learning_rate_init", self.learning_rate_init)
                    loss.backward()
                    opt.step()
                    total += value * len(idx)
                epoch_loss = total / n
                self.loss_history_.append(epoch_loss)
                if epoch_loss > best - self.tol:
                    stall += 1
                    if stall >= self.n_iter_no_change:
                        break
                else:
                    stall = 0
                best = min(best, epoch_loss)
            check_finite_params(params, op, f"epoch {len(self.loss_history_)}", "learning_rate_init",
                                self.learning_rate_init)
        self.n_iter_ = len(self.loss_history_)
        self.n_features_in_ = X.shape[1]

    def _forward(self, X: Any) -> Any:
        X = as_2d_float(X, f"{type(self).__name__}.predict")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"{type(self).__name__}: X has {X.shape[1]} features, the model {self.n_features_in_}")
        self.model_.eval()
        with no_grad():
            return self.model_(Tensor._wrap(X)).array

    @property
    def loss_curve_(self) -> list[float]:
        return self.loss_history_


class MLPClassifier(_BaseMLP):
    """An MLP classifier (softmax output, cross-entropy loss), scikit-learn style.

    Args:
        hidden_layer_sizes: units per hidden layer, e.g. ``(16, 16)``.
        activation: ``'relu'``, ``'tanh'``, ``'logistic'`` or ``'identity'``.
        solver: ``'adam'`` (default), ``'sgd'`` (with ``momentum``) or ``'gd'`` (full batch).
        alpha: L2 penalty on the weights.
        batch_size, learning_rate_init, max_iter, tol, n_iter_no_change, shuffle, random_state:
            as scikit-learn's.

    Attributes:
        classes_, model_ (the trained ``nn.Sequential``), loss_history_ (per epoch), n_iter_.

    Raises:
        DivergenceError: (``fit``, every solver) a mini-batch loss or a parameter became NaN or
            infinite; the message names the epoch and batch and says to lower ``learning_rate_init``.
    """

    def fit(self, X: Any, y: Any) -> MLPClassifier:
        X = as_2d_float(X, "MLPClassifier.fit")
        y = as_1d(y, len(X), "MLPClassifier.fit")
        self.classes_, idx = xp.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("MLPClassifier.fit: need at least 2 classes")
        self._fit(X, idx.astype(xp.int64), F.cross_entropy, len(self.classes_))
        return self

    def predict_proba(self, X: Any) -> Any:
        s = self._forward(X)
        e = xp.exp(s - s.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    def predict(self, X: Any) -> Any:
        return self.classes_[self._forward(X).argmax(1)]

    def score(self, X: Any, y: Any) -> float:
        """Mean accuracy."""
        y = as_1d(y, len(as_2d_float(X, "score")), "MLPClassifier.score")
        return float((self.predict(X) == y).mean())


class MLPRegressor(_BaseMLP):
    """An MLP regressor (linear output, squared-error loss), scikit-learn style; arguments as
    :class:`MLPClassifier`."""

    def fit(self, X: Any, y: Any) -> MLPRegressor:
        X = as_2d_float(X, "MLPRegressor.fit")
        Y = as_targets(y, len(X), "MLPRegressor.fit")
        self._single = Y.ndim == 1
        Y2 = Y[:, None] if self._single else Y
        self._fit(X, Y2, lambda out, t: F.mse_loss(out, t) * 0.5, Y2.shape[1])
        return self

    def predict(self, X: Any) -> Any:
        p = self._forward(X)
        return p[:, 0] if self._single else p

    def score(self, X: Any, y: Any) -> float:
        """The coefficient of determination R²."""
        y = xp.asarray(y.detach().array if isinstance(y, Tensor) else y, dtype=xp.float64)
        p = self.predict(X)
        return float(1 - ((y - p) ** 2).sum() / ((y - y.mean(0)) ** 2).sum())
