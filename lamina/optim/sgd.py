"""Stochastic gradient descent (``SGD``, torch's rule) and plain full-batch ``GradientDescent``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .. import backend
from ..autograd.tensor import Tensor
from .optimizer import Optimizer, required

__all__ = ["SGD", "GradientDescent"]

xp = backend.xp


def _check(name: str, value: float, op: str) -> None:
    if value < 0.0:
        raise ValueError(f"{op}: Invalid {name}: {value} (expected >= 0)")


class SGD(Optimizer):
    r"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

    Matches ``torch.optim.SGD``. With gradient :math:`g_t` of parameter :math:`\theta`:

    .. math::
        g &\leftarrow \pm g_t + \lambda\theta \qquad (\text{minus under } maximize)\\
        b_t &= \mu b_{t-1} + (1-\tau) g \quad (b_1 = g)\\
        g &\leftarrow g + \mu b_t \text{ (nesterov) or } b_t \text{ (momentum)}\\
        \theta &\leftarrow \theta - \gamma g

    Args:
        params: parameters or parameter groups.
        lr: learning rate :math:`\gamma` (default 1e-3).
        momentum: momentum factor :math:`\mu` (default 0).
        dampening: dampening :math:`\tau` of the momentum (default 0).
        weight_decay: L2 penalty :math:`\lambda` (default 0).
        nesterov: use Nesterov momentum (needs momentum > 0 and dampening 0).
        maximize: maximize the objective instead of minimizing it.
        foreach, differentiable, fused: accepted for torch compatibility; lamina has one
            implementation.

    Example:
        >>> import lamina
        >>> w = lamina.nn.Parameter(lamina.tensor([1.0]))
        >>> opt = lamina.optim.SGD([w], lr=0.1, momentum=0.9)
        >>> for _ in range(2):
        ...     opt.zero_grad()
        ...     (w * w).sum().backward()
        ...     opt.step()
        >>> round(w.item(), 4)  # 1 - 0.2 = 0.8, then 0.8 - 0.1 * (0.9 * 2 + 1.6) = 0.46
        0.46
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, differentiable: bool = False, fused: bool | None = None) -> None:
        if lr is not required:
            _check("learning rate", lr, "SGD")
        _check("momentum value", momentum, "SGD")
        _check("weight_decay value", weight_decay, "SGD")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach, differentiable=differentiable,
                        fused=fused)
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One SGD update of every parameter that has a gradient; returns ``closure()``'s loss."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            lr, mom, damp, wd = group["lr"], group["momentum"], group["dampening"], group["weight_decay"]
            for p, g in self._grads(group):
                if wd != 0:
                    g = g + wd * p.array
                if mom != 0:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = Tensor._wrap(xp.array(g, copy=True))
                    else:
                        b = buf.array
                        b *= mom
                        b += (1 - damp) * g
                    g = g + mom * buf.array if group["nesterov"] else buf.array
                p.array -= lr * g
                p._bump_version()
        return loss


class GradientDescent(Optimizer):
    r"""Plain gradient descent with a fixed step: :math:`\theta \leftarrow \theta - \eta\nabla L(\theta)`.

    Beyond torch (the lectures' first algorithm). Meant for full-batch training: compute the
    gradient of the loss over the whole data set, then call ``step()``. It is ``SGD`` without
    momentum, written on its own so that the rule reads at a glance.

    Args:
        params: parameters or parameter groups.
        lr: the step size :math:`\eta` (required).
        weight_decay: L2 penalty :math:`\lambda`, added to the gradient as :math:`\lambda\theta`.
        maximize: ascend instead of descend.

    Example:
        >>> import lamina
        >>> w = lamina.nn.Parameter(lamina.tensor([4.0]))
        >>> opt = lamina.optim.GradientDescent([w], lr=0.25)
        >>> (w * w).sum().backward()  # gradient 2w = 8
        >>> opt.step()
        >>> w.item()
        2.0
    """

    def __init__(self, params: Iterable[Any], lr: float = required, weight_decay: float = 0,
                 maximize: bool = False) -> None:
        if lr is not required:
            _check("learning rate", lr, "GradientDescent")
        _check("weight_decay value", weight_decay, "GradientDescent")
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, maximize=maximize))

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One gradient-descent step; returns ``closure()``'s loss if a closure is given."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            for p, g in self._grads(group):
                if group["weight_decay"] != 0:
                    g = g + group["weight_decay"] * p.array
                p.array -= group["lr"] * g
                p._bump_version()
        return loss
