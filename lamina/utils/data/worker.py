"""Worker processes for ``DataLoader(num_workers > 0)``.

Each worker is a ``multiprocessing`` process (forked where the platform allows, else spawned) that
receives batches of indices, loads and collates them, and sends the batch back. Worker ``k`` of an
epoch seeds lamina's global generator, NumPy's legacy generator and Python's ``random`` with
``base_seed + k``, where ``base_seed`` is drawn from the loader's generator at the start of the
epoch: random transforms in workers are reproducible from the loader's seed.

Batches travel between processes through ``multiprocessing`` queues (which pickle internally,
between lamina's own processes only; no file is involved).
"""

from __future__ import annotations

import queue
import random
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ... import backend
from ...autograd.tensor import Tensor
from ...ops.kernels import threads

__all__ = ["WorkerInfo", "get_worker_info"]

xp = backend.xp

_worker_info: WorkerInfo | None = None


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker knows about itself: ``id``, ``num_workers``, ``seed`` and its copy of ``dataset``."""

    id: int
    num_workers: int
    seed: int
    dataset: Any


def get_worker_info() -> WorkerInfo | None:
    """The :class:`WorkerInfo` inside a DataLoader worker process, ``None`` in the main process.

    Example:
        >>> get_worker_info() is None
        True
    """
    return _worker_info


class _TensorPayload:
    """A Tensor's array on its way between processes (Tensors hold graph state that must not travel)."""

    __slots__ = ("array",)

    def __init__(self, array: Any) -> None:
        self.array = array

    def __getstate__(self) -> Any:
        return self.array

    def __setstate__(self, state: Any) -> None:
        self.array = state


def pack(obj: Any) -> Any:
    if isinstance(obj, Tensor):
        return _TensorPayload(obj.detach().array)
    if isinstance(obj, dict):
        return {k: pack(v) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(pack(o) for o in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(pack(o) for o in obj)
    return obj


def unpack(obj: Any) -> Any:
    if isinstance(obj, _TensorPayload):
        return Tensor._wrap(obj.array)
    if isinstance(obj, dict):
        return {k: unpack(v) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(unpack(o) for o in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(unpack(o) for o in obj)
    return obj


class ExceptionWrapper:
    """An exception raised in a worker, re-raised in the main process with the worker's traceback."""

    def __init__(self, exc: BaseException, where: str) -> None:
        self.exc_type = type(exc)
        self.msg = f"Caught {type(exc).__name__} in {where}.\nOriginal {traceback.format_exc()}"
        self.original = str(exc)

    def reraise(self) -> None:
        try:
            err = self.exc_type(self.msg)
        except Exception:
            err = RuntimeError(self.msg)
        err.original_message = self.original  # without the worker's traceback: what the CLI's one line shows
        raise err


def _seed_worker(seed: int) -> None:
    backend.manual_seed(seed)
    xp.random.seed(seed % 2**32)
    random.seed(seed)


def worker_loop(dataset: Any, index_queue: Any, result_queue: Any, collate_fn: Callable[[Any], Any],
                auto_collation: bool, seed: int, worker_id: int, num_workers: int,
                worker_init_fn: Callable[[int], None] | None, iterable: bool, batch_size: int | None,
                drop_last: bool) -> None:
    """The body of one worker process."""
    global _worker_info
    threads.set_pool_threads(1)  # as torch's workers: one thread each for lamina's kernels
    _seed_worker(seed)
    _worker_info = WorkerInfo(worker_id, num_workers, seed, dataset)
    where = f"DataLoader worker process {worker_id}"
    try:
        if worker_init_fn is not None:
            worker_init_fn(worker_id)
    except Exception as e:
        result_queue.put((-1, worker_id, None, ExceptionWrapper(e, where)))
        return
    if iterable:
        _iterable_loop(dataset, result_queue, collate_fn, worker_id, batch_size, drop_last, where)
        return
    while True:
        task = index_queue.get()
        if task is None:
            return
        k, indices = task
        try:
            data = collate_fn([dataset[i] for i in indices]) if auto_collation else collate_fn(dataset[indices])
            result_queue.put((k, worker_id, pack(data), None))
        except Exception as e:
            result_queue.put((k, worker_id, None, ExceptionWrapper(e, where)))


def _iterable_loop(dataset: Any, result_queue: Any, collate_fn: Callable[[Any], Any], worker_id: int,
                   batch_size: int | None, drop_last: bool, where: str) -> None:
    k = 0
    try:
        for data in iter_batches(iter(dataset), collate_fn, batch_size, drop_last):
            result_queue.put((k, worker_id, pack(data), None))
            k += 1
    except Exception as e:
        result_queue.put((k, worker_id, None, ExceptionWrapper(e, where)))
        return
    result_queue.put((k, worker_id, StopIteration, None))


def iter_batches(it: Iterator[Any], collate_fn: Callable[[Any], Any], batch_size: int | None,
                 drop_last: bool) -> Iterator[Any]:
    """Batches from a stream of samples (``batch_size=None``: one converted sample at a time)."""
    if batch_size is None:
        for sample in it:
            yield collate_fn(sample)
        return
    batch: list[Any] = []
    for sample in it:
        batch.append(sample)
        if len(batch) == batch_size:
            yield collate_fn(batch)
            batch = []
    if batch and not drop_last:
        yield collate_fn(batch)


def get_result(result_queue: Any, workers: list[Any], timeout: float) -> Any:
    """Wait for the next result, failing clearly when a worker died or ``timeout`` (> 0) passed."""
    waited = 0.0
    while True:
        try:
            return result_queue.get(timeout=1.0)
        except queue.Empty:
            waited += 1.0
            dead = [i for i, w in enumerate(workers) if not w.is_alive() and w.exitcode not in (0, None)]
            if dead:
                codes = ", ".join(f"worker {i} (exit code {workers[i].exitcode})" for i in dead)
                raise RuntimeError(f"DataLoader: {codes} exited unexpectedly") from None
            if timeout > 0 and waited >= timeout:
                raise RuntimeError(f"DataLoader: timed out after {timeout} s waiting for a batch from the "
                                   f"workers") from None
