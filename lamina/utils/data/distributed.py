"""``DistributedSampler``: each rank's share of a data set, as ``torch.utils.data.distributed``."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from ... import backend, distributed
from .sampler import Sampler

__all__ = ["DistributedSampler"]

xp = backend.xp


def _permutation(n: int, seed: int) -> list[int]:
    """The shuffled order of one epoch: the same on every rank, as it depends only on the seed."""
    return xp.random.default_rng(seed).permutation(n).tolist()


class DistributedSampler(Sampler):
    """Indices of ``dataset`` for one rank: ranks see disjoint shares of equal length.

    Matches ``torch.utils.data.distributed.DistributedSampler``: the index list (shuffled with
    ``seed + epoch`` when ``shuffle``) is padded with its own first indices up to a multiple of
    ``num_replicas`` (or, with ``drop_last``, cut down to one), and rank r takes every
    ``num_replicas``-th index from position r. lamina differs in one thing: the shuffled order
    comes from NumPy's generator (``numpy.random.default_rng(seed + epoch)``), not torch's, so the
    permutation itself is not torch's.

    Args:
        dataset: the data set (only its length is used).
        num_replicas: the number of ranks (default: ``lamina.distributed.get_world_size()``).
        rank: this rank (default: ``lamina.distributed.get_rank()``).
        shuffle: a new order each epoch (call ``set_epoch`` before each).
        seed: the seed of the order; the same on every rank.
        drop_last: drop the tail instead of padding, so no index is seen twice.

    Example:
        >>> [list(DistributedSampler(range(5), num_replicas=2, rank=r, shuffle=False)) for r in (0, 1)]
        [[0, 2, 4], [1, 3, 0]]
    """

    def __init__(self, dataset: Any, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        if num_replicas is None:
            num_replicas = distributed.get_world_size()
        if rank is None:
            rank = distributed.get_rank()
        if isinstance(num_replicas, bool) or not isinstance(num_replicas, int) or num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas should be a positive integer, got {num_replicas!r}")
        if isinstance(rank, bool) or not isinstance(rank, int) or rank >= num_replicas or rank < 0:
            raise ValueError(f"DistributedSampler: Invalid rank {rank}, rank should be in the interval "
                             f"[0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = bool(drop_last)
        n = len(dataset)
        if self.drop_last and n % num_replicas != 0:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.shuffle = bool(shuffle)
        self.seed = int(seed)

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        indices = _permutation(n, self.seed + self.epoch) if self.shuffle else list(range(n))
        if not self.drop_last:
            padding = self.total_size - len(indices)
            if padding <= len(indices):
                indices += indices[:padding]
            else:  # fewer indices than ranks: repeat the list as often as needed
                indices += (indices * math.ceil(padding / len(indices)))[:padding]
        else:
            indices = indices[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch`` for the next pass's order (all ranks must set the same epoch)."""
        self.epoch = int(epoch)
