"""``lamina.cuda``: torch.cuda's questions answered truthfully — lamina has no GPU backend.

``is_available()`` is False and ``device_count()`` 0, so ``torch.device('cuda' if
torch.cuda.is_available() else 'cpu')`` picks the CPU; seeding and cache calls do nothing, as
torch's do without a GPU; anything that needs a GPU (``current_device``, ``synchronize``,
``get_device_name`` …) raises a clear error.
"""

from __future__ import annotations

from typing import Any

from .. import backend
from . import amp

__all__ = ["is_available", "device_count", "manual_seed", "manual_seed_all", "seed", "seed_all", "is_initialized",
           "empty_cache", "memory_allocated", "max_memory_allocated", "memory_reserved", "is_bf16_supported",
           "OutOfMemoryError", "amp"]


class OutOfMemoryError(RuntimeError):
    """torch.cuda.OutOfMemoryError (never raised by lamina; here so ``except`` clauses resolve)."""


def is_available() -> bool:
    """False: lamina has no GPU backend."""
    return False


def device_count() -> int:
    return 0


def is_initialized() -> bool:
    return False


def is_bf16_supported(including_emulation: bool = True) -> bool:
    return False


def manual_seed(seed: int) -> None:
    """Does nothing (no GPU generator exists), as torch's without a GPU; lamina.manual_seed seeds lamina."""


def manual_seed_all(seed: int) -> None:
    """Does nothing (no GPU generator exists), as torch's without a GPU."""


def seed() -> None:
    """Does nothing (no GPU generator exists)."""


def seed_all() -> None:
    """Does nothing (no GPU generator exists)."""


def empty_cache() -> None:
    """Does nothing: no GPU memory is held."""


def memory_allocated(device: Any = None) -> int:
    """0: no GPU memory is held."""
    return 0


def max_memory_allocated(device: Any = None) -> int:
    return 0


def memory_reserved(device: Any = None) -> int:
    return 0


def _no_gpu(name: str) -> Any:
    def fn(*args: Any, **kwargs: Any) -> Any:
        backend.to_device("cuda")

    fn.__name__ = name
    fn.__doc__ = "Raises: lamina has no GPU backend."
    return fn


for _name in ("current_device", "set_device", "synchronize", "get_device_name", "get_device_properties",
              "get_device_capability", "current_stream", "Stream", "Event", "device",
              # the legacy typed GPU tensors (``torch.cuda.FloatTensor(...)``)
              "FloatTensor", "DoubleTensor", "HalfTensor", "LongTensor", "IntTensor", "ShortTensor", "CharTensor",
              "ByteTensor", "BoolTensor"):
    globals()[_name] = _no_gpu(_name)
