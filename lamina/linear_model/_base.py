"""Shared plumbing of the scikit-learn-style estimators: input checks and the training loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import backend
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor

xp = backend.xp


def as_2d_float(X: Any, op: str, dtype: Any = None) -> Any:
    """``X`` as a 2-D float NumPy array (accepts Tensors, arrays, nested lists)."""
    a = X.detach().array if isinstance(X, Tensor) else xp.asarray(X)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{op}: expected X of shape (n_samples, n_features), got shape {a.shape}")
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{op}: X must be numeric, got dtype {a.dtype}")
    a = a.astype(dtype or xp.float64)
    if not xp.isfinite(a).all():
        raise ValueError(f"{op}: X contains NaN or infinity")
    return a


def as_1d(y: Any, n: int, op: str) -> Any:
    a = y.detach().array if isinstance(y, Tensor) else xp.asarray(y)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.shape[0] != n:
        raise ValueError(f"{op}: X has {n} samples but y has {a.shape[0]}")
    return a


def gradient_descent(params: list[Tensor], loss_fn: Callable[[], Tensor], lr: float, max_iter: int, tol: float,
                     optimizer: Any = None) -> list[float]:
    """Minimize ``loss_fn()`` over ``params`` by full-batch gradient descent (or ``optimizer``,
    any object with ``zero_grad()`` and ``step()``); stops when every gradient entry is below
    ``tol`` in magnitude (a stationary point). Returns the loss history."""
    history: list[float] = []
    for _ in range(max_iter):
        for p in params:
            p.grad = None
        if optimizer is not None:
            optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        history.append(float(loss.item()))
        if max(float(xp.abs(p.grad.array).max()) for p in params if p.grad is not None) < tol:
            break
        if optimizer is not None:
            optimizer.step()
        else:
            with no_grad():
                for p in params:
                    p.array -= lr * p.grad.array
                    p._bump_version()
    return history
