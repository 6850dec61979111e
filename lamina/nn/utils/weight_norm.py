"""The hook-based ``torch.nn.utils.weight_norm`` / ``remove_weight_norm`` still found in published
code and checkpoints (parameters ``weight_g`` and ``weight_v``); the parametrization form is
:func:`lamina.nn.utils.parametrizations.weight_norm`."""

from __future__ import annotations

from typing import Any

from ...autograd.tensor import Tensor
from ..modules.module import Module
from ..parameter import Parameter
from .parametrizations import _weight_norm, norm_except_dim

__all__ = ["weight_norm", "remove_weight_norm"]


class WeightNorm:
    """The forward pre-hook that recomputes ``module.<name> = g · v / ‖v‖`` before each call."""

    def __init__(self, name: str, dim: int) -> None:
        self.name, self.dim = name, dim

    def compute_weight(self, module: Module) -> Tensor:
        return _weight_norm(getattr(module, self.name + "_v"), getattr(module, self.name + "_g"), self.dim)

    def __call__(self, module: Module, inputs: Any) -> None:
        setattr(module, self.name, self.compute_weight(module))


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Split ``module.<name>`` into ``<name>_g`` (its norm over every dim but ``dim``; ``None``: over
    all) and ``<name>_v`` (its direction), recombined before every forward, as torch's (deprecated)
    ``nn.utils.weight_norm``."""
    fn = WeightNorm(name, -1 if dim is None else dim)
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, WeightNorm) and hook.name == name:
            raise RuntimeError(f"Cannot register two weight_norm hooks on the same parameter {name}")
    if name not in module._parameters:
        raise ValueError(f"weight_norm: module {module._get_name()} has no parameter '{name}'")
    weight = module._parameters.pop(name)
    module.register_parameter(name + "_g", Parameter(norm_except_dim(weight, 2, fn.dim).detach().clone()))
    module.register_parameter(name + "_v", Parameter(weight.detach()))
    setattr(module, name, fn.compute_weight(module))
    module.register_forward_pre_hook(fn)
    return module


def remove_weight_norm(module: Module, name: str = "weight") -> Module:
    """Undo :func:`weight_norm`: ``<name>`` is a parameter again, with the recombined value."""
    for k, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, WeightNorm) and hook.name == name:
            weight = hook.compute_weight(module).detach()
            del module._forward_pre_hooks[k]
            module.__dict__.pop(name, None)
            del module._parameters[name + "_g"], module._parameters[name + "_v"]
            module.register_parameter(name, Parameter(weight))
            return module
    raise ValueError(f"weight_norm of '{name}' not found in {module}")
