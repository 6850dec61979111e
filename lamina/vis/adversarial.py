"""Breaking CNNs: adversarial examples by the fast gradient sign method (Goodfellow, Shlens &
Szegedy, 2015) and projected gradient descent (Madry et al., 2018) in the L∞ and L2 balls,
untargeted (raise the loss of the true class) or targeted (lower the loss of a chosen class).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .. import backend, nn
from ..autograd import Tensor, grad, no_grad
from ..nn import functional as F
from ._common import as_batch, model_dtype, predict, resolve_targets
from .attribution import evaluation_mode

__all__ = ["AdversarialResult", "fgsm", "pgd"]

xp = backend.xp


class AdversarialResult(NamedTuple):
    """An attack's outcome per image: the clean ``x`` and the adversarial ``x_adv``
    ``(N, C, H, W)``; the perturbation's L∞ and L2 norms; the labels attacked (``labels``:
    true or given), the target classes (None when untargeted); predictions and cross-entropy
    losses w.r.t. ``labels`` before and after; and ``flipped``: the prediction changed
    (untargeted) or now equals the target (targeted)."""

    x: Any
    x_adv: Any
    linf: Any
    l2: Any
    labels: Any
    target: Any
    pred_before: Any
    pred_after: Any
    loss_before: Any
    loss_after: Any
    flipped: Any


def _losses(model: nn.Module, x: Any, y: Any) -> tuple[Any, Any]:
    logits = predict(model, Tensor._wrap(x))
    with no_grad():
        loss = F.cross_entropy(Tensor._wrap(logits), Tensor._wrap(y), reduction="none").array
    return logits.argmax(1), loss


def _loss_grad(model: nn.Module, x: Any, cls: Any) -> Any:
    xt = Tensor._wrap(x).requires_grad_()
    loss = F.cross_entropy(model(xt), Tensor._wrap(cls), reduction="sum")
    return grad(loss, xt)[0].array


def _setup(model: nn.Module, x: Any, y: Any, target: Any, op: str) -> tuple[Any, Any, Any]:
    xb = as_batch(x, op, model_dtype(model))
    logits = predict(model, xb)
    labels = resolve_targets(y, logits, op)
    tgt = None if target is None else resolve_targets(target, logits, op)
    return xb.array, labels, tgt


def _result(model: nn.Module, x: Any, x_adv: Any, labels: Any, tgt: Any) -> AdversarialResult:
    p0, l0 = _losses(model, x, labels)
    p1, l1 = _losses(model, x_adv, labels)
    d = (x_adv - x).reshape(len(x), -1).astype(backend.float64)
    flipped = (p1 == tgt) if tgt is not None else (p1 != p0)
    return AdversarialResult(x, x_adv, xp.abs(d).max(1), xp.sqrt((d * d).sum(1)), labels, tgt, p0, p1, l0, l1, flipped)


def _clip(a: Any, clamp: tuple[float, float] | None) -> Any:
    return a if clamp is None else xp.clip(a, clamp[0], clamp[1])


def fgsm(model: nn.Module, x: Any, y: Any = None, epsilon: float = 0.05, target: Any = None,
         clamp: tuple[float, float] | None = (0.0, 1.0)) -> AdversarialResult:
    """The fast gradient sign method: one step of size ``epsilon`` along the sign of the loss
    gradient, ``x + ε·sign(∇ₓ CE(f(x), y))``; targeted: ``x − ε·sign(∇ₓ CE(f(x), t))``.

    Args:
        model: a classifier returning logits.
        x: an image ``(C, H, W)`` or a batch ``(N, C, H, W)``.
        y: the true class(es) (default: the model's prediction on ``x``).
        epsilon: the L∞ size of the perturbation.
        target: a class (or one per image) to steer towards; None: untargeted.
        clamp: the valid pixel range (None: no clipping).

    Returns:
        :class:`AdversarialResult`.
    """
    if epsilon < 0:
        raise ValueError(f"fgsm: epsilon must be >= 0, got {epsilon}")
    with evaluation_mode(model):
        a, labels, tgt = _setup(model, x, y, target, "fgsm")
        g = _loss_grad(model, a, labels if tgt is None else tgt)
        sign = 1.0 if tgt is None else -1.0
        x_adv = _clip(a + (sign * epsilon * xp.sign(g)).astype(a.dtype), clamp)
        return _result(model, a, x_adv, labels, tgt)


def _project(delta: Any, epsilon: float, norm: str) -> Any:
    if norm == "inf":
        return xp.clip(delta, -epsilon, epsilon)
    n = xp.sqrt((delta.reshape(len(delta), -1).astype(backend.float64) ** 2).sum(1)).reshape(-1, 1, 1, 1)
    return (delta * xp.minimum(1.0, epsilon / xp.maximum(n, 1e-12))).astype(delta.dtype)


def pgd(model: nn.Module, x: Any, y: Any = None, epsilon: float = 0.05, alpha: float | None = None, steps: int = 10,
        norm: str = "inf", target: Any = None, random_start: bool = True, seed: int = 0,
        clamp: tuple[float, float] | None = (0.0, 1.0)) -> AdversarialResult:
    """Projected gradient descent in an ``epsilon``-ball: ``steps`` steps of size ``alpha``
    (the gradient's sign for L∞, the gradient scaled to L2 norm ``alpha`` for L2), each
    followed by projection onto the ball and the pixel range.

    Args:
        epsilon: the ball's radius.
        alpha: the step size (default ``2.5 · epsilon / steps``).
        steps: ascent steps.
        norm: ``'inf'`` or ``'2'``.
        target: class(es) to steer towards; None: untargeted.
        random_start: start at a uniformly random point of the ball (seeded by ``seed``).
        Others as :func:`fgsm`.

    Returns:
        :class:`AdversarialResult`.
    """
    norm = str(norm).lower().replace("l", "")
    if norm not in ("inf", "2"):
        raise ValueError(f"pgd: norm must be 'inf' or '2', got {norm!r}")
    if epsilon < 0 or steps < 1:
        raise ValueError(f"pgd: need epsilon >= 0 and steps >= 1, got {epsilon}, {steps}")
    alpha = 2.5 * epsilon / steps if alpha is None else alpha
    rng = xp.random.default_rng(seed)
    with evaluation_mode(model):
        a, labels, tgt = _setup(model, x, y, target, "pgd")
        cls = labels if tgt is None else tgt
        sign = 1.0 if tgt is None else -1.0
        delta = xp.zeros_like(a)
        if random_start and epsilon > 0:
            if norm == "inf":
                delta = rng.uniform(-epsilon, epsilon, a.shape).astype(a.dtype)
            else:
                d = rng.standard_normal(a.shape)
                d /= xp.sqrt((d.reshape(len(d), -1) ** 2).sum(1)).reshape(-1, 1, 1, 1)
                r = rng.uniform(0, 1, (len(a), 1, 1, 1)) ** (1.0 / d[0].size)
                delta = (d * r * epsilon).astype(a.dtype)
        delta = _clip(a + delta, clamp) - a
        for _ in range(steps):
            g = _loss_grad(model, a + delta, cls)
            if norm == "inf":
                step = xp.sign(g)
            else:
                gn = xp.sqrt((g.reshape(len(g), -1).astype(backend.float64) ** 2).sum(1)).reshape(-1, 1, 1, 1)
                step = g / xp.maximum(gn, 1e-12)
            delta = _project(delta + (sign * alpha * step).astype(a.dtype), epsilon, norm)
            delta = _clip(a + delta, clamp) - a
        return _result(model, a, a + delta, labels, tgt)
