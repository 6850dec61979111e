"""``lamina.nn.parallel``: data parallelism as torch's: ``DistributedDataParallel`` over processes
(MPI) and ``DataParallel`` on the one device lamina has (a pass-through)."""

from .data_parallel import DataParallel
from .distributed import DistributedDataParallel

__all__ = ["DataParallel", "DistributedDataParallel"]
