"""``lamina.accelerator``: torch.accelerator's answers — lamina has no accelerator."""

from __future__ import annotations

from typing import Any

from . import backend

__all__ = ["is_available", "current_accelerator", "device_count", "current_device_index", "synchronize"]


def is_available() -> bool:
    """False: lamina computes on the CPU only."""
    return False


def current_accelerator(check_available: bool = False) -> None:
    """None (no accelerator), as torch's on a CPU-only machine."""
    return None


def device_count() -> int:
    return 0


def current_device_index() -> int:
    """Raises: lamina has no accelerator."""
    backend.to_device("cuda")
    return 0


def synchronize(device: Any = None) -> None:
    """Raises: lamina has no accelerator."""
    backend.to_device("cuda")
