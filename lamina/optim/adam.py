"""The Adam family: ``Adam`` (with AMSGrad), ``AdamW``, ``Adamax``, ``NAdam``, ``RAdam``.

Each matches its ``torch.optim`` namesake: the same update rule, options, defaults and
per-parameter state (``step``, ``exp_avg``, ``exp_avg_sq`` …).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .. import backend
from ..autograd.tensor import Tensor
from .optimizer import Optimizer, lerp_, scalar_state

__all__ = ["Adam", "AdamW", "Adamax", "NAdam", "RAdam"]

xp = backend.xp


def _validate(op: str, lr: float, eps: float, betas: tuple[float, float], weight_decay: float) -> None:
    if not 0.0 <= lr:
        raise ValueError(f"{op}: Invalid learning rate: {lr}")
    if not 0.0 <= eps:
        raise ValueError(f"{op}: Invalid epsilon value: {eps}")
    for i in (0, 1):
        if not 0.0 <= betas[i] < 1.0:
            raise ValueError(f"{op}: Invalid beta parameter at index {i}: {betas[i]} (expected in [0, 1))")
    if not 0.0 <= weight_decay:
        raise ValueError(f"{op}: Invalid weight_decay value: {weight_decay}")


def _zeros(p: Tensor) -> Tensor:
    return Tensor._wrap(xp.zeros_like(p.array))


def _decay(p: Tensor, g: Any, group: dict[str, Any]) -> Any:
    """Apply weight decay: decoupled (shrink θ by 1 − γλ) or L2 (g + λθ)."""
    wd = group["weight_decay"]
    if wd == 0:
        return g
    if group.get("decoupled_weight_decay", False):
        p.array *= 1 - group["lr"] * wd
        return g
    return g + wd * p.array


def _tick(state: dict[str, Any]) -> float:
    state["step"].array += 1
    return float(state["step"].array)


class Adam(Optimizer):
    r"""Adam: adaptive moment estimation (Kingma & Ba, 2015), optionally AMSGrad.

    Matches ``torch.optim.Adam``:

    .. math::
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2\\
        \theta &\leftarrow \theta - \frac{\gamma}{1-\beta_1^t}\,
            \frac{m_t}{\sqrt{\hat v_t}/\sqrt{1-\beta_2^t} + \epsilon}

    with :math:`\hat v_t = v_t`, or :math:`\max(\hat v_{t-1}, v_t)` under ``amsgrad``.

    Args:
        params: parameters or parameter groups.
        lr: learning rate :math:`\gamma` (default 1e-3).
        betas: :math:`(\beta_1, \beta_2)` (default (0.9, 0.999)).
        eps: :math:`\epsilon` added to the denominator (default 1e-8).
        weight_decay: L2 penalty (default 0); decoupled (AdamW) when ``decoupled_weight_decay``.
        amsgrad: use the maximum of past second moments (default False).
        maximize: maximize the objective.
        decoupled_weight_decay: shrink the weights by :math:`1-\gamma\lambda` instead of adding
            :math:`\lambda\theta` to the gradient.
        foreach, capturable, differentiable, fused: accepted for torch compatibility.

    Example:
        >>> import lamina
        >>> w = lamina.nn.Parameter(lamina.tensor([1.0, -1.0]))
        >>> opt = lamina.optim.Adam([w], lr=0.1)
        >>> (w * w).sum().backward()
        >>> opt.step()  # the first Adam step moves each weight by about lr against its gradient's sign
        >>> [round(v, 4) for v in w.tolist()]
        [0.9, -0.9]
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None, decoupled_weight_decay: bool = False) -> None:
        _validate(type(self).__name__, lr, eps, betas, weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, foreach=foreach, capturable=capturable, differentiable=differentiable,
                        fused=fused, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One Adam update; returns ``closure()``'s loss if a closure is given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps = group["lr"], group["eps"]
            for p, g in self._grads(group):
                state = self.state[p]
                if not state:
                    state["step"] = scalar_state(0.0)
                    state["exp_avg"] = _zeros(p)
                    state["exp_avg_sq"] = _zeros(p)
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = _zeros(p)
                step = _tick(state)
                g = _decay(p, g, group)
                m, v = state["exp_avg"].array, state["exp_avg_sq"].array
                lerp_(m, g, 1 - beta1)
                v *= beta2
                v += (1 - beta2) * g * g
                step_size = lr / (1 - beta1**step)
                bc2_sqrt = (1 - beta2**step) ** 0.5
                if group["amsgrad"]:
                    vmax = state["max_exp_avg_sq"].array
                    xp.maximum(vmax, v, out=vmax)
                    v = vmax
                denom = xp.sqrt(v) / bc2_sqrt + eps
                p.array += -step_size * (m / denom)
                p._bump_version()
        return loss


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019): before the Adam step,
    :math:`\theta \leftarrow \theta(1-\gamma\lambda)`.

    Matches ``torch.optim.AdamW`` (default ``weight_decay=1e-2``). Args as :class:`Adam`.

    Example:
        >>> import lamina
        >>> w = lamina.nn.Parameter(lamina.tensor([2.0]))
        >>> opt = lamina.optim.AdamW([w], lr=0.1, weight_decay=0.5)
        >>> w.grad = lamina.zeros(1)  # no gradient: only the decay acts, 2 * (1 - 0.05)
        >>> opt.step()
        >>> round(w.item(), 6)
        1.9
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)


