"""Per-coordinate adaptive step sizes: ``Adagrad``, ``Adadelta``, ``RMSprop``, ``Rprop``, and
averaged SGD (``ASGD``), each matching its ``torch.optim`` namesake."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .. import backend
from ..autograd.tensor import Tensor
from .optimizer import Optimizer, lerp_, scalar_state

__all__ = ["Adagrad", "Adadelta", "RMSprop", "Rprop", "ASGD"]

xp = backend.xp


def _nonneg(op: str, **values: float) -> None:
    for name, v in values.items():
        if not 0.0 <= v:
            raise ValueError(f"{op}: Invalid {name} value: {v} (expected >= 0)")


def _zeros(p: Tensor) -> Tensor:
    return Tensor._wrap(xp.zeros_like(p.array))


def _tick(state: dict[str, Any]) -> float:
    state["step"].array += 1
    return float(state["step"].array)


def _l2(p: Tensor, g: Any, wd: float) -> Any:
    return g + wd * p.array if wd != 0 else g


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al., 2011): :math:`s \leftarrow s + g^2`,
    :math:`\theta \leftarrow \theta - \frac{\gamma}{1+(t-1)\eta}\frac{g}{\sqrt{s}+\epsilon}`.

    Matches ``torch.optim.Adagrad`` (dense gradients).

    Args:
        params: parameters or parameter groups.
        lr: learning rate :math:`\gamma` (default 1e-2).
        lr_decay: :math:`\eta` (default 0).
        weight_decay: L2 penalty (default 0).
        initial_accumulator_value: starting value of :math:`s` (default 0).
        eps: (default 1e-10).
        maximize: maximize the objective.
        foreach, differentiable, fused: accepted for torch compatibility.

    Example:
        >>> import lamina
        >>> w = lamina.nn.Parameter(lamina.tensor([3.0]))
        >>> opt = lamina.optim.Adagrad([w], lr=1.0)
        >>> (w * w).sum().backward()  # g = 6, s = 36: the step is g / sqrt(s) = 1
        >>> opt.step()
        >>> round(w.item(), 6)
        2.0
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, foreach: bool | None = None, *,
                 maximize: bool = False, differentiable: bool = False, fused: bool | None = None) -> None:
        _nonneg("Adagrad", lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                initial_accumulator_value=initial_accumulator_value, eps=eps)
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        for group in self.param_groups:  # torch creates Adagrad's state eagerly
            for p in group["params"]:
                self.state[p]["step"] = scalar_state(0.0)
                self.state[p]["sum"] = Tensor._wrap(xp.full_like(p.array, group["initial_accumulator_value"]))

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One Adagrad update; returns ``closure()``'s loss if a closure is given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            for p, g in self._grads(group):
                state = self.state[p]
                step = _tick(state)
                g = _l2(p, g, group["weight_decay"])
                clr = group["lr"] / (1 + (step - 1) * group["lr_decay"])
                s = state["sum"].array
                s += g * g
                p.array += -clr * (g / (xp.sqrt(s) + group["eps"]))
                p._bump_version()
        return loss


class Adadelta(Optimizer):
    r"""Adadelta (Zeiler, 2012): step sizes from running averages of squared gradients and
    squared updates, :math:`\Delta = \frac{\sqrt{u+\epsilon}}{\sqrt{v+\epsilon}}g`,
    :math:`\theta \leftarrow \theta - \gamma\Delta`.

    Matches ``torch.optim.Adadelta``.

    Args:
        params: parameters or parameter groups.
        lr: scale of the update (default 1.0).
        rho: decay of the running averages (default 0.9).
        eps: (default 1e-6).
        weight_decay: L2 penalty (default 0).
        maximize: maximize the objective.
        foreach, capturable, differentiable: accepted for torch compatibility.

    Example:
        >>> import lamina
        >>> w = lamina.nn.Parameter(lamina.tensor([1.0]))
        >>> opt = lamina.optim.Adadelta([w])
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> 0.99 < w.item() < 1.0
        True
    """

    def __init__(self, params: Iterable[Any], lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, foreach: bool | None = None, *, capturable: bool = False,
                 maximize: bool = False, differentiable: bool = False) -> None:
        _nonneg("Adadelta", lr=lr, eps=eps, weight_decay=weight_decay)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Adadelta: Invalid rho value: {rho} (expected in [0, 1])")
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
                        capturable=capturable, foreach=foreach, differentiable=differentiable)
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One Adadelta update; returns ``closure()``'s loss if a closure is given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            rho, eps = group["rho"], group["eps"]
            for p, g in self._grads(group):
                state = self.state[p]
                if not state:
                    state["step"] = scalar_state(0.0)
                    state["square_avg"] = _zeros(p)
                    state["acc_delta"] = _zeros(p)
                _tick(state)
                g = _l2(p, g, group["weight_decay"])
                v, u = state["square_avg"].array, state["acc_delta"].array
                v *= rho
                v += (1 - rho) * g * g
                delta = xp.sqrt(u + eps) / xp.sqrt(v + eps) * g
                u *= rho
                u += (1 - rho) * delta * delta
                p.array -= group["lr"] * delta
                p._bump_version()
        return loss


class RMSprop(Optimizer):
    r"""RMSprop (Hinton's lecture 6e): :math:`v \leftarrow \alpha v + (1-\alpha)g^2`,
    :math:`\theta \leftarrow \theta - \gamma\frac{g}{\sqrt{v}+\epsilon}`; ``centered``
    subtracts the squared running mean of :math:`g` from :math:`v`; ``momentum`` accumulates
    the scaled gradients in a buffer.

    Matches ``torch.optim.RMSprop``.

    Args:
        params: parameters or parameter groups.
        lr: learning rate (default 1e-2).
        alpha: smoothing constant (default 0.99).
        eps: (default 1e-8).
        weight_decay: L2 penalty (default 0).
        momentum: momentum factor (default 0).
        centered: normalize by an estimate of the variance of the gradient.
        maximize: maximize the objective.
        capturable, foreach, differentiable: accepted for torch compatibility.

    Example:
        >>> import lamina
        >>> w = lamina.nn.Parameter(lamina.tensor([1.0]))
        >>> opt = lamina.optim.RMSprop([w], lr=0.01)
        >>> (w * w).sum().backward()  # v = 0.01 * 4: the step is 0.01 * 2 / 0.2 = 0.1
        >>> opt.step()
        >>> round(w.item(), 6)
        0.9
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False, differentiable: bool = False) -> None:
        _nonneg("RMSprop", lr=lr, eps=eps, momentum=momentum, weight_decay=weight_decay, alpha=alpha)
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach, maximize=maximize,
                        differentiable=differentiable)
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One RMSprop update; returns ``closure()``'s loss if a closure is given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            alpha, mom = group["alpha"], group["momentum"]
            for p, g in self._grads(group):
                state = self.state[p]
                if not state:
                    state["step"] = scalar_state(0.0)
                    state["square_avg"] = _zeros(p)
                    if mom > 0:
                        state["momentum_buffer"] = _zeros(p)
                    if group["centered"]:
                        state["grad_avg"] = _zeros(p)
                _tick(state)
                g = _l2(p, g, group["weight_decay"])
                v = state["square_avg"].array
                v *= alpha
                v += (1 - alpha) * g * g
                if group["centered"]:
                    ga = state["grad_avg"].array
                    lerp_(ga, g, 1 - alpha)
                    avg = xp.sqrt(v - ga * ga)
                else:
                    avg = xp.sqrt(v)
                avg += group["eps"]
                if mom > 0:
                    buf = state["momentum_buffer"].array
                    buf *= mom
                    buf += g / avg
                    p.array -= group["lr"] * buf
                else:
                    p.array += -group["lr"] * (g / avg)
                p._bump_version()
        return loss


