"""Floor 1: the autograd engine — Tensor, Function, graph traversal, grad modes, gradcheck."""

from .anomaly_mode import detect_anomaly, is_anomaly_enabled, set_detect_anomaly
from .engine import grad
from .function import Context, Function
from .grad_mode import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .legacy import Variable
from .tensor import Tensor, tensor

__all__ = [
    "set_detect_anomaly", "detect_anomaly", "is_anomaly_enabled", "Variable",
    "Tensor", "tensor", "Function", "Context", "grad", "no_grad", "enable_grad",
    "set_grad_enabled", "is_grad_enabled", "inference_mode", "is_inference_mode_enabled",
    "gradcheck", "gradgradcheck", "GradcheckError",
]
