"""Floor 1: the autograd engine — Tensor, Function, graph traversal, grad modes, gradcheck."""

from .engine import grad
from .function import Context, Function
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .tensor import Tensor, tensor

__all__ = [
    "Tensor", "tensor", "Function", "Context", "grad", "no_grad", "enable_grad",
    "set_grad_enabled", "is_grad_enabled", "gradcheck", "gradgradcheck", "GradcheckError",
]
