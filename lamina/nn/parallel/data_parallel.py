"""``DataParallel``: as torch's on a machine without GPUs — it calls the wrapped module."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ... import backend
from ..modules.module import Module

__all__ = ["DataParallel"]


class DataParallel(Module):
    """``torch.nn.DataParallel(module, device_ids=None, output_device=None, dim=0)``.

    Lamina has one device (the CPU), so, as torch's without GPUs, it runs ``module`` itself; the
    state dict keys get torch's ``module.`` prefix, and ``.module`` is the wrapped model.

    Args:
        module: the module to run.
        device_ids: must be empty or None (no GPU exists to spread the batch over).
        output_device: accepted when None or the CPU.
        dim: the batch dimension (unused: the batch is not split).

    Example:
        >>> import lamina
        >>> m = lamina.nn.DataParallel(lamina.nn.Linear(2, 3))
        >>> sorted(m.state_dict())
        ['module.bias', 'module.weight']
    """

    def __init__(self, module: Module, device_ids: Sequence[Any] | None = None, output_device: Any = None,
                 dim: int = 0) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel: expected a Module, got {type(module).__name__}")
        if device_ids:
            for d in device_ids:
                backend.to_device(d if backend.is_device_spec(d) else f"cuda:{d}")
        if output_device is not None:
            backend.to_device(output_device if backend.is_device_spec(output_device) else f"cuda:{output_device}")
        self.module = module
        self.device_ids: list[Any] = []
        self.output_device = None
        self.dim = dim

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        return self.module(*inputs, **kwargs)
