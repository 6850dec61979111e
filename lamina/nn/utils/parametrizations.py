"""``torch.nn.utils.parametrizations``: ``weight_norm`` and ``spectral_norm`` as parametrizations
(:mod:`lamina.nn.utils.parametrize`), with torch's state_dict names
(``parametrizations.weight.original0``/``original1``; ``parametrizations.weight.original`` and the
power-iteration vectors ``parametrizations.weight.0._u``/``_v``)."""

from __future__ import annotations

from ...autograd.factory import randn
from ...autograd.grad_mode import no_grad
from ...autograd.tensor import Tensor
from ...ops.linalg import mv
from ...ops.norms import vector_norm
from ..functional.distance import normalize
from ..modules.conv import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from ..modules.module import Module
from .parametrize import register_parametrization

__all__ = ["weight_norm", "spectral_norm"]


def norm_except_dim(v: Tensor, pow: float = 2, dim: int = 0) -> Tensor:  # noqa: A002
    """The ``pow``-norm of ``v`` over every dim but ``dim`` (``dim=-1``: over all), kept broadcastable."""
    if dim == -1:
        return vector_norm(v, pow)
    d = dim % v.ndim
    return vector_norm(v, pow, tuple(i for i in range(v.ndim) if i != d), keepdim=True)


def _weight_norm(v: Tensor, g: Tensor, dim: int = 0) -> Tensor:
    """``v · g / ‖v‖`` (the norm over every dim but ``dim``), torch's ``_weight_norm``."""
    return v * (g / norm_except_dim(v, 2, dim))


class _WeightNorm(Module):
    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        return _weight_norm(weight_v, weight_g, self.dim)

    def right_inverse(self, weight: Tensor) -> tuple[Tensor, Tensor]:
        return norm_except_dim(weight, 2, self.dim), weight


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Reparameterize ``module.<name>`` as ``g · v / ‖v‖``: magnitude ``original0`` (g) and direction
    ``original1`` (v), the norm over every dim but ``dim`` (``None``: over all)."""
    register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module


class _SpectralNorm(Module):
    def __init__(self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12) -> None:
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of [-{ndim}, {ndim - 1}] but got {dim})")
        if n_power_iterations <= 0:
            raise ValueError(f"Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            w = self._reshape_weight_to_matrix(weight.detach())
            h, wd = w.shape
            self.register_buffer("_u", normalize(randn(h, dtype=w.dtype), dim=0, eps=eps))
            self.register_buffer("_v", normalize(randn(wd, dtype=w.dtype), dim=0, eps=eps))
            self._power_method(w, 15)

    def _reshape_weight_to_matrix(self, weight: Tensor) -> Tensor:
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.ndim) if d != self.dim))
        return weight.flatten(1)

    def _power_method(self, w: Tensor, n: int) -> None:
        with no_grad():
            w = w.detach()
            for _ in range(n):  # u first from the old v, then v from the new u, as torch
                self._u.array[...] = normalize(mv(w, self._v), dim=0, eps=self.eps).array
                self._v.array[...] = normalize(mv(w.mT, self._u), dim=0, eps=self.eps).array

    def forward(self, weight: Tensor) -> Tensor:
        if weight.ndim == 1:
            return normalize(weight, dim=0, eps=self.eps)
        w = self._reshape_weight_to_matrix(weight)
        if self.training:
            self._power_method(w, self.n_power_iterations)
        u, v = self._u.clone(), self._v.clone()
        sigma = (u * mv(w, v)).sum()
        return weight / sigma

    def right_inverse(self, value: Tensor) -> Tensor:
        return value


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12,
                  dim: int | None = None) -> Module:
    """Reparameterize ``module.<name>`` as ``W / σ(W)``, σ the largest singular value estimated by
    power iteration (``n_power_iterations`` steps per training-mode access; ``u``, ``v`` kept as
    buffers). ``dim`` defaults to 1 for transposed convolutions, else 0, as torch."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        dim = 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)) else 0
    register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module
