"""What does the network want to see? Activation maximization / class-model visualization
(Simonyan, Vedaldi & Zisserman, 2014; Yosinski et al., 2015) and "fooling images" grown from
noise (Nguyen, Yosinski & Clune, 2015), by gradient ascent on the input.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .. import backend, nn
from ..autograd import Tensor, grad
from ..nn import functional as F
from ._common import as_batch, forward_capture
from .attribution import evaluation_mode

__all__ = ["MaximizeResult", "maximize_activation", "fooling_image", "gaussian_blur"]

xp = backend.xp


class MaximizeResult(NamedTuple):
    """``image`` ``(1, C, H, W)``; ``scores[i]`` the objective's target value (logit, unit
    activation or class probability) at the image before step ``i`` and, last, at the result."""

    image: Any
    scores: list[float]


def gaussian_blur(img: Any, sigma: float) -> Any:
    """Blur each channel of ``(N, C, H, W)`` with a separable Gaussian (radius ``⌈2σ⌉``,
    borders replicated); plain arrays, no gradient."""
    if sigma <= 0:
        return img
    r = max(1, int(xp.ceil(2 * sigma)))
    k = xp.exp(-0.5 * (xp.arange(-r, r + 1) / sigma) ** 2)
    k = k / k.sum()
    out = img.astype(backend.float64)
    for axis in (2, 3):
        pad = [(0, 0)] * 4
        pad[axis] = (r, r)
        p = xp.pad(out, pad, mode="edge")
        n = out.shape[axis]
        out = sum(k[i] * xp.take(p, xp.arange(i, i + n), axis=axis) for i in range(2 * r + 1))
    return out.astype(img.dtype)


def _objective(model: nn.Module, x: Tensor, target: Any, layer: Any, unit: Any, op: str) -> Tensor:
    if layer is None:
        out = model(x)
        if target is None or not 0 <= int(target) < out.shape[1]:
            raise ValueError(f"{op}: target must be a class in 0..{out.shape[1] - 1} (or pass layer=), got {target}")
        return out[:, int(target)].sum()
    _, act = forward_capture(model, x, layer, op)
    if unit is None or not 0 <= int(unit) < act.shape[1]:
        raise ValueError(f"{op}: unit must be a channel in 0..{act.shape[1] - 1} of layer {layer!r}, got {unit}")
    a = act[:, int(unit)]
    return a.mean() if a.ndim > 1 else a.sum()  # a conv unit: the mean of its feature map


def _ascent_step(a: Any, direction: Any, size: float, blur: bool, sigma: float, clamp: Any) -> Any:
    b = a + size * direction
    if blur:
        b = gaussian_blur(b, sigma)
    return xp.clip(b, clamp[0], clamp[1]) if clamp is not None else b


def maximize_activation(model: nn.Module, shape: Any, target: int | None = None, layer: Any = None,
                        unit: int | None = None, steps: int = 100, lr: float = 0.1, l2: float = 1e-3,
                        jitter: int = 0, blur_every: int = 0, blur_sigma: float = 0.5,
                        clamp: tuple[float, float] | None = None, init: Any = None, seed: int = 0,
                        backtrack: bool = True) -> MaximizeResult:
    """Gradient ascent on an image to maximize a class logit (class-model visualization) or a
    unit's activation: ``x ← x + lr · ∇(S(x) − l2 · ‖x‖²)``, with the regularizers of Yosinski
    et al.: random jitter (the image is rolled by up to ``jitter`` pixels before each step and
    rolled back), and a Gaussian blur every ``blur_every`` steps.

    Args:
        model: the network (in eval mode during the call).
        shape: the input shape ``(C, H, W)`` or ``(1, C, H, W)``.
        target: the class whose logit is maximized (when ``layer`` is None).
        layer: a layer (name or module) whose ``unit`` is maximized instead; a conv unit's score
            is the mean of its feature map.
        steps, lr: the ascent's steps and step size.
        l2: weight of the L2 decay ``‖x‖²``.
        jitter: the largest random shift in pixels (0: none).
        blur_every, blur_sigma: blur period in steps (0: never) and width.
        clamp: keep pixels in ``[lo, hi]`` after each step (None: unbounded).
        backtrack: halve a step (up to 8 times, then skip it) that would lower the regularized
            objective ``S(x) − l2·‖x‖²``, so that every step goes uphill (blur steps excepted).
        init: the starting image (default: small Gaussian noise, ``0.01 · N(0, 1)``).
        seed: seeds the initial noise and the jitter.

    Returns:
        :class:`MaximizeResult`: the image and the score before each step and at the end.
    """
    shape = tuple(int(s) for s in shape)
    shape = shape if len(shape) == 4 else (1, *shape)
    rng = xp.random.default_rng(seed)
    dtype = next((p.dtype for p in model.parameters()), backend.float32)
    a = (as_batch(init, "maximize_activation").array.astype(dtype) if init is not None
         else (0.01 * rng.standard_normal(shape)).astype(dtype))
    scores = []
    with evaluation_mode(model):
        for step in range(steps + 1):
            dy, dx = (rng.integers(-jitter, jitter + 1, 2) if jitter else (0, 0))
            x = Tensor._wrap(xp.roll(a, (int(dy), int(dx)), axis=(2, 3))).requires_grad_()
            s = _objective(model, x, target, layer, unit, "maximize_activation")
            if jitter:  # the recorded score is the one of the image itself, not of its shifted copy
                with_grad = s
                s_val = float(_objective(model, Tensor._wrap(a), target, layer, unit, "maximize_activation").item())
            else:
                with_grad, s_val = s, float(s.item())
            scores.append(s_val)
            if step == steps:
                break
            (g,) = grad(with_grad, x)
            g = xp.roll(g.array, (-int(dy), -int(dx)), axis=(2, 3))
            direction = (g - 2 * l2 * a).astype(dtype)
            blur = bool(blur_every) and (step + 1) % blur_every == 0

            new = _ascent_step(a, direction, lr, blur, blur_sigma, clamp)
            if backtrack and not blur:
                # NOTE: a fixed step on a piecewise-linear net (ReLU, max-pool) can cross a kink and go
                # downhill; halving the step until the regularized objective rises keeps the ascent
                # monotone (Armijo-style backtracking, at most 8 halvings)
                now = s_val - l2 * float((a.astype(xp.float64) ** 2).sum())
                size = lr
                for _ in range(8):
                    val = float(_objective(model, Tensor._wrap(new), target, layer, unit,
                                           "maximize_activation").item())
                    if val - l2 * float((new.astype(xp.float64) ** 2).sum()) > now:
                        break
                    size /= 2
                    new = _ascent_step(a, direction, size, blur, blur_sigma, clamp)
                else:
                    new = a  # no uphill step along this (jittered) direction: stay
            a = new
    return MaximizeResult(a, scores)


def fooling_image(model: nn.Module, shape: Any, target: int, confidence: float = 0.99, steps: int = 200,
                  lr: float = 0.1, clamp: tuple[float, float] | None = (0.0, 1.0), seed: int = 0) -> MaximizeResult:
    """A "fooling image": start from uniform noise and climb ``log softmax(model(x))[target]``
    until the network gives ``target`` a probability of at least ``confidence``.

    Returns:
        :class:`MaximizeResult` whose ``scores`` are the target's probabilities along the way.
    """
    shape = tuple(int(s) for s in shape)
    shape = shape if len(shape) == 4 else (1, *shape)
    rng = xp.random.default_rng(seed)
    dtype = next((p.dtype for p in model.parameters()), backend.float32)
    lo, hi = clamp if clamp is not None else (0.0, 1.0)
    a = rng.uniform(lo, hi, shape).astype(dtype)
    probs = []
    with evaluation_mode(model):
        for step in range(steps + 1):
            x = Tensor._wrap(a).requires_grad_()
            logp = F.log_softmax(model(x), dim=1)
            if not 0 <= int(target) < logp.shape[1]:
                raise ValueError(f"fooling_image: target must lie in 0..{logp.shape[1] - 1}, got {target}")
            lp = logp[:, int(target)].sum()
            probs.append(float(xp.exp(lp.item())))
            if probs[-1] >= confidence or step == steps:
                break
            (g,) = grad(lp, x)
            a = a + (lr * g.array / (xp.abs(g.array).max() + 1e-12)).astype(dtype)
            if clamp is not None:
                a = xp.clip(a, lo, hi)
    return MaximizeResult(a, probs)
