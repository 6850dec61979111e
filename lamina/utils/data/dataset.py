"""Map-style and iterable data sets, their combinations, and ``random_split``.

Matches ``torch.utils.data.dataset``: a :class:`Dataset` answers ``dataset[i]`` and ``len(dataset)``;
an :class:`IterableDataset` is a stream. ``ConcatDataset``, ``Subset`` and ``random_split`` combine
and divide map-style sets.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ... import backend

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "ConcatDataset", "ChainDataset", "Subset",
           "random_split"]

xp = backend.xp


class Dataset:
    """A map-style data set: subclasses define ``__getitem__(index)`` and ``__len__()``.

    ``a + b`` concatenates two data sets (a :class:`ConcatDataset`). Matches ``torch.utils.data.Dataset``.

    Example:
        >>> class Squares(Dataset):
        ...     def __len__(self):
        ...         return 4
        ...     def __getitem__(self, i):
        ...         return i * i
        >>> [Squares()[i] for i in range(4)]
        [0, 1, 4, 9]
    """

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A stream of samples: subclasses define ``__iter__``.

    With ``num_workers > 0`` every worker iterates its own copy; use
    :func:`lamina.utils.data.get_worker_info` inside ``__iter__`` to give each worker its share
    (as in torch). Matches ``torch.utils.data.IterableDataset``.
    """

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")

    def __add__(self, other: Dataset) -> ChainDataset:  # type: ignore[override]
        return ChainDataset([self, other])


def _first_dim(t: Any) -> int:
    shape = getattr(t, "shape", None)
    if shape is None or len(shape) == 0:
        raise ValueError(f"TensorDataset: every tensor needs a first (sample) dimension, got shape {shape}")
    return int(shape[0])


class TensorDataset(Dataset):
    """Samples are the rows of tensors that share their first dimension.

    Args:
        *tensors: lamina Tensors or NumPy arrays with the same size in dimension 0.

    Example:
        >>> import lamina
        >>> ds = TensorDataset(lamina.arange(6).reshape(3, 2), lamina.tensor([0, 1, 0]))
        >>> x, y = ds[1]
        >>> x.tolist(), y.item(), len(ds)
        ([2, 3], 1, 3)
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor")
        sizes = [_first_dim(t) for t in tensors]
        if any(s != sizes[0] for s in sizes):
            raise ValueError(f"TensorDataset: size mismatch between tensors (first dimensions {sizes})")
        self.tensors = tuple(tensors)

    def __getitem__(self, index: Any) -> tuple[Any, ...]:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return _first_dim(self.tensors[0])


class ConcatDataset(Dataset):
    """The concatenation of map-style data sets.

    Args:
        datasets: the parts, in order (iterable data sets are not allowed).

    Example:
        >>> ds = ConcatDataset([[1, 2], [3, 4, 5]])
        >>> len(ds), ds[2], ds[-1]
        (5, 3, 5)
    """

    def __init__(self, datasets: Iterable[Any]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset: does not support IterableDataset (use ChainDataset)")
        self.cumulative_sizes = []
        total = 0
        for d in self.datasets:
            total += len(d)
            self.cumulative_sizes.append(total)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int) -> Any:
        n = len(self)
        if index < 0:
            if -index > n:
                raise IndexError(f"ConcatDataset: index {index} out of range for length {n}")
            index += n
        if index >= n:
            raise IndexError(f"ConcatDataset: index {index} out of range for length {n}")
        part = bisect.bisect_right(self.cumulative_sizes, index)
        start = self.cumulative_sizes[part - 1] if part > 0 else 0
        return self.datasets[part][index - start]


class ChainDataset(IterableDataset):
    """The chaining of iterable data sets (one after the other). Matches ``torch.utils.data.ChainDataset``."""

    def __init__(self, datasets: Iterable[Any]) -> None:
        self.datasets = list(datasets)

    def __iter__(self) -> Iterator[Any]:
        for d in self.datasets:
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order.

    Example:
        >>> Subset([10, 11, 12, 13], [3, 0])[0]
        13
    """

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = [int(i) for i in indices]

    def __getitem__(self, index: int) -> Any:
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


def _split_lengths(n: int, lengths: Sequence[float]) -> list[int]:
    lengths = list(lengths)
    if not lengths:
        raise ValueError("random_split: lengths must not be empty")
    if all(isinstance(x, (int, xp.integer)) and not isinstance(x, bool) for x in lengths):
        out = [int(x) for x in lengths]
        if any(x < 0 for x in out):
            raise ValueError(f"random_split: lengths must be non-negative, got {out}")
        if sum(out) != n:
            raise ValueError(f"random_split: sum of input lengths ({sum(out)}) does not equal the length of the "
                             f"input dataset ({n})")
        return out
    fracs = [float(x) for x in lengths]
    if any(f < 0 or f > 1 for f in fracs) or not math.isclose(sum(fracs), 1.0, abs_tol=1e-6):
        raise ValueError(f"random_split: fractions must lie in [0, 1] and sum to 1, got {fracs}")
    # torch: floor each part, then hand the remainder out one by one from the first part on
    out = [int(math.floor(n * f)) for f in fracs]
    for i in range(n - sum(out)):
        out[i % len(out)] += 1
    return out


def random_split(dataset: Any, lengths: Sequence[float], generator: Any = None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random subsets.

    Args:
        dataset: a map-style data set.
        lengths: the sizes of the parts, or fractions summing to 1 (each part gets
            ``floor(n * fraction)`` and the remainder is handed out round-robin from the first part,
            as in torch).
        generator: a ``numpy.random.Generator`` for the permutation (default: lamina's global generator).

    Returns:
        A list of :class:`Subset`.

    Example:
        >>> import numpy as np
        >>> a, b = random_split(range(10), [0.7, 0.3], generator=np.random.default_rng(0))
        >>> len(a), len(b), sorted(list(a.indices) + list(b.indices)) == list(range(10))
        (7, 3, True)
    """
    n = len(dataset)
    sizes = _split_lengths(n, lengths)
    rng = generator if generator is not None else backend.generator()
    perm = rng.permutation(n).tolist()
    out, start = [], 0
    for s in sizes:
        out.append(Subset(dataset, perm[start:start + s]))
        start += s
    return out


