"""Floor 4: ``lamina.utils.data`` — data sets, samplers and the DataLoader, with torch's semantics.

Example:
    >>> import lamina
    >>> from lamina.utils.data import DataLoader, TensorDataset, random_split
    >>> ds = TensorDataset(lamina.randn(10, 3), lamina.arange(10))
    >>> train, val = random_split(ds, [0.8, 0.2])
    >>> xb, yb = next(iter(DataLoader(train, batch_size=4, shuffle=True, seed=0)))
    >>> tuple(xb.shape), tuple(yb.shape)
    ((4, 3), (4,))
"""

from .collate import default_collate, default_convert, detection_collate
from .dataloader import DataLoader
from .dataset import ChainDataset, ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset, random_split
from .distributed import DistributedSampler
from .sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)
from .worker import WorkerInfo, get_worker_info

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "ConcatDataset", "ChainDataset", "Subset",
           "random_split", "DataLoader", "default_collate", "default_convert", "detection_collate", "Sampler",
           "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler", "BatchSampler",
           "DistributedSampler",
           "WorkerInfo", "get_worker_info"]
