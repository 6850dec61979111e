"""Synthetic 2-D data sets of the lectures and the TensorFlow Playground.

Classification: ``make_rings`` (concentric circles), ``make_xor``, ``make_blobs`` (Gaussian
clusters), ``make_spirals``, ``make_moons``. Regression: ``make_plane`` and
``make_gaussian_regression`` (a sum of Gaussian bumps). Each returns ``(X, y)`` as lamina
tensors — ``X`` float32 of shape ``(n, 2)``, ``y`` int64 class labels (or float32 targets) —
shuffled, and reproducible from ``seed``.
"""

from __future__ import annotations

import math
from typing import Any

from .. import backend
from ..autograd.tensor import Tensor

__all__ = ["make_rings", "make_circles", "make_xor", "make_blobs", "make_spirals", "make_moons", "make_plane",
           "make_gaussian_regression"]

xp = backend.xp


def _rng(seed: int | None) -> Any:
    return xp.random.default_rng(seed) if seed is not None else backend.generator()


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, xp.integer)) and not isinstance(v, (bool, xp.bool_))


def _check(n: int, noise: float, op: str, classes: int = 1, name: str = "noise") -> None:
    """Check the common arguments: every class gets at least one point, and the noise is a real spread."""
    if not _is_int(n) or n < 1:
        raise ValueError(f"{op}: n must be a positive integer, got {n!r}")
    if n < classes:  # a class without points would leave a label missing from y
        raise ValueError(f"{op}: n must be at least the number of classes ({classes}), got {n}")
    if not isinstance(noise, (int, float, xp.floating, xp.integer)) or not 0 <= noise < math.inf:
        raise ValueError(f"{op}: {name} must be a finite non-negative number, got {noise!r}")


def _finish(x: Any, y: Any, rng: Any, regression: bool = False) -> tuple[Tensor, Tensor]:
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    y = y.astype(backend.get_default_dtype() if regression else backend.int64)
    return Tensor._wrap(x.astype(backend.get_default_dtype())), Tensor._wrap(y)


def _split(n: int, k: int) -> list[int]:
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def make_rings(n: int = 200, noise: float = 0.05, factor: float = 0.5,
               seed: int | None = None) -> tuple[Tensor, Tensor]:
    """Two concentric circles: class 0 on the outer ring (radius 1), class 1 on the inner one
    (radius ``factor``), with Gaussian ``noise``. Not linearly separable.

    Example:
        >>> from lamina.datasets import make_rings
        >>> X, y = make_rings(100, seed=0)
        >>> X.shape, y.shape, sorted(set(y.tolist()))
        ((100, 2), (100,), [0, 1])
    """
    _check(n, noise, "make_rings", classes=2)
    if not 0 < factor < 1:
        raise ValueError(f"make_rings: factor must be in (0, 1), got {factor}")
    rng = _rng(seed)
    n_out, n_in = _split(n, 2)
    t_out = rng.uniform(0, 2 * math.pi, n_out)
    t_in = rng.uniform(0, 2 * math.pi, n_in)
    x = xp.concatenate([xp.stack([xp.cos(t_out), xp.sin(t_out)], 1),
                        factor * xp.stack([xp.cos(t_in), xp.sin(t_in)], 1)])
    x = x + rng.normal(0, noise, x.shape)
    y = xp.concatenate([xp.zeros(n_out), xp.ones(n_in)])
    return _finish(x, y, rng)


make_circles = make_rings


def make_xor(n: int = 200, noise: float = 0.0, seed: int | None = None) -> tuple[Tensor, Tensor]:
    """Points uniform on [−1, 1]² labelled 1 where ``x₁·x₂ > 0`` (the XOR pattern), with a
    small margin around the axes, and Gaussian ``noise`` added after labelling."""
    _check(n, noise, "make_xor")
    rng = _rng(seed)
    x = rng.uniform(-1, 1, (n, 2))
    x = x + xp.sign(x) * 0.05  # keep points off the decision boundary (as the Playground does)
    y = (x[:, 0] * x[:, 1] > 0).astype(int)
    return _finish(x + rng.normal(0, noise, x.shape), y, rng)


