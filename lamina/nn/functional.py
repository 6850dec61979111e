"""``lamina.nn.functional``: the functional forms of layers, as ``torch.nn.functional``."""

from __future__ import annotations

from ..ops.pad import pad
from ..ops.reduce import log_softmax, softmax
from ..ops.unary import relu, sigmoid, tanh

__all__ = ["pad", "softmax", "log_softmax", "relu", "sigmoid", "tanh"]
