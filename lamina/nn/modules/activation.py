"""Activation layers (``torch.nn`` names, arguments and reprs), plus lamina's ``Swish``.

``inplace=True`` is accepted for compatibility; lamina always computes out of place.
"""

from __future__ import annotations

from typing import Any

from ...autograd.tensor import Tensor
from ...ops.common import const
from .. import functional as F
from ..parameter import Parameter
from .module import Module

__all__ = [
    "ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Swish", "Mish",
    "Softplus", "Softsign", "Hardtanh", "Hardsigmoid", "Hardswish", "Sigmoid", "Tanh", "LogSigmoid",
    "Softmax", "LogSoftmax", "Softmin",
]


class _Simple(Module):
    """An activation without parameters: ``forward`` applies ``_fn``."""

    _fn: Any = None

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return type(self)._fn(input)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class ReLU(_Simple):
    """``max(x, 0)``."""

    _fn = staticmethod(F.relu)


class ReLU6(_Simple):
    """``min(max(x, 0), 6)``."""

    _fn = staticmethod(F.relu6)


class SELU(_Simple):
    """Scaled ELU (self-normalizing networks)."""

    _fn = staticmethod(F.selu)


class SiLU(_Simple):
    """``x·σ(x)``."""

    _fn = staticmethod(F.silu)


class Mish(_Simple):
    """``x·tanh(softplus(x))``."""

    _fn = staticmethod(F.mish)


class Hardsigmoid(_Simple):
    """``relu6(x + 3)/6``."""

    _fn = staticmethod(F.hardsigmoid)


class Hardswish(_Simple):
    """``x·relu6(x + 3)/6``."""

    _fn = staticmethod(F.hardswish)


class Sigmoid(Module):
    """``1/(1 + e^(−x))``."""

    def forward(self, input: Tensor) -> Tensor:
        return F.sigmoid(input)


class Tanh(Module):
    """Hyperbolic tangent."""

    def forward(self, input: Tensor) -> Tensor:
        return F.tanh(input)


class Softsign(Module):
    """``x/(1 + |x|)``."""

    def forward(self, input: Tensor) -> Tensor:
        return F.softsign(input)


class LogSigmoid(Module):
    """``log σ(x)``."""

    def forward(self, input: Tensor) -> Tensor:
        return F.logsigmoid(input)


class LeakyReLU(Module):
    """``x`` if ``x > 0`` else ``negative_slope·x``."""

    def __init__(self, negative_slope: float = 1e-2, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class PReLU(Module):
    """Leaky ReLU with a learned slope ``a``: one shared, or one per channel
    (``num_parameters = C``), initialized to ``init`` (He et al., 2015)."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.num_parameters, self.init = num_parameters, init
        from ... import backend

        self.weight = Parameter(const(backend.xp.full(num_parameters, init, dtype=backend.to_dtype(dtype))))

    def reset_parameters(self) -> None:
        self.weight.array[...] = self.init

    def forward(self, input: Tensor) -> Tensor:
        return F.prelu(input, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class ELU(Module):
    """``x`` if ``x > 0`` else ``alpha·(e^x − 1)``."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.elu(input, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class CELU(ELU):
    """``max(0, x) + min(0, alpha·(e^(x/alpha) − 1))``."""

    def forward(self, input: Tensor) -> Tensor:
        return F.celu(input, self.alpha)


class GELU(Module):
    """``x·Φ(x)``; ``approximate='tanh'`` for the tanh approximation."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        return F.gelu(input, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Swish(Module):
    """``x·σ(β·x)`` (Ramachandran, Zoph & Le, 2017), with ``β`` learned by default.

    lamina's extension (torch has only ``SiLU``, the case β = 1 fixed).

    Args:
        beta: the initial β.
        learnable: make β a trained parameter (default True) rather than a constant.
    """

    def __init__(self, beta: float = 1.0, learnable: bool = True) -> None:
        super().__init__()
        self.learnable = learnable
        if learnable:
            from ... import backend

            self.beta = Parameter(const(backend.xp.array([beta], dtype=backend.get_default_dtype())))
        else:
            self.beta = float(beta)

    def forward(self, input: Tensor) -> Tensor:
        beta = self.beta
        if isinstance(beta, Tensor) and beta.dtype != input.dtype:
            beta = beta.to(input.dtype)
        return F.swish(input, beta.reshape(()) if isinstance(beta, Tensor) else beta)

    def extra_repr(self) -> str:
        b = self.beta.item() if isinstance(self.beta, Tensor) else self.beta
        return f"beta={b:g}, learnable={self.learnable}"


class Softplus(Module):
    """``(1/β)·log(1 + e^(β·x))``, linear above ``threshold``."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input: Tensor) -> Tensor:
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Hardtanh(Module):
    """``clamp(x, min_val, max_val)`` with torch's exclusive gradient mask."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        if min_val > max_val:
            raise ValueError(f"Hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.hardtanh(input, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}" + (", inplace=True" if self.inplace else "")


class _SoftmaxBase(Module):
    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def _dim(self, input: Tensor) -> int:
        return self.dim if self.dim is not None else (0 if input.ndim in (0, 1, 3) else 1)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(_SoftmaxBase):
    """``exp(x_i)/Σ_j exp(x_j)`` along ``dim``."""

    def forward(self, input: Tensor) -> Tensor:
        return F.softmax(input, self._dim(input))


class LogSoftmax(_SoftmaxBase):
    """``log softmax(x)`` along ``dim``, computed stably."""

    def forward(self, input: Tensor) -> Tensor:
        return F.log_softmax(input, self._dim(input))


class Softmin(_SoftmaxBase):
    """``softmax(−x)`` along ``dim``."""

    def forward(self, input: Tensor) -> Tensor:
        return F.softmin(input, self._dim(input))