class Adamax(Optimizer):
    r"""Adamax: Adam with the infinity norm (Kingma & Ba, 2015, §7.1).

    Matches ``torch.optim.Adamax``:
    :math:`u_t = \max(\beta_2 u_{t-1}, |g_t| + \epsilon)`,
    :math:`\theta \leftarrow \theta - \frac{\gamma}{1-\beta_1^t}\frac{m_t}{u_t}`.

    Args:
        params: parameters or parameter groups.
        lr: learning rate (default 2e-3).
        betas: :math:`(\beta_1, \beta_2)` (default (0.9, 0.999)).
        eps: added to :math:`|g|` (default 1e-8).
        weight_decay: L2 penalty (default 0).
        maximize: maximize the objective.
        foreach, differentiable, capturable: accepted for torch compatibility.

    Example:
        >>> import lamina
        >>> w = lamina.nn.Parameter(lamina.tensor([1.0]))
        >>> opt = lamina.optim.Adamax([w], lr=0.5)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> round(w.item(), 4)
        0.5
    """

    def __init__(self, params: Iterable[Any], lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, foreach: bool | None = None, *, maximize: bool = False,
                 differentiable: bool = False, capturable: bool = False) -> None:
        _validate("Adamax", lr, eps, betas, weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One Adamax update; returns ``closure()``'s loss if a closure is given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p, g in self._grads(group):
                state = self.state[p]
                if not state:
                    state["step"] = scalar_state(0.0)
                    state["exp_avg"] = _zeros(p)
                    state["exp_inf"] = _zeros(p)
                step = _tick(state)
                g = _decay(p, g, group)
                m, u = state["exp_avg"].array, state["exp_inf"].array
                lerp_(m, g, 1 - beta1)
                u *= beta2
                xp.maximum(u, xp.abs(g) + group["eps"], out=u)
                clr = group["lr"] / (1 - beta1**step)
                p.array += -clr * (m / u)
                p._bump_version()
        return loss


class NAdam(Optimizer):
    r"""NAdam: Adam with Nesterov momentum (Dozat, 2016), with torch's momentum-decay schedule.

    Matches ``torch.optim.NAdam``. With :math:`\mu_t = \beta_1(1 - \tfrac12 0.96^{t\psi})`
    (``psi = momentum_decay``) and :math:`\Pi_t = \prod_{i\le t}\mu_i`:

    .. math::
        \theta \leftarrow \theta - \gamma\frac{1-\mu_t}{1-\Pi_t}\frac{g_t}{d_t}
            - \gamma\frac{\mu_{t+1}}{1-\Pi_t\mu_{t+1}}\frac{m_t}{d_t},
        \qquad d_t = \sqrt{v_t/(1-\beta_2^t)} + \epsilon

    Args:
        params: parameters or parameter groups.
        lr: learning rate (default 2e-3).
        betas: (default (0.9, 0.999)).
        eps: (default 1e-8).
        weight_decay: L2 penalty (default 0), decoupled when ``decoupled_weight_decay``.
        momentum_decay: :math:`\psi` (default 4e-3).
        decoupled_weight_decay: AdamW-style decay (NAdamW).
        maximize: maximize the objective.
        foreach, capturable, differentiable: accepted for torch compatibility.

    Example:
        >>> import lamina
        >>> w = lamina.nn.Parameter(lamina.tensor([1.0]))
        >>> opt = lamina.optim.NAdam([w], lr=0.1)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> w.item() < 1.0
        True
    """

    def __init__(self, params: Iterable[Any], lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, foreach: bool | None = None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False) -> None:
        _validate("NAdam", lr, eps, betas, weight_decay)
        if not 0.0 <= momentum_decay:
            raise ValueError(f"NAdam: Invalid momentum_decay value: {momentum_decay}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
                        maximize=maximize, foreach=foreach, capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One NAdam update; returns ``closure()``'s loss if a closure is given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, psi = group["lr"], group["momentum_decay"]
            for p, g in self._grads(group):
                state = self.state[p]
                if not state:
                    state["step"] = scalar_state(0.0)
                    state["mu_product"] = scalar_state(1.0)
                    state["exp_avg"] = _zeros(p)
                    state["exp_avg_sq"] = _zeros(p)
                step = _tick(state)
                bc2 = 1 - beta2**step
                g = _decay(p, g, group)
                mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * psi)))
                mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * psi)))
                # the product lives in the (float32) scalar dtype, as torch's
                mp = state["mu_product"].array
                mp *= mu
                mu_product = float(mp)
                m, v = state["exp_avg"].array, state["exp_avg_sq"].array
                lerp_(m, g, 1 - beta1)
                v *= beta2
                v += (1 - beta2) * g * g
                denom = xp.sqrt(v / bc2) + group["eps"]
                p.array += (-lr * (1.0 - mu) / (1.0 - mu_product)) * (g / denom)
                p.array += ((-lr * mu_next) / (1.0 - mu_product * mu_next)) * (m / denom)
                p._bump_version()
        return loss


