"""Activation functions with ``torch.nn.functional``'s names and defaults.

Most are compositions of primitives (so their gradients, and second derivatives, follow from
the chain rule); ``softplus``, ``hardswish`` and ``erf`` (for exact GELU) are primitives in
``lamina/ops/activation.py``. Where a branch could overflow (``exp`` of a large input) the
unused side is clamped first, so no ``inf·0 = nan`` leaks into a gradient.
"""

from __future__ import annotations

import math
from typing import Any

from ...autograd.tensor import Tensor
from ...ops.activation import erf, softplus
from ...ops.activation import hardswish as _hardswish
from ...ops.common import check_tensor, const
from ...ops.reduce import log_softmax, softmax
from ...ops.selection import where
from ...ops.unary import relu as _relu
from ...ops.unary import sigmoid, tanh

__all__ = [
    "relu", "relu6", "leaky_relu", "prelu", "elu", "selu", "celu", "gelu", "silu", "swish", "mish",
    "softplus", "softsign", "hardtanh", "hardsigmoid", "hardswish", "sigmoid", "tanh", "logsigmoid",
    "softmax", "log_softmax", "softmin", "erf",
]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """``max(x, 0)``; the gradient at 0 is 0 (as torch). ``inplace`` is accepted for torch
    compatibility; lamina computes out of place (use the returned tensor)."""
    return _relu(input)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """``x·relu6(x + 3)/6`` with torch's slopes at the kinks."""
    return _hardswish(input)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """``clamp(x, min_val, max_val)``; the gradient is 1 strictly inside and 0 at and beyond the
    bounds (torch's hardtanh convention, unlike ``clamp``'s inclusive one)."""
    check_tensor(input, "hardtanh")
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
    a = input.array
    inside = const((a > min_val) & (a < max_val))
    return where(inside, input, const(a.clip(min_val, max_val)))


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """``min(max(x, 0), 6)``."""
    return hardtanh(input, 0.0, 6.0)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """``x`` for ``x > 0``, else ``negative_slope·x`` (slope ``negative_slope`` at 0, as torch)."""
    check_tensor(input, "leaky_relu")
    return where(input > 0, input, input * negative_slope)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """Leaky ReLU with a learned slope per channel (dim 1) or one shared slope.

    Shape:
        input ``(N, C, *)`` or ``(C,)``; weight ``(1,)`` or ``(C,)``.
    """
    check_tensor(input, "prelu")
    if weight.numel() != 1:
        c = input.shape[1] if input.ndim >= 2 else input.shape[0]
        if weight.numel() != c:
            raise ValueError(
                f"prelu: weight has {weight.numel()} slopes but input has {c} channels (input shape "
                f"{tuple(input.shape)})"
            )
        if input.ndim >= 2:
            weight = weight.reshape((1, c) + (1,) * (input.ndim - 2))
    elif input.ndim == 0:
        weight = weight.reshape(())
    return where(input > 0, input, input * weight)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``x`` for ``x > 0``, else ``alpha·(exp(x) − 1)``."""
    check_tensor(input, "elu")
    return where(input > 0, input, input.clamp(max=0.0).expm1() * alpha)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """``scale·elu(x, alpha)`` with the self-normalizing constants of Klambauer et al. (2017)."""
    return elu(input, _SELU_ALPHA) * _SELU_SCALE


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``max(0, x) + min(0, alpha·(exp(x/alpha) − 1))``."""
    check_tensor(input, "celu")
    if alpha == 0:
        raise ValueError("celu: alpha cannot be 0")
    return where(input > 0, input, (input.clamp(max=0.0) * (1.0 / alpha)).expm1() * alpha)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """``x·Φ(x)`` (Φ the standard normal CDF, via erf); ``approximate='tanh'`` uses
    ``0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))``."""
    check_tensor(input, "gelu")
    if approximate == "none":
        return input * 0.5 * (1.0 + erf(input * (1.0 / math.sqrt(2.0))))
    if approximate == "tanh":
        inner = (input + input * input * input * 0.044715) * math.sqrt(2.0 / math.pi)
        return input * 0.5 * (1.0 + inner.tanh())
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """``x·σ(x)`` (the SiLU, Swish with β = 1)."""
    return input * sigmoid(input)


def swish(input: Tensor, beta: Any = 1.0) -> Tensor:
    """``x·σ(β·x)`` (Ramachandran et al., 2017); ``beta`` may be a learnable tensor.
    lamina's extension: torch has only ``silu`` (β = 1)."""
    return input * sigmoid(input * beta)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """``x·tanh(softplus(x))`` (Misra, 2019)."""
    return input * tanh(softplus(input))


def softsign(input: Tensor) -> Tensor:
    """``x / (1 + |x|)``."""
    return input / (input.abs() + 1.0)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """``relu6(x + 3)/6``; slope 1/6 strictly between −3 and 3, else 0 (as torch)."""
    return relu6(input + 3.0) * (1.0 / 6)


def logsigmoid(input: Tensor) -> Tensor:
    """``log σ(x) = −softplus(−x)``, stable for any x."""
    return -softplus(-input)


def _softmax_dim(ndim: int) -> int:
    # torch's legacy implicit choice when dim is None
    return 0 if ndim in (0, 1, 3) else 1


def softmin(input: Tensor, dim: int | None = None, dtype: Any = None) -> Tensor:
    """``softmax(−x, dim)``."""
    return softmax(-input, dim if dim is not None else _softmax_dim(input.ndim), dtype)

