"""``DistributedDataParallel``: one model replica per rank, gradients averaged in flat buckets.

How it works (torch's design, on MPI):

- at wrap time every parameter and buffer is broadcast from rank 0, so all replicas start equal;
- parameters are grouped, in reverse registration order (roughly the order backward produces
  their gradients), into flat buckets of at most ``bucket_cap_mb`` megabytes of one dtype;
- a post-accumulate-grad hook on each parameter counts the gradients that are ready; when a
  bucket is complete its gradients are copied into its flat buffer, divided by the world size,
  and a non-blocking allreduce (``MPI_Iallreduce``) starts while backward goes on with the
  layers below; the hook of the last gradient waits for all buckets and writes the averages
  back into ``.grad``.

Every parameter that requires grad must receive a gradient in each synchronised backward (as
torch's default ``find_unused_parameters=False``); a forward after a backward that left a
bucket incomplete raises and names the parameters that got no gradient.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ... import backend, distributed
from ...autograd.grad_mode import is_grad_enabled
from ...autograd.tensor import Tensor
from ..modules.module import Module

__all__ = ["DistributedDataParallel"]

xp = backend.xp


class _Bucket:
    """Parameters whose gradients travel in one flat buffer."""

    def __init__(self, params: list[tuple[str, Any]]) -> None:
        self.names = [n for n, _ in params]
        self.params = [p for _, p in params]
        sizes = [int(p.array.size) for p in self.params]
        self.offsets = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
        self.flat = xp.zeros(self.offsets[-1], dtype=self.params[0].array.dtype)
        self.ready: set[int] = set()
        self.request: Any = None

    @property
    def nbytes(self) -> int:
        return int(self.flat.nbytes)


class DistributedDataParallel(Module):
    """Data parallelism across ranks: each rank runs ``module`` on its share of the batch and the
    gradients are averaged over the ranks during backward, so an optimizer step sees the gradient
    of the whole batch (for a loss that is a mean over the batch).

    Matches ``torch.nn.parallel.DistributedDataParallel`` for CPU replicas on the MPI backend.
    ``device_ids``, ``output_device``, ``dim``, ``check_reduction``, ``gradient_as_bucket_view`` and
    ``static_graph`` are accepted for torch's signature and change nothing (one replica per process,
    on the CPU; gradients are copied into the buckets and back); ``find_unused_parameters=True`` is
    not supported.

    Args:
        module: the model replica (the same architecture on every rank).
        broadcast_buffers: copy rank 0's buffers (batch-norm running statistics) to every rank at
            the start of each forward.
        process_group: only None (all ranks).
        bucket_cap_mb: largest size of a gradient bucket, in megabytes (2**20 bytes). A small
            value gives a bucket per parameter; a large one, one bucket (None: 25).
        find_unused_parameters: must be False.

    Example (under ``mpiexec -n 2``, after ``lamina.distributed.init_process_group("mpi")``)::

        ddp = DistributedDataParallel(model)
        loss_fn(ddp(x_of_this_rank), y_of_this_rank).backward()   # .grad is the average
        optimizer.step()
    """

    def __init__(self, module: Module, device_ids: Any = None, output_device: Any = None, dim: int = 0,
                 broadcast_buffers: bool = True, process_group: Any = None, bucket_cap_mb: float | None = 25,
                 find_unused_parameters: bool = False, check_reduction: bool = False,
                 gradient_as_bucket_view: bool = False, static_graph: bool = False) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError("DistributedDataParallel: module should be a lamina.nn.Module, "
                            f"got {type(module).__name__}")
        if find_unused_parameters:
            raise ValueError("DistributedDataParallel: find_unused_parameters=True is not supported in lamina; "
                             "every parameter that requires grad must take part in the loss")
        if process_group is not None:
            raise ValueError("DistributedDataParallel: lamina has only the default process group; "
                             f"got process_group={process_group!r}")
        if not distributed.is_initialized():
            raise RuntimeError("DistributedDataParallel: call lamina.distributed.init_process_group('mpi') first")
        cap = 25.0 if bucket_cap_mb is None else float(bucket_cap_mb)
        if not cap > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb should be positive, got {bucket_cap_mb!r}")
        self.module = module
        self.broadcast_buffers = bool(broadcast_buffers)
        self.bucket_cap_mb = cap
        self.require_backward_grad_sync = True
        self.world_size = distributed.get_world_size()
        self._sync_pass = False
        self._sync_module_states()
        self._buckets = self._make_buckets(int(cap * 2 ** 20))
        self._where: dict[int, tuple[int, int]] = {}
        for b, bucket in enumerate(self._buckets):
            for i, p in enumerate(bucket.params):
                self._where[id(p)] = (b, i)
                p.register_post_accumulate_grad_hook(self._grad_ready)
        self._launched = 0

    def _sync_module_states(self) -> None:
        for t in list(self.module.parameters()) + list(self.module.buffers()):
            distributed.broadcast(t, src=0)

    def _make_buckets(self, cap_bytes: int) -> list[_Bucket]:
        params = [(n, p) for n, p in self.module.named_parameters() if p.requires_grad]
        buckets: list[_Bucket] = []
        open_: dict[Any, tuple[list[tuple[str, Any]], int]] = {}  # dtype -> (members, bytes)
        for name, p in reversed(params):
            members, size = open_.get(p.array.dtype, ([], 0))
            if members and size + p.array.nbytes > cap_bytes:
                buckets.append(_Bucket(members))
                members, size = [], 0
            members.append((name, p))
            open_[p.array.dtype] = (members, size + p.array.nbytes)
        buckets.extend(_Bucket(m) for m, _ in open_.values() if m)
        return buckets

    @property
    def bucket_sizes(self) -> list[int]:
        """The bytes of each gradient bucket, in the order they are reduced (a lamina extension)."""
        return [b.nbytes for b in self._buckets]

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Inside the block, backward only accumulates local gradients (no communication); the
        first synchronised backward after it averages the accumulated gradients."""
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        self._check_previous_reduction()
        if self.broadcast_buffers and self.world_size > 1:
            for t in self.module.buffers():
                distributed.broadcast(t, src=0)
        self._sync_pass = is_grad_enabled() and self.require_backward_grad_sync
        return self.module(*args, **kwargs)

    def _check_previous_reduction(self) -> None:
        started = [b for b in self._buckets if b.ready]
        if not started:
            return
        missing = [n for b in self._buckets for i, n in enumerate(b.names) if i not in b.ready]
        for b in self._buckets:  # finish what was sent, so no request is left behind
            if b.request is not None:
                b.request.Wait()
            b.ready.clear()
            b.request = None
        self._launched = 0
        raise RuntimeError("DistributedDataParallel: the previous backward produced no gradient for parameters "
                           f"{missing}; every parameter that requires grad must take part in the loss "
                           "(find_unused_parameters is not supported)")

    def _grad_ready(self, p: Tensor) -> None:
        if not self._sync_pass:
            return
        b, i = self._where[id(p)]
        bucket = self._buckets[b]
        bucket.ready.add(i)
        if len(bucket.ready) < len(bucket.params):
            self._progress()
            return
        for j, q in enumerate(bucket.params):
            bucket.flat[bucket.offsets[j]:bucket.offsets[j + 1]] = q.grad.array.reshape(-1)
        # divide before summing, as torch does, so the sum stays in range
        bucket.flat /= self.world_size
        MPI = distributed.collectives._state["MPI"]
        comm = distributed.collectives._state["comm"]
        bucket.request = comm.Iallreduce(MPI.IN_PLACE, bucket.flat, MPI.SUM)
        self._launched += 1
        if self._launched == len(self._buckets):
            self._finish()

    def _progress(self) -> None:
        # MPICH advances a non-blocking collective only inside MPI calls: a Test per ready gradient
        for bucket in self._buckets:
            if bucket.request is not None:
                bucket.request.Test()

    def _finish(self) -> None:
        for bucket in self._buckets:
            bucket.request.Wait()
            for j, q in enumerate(bucket.params):
                q.grad.array[...] = bucket.flat[bucket.offsets[j]:bucket.offsets[j + 1]].reshape(q.grad.shape)
                q.grad._bump_version()
            bucket.ready.clear()
            bucket.request = None
        self._launched = 0
