"""Floor 4: the classic networks of the lectures, by name (torchvision's names where it has them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import nn
from .lenet import LeNet5, LeNetSmall, lenet5, lenet_small

__all__ = ["LeNet5", "LeNetSmall", "lenet5", "lenet_small", "get_model", "list_models", "register_model"]

_REGISTRY: dict[str, Callable[..., nn.Module]] = {"lenet5": lenet5, "lenet_small": lenet_small}


def register_model(name: str, builder: Callable[..., nn.Module]) -> None:
    """Make ``builder`` available as ``get_model(name, ...)`` (and ``lamina train --model name``)."""
    _REGISTRY[name] = builder


def list_models() -> list[str]:
    """The names ``get_model`` knows."""
    return sorted(_REGISTRY)


def get_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the model called ``name`` (e.g. ``'lenet5'``) with ``kwargs`` (``num_classes`` …)."""
    if name not in _REGISTRY:
        raise ValueError(f"get_model: unknown model {name!r}; known models: {', '.join(list_models())}")
    return _REGISTRY[name](**kwargs)
