"""``lamina.nn.parallel``: ``DataParallel`` on the one device lamina has (a pass-through)."""

from .data_parallel import DataParallel

__all__ = ["DataParallel"]
