"""Activation functions (``torch.nn.functional`` names)."""

from __future__ import annotations

from ...ops.reduce import log_softmax, softmax
from ...ops.unary import relu, sigmoid, tanh

__all__ = ["relu", "sigmoid", "tanh", "softmax", "log_softmax"]
