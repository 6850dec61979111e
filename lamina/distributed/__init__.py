"""Floor 2: ``lamina.distributed`` — collective communication between processes, with torch's names.

lamina scales out on MPI (through ``mpi4py``; ``pip install 'lamina[mpi]'`` brings MPICH and its
``mpiexec``), not on a home-made engine: ``backend="mpi"`` is the only backend, and the names
``gloo``/``nccl``/``ucc`` are refused with a message that says so. Launch one process per rank
with ``mpiexec -n N python script.py`` or ``lamina train --nproc N``.

Collectives work in place on a tensor's array, as torch's do; tensors take no part in autograd
here (``DistributedDataParallel`` calls these on gradients). Floor 2: imports only the backend and
``autograd.Tensor``.

Example (under ``mpiexec -n 2``)::

    import lamina, lamina.distributed as dist
    dist.init_process_group("mpi")
    t = lamina.tensor([float(dist.get_rank())])
    dist.all_reduce(t)          # t == [1.] on both ranks
    dist.destroy_process_group()
"""

from __future__ import annotations

from .collectives import (
    ReduceOp,
    Work,
    abort,
    all_gather,
    all_reduce,
    barrier,
    broadcast,
    destroy_process_group,
    get_backend,
    get_rank,
    get_world_size,
    init_process_group,
    is_available,
    is_initialized,
    is_mpi_available,
)

__all__ = ["init_process_group", "destroy_process_group", "is_initialized", "is_available", "is_mpi_available",
           "get_backend", "get_rank", "get_world_size", "barrier", "all_reduce", "broadcast", "all_gather",
           "ReduceOp", "Work", "abort"]
