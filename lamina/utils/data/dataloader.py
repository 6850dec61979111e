"""``DataLoader``: batches from a data set, shuffled reproducibly, optionally loaded by worker processes.

Matches ``torch.utils.data.DataLoader`` for what it implements. lamina's randomness is a
``numpy.random.Generator`` owned by the loader (``generator=`` or ``seed=``; by default seeded once,
at construction, by a draw from lamina's global generator), so two loaders built after the same
``lamina.manual_seed`` give the same batches, every epoch is reshuffled, and
:meth:`DataLoader.state_dict` / :meth:`DataLoader.load_state_dict` let a checkpoint resume the
exact sequence of batches, also from the middle of an epoch.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from typing import Any

from ... import backend
from . import worker as _w
from .collate import default_collate, default_convert
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, SequentialSampler

__all__ = ["DataLoader"]

xp = backend.xp


def _generator_state(g: Any) -> dict[str, Any]:
    return g.bit_generator.state


class DataLoader:
    """Iterate over ``dataset`` in batches.

    Args:
        dataset: a map-style :class:`Dataset` (anything with ``__getitem__`` and ``__len__``) or an
            :class:`IterableDataset`.
        batch_size: samples per batch; ``None`` turns batching off (samples come one by one,
            converted by ``default_convert``).
        shuffle: reshuffle the samples at every epoch (a :class:`RandomSampler` drawing from the
            loader's generator).
        sampler: the order of indices (excludes ``shuffle``).
        batch_sampler: yields lists of indices (excludes batch_size, shuffle, sampler, drop_last).
        num_workers: worker processes loading batches (0: load in the main process). Workers help
            when loading a sample is costly (decoding files, heavy transforms), not for in-memory tensors.
        collate_fn: merges a list of samples into a batch (default :func:`default_collate`).
        pin_memory: accepted for torch compatibility; no effect on the CPU.
        drop_last: drop the last incomplete batch.
        timeout: seconds to wait for a worker's batch (0: wait for ever; dead workers are detected).
        worker_init_fn: called as ``worker_init_fn(worker_id)`` in each worker after seeding.
        multiprocessing_context: a start method name (``'fork'``, ``'spawn'``, ``'forkserver'``) or context;
            default ``'fork'`` where available.
        generator: a ``numpy.random.Generator`` for shuffling and the workers' seeds.
        prefetch_factor: batches requested ahead per worker (default 2).
        persistent_workers: accepted for torch compatibility; lamina starts the workers anew every
            epoch, seeded from the loader's generator.
        seed: an integer seed for a new generator (instead of ``generator``).

    Randomness, as in torch: at the start of every epoch the loader draws a base seed from its
    generator (whatever ``num_workers``), then the sampler draws the epoch's order; the order is
    therefore the same for any ``num_workers``. Random transforms run in the main process draw
    from lamina's global generator (seed it with ``lamina.manual_seed``); in worker ``k`` they draw
    from a generator seeded with ``base_seed + k``, reproducible from the loader's seed alone.

    Example:
        >>> import lamina
        >>> from lamina.utils.data import TensorDataset
        >>> ds = TensorDataset(lamina.arange(10).float(), lamina.arange(10))
        >>> loader = DataLoader(ds, batch_size=4, shuffle=True, seed=0)
        >>> [tuple(x.shape) for x, y in loader]
        [(4,), (4,), (2,)]
        >>> len(loader)
        3
    """

    def __init__(self, dataset: Any, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler: Any = None, batch_sampler: Any = None, num_workers: int = 0,
                 collate_fn: Callable[[Any], Any] | None = None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn: Callable[[int], None] | None = None,
                 multiprocessing_context: Any = None, generator: Any = None, *, prefetch_factor: int | None = None,
                 persistent_workers: bool = False, seed: int | None = None) -> None:
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers should be a non-negative integer, got {num_workers!r}")
        if timeout < 0:
            raise ValueError(f"DataLoader: timeout should be non-negative, got {timeout}")
        if prefetch_factor is not None and num_workers == 0:
            raise ValueError("DataLoader: prefetch_factor option could only be specified in multiprocessing "
                             "(num_workers > 0)")
        if generator is not None and seed is not None:
            raise ValueError("DataLoader: pass generator= or seed=, not both")
        if generator is not None and not isinstance(generator, xp.random.Generator):
            raise TypeError(f"DataLoader: generator should be a numpy.random.Generator, got "
                            f"{type(generator).__name__}")
        if generator is None:
            if seed is None:
                seed = int(backend.generator().integers(0, 2**63))
            generator = xp.random.default_rng(seed)
        self.generator = generator
        self.dataset = dataset
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            if shuffle:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle option, "
                                 f"but got shuffle={shuffle}")
            if sampler is not None or batch_sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified sampler and batch_sampler")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler option is mutually exclusive with batch_size, "
                                 "shuffle, sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("DataLoader: batch_size=None option disables auto-batching and is mutually "
                             "exclusive with drop_last")
        if sampler is None and not self._iterable:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None and not self._iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size, self.drop_last = batch_size, drop_last
        self.sampler, self.batch_sampler = sampler, batch_sampler
        self.num_workers, self.timeout, self.worker_init_fn = num_workers, timeout, worker_init_fn
        self.prefetch_factor = 2 if prefetch_factor is None else prefetch_factor
        self.pin_memory, self.persistent_workers = pin_memory, persistent_workers
        self.multiprocessing_context = multiprocessing_context
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self._epoch_start: dict[str, Any] | None = None  # generator states when the running epoch began
        self._yielded = 0
        self._skip = 0
        self._epochs_completed = 0

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None or (self._iterable and self.batch_size is not None)

    @property
    def _index_sampler(self) -> Any:
        return self.batch_sampler if self.batch_sampler is not None else self.sampler

    def __len__(self) -> int:
        if self._iterable:
            n = len(self.dataset)
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return len(self._index_sampler)

    # --- resumable state -------------------------------------------------------------------
    def _sampler_generator(self) -> Any:
        g = getattr(self.sampler, "generator", None)
        if isinstance(g, xp.random.Generator) and g is not self.generator:
            return g
        return None

    def _current_states(self) -> dict[str, Any]:
        states = {"generator": _generator_state(self.generator)}
        sg = self._sampler_generator()
        if sg is not None:
            states["sampler_generator"] = _generator_state(sg)
        return states

    def state_dict(self) -> dict[str, Any]:
        """The loader's position: generator state(s) and how far the running epoch got.

        Taken between epochs, loading it into a loader over the same data makes the next epoch
        shuffle exactly as the uninterrupted run's next epoch; taken in the middle of an epoch, the
        resumed loader's next iteration yields the rest of that epoch (the batches already consumed
        are skipped without being loaded). Random transforms in the main process draw from
        lamina's global generator, which the checkpoint saves separately
        (``lamina.backend.generator().bit_generator.state``). With ``num_workers > 0`` a resume
        between epochs is exact; a resume in the middle of an epoch gives the same samples in the
        same order, but the workers' random transforms restart from their epoch seeds. The dict
        holds only plain ints, strings and dicts (JSON-friendly).

        Example:
            >>> loader = DataLoader(list(range(6)), batch_size=2, shuffle=True, seed=1)
            >>> _ = list(loader)
            >>> state = loader.state_dict()
            >>> expected = [b.tolist() for b in loader]
            >>> resumed = DataLoader(list(range(6)), batch_size=2, shuffle=True, seed=99)
            >>> resumed.load_state_dict(state)
            >>> [b.tolist() for b in resumed] == expected
            True
        """
        mid = self._epoch_start is not None
        states = dict(self._epoch_start) if mid else self._current_states()
        return {"batches_yielded": self._yielded if mid else 0, "epochs_completed": self._epochs_completed,
                **states}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a position saved by :meth:`state_dict`."""
        missing = {"generator", "batches_yielded"} - set(state_dict)
        if missing:
            raise KeyError(f"DataLoader.load_state_dict: missing keys {sorted(missing)}")
        try:
            self.generator.bit_generator.state = state_dict["generator"]
            sg = self._sampler_generator()
            if sg is not None and "sampler_generator" in state_dict:
                sg.bit_generator.state = state_dict["sampler_generator"]
        except (TypeError, ValueError, KeyError) as e:
            raise ValueError(f"DataLoader.load_state_dict: the generator state does not fit this loader's "
                             f"generator ({type(self.generator.bit_generator).__name__}): {e}") from None
        self._skip = int(state_dict["batches_yielded"])
        self._epochs_completed = int(state_dict.get("epochs_completed", 0))
        self._epoch_start = None
        self._yielded = 0

    # --- iteration -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        self._epoch_start = self._current_states()
        base_seed = int(self.generator.integers(0, 2**62))  # drawn first, as torch does, whatever num_workers
        skip, self._skip = self._skip, 0
        self._yielded = skip
        if self.num_workers == 0:
            batches = self._single_process(skip)
        else:
            batches = self._multi_process(base_seed, skip)
        for batch in batches:
            self._yielded += 1
            yield batch
        self._epoch_start = None
        self._yielded = 0
        self._epochs_completed += 1

    def _index_iter(self, skip: int) -> Iterator[Any]:
        it = iter(self._index_sampler)
        for _ in range(skip):
            next(it, None)
        return it

    def _single_process(self, skip: int) -> Iterator[Any]:
        if self._iterable:
            batches = _w.iter_batches(iter(self.dataset), self.collate_fn, self.batch_size, self.drop_last)
            for k, b in enumerate(batches):
                if k >= skip:
                    yield b
            return
        for indices in self._index_iter(skip):
            if self._auto_collation:
                yield self.collate_fn([self.dataset[i] for i in indices])
            else:
                yield self.collate_fn(self.dataset[indices])

    def _context(self) -> Any:
        ctx = self.multiprocessing_context
        if ctx is None:
            methods = multiprocessing.get_all_start_methods()
            return multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        if isinstance(ctx, str):
            return multiprocessing.get_context(ctx)
        return ctx

    def _start_workers(self, base_seed: int) -> tuple[list[Any], list[Any], Any]:
        ctx = self._context()
        result_queue = ctx.Queue()
        workers, index_queues = [], []
        for wid in range(self.num_workers):
            iq = ctx.Queue()
            p = ctx.Process(target=_w.worker_loop, daemon=True,
                            args=(self.dataset, iq, result_queue, self.collate_fn, self._auto_collation,
                                  base_seed + wid, wid, self.num_workers, self.worker_init_fn, self._iterable,
                                  self.batch_size, self.drop_last))
            p.start()
            workers.append(p)
            index_queues.append(iq)
        return workers, index_queues, result_queue

    def _multi_process(self, base_seed: int, skip: int) -> Iterator[Any]:
        workers, index_queues, result_queue = self._start_workers(base_seed)
        try:
            if self._iterable:
                yield from self._gather_iterable(workers, result_queue, skip)
            else:
                yield from self._gather_map(workers, index_queues, result_queue, skip)
        finally:
            for iq in index_queues:
                iq.put(None)
            for p in workers:
                p.join(timeout=2.0)
                if p.is_alive():
                    p.terminate()
                    p.join()
            for q in [*index_queues, result_queue]:
                q.cancel_join_thread()
                q.close()

    def _gather_map(self, workers: list[Any], index_queues: list[Any], result_queue: Any, skip: int) -> Iterator[Any]:
        tasks = self._index_iter(skip)
        sent = received = 0
        done: dict[int, Any] = {}
        exhausted = False

        def send() -> None:
            nonlocal sent, exhausted
            indices = next(tasks, None)
            if indices is None:
                exhausted = True
                return
            index_queues[sent % len(workers)].put((sent, indices))
            sent += 1

        for _ in range(self.prefetch_factor * len(workers)):
            if not exhausted:
                send()
        while received < sent:
            while received not in done:
                k, _wid, data, err = _w.get_result(result_queue, workers, self.timeout)
                if err is not None:
                    err.reraise()
                done[k] = data
            data = done.pop(received)
            received += 1
            if not exhausted:
                send()
            yield _w.unpack(data)

    def _gather_iterable(self, workers: list[Any], result_queue: Any, skip: int) -> Iterator[Any]:
        # batches are yielded round-robin over the workers (worker 0's first, worker 1's first, ...)
        buffers: list[dict[int, Any]] = [{} for _ in workers]
        next_k = [0] * len(workers)
        active = list(range(len(workers)))
        turn, count = 0, 0
        while active:
            wid = active[turn % len(active)]
            while next_k[wid] not in buffers[wid]:
                k, w, data, err = _w.get_result(result_queue, workers, self.timeout)
                if err is not None:
                    err.reraise()
                buffers[w][k] = data
            data = buffers[wid].pop(next_k[wid])
            next_k[wid] += 1
            if data is StopIteration:
                active.remove(wid)
                continue
            turn += 1
            if count >= skip:
                yield _w.unpack(data)
            count += 1
