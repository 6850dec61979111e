"""The process group (MPI's world communicator) and torch's collectives on tensors."""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from .. import backend
from ..autograd.tensor import Tensor

__all__ = ["init_process_group", "destroy_process_group", "is_initialized", "is_available", "is_mpi_available",
           "get_backend", "get_rank", "get_world_size", "barrier", "all_reduce", "broadcast", "all_gather",
           "ReduceOp", "Work", "abort"]

_REFUSED = ("gloo", "nccl", "ucc", "xccl", "hccl", "cuda:nccl", "cpu:gloo")
_state: dict[str, Any] = {"comm": None, "MPI": None, "excepthook": None}


class ReduceOp:
    """Reduction operations, as ``torch.distributed.ReduceOp`` (AVG is a SUM divided by the world size)."""

    SUM = "sum"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"
    AVG = "avg"


def _mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise RuntimeError(
            "lamina.distributed needs mpi4py and an MPI library: pip install 'lamina[mpi]' "
            "(or pip install mpi4py mpich)"
        ) from e
    return MPI


def is_mpi_available() -> bool:
    """Whether mpi4py can be imported (it is the only backend)."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def is_available() -> bool:
    """Whether ``lamina.distributed`` can run here (mpi4py is installed)."""
    return is_mpi_available()


def is_initialized() -> bool:
    """Whether ``init_process_group`` has been called (and not undone)."""
    return _state["comm"] is not None


def _comm(op: str, group: Any = None) -> Any:
    if group is not None:
        raise ValueError(f"{op}: lamina has only the default process group (all ranks); got group={group!r}")
    comm = _state["comm"]
    if comm is None:
        raise ValueError(f"{op}: Default process group has not been initialized, please make sure to call "
                         "init_process_group.")
    return comm


def _abort_hook(previous: Callable[..., Any]) -> Callable[..., Any]:
    def hook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        comm = _state["comm"]
        if comm is None or comm.Get_size() == 1:  # alone, nobody waits: the usual traceback
            previous(kind, value, tb)
            return
        rank, size = comm.Get_rank(), comm.Get_size()
        text = "".join(traceback.format_exception(kind, value, tb))
        sys.stderr.write(f"{text}lamina.distributed: rank {rank} of {size} raised an unhandled "
                         f"{kind.__name__}; aborting all ranks\n")
        sys.stderr.flush()
        time.sleep(0.5)  # as in abort(): let mpiexec forward the traceback before every rank dies
        comm.Abort(1)  # without it the other ranks wait forever in their next collective
        os._exit(1)  # MPI_Abort may return before the launcher ends this process: say nothing more

    return hook


def init_process_group(backend: str | None = None, init_method: str | None = None, timeout: Any = None,
                       world_size: int = -1, rank: int = -1, store: Any = None, group_name: str = "",
                       pg_options: Any = None, device_id: Any = None) -> None:
    """Join the default process group: every process that ``mpiexec`` started.

    Matches ``torch.distributed.init_process_group`` with ``backend="mpi"``: rank and world size
    come from the MPI launcher; ``world_size``/``rank``, when given, must agree with it. It also
    installs an exception hook: an unhandled exception in any rank prints its traceback, names
    the rank and aborts the whole job (``MPI_Abort``), instead of leaving the other ranks waiting.

    Args:
        backend: ``"mpi"`` (default). Other torch backends are refused.
        init_method, timeout, store, group_name, pg_options, device_id: accepted for torch's
            signature; MPI's launcher does the rendezvous, so they are ignored.
        world_size: the expected number of ranks (-1: whatever the launcher started).
        rank: the expected rank of this process (-1: the launcher's).

    Raises:
        ValueError: for a backend other than ``"mpi"``, or a world size / rank that differs from MPI's.
        RuntimeError: when called twice, or when mpi4py is missing.
    """
    name = "mpi" if backend is None else str(backend).lower()
    if name != "mpi":
        raise ValueError(f"init_process_group: backend {backend!r} is not available in lamina; lamina runs on MPI "
                         "(mpi4py), so use backend='mpi' and launch with mpiexec -n N or lamina train --nproc N")
    if _state["comm"] is not None:
        raise RuntimeError("init_process_group: trying to initialize the default process group twice!")
    MPI = _mpi()
    comm = MPI.COMM_WORLD
    if world_size not in (-1, None) and world_size != comm.Get_size():
        raise ValueError(f"init_process_group: world_size={world_size} but mpiexec started {comm.Get_size()} ranks")
    if rank not in (-1, None) and rank != comm.Get_rank():
        raise ValueError(f"init_process_group: rank={rank} but MPI says this process is rank {comm.Get_rank()}")
    _state.update(comm=comm, MPI=MPI, excepthook=sys.excepthook)
    sys.excepthook = _abort_hook(sys.excepthook)


def destroy_process_group(group: Any = None) -> None:
    """Leave the default process group (MPI itself is finalized when the process exits)."""
    _comm("destroy_process_group", group)
    if _state["excepthook"] is not None:
        sys.excepthook = _state["excepthook"]
    _state.update(comm=None, MPI=None, excepthook=None)


def get_backend(group: Any = None) -> str:
    """``"mpi"``."""
    _comm("get_backend", group)
    return "mpi"


def get_rank(group: Any = None) -> int:
    """This process's rank, 0 … world size - 1."""
    return int(_comm("get_rank", group).Get_rank())


def get_world_size(group: Any = None) -> int:
    """The number of ranks."""
    return int(_comm("get_world_size", group).Get_size())


def abort(message: str, code: int = 1) -> None:
    """Print ``message`` prefixed with this rank and end every rank of the job (``MPI_Abort``)."""
    comm = _comm("abort")
    sys.stderr.write(f"rank {comm.Get_rank()} of {comm.Get_size()}: {message}\n")
    sys.stderr.flush()
    # MPI_Abort kills every rank at once, and mpiexec's proxies can drop output still on its way:
    # give them a moment to forward the message (and the traceback) before ending the job
    time.sleep(0.5)
    comm.Abort(code)
    os._exit(code)


class Work:
    """A pending collective (``async_op=True``); ``wait()`` blocks until it is done, as torch's ``Work``."""

    def __init__(self, request: Any, finish: Callable[[], None] | None = None) -> None:
        self._request = request
        self._finish = finish
        self._done = False

    def is_completed(self) -> bool:
        if not self._done and self._request.Test():
            self._complete()
        return self._done

    def wait(self, timeout: Any = None) -> bool:
        if not self._done:
            self._request.Wait()
            self._complete()
        return True

    def _complete(self) -> None:
        self._done = True
        if self._finish is not None:
            self._finish()


def _buffer(op: str, tensor: Any) -> tuple[Any, Callable[[], None] | None]:
    """The tensor's array if MPI can write into it, else a contiguous copy and the write-back."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{op}: expected a lamina Tensor, got {type(tensor).__name__}")
    a = tensor.array
    if a.flags.c_contiguous and a.flags.writeable:
        return a, tensor._bump_version
    buf = a.copy(order="C")

    def back() -> None:
        tensor.array[...] = buf
        tensor._bump_version()

    return buf, back


def _run(request: Any, finish: Callable[[], None] | None, async_op: bool) -> Work | None:
    work = Work(request, finish)
    if async_op:
        return work
    work.wait()
    return None


def all_reduce(tensor: Tensor, op: str = ReduceOp.SUM, group: Any = None, async_op: bool = False) -> Work | None:
    """Reduce ``tensor`` over all ranks, in place, on every rank. Matches ``torch.distributed.all_reduce``."""
    comm = _comm("all_reduce", group)
    MPI = _state["MPI"]
    ops = {ReduceOp.SUM: MPI.SUM, ReduceOp.PRODUCT: MPI.PROD, ReduceOp.MIN: MPI.MIN, ReduceOp.MAX: MPI.MAX,
           ReduceOp.AVG: MPI.SUM}
    if op not in ops:
        raise ValueError(f"all_reduce: op should be one of ReduceOp.SUM, PRODUCT, MIN, MAX, AVG; got {op!r}")
    buf, back = _buffer("all_reduce", tensor)
    if op == ReduceOp.AVG:
        if buf.dtype.kind != "f":
            raise TypeError(f"all_reduce: ReduceOp.AVG needs a floating tensor, got dtype {buf.dtype}")
        size = comm.Get_size()
        inner = back

        def back() -> None:
            buf[...] /= size
            inner()

    return _run(comm.Iallreduce(MPI.IN_PLACE, buf, ops[op]), back, async_op)


def broadcast(tensor: Tensor, src: int = 0, group: Any = None, async_op: bool = False) -> Work | None:
    """Copy rank ``src``'s ``tensor`` into ``tensor`` on every rank. Matches ``torch.distributed.broadcast``."""
    comm = _comm("broadcast", group)
    if not 0 <= src < comm.Get_size():
        raise ValueError(f"broadcast: src should be a rank in 0..{comm.Get_size() - 1}, got {src}")
    buf, back = _buffer("broadcast", tensor)
    return _run(comm.Ibcast(buf, root=src), back, async_op)


def all_gather(tensor_list: list[Tensor], tensor: Tensor, group: Any = None, async_op: bool = False) -> Work | None:
    """Fill ``tensor_list[r]`` with rank r's ``tensor``. Matches ``torch.distributed.all_gather``."""
    comm = _comm("all_gather", group)
    size = comm.Get_size()
    if len(tensor_list) != size:
        raise ValueError(f"all_gather: tensor_list should hold world_size={size} tensors, got {len(tensor_list)}")
    for i, t in enumerate(tensor_list):
        if not isinstance(t, Tensor) or t.shape != tensor.shape or t.dtype != tensor.dtype:
            got = f"{tuple(t.shape)} {t.dtype}" if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"all_gather: tensor_list[{i}] should be a {tuple(tensor.shape)} {tensor.dtype} tensor "
                             f"like the input, got {got}")
    send, _ = _buffer("all_gather", tensor)
    recv = backend.xp.empty((size,) + send.shape, dtype=send.dtype)  # one row per rank

    def back() -> None:
        for r, t in enumerate(tensor_list):
            t.array[...] = recv[r]
            t._bump_version()

    return _run(comm.Iallgather(send, recv), back, async_op)


def barrier(group: Any = None, async_op: bool = False) -> Work | None:
    """Wait until every rank has reached this call. Matches ``torch.distributed.barrier``."""
    comm = _comm("barrier", group)
    return _run(comm.Ibarrier(), None, async_op)
