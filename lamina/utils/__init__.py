"""Floor 4: utilities on top of the neural-network floors (``lamina.utils.data``)."""

from . import data

__all__ = ["data"]
