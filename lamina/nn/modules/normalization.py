"""Normalization layers: ``BatchNorm1d/2d/3d``, ``InstanceNorm1d/2d/3d``, ``LayerNorm``,
``GroupNorm``, ``LocalResponseNorm`` (torch's) and ``LocalContrastNorm`` (lamina's)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ... import backend
from ...autograd.grad_mode import no_grad
from ...autograd.tensor import Tensor
from .. import functional as F
from .. import init
from ..parameter import Parameter
from .module import Module

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
           "LayerNorm", "GroupNorm", "LocalResponseNorm", "LocalContrastNorm"]

xp = backend.xp


def _tensor(shape: tuple[int, ...], fill: float, dtype: Any) -> Tensor:
    return Tensor._wrap(xp.full(shape, fill, dtype=backend.to_dtype(dtype)))


def _make_affine(module: Module, shape: tuple[int, ...], enabled: bool, bias: bool, dtype: Any) -> None:
    """Register γ (ones) and β (zeros) of ``shape`` on ``module``, or None for each one that is off."""
    if enabled:
        module.weight = Parameter(_tensor(shape, 1.0, dtype))
    else:
        module.register_parameter("weight", None)
    if enabled and bias:
        module.bias = Parameter(_tensor(shape, 0.0, dtype))
    else:
        module.register_parameter("bias", None)


def _reset_affine(module: Module) -> None:
    """γ back to 1 and β to 0 (where present)."""
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)


class _NormBase(Module):
    """Parameters and running statistics shared by batch and instance normalization."""

    _ranks: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device: Any = None, dtype: Any = None, *,
                 bias: bool = True) -> None:
        super().__init__()
        if device is not None:
            backend.to_device(device)
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        _make_affine(self, (num_features,), affine, bias, dtype)
        if track_running_stats:
            self.register_buffer("running_mean", _tensor((num_features,), 0.0, dtype))
            self.register_buffer("running_var", _tensor((num_features,), 1.0, dtype))
            self.register_buffer("num_batches_tracked", Tensor._wrap(xp.zeros((), dtype=xp.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """Running mean to 0, running variance to 1, the batch count to 0."""
        if self.track_running_stats:
            with no_grad():
                self.running_mean.zero_()
                self.running_var.fill_(1.0)
                self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        """Reset the running statistics, and γ to 1 and β to 0."""
        self.reset_running_stats()
        _reset_affine(self)

    def _check_input_dim(self, input: Tensor) -> None:
        if input.ndim not in self._ranks:
            want = " or ".join(f"{r}D" for r in self._ranks)
            raise ValueError(f"{type(self).__name__}: expected {want} input, got {input.ndim}D input of shape "
                             f"{tuple(input.shape)}")

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.array += 1
            self.num_batches_tracked._bump_version()
            # momentum=None: the cumulative average of all batches seen so far
            factor = 1.0 / float(self.num_batches_tracked.item()) if self.momentum is None else self.momentum
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        use_running = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if use_running else None,
                            self.running_var if use_running else None, self.weight, self.bias,
                            bn_training, factor, self.eps)


class BatchNorm2d(_BatchNorm):
    """Batch normalization over ``(N, C, H, W)`` (``torch.nn.BatchNorm2d``).

    In training each channel is standardized with the batch mean and biased variance over
    ``(N, H, W)``, then scaled by γ (``weight``) and shifted by β (``bias``); the running
    statistics follow ``running = (1 − momentum)·running + momentum·batch`` (unbiased
    variance), or the cumulative average when ``momentum=None``. In eval mode the running
    statistics normalize.

    Args:
        num_features: ``C``.
        eps: added to the variance.
        momentum: the running-average factor, or None for a cumulative average.
        affine: learn γ and β.
        track_running_stats: keep running statistics (else batch statistics also in eval).
        bias: learn β (keyword-only, as torch's).

    Shape:
        ``(N, C, H, W)`` → the same.

    Example:
        >>> import lamina
        >>> bn = lamina.nn.BatchNorm2d(3)
        >>> bn(lamina.randn(4, 3, 5, 5)).shape
        (4, 3, 5, 5)
        >>> int(bn.num_batches_tracked)
        1
    """

    _ranks = (4,)


class BatchNorm1d(_BatchNorm):
    """Batch normalization over ``(N, C)`` or ``(N, C, L)`` (``torch.nn.BatchNorm1d``); see
    :class:`BatchNorm2d`."""

    _ranks = (2, 3)


class BatchNorm3d(_BatchNorm):
    """Batch normalization over ``(N, C, D, H, W)`` (``torch.nn.BatchNorm3d``); see :class:`BatchNorm2d`."""

    _ranks = (5,)


class _InstanceNorm(_NormBase):
    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = False,
                 track_running_stats: bool = False, device: Any = None, dtype: Any = None, *,
                 bias: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        unbatched = input.ndim == self._ranks[0]
        x = input.unsqueeze(0) if unbatched else input
        if x.shape[1] != self.num_features and self.affine:
            raise ValueError(f"{type(self).__name__}: expected input with {self.num_features} channels, got "
                             f"{x.shape[1]} (input shape {tuple(input.shape)})")
        y = F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.training or not self.track_running_stats,
                            self.momentum if self.momentum is not None else 0.0, self.eps)
        return y.squeeze(0) if unbatched else y


class InstanceNorm2d(_InstanceNorm):
    """Instance normalization (``torch.nn.InstanceNorm2d``): each ``(n, c)`` plane standardized
    over its ``H × W`` positions; no affine map and no running statistics by default.

    Shape:
        ``(N, C, H, W)`` or ``(C, H, W)`` → the same.

    Example:
        >>> import lamina
        >>> lamina.nn.InstanceNorm2d(3)(lamina.randn(2, 3, 4, 4)).shape
        (2, 3, 4, 4)
    """

    _ranks = (3, 4)


class InstanceNorm1d(_InstanceNorm):
    """Instance normalization over ``(N, C, L)`` or ``(C, L)`` (``torch.nn.InstanceNorm1d``)."""

    _ranks = (2, 3)


class InstanceNorm3d(_InstanceNorm):
    """Instance normalization over ``(N, C, D, H, W)`` or ``(C, D, H, W)`` (``torch.nn.InstanceNorm3d``)."""

    _ranks = (4, 5)


class LayerNorm(Module):
    """Layer normalization over the last dims (``torch.nn.LayerNorm``).

    Args:
        normalized_shape: the trailing shape to standardize over.
        eps: added to the variance.
        elementwise_affine: learn a weight (ones) and, if ``bias``, a bias (zeros) of that shape.
        bias: learn the bias.

    Example:
        >>> import lamina
        >>> lamina.nn.LayerNorm(8)(lamina.randn(2, 5, 8)).shape
        (2, 5, 8)
    """

    def __init__(self, normalized_shape: Sequence[int] | int, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        ns = (int(normalized_shape),) if isinstance(normalized_shape, (int, xp.integer)) else tuple(normalized_shape)
        self.normalized_shape = ns
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        _make_affine(self, ns, elementwise_affine, bias, dtype)

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, input: Tensor) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class GroupNorm(Module):
    """Group normalization (``torch.nn.GroupNorm``): channels in ``num_groups`` groups, each
    standardized per sample over its channels and positions, then a per-channel affine map.

    Example:
        >>> import lamina
        >>> lamina.nn.GroupNorm(2, 4)(lamina.randn(3, 4, 5)).shape
        (3, 4, 5)
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 device: Any = None, dtype: Any = None, *, bias: bool = True) -> None:
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups "
                             f"({num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        _make_affine(self, (num_channels,), affine, bias, dtype)

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, input: Tensor) -> Tensor:
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class LocalResponseNorm(Module):
    """Local response normalization across channels (``torch.nn.LocalResponseNorm``), as in AlexNet.

    Example:
        >>> import lamina
        >>> lamina.nn.LocalResponseNorm(2)(lamina.randn(2, 4, 3, 3)).shape
        (2, 4, 3, 3)
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> None:
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input: Tensor) -> Tensor:
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class LocalContrastNorm(Module):
    """Local contrast normalization (Jarrett et al. 2009) — lamina's own layer, the
    "normalize" stage of the classic conv → ReLU → pool → normalize block; see
    :func:`lamina.nn.functional.local_contrast_norm` for the formulas. No parameters.

    Args:
        kernel_size: width of the Gaussian window (odd).
        sigma: its standard deviation in pixels.
        eps: the floor of the divisor.

    Example:
        >>> import lamina
        >>> lamina.nn.LocalContrastNorm(5, sigma=1.)(lamina.randn(2, 3, 8, 8)).shape
        (2, 3, 8, 8)
    """

    def __init__(self, kernel_size: int = 9, sigma: float = 2.0, eps: float = 1e-4) -> None:
        super().__init__()
        self.kernel_size, self.sigma, self.eps = kernel_size, sigma, eps

    def forward(self, input: Tensor) -> Tensor:
        return F.local_contrast_norm(input, self.kernel_size, self.sigma, self.eps)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, sigma={self.sigma}, eps={self.eps}"
