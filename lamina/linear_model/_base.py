"""Shared plumbing of the scikit-learn-style estimators: input checks and the training loop."""

from __future__ import annotations

import math
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


def as_targets(y: Any, n: int, op: str) -> Any:
    """Regression targets ``y`` as a float64 array ``(n,)`` or ``(n, n_targets)``, checked finite."""
    a = y.detach().array if isinstance(y, Tensor) else xp.asarray(y)
    if a.ndim not in (1, 2):
        raise ValueError(f"{op}: expected y of shape ({n},) or ({n}, n_targets), got shape {a.shape}")
    if a.shape[0] != n:
        raise ValueError(f"{op}: X has {n} samples but y has {a.shape[0]}")
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{op}: y must be numeric, got dtype {a.dtype}")
    a = a.astype(xp.float64)
    if not xp.isfinite(a).all():
        raise ValueError(f"{op}: y contains NaN or infinity")
    return a


class DivergenceError(RuntimeError):
    """Fitting diverged: the loss, a gradient or a parameter became NaN or infinite (too large a
    learning rate, most often). The message names the estimator, the step and the learning rate."""


def divergence_error(op: str, where: str, what: str, value: float, lr_name: str, lr: float) -> DivergenceError:
    return DivergenceError(f"{op}: the optimization diverged at {where}: the {what} is {value}; "
                           f"lower the learning rate ({lr_name}={lr:g} now)")


def ignore_fp_errors() -> Any:
    """NumPy's overflow/invalid warnings silenced while fitting: the loop checks the loss itself
    and raises :class:`DivergenceError` instead."""
    return xp.errstate(over="ignore", invalid="ignore", divide="ignore")


def check_finite_params(params: list[Tensor], op: str, where: str, lr_name: str, lr: float) -> None:
    """Raise :class:`DivergenceError` if a parameter holds NaN or infinity (after the last step)."""
    for p in params:
        if not xp.isfinite(p.array).all():
            raise divergence_error(op, where, "largest parameter", float(xp.abs(p.array).max()), lr_name, lr)


def gradient_descent(params: list[Tensor], loss_fn: Callable[[], Tensor], lr: float, max_iter: int, tol: float,
                     optimizer: Any = None, op: str = "gradient_descent", lr_name: str = "lr") -> list[float]:
    """Minimize ``loss_fn()`` over ``params`` by full-batch gradient descent (or ``optimizer``,
    any object with ``zero_grad()`` and ``step()``); stops when every gradient entry is below
    ``tol`` in magnitude (a stationary point). Returns the loss history.

    Raises:
        DivergenceError: the loss or a gradient became NaN or infinite at some iteration (named
            in the message, with ``op`` and the learning rate ``lr_name``), or a parameter after the last.
    """
    history: list[float] = []
    with ignore_fp_errors():
        for i in range(max_iter):
            for p in params:
                p.grad = None
            if optimizer is not None:
                optimizer.zero_grad()
            loss = loss_fn()
            value = float(loss.item())
            where = f"iteration {i + 1} of {max_iter}"
            if not math.isfinite(value):
                raise divergence_error(op, where, "loss", value, lr_name, lr)
            loss.backward()
            history.append(value)
            sizes = [float(xp.abs(p.grad.array).max()) for p in params if p.grad is not None]
            bad = [g for g in sizes if not math.isfinite(g)]  # one by one: max() passes over a NaN
            if bad:
                raise divergence_error(op, where, "largest gradient entry", bad[0], lr_name, lr)
            if max(sizes) < tol:
                break
            if optimizer is not None:
                optimizer.step()
            else:
                with no_grad():
                    for p in params:
                        p.array -= lr * p.grad.array
                        p._bump_version()
        check_finite_params(params, op, f"iteration {len(history)} of {max_iter}", lr_name, lr)
    return history