class RAdam(Optimizer):
    r"""RAdam: rectified Adam (Liu et al., 2020).

    Matches ``torch.optim.RAdam``. With :math:`\rho_\infty = 2/(1-\beta_2) - 1` and
    :math:`\rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t)`: while :math:`\rho_t \le 5` the
    step is SGD with momentum, :math:`\theta \leftarrow \theta - \gamma\hat m_t`; after that it
    is Adam's step times the rectification
    :math:`r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}}`.

    Args:
        params: parameters or parameter groups.
        lr: learning rate (default 1e-3).
        betas: (default (0.9, 0.999)).
        eps: (default 1e-8).
        weight_decay: L2 penalty (default 0), decoupled when ``decoupled_weight_decay``.
        decoupled_weight_decay: AdamW-style decay.
        maximize: maximize the objective.
        foreach, capturable, differentiable: accepted for torch compatibility.

    Example:
        >>> import lamina
        >>> w = lamina.nn.Parameter(lamina.tensor([1.0]))
        >>> opt = lamina.optim.RAdam([w], lr=0.1)
        >>> (w * w).sum().backward()
        >>> opt.step()  # rho_1 <= 5: an SGD-momentum step, 1 - 0.1 * 2
        >>> round(w.item(), 6)
        0.8
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, decoupled_weight_decay: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False) -> None:
        _validate("RAdam", lr, eps, betas, weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One RAdam update; returns ``closure()``'s loss if a closure is given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr = group["lr"]
            for p, g in self._grads(group):
                state = self.state[p]
                if not state:
                    state["step"] = scalar_state(0.0)
                    state["exp_avg"] = _zeros(p)
                    state["exp_avg_sq"] = _zeros(p)
                step = _tick(state)
                g = _decay(p, g, group)
                m, v = state["exp_avg"].array, state["exp_avg_sq"].array
                lerp_(m, g, 1 - beta1)
                v *= beta2
                v += (1 - beta2) * g * g
                bc1, bc2 = 1 - beta1**step, 1 - beta2**step
                m_hat = m / bc1
                rho_inf = 2 / (1 - beta2) - 1
                rho_t = rho_inf - 2 * step * (beta2**step) / bc2
                if rho_t > 5.0:
                    rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
                    adaptive = (bc2**0.5) / (xp.sqrt(v) + group["eps"])
                    p.array -= m_hat * lr * adaptive * rect
                else:
                    p.array -= m_hat * lr
                p._bump_version()
        return loss
