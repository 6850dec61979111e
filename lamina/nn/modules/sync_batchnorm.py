"""``SyncBatchNorm``: batch normalization whose statistics span the batch of every rank (torch's)."""

from __future__ import annotations

from typing import Any

from ... import backend, distributed
from ...autograd.function import Context, Function
from ...autograd.grad_mode import no_grad
from ...autograd.tensor import Tensor
from .module import Module
from .normalization import _BatchNorm

__all__ = ["SyncBatchNorm"]

xp = backend.xp


class _AllReduceSum(Function):
    """``y = Σ_ranks x``, the same on every rank. Each rank's ``x`` reaches every rank's ``y``, so
    the gradient of ``x`` is the sum over the ranks of ``y``'s gradients: again an all-reduce."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        out = Tensor._wrap(xp.array(x, copy=True))
        distributed.all_reduce(out)
        return out.array

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        return _AllReduceSum.apply(gy)


class SyncBatchNorm(_BatchNorm):
    """Batch normalization over ``(N, C, *)`` whose mean and variance, in training, are those of
    the whole batch over all ranks: N ranks with B/N samples each normalize as one process with B.

    Matches ``torch.nn.SyncBatchNorm`` on the MPI backend (the default process group only). In
    eval mode, or in a single process, it is :class:`BatchNorm2d` (running statistics, resp. the
    local batch). The statistics are sums all-reduced across ranks, composed from differentiable
    operations, so backward all-reduces their gradients by itself.

    Args:
        num_features: ``C``.
        eps, momentum, affine, track_running_stats: as :class:`BatchNorm2d`.
        process_group: only None (all ranks).

    Shape:
        ``(N, C, *)`` → the same.
    """

    _ranks = (2, 3, 4, 5)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group: Any = None, device: Any = None,
                 dtype: Any = None) -> None:
        if process_group is not None:
            raise ValueError(f"SyncBatchNorm: lamina has only the default process group; got {process_group!r}")
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)

    def forward(self, input: Tensor) -> Tensor:
        if not self.training or not distributed.is_initialized() or distributed.get_world_size() == 1:
            return super().forward(input)
        self._check_input_dim(input)
        c = input.shape[1]
        dims = (0,) + tuple(range(2, input.ndim))
        shape = (1, c) + (1,) * (input.ndim - 2)
        count = Tensor._wrap(xp.array([input.array.size // c], dtype=xp.float64))
        distributed.all_reduce(count)
        total = float(count.array[0])
        if total <= 1:
            raise ValueError(f"SyncBatchNorm: expected more than 1 value per channel over all ranks when training, "
                             f"got input of shape {tuple(input.shape)} on this rank and {int(total)} values in all")
        mean = _AllReduceSum.apply(input.sum(dim=dims)) / total
        d = input - mean.reshape(shape)
        var = _AllReduceSum.apply((d * d).sum(dim=dims)) / total  # biased: normalizes the batch
        y = d / (var.reshape(shape) + self.eps).sqrt()
        if self.weight is not None:
            y = y * self.weight.reshape(shape)
        if self.bias is not None:
            y = y + self.bias.reshape(shape)
        if self.track_running_stats:
            with no_grad():
                self.num_batches_tracked.array += 1
                self.num_batches_tracked._bump_version()
                f = 1.0 / float(self.num_batches_tracked.item()) if self.momentum is None else self.momentum
                rm, rv = self.running_mean.array, self.running_var.array
                rm[...] = (1 - f) * rm + f * mean.array.astype(rm.dtype)
                # the running variance is unbiased, as torch's
                rv[...] = (1 - f) * rv + f * (var.array * (total / (total - 1))).astype(rv.dtype)
                self.running_mean._bump_version()
                self.running_var._bump_version()
        return y

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group: Any = None) -> Module:
        """``module`` with every ``BatchNorm*d`` in it replaced by a ``SyncBatchNorm`` holding the same
        parameters and running statistics (a bare batch-norm layer is returned converted)."""
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            out = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats,
                      process_group)
            for name in ("weight", "bias"):
                if getattr(module, name, None) is not None:
                    setattr(out, name, getattr(module, name))
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                if getattr(module, name, None) is not None:
                    setattr(out, name, getattr(module, name))
            out.train(module.training)
            return out
        for name, child in list(module.named_children()):
            module.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return module
