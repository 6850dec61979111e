"""Which process writes the run's files when training runs on several ranks (MPI), and the model
under a ``DistributedDataParallel`` wrapper."""

from __future__ import annotations

from typing import Any

from .. import distributed

__all__ = ["writes_files", "world", "unwrap", "any_rank"]


def world() -> tuple[int, int]:
    """``(rank, world size)``: ``(0, 1)`` outside a process group."""
    if not distributed.is_initialized():
        return 0, 1
    return distributed.get_rank(), distributed.get_world_size()


def writes_files() -> bool:
    """Whether this process writes checkpoints, metrics and reports: rank 0 only, so that ranks
    never race on one file (outside a process group: always)."""
    return world()[0] == 0


def unwrap(model: Any) -> Any:
    """The module inside a ``DistributedDataParallel`` (whose state-dict keys carry ``module.``), so
    a checkpoint of a run on N ranks loads into one process and back."""
    from ..nn.parallel import DistributedDataParallel

    return model.module if isinstance(model, DistributedDataParallel) else model


def any_rank(value: int) -> int:
    """The largest ``value`` over the ranks (``value`` itself outside a process group): ranks that
    must stop together (a signal reached some of them) agree on it at the same batch."""
    if world()[1] == 1:
        return value
    from .. import backend
    from ..autograd.tensor import Tensor

    t = Tensor._wrap(backend.xp.array([value], dtype=backend.xp.int64))
    distributed.all_reduce(t, op=distributed.ReduceOp.MAX)
    return int(t.array[0])
