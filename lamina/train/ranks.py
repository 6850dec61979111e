"""Which process writes the run's files when training runs on several ranks (MPI), and the model
under a ``DistributedDataParallel`` wrapper."""

from __future__ import annotations

from typing import Any

from .. import distributed

__all__ = ["writes_files", "world", "unwrap"]


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
