"""``lamina.nn.parallel``: data-parallel training over processes (``DistributedDataParallel``), as torch's."""

from .distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
