"""The hook-based ``torch.nn.utils.spectral_norm`` / ``remove_spectral_norm`` of GAN code and
checkpoints (``weight_orig``, buffers ``weight_u``, ``weight_v``); the parametrization form is
:func:`lamina.nn.utils.parametrizations.spectral_norm`."""

from __future__ import annotations

from typing import Any

from ...autograd.factory import randn
from ...autograd.grad_mode import no_grad
from ...autograd.tensor import Tensor
from ...ops.linalg import mv
from ..functional.distance import normalize
from ..modules.conv import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from ..modules.module import Module
from ..parameter import Parameter

__all__ = ["spectral_norm", "remove_spectral_norm"]


class SpectralNorm:
    """The forward pre-hook that sets ``module.<name> = W / σ(W)``, σ from power iteration
    (``n_power_iterations`` steps in training mode: ``v`` from ``u`` first, then ``u``, as torch's)."""

    def __init__(self, name: str = "weight", n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12) -> None:
        if n_power_iterations <= 0:
            raise ValueError(f"Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.name, self.n_power_iterations, self.dim, self.eps = name, n_power_iterations, dim, eps

    def reshape_weight_to_matrix(self, weight: Tensor) -> Tensor:
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.ndim) if d != self.dim))
        return weight.reshape(weight.shape[0], -1)

    def compute_weight(self, module: Module, do_power_iteration: bool) -> Tensor:
        weight = getattr(module, self.name + "_orig")
        u, v = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")
        w = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            with no_grad():
                wd = w.detach()
                for _ in range(self.n_power_iterations):
                    v.array[...] = normalize(mv(wd.mT, u), dim=0, eps=self.eps).array
                    u.array[...] = normalize(mv(wd, v), dim=0, eps=self.eps).array
                u, v = u.clone(), v.clone()  # the buffers change on the next call; backward needs these
        sigma = (u * mv(w, v)).sum()
        return weight / sigma

    def __call__(self, module: Module, inputs: Any) -> None:
        setattr(module, self.name, self.compute_weight(module, do_power_iteration=module.training))


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12,
                  dim: int | None = None) -> Module:
    """Replace ``module.<name>`` by ``W / σ(W)`` before every forward (torch's hook-based form; ``dim``
    defaults to 1 for transposed convolutions, else 0)."""
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, SpectralNorm) and hook.name == name:
            raise RuntimeError(f"Cannot register two spectral_norm hooks on the same parameter {name}")
    if name not in module._parameters:
        raise ValueError(f"spectral_norm: module {module._get_name()} has no parameter '{name}'")
    if dim is None:
        dim = 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)) else 0
    fn = SpectralNorm(name, n_power_iterations, dim, eps)
    weight = module._parameters.pop(name)
    with no_grad():
        h, w = fn.reshape_weight_to_matrix(weight).shape
        u = normalize(randn(h, dtype=weight.dtype), dim=0, eps=eps)
        v = normalize(randn(w, dtype=weight.dtype), dim=0, eps=eps)
    module.register_parameter(name + "_orig", weight)
    setattr(module, name, weight.detach())
    module.register_buffer(name + "_u", u)
    module.register_buffer(name + "_v", v)
    module.register_forward_pre_hook(fn)
    return module


def remove_spectral_norm(module: Module, name: str = "weight") -> Module:
    """Undo :func:`spectral_norm`: ``<name>`` is a parameter again, holding ``W / σ(W)``."""
    for k, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, SpectralNorm) and hook.name == name:
            with no_grad():
                weight = hook.compute_weight(module, do_power_iteration=False).detach()
            del module._forward_pre_hooks[k]
            module.__dict__.pop(name, None)
            del module._parameters[name + "_orig"], module._buffers[name + "_u"], module._buffers[name + "_v"]
            module.register_parameter(name, Parameter(weight))
            return module
    raise ValueError(f"spectral_norm of '{name}' not found in {module}")
