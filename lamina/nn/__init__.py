"""Floor 3: neural-network building blocks (``lamina.nn``)."""

from . import functional

__all__ = ["functional"]
