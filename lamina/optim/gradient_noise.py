"""``GradientNoise``: annealed Gaussian gradient noise around any optimizer (beyond torch)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .. import backend
from .optimizer import Optimizer

__all__ = ["GradientNoise"]

xp = backend.xp


class GradientNoise(Optimizer):
    r"""Add annealed Gaussian noise to the gradients before the wrapped optimizer's step
    (Neelakantan et al., 2015, "Adding Gradient Noise Improves Learning for Very Deep
    Networks"):

    .. math::
        g_t \leftarrow g_t + \mathcal N(0, \sigma_t^2), \qquad \sigma_t^2 = \frac{\eta}{(1+t)^\gamma}

    with :math:`t` the number of steps taken so far (0 at the first step). The paper uses
    :math:`\eta \in \{0.01, 0.3, 1.0\}` and :math:`\gamma = 0.55`.

    The wrapper is an ``Optimizer`` whose ``param_groups`` and ``state`` are the wrapped
    optimizer's, so schedulers and checkpoints work through it. Use it with first-order
    optimizers: with a closure, the closure runs first (filling the gradients), then the noise
    is added, then the wrapped optimizer steps without the closure.

    Args:
        optimizer: the optimizer to wrap.
        eta: the noise scale :math:`\eta` (default 0.3).
        gamma: the annealing power :math:`\gamma` (default 0.55).
        generator: a NumPy ``Generator`` for the noise (default: lamina's global generator,
            seeded by ``lamina.manual_seed``).

    Example:
        >>> import lamina
        >>> w = lamina.nn.Parameter(lamina.zeros(3))
        >>> opt = lamina.optim.GradientNoise(lamina.optim.SGD([w], lr=0.1), eta=0.01)
        >>> w.grad = lamina.zeros(3)
        >>> opt.step()  # w moves by -0.1 times noise of std 0.1
        >>> bool(abs(w).max() > 0)
        True
    """

    def __init__(self, optimizer: Optimizer, eta: float = 0.3, gamma: float = 0.55, generator: Any = None) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"GradientNoise: expected a lamina Optimizer to wrap, got {type(optimizer).__name__}")
        if eta < 0:
            raise ValueError(f"GradientNoise: Invalid eta: {eta} (expected >= 0)")
        self.optimizer = optimizer
        self.eta, self.gamma = eta, gamma
        self.generator = generator
        self.noise_step = 0

    # the wrapped optimizer's groups, state and defaults are this wrapper's
    @property
    def param_groups(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return self.optimizer.param_groups

    @param_groups.setter
    def param_groups(self, value: list[dict[str, Any]]) -> None:
        self.optimizer.param_groups = value

    @property
    def state(self) -> Any:  # type: ignore[override]
        return self.optimizer.state

    @state.setter
    def state(self, value: Any) -> None:
        self.optimizer.state = value

    @property
    def defaults(self) -> dict[str, Any]:  # type: ignore[override]
        return self.optimizer.defaults

    @defaults.setter
    def defaults(self, value: dict[str, Any]) -> None:
        self.optimizer.defaults = value

    def sigma(self, t: int | None = None) -> float:
        """The noise standard deviation :math:`\\sigma_t` at step ``t`` (default: the next step)."""
        t = self.noise_step if t is None else t
        return math.sqrt(self.eta / (1 + t) ** self.gamma)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Add noise of variance :math:`\\eta/(1+t)^\\gamma` to every gradient, then step."""
        loss = self._eval_closure(closure)
        rng = self.generator if self.generator is not None else backend.generator()
        s = self.sigma()
        if s > 0:
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        g = p.grad.array
                        g += (s * rng.standard_normal(g.shape)).astype(g.dtype, copy=False)
                        p.grad._bump_version()
        self.noise_step += 1
        self.optimizer.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        self.optimizer.add_param_group(param_group)

    def state_dict(self) -> dict[str, Any]:
        """The wrapped optimizer's state dict plus ``'noise': {'step', 'eta', 'gamma'}``."""
        sd = self.optimizer.state_dict()
        sd["noise"] = {"step": self.noise_step, "eta": self.eta, "gamma": self.gamma}
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        noise = state_dict.pop("noise", None)
        self.optimizer.load_state_dict(state_dict)
        if noise is not None:
            self.noise_step, self.eta, self.gamma = noise["step"], noise["eta"], noise["gamma"]

    def __repr__(self) -> str:
        return f"GradientNoise(eta={self.eta}, gamma={self.gamma}, optimizer={self.optimizer!r})"