class Rprop(Optimizer):
    r"""Resilient backpropagation (Riedmiller & Braun, 1993): only the sign of the gradient
    counts. Each coordinate's step size grows by :math:`\eta_+` while the gradient keeps its
    sign and shrinks by :math:`\eta_-` when it flips (and that step is skipped).

    Matches ``torch.optim.Rprop``.

    Args:
        params: parameters or parameter groups.
        lr: initial step size (default 1e-2).
        etas: :math:`(\eta_-, \eta_+)` (default (0.5, 1.2)).
        step_sizes: (minimal, maximal) step size (default (1e-6, 50)).
        maximize: maximize the objective.
        capturable, foreach, differentiable: accepted for torch compatibility.

    Example:
        >>> import lamina
        >>> w = lamina.nn.Parameter(lamina.tensor([1.0, -1.0]))
        >>> opt = lamina.optim.Rprop([w], lr=0.25)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> w.tolist()
        [0.75, -0.75]
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50), *, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False, differentiable: bool = False) -> None:
        _nonneg("Rprop", lr=lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Rprop: Invalid eta values: {etas[0]}, {etas[1]} (expected 0 < eta- < 1 < eta+)")
        defaults = dict(lr=lr, etas=tuple(etas), step_sizes=tuple(step_sizes), foreach=foreach, maximize=maximize,
                        differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One Rprop update; returns ``closure()``'s loss if a closure is given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            etaminus, etaplus = group["etas"]
            lo, hi = group["step_sizes"]
            for p, g in self._grads(group):
                state = self.state[p]
                if not state:
                    state["step"] = scalar_state(0.0)
                    state["prev"] = _zeros(p)
                    state["step_size"] = Tensor._wrap(xp.full_like(g, group["lr"]))
                _tick(state)
                prev, size = state["prev"].array, state["step_size"].array
                sign = xp.sign(g * prev)
                sign[sign > 0] = etaplus
                sign[sign < 0] = etaminus
                sign[sign == 0] = 1
                size *= sign
                xp.clip(size, lo, hi, out=size)
                g = xp.array(g, copy=True)
                g[sign == etaminus] = 0  # the gradient flipped sign: skip this coordinate's step
                p.array += -xp.sign(g) * size
                prev[...] = g
                p._bump_version()
        return loss


class ASGD(Optimizer):
    r"""Averaged SGD (Polyak & Juditsky, 1992): SGD with a decaying step
    :math:`\eta_t = \gamma/(1+\lambda\gamma t)^\alpha`, plus a running average ``ax`` of the
    iterates that starts at step ``t0``.

    Matches ``torch.optim.ASGD`` (including its float32 ``eta`` and ``mu`` state scalars).

    Args:
        params: parameters or parameter groups.
        lr: learning rate :math:`\gamma` (default 1e-2).
        lambd: decay term :math:`\lambda` (default 1e-4).
        alpha: power of the step decay (default 0.75).
        t0: the step at which averaging starts (default 1e6).
        weight_decay: L2 penalty (default 0).
        maximize: maximize the objective.
        foreach, differentiable, capturable: accepted for torch compatibility.

    Example:
        >>> import lamina
        >>> w = lamina.nn.Parameter(lamina.tensor([1.0]))
        >>> opt = lamina.optim.ASGD([w], lr=0.25, lambd=0.0)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> w.item()
        0.5
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, lambd: float = 1e-4, alpha: float = 0.75,
                 t0: float = 1e6, weight_decay: float = 0, foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False, capturable: bool = False) -> None:
        _nonneg("ASGD", lr=lr, weight_decay=weight_decay)
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One ASGD update; returns ``closure()``'s loss if a closure is given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            lr, lambd, alpha, t0 = group["lr"], group["lambd"], group["alpha"], group["t0"]
            for p, g in self._grads(group):
                state = self.state[p]
                if not state:
                    state["step"] = scalar_state(0.0)
                    state["eta"] = scalar_state(lr)
                    state["mu"] = scalar_state(1.0)
                    state["ax"] = _zeros(p)
                step = _tick(state)
                g = _l2(p, g, group["weight_decay"])
                eta = float(state["eta"].array)
                p.array *= 1 - lambd * eta
                p.array += -eta * g
                ax, mu = state["ax"].array, float(state["mu"].array)
                if mu != 1:
                    ax += (p.array - ax) * mu
                else:
                    ax[...] = p.array
                state["eta"].array[...] = lr / ((1 + lambd * lr * step) ** alpha)
                state["mu"].array[...] = 1 / max(1, step - t0)
                p._bump_version()
        return loss