def make_blobs(n: int = 200, centers: Any = 2, std: float = 0.3, seed: int | None = None) -> tuple[Tensor, Tensor]:
    """Isotropic Gaussian clusters: ``centers`` is a count (placed on a circle of radius 1.5) or
    a ``(k, 2)`` array of centres; class ``i`` is drawn around centre ``i`` with ``std``."""
    rng = _rng(seed)
    if _is_int(centers):
        if centers < 1:
            raise ValueError(f"make_blobs: centers must be a positive count or a (k, 2) array, got {centers}")
        angles = 2 * math.pi * xp.arange(centers) / centers
        c = 1.5 * xp.stack([xp.cos(angles), xp.sin(angles)], 1)
    else:
        c = xp.asarray(centers, dtype=xp.float64)
        if c.ndim != 2 or c.shape[1] != 2 or len(c) == 0 or not xp.isfinite(c).all():
            raise ValueError(f"make_blobs: centers must be a positive count or a (k, 2) array of finite numbers, "
                             f"got {'shape ' + str(c.shape) if xp.isfinite(c).all() else 'non-finite values'}")
    _check(n, std, "make_blobs", classes=len(c), name="std")
    sizes = _split(n, len(c))
    x = xp.concatenate([rng.normal(ci, std, (m, 2)) for ci, m in zip(c, sizes)])
    y = xp.concatenate([xp.full(m, i) for i, m in enumerate(sizes)])
    return _finish(x, y, rng)


def make_spirals(n: int = 200, noise: float = 0.0, classes: int = 2, turns: float = 1.75,
                 seed: int | None = None) -> tuple[Tensor, Tensor]:
    """Interleaved spiral arms, one per class (radius growing from 0 to 1 over ``turns``)."""
    if not _is_int(classes) or classes < 2:
        raise ValueError(f"make_spirals: classes must be an integer of at least 2, got {classes!r}")
    _check(n, noise, "make_spirals", classes=classes)
    rng = _rng(seed)
    xs, ys = [], []
    for k, m in enumerate(_split(n, classes)):
        r = xp.linspace(0.05, 1.0, m)
        t = 2 * math.pi * turns * r + 2 * math.pi * k / classes
        xs.append(xp.stack([r * xp.sin(t), r * xp.cos(t)], 1) + rng.normal(0, noise, (m, 2)))
        ys.append(xp.full(m, k))
    return _finish(xp.concatenate(xs), xp.concatenate(ys), rng)


def make_moons(n: int = 200, noise: float = 0.05, seed: int | None = None) -> tuple[Tensor, Tensor]:
    """Two interleaving half circles."""
    _check(n, noise, "make_moons", classes=2)
    rng = _rng(seed)
    n_a, n_b = _split(n, 2)
    ta, tb = xp.linspace(0, math.pi, n_a), xp.linspace(0, math.pi, n_b)
    x = xp.concatenate([xp.stack([xp.cos(ta), xp.sin(ta)], 1),
                        xp.stack([1 - xp.cos(tb), 0.5 - xp.sin(tb)], 1)])
    y = xp.concatenate([xp.zeros(n_a), xp.ones(n_b)])
    return _finish(x + rng.normal(0, noise, x.shape), y, rng)


def make_plane(n: int = 200, noise: float = 0.0, coef: Any = (1.0, -2.0), intercept: float = 0.5,
               seed: int | None = None) -> tuple[Tensor, Tensor]:
    """Regression on a plane: ``y = coef·x + intercept + noise`` with ``x`` uniform on [−1, 1]²."""
    _check(n, noise, "make_plane")
    w = xp.asarray(coef, dtype=xp.float64)
    if w.shape != (2,):
        raise ValueError(f"make_plane: coef must hold 2 numbers (one per input), got shape {w.shape}")
    rng = _rng(seed)
    x = rng.uniform(-1, 1, (n, 2))
    y = x @ w + intercept + rng.normal(0, noise, n)
    return _finish(x, y, rng, regression=True)


def make_gaussian_regression(n: int = 200, noise: float = 0.0, seed: int | None = None) -> tuple[Tensor, Tensor]:
    """Regression on a sum of Gaussian bumps of both signs (the Playground's "multi-Gaussian"):
    a target no linear model can fit."""
    _check(n, noise, "make_gaussian_regression")
    rng = _rng(seed)
    x = rng.uniform(-1, 1, (n, 2))
    bumps = [((-0.5, -0.5), 1.0), ((0.5, 0.5), 1.0), ((-0.5, 0.5), -1.0), ((0.5, -0.5), -1.0), ((0.0, 0.0), 0.5)]
    y = sum(a * xp.exp(-((x - xp.asarray(c)) ** 2).sum(1) / (2 * 0.2 ** 2)) for c, a in bumps)
    return _finish(x, y + rng.normal(0, noise, n), rng, regression=True)
