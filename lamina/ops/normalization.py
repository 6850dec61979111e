"""Normalization: batch, layer, group, instance, local response and local contrast.

Every layer-type normalization is the same primitive, :class:`Normalize` — standardize over
some axes, ``xhat = (x − mean)/√(var + eps)`` with the biased variance — followed by a
per-channel (or elementwise) affine map composed from ordinary ops. ``Normalize``'s backward
runs a fused NumPy kernel under plain ``backward()``; when a graph is being built
(``create_graph=True``) it is written with lamina ops, recomputing the statistics from ``x``,
so second derivatives are exact.

At the dtype's extremes (see ``kernels/norm.py``): a group whose variance overflows the dtype
(``|x − mean|`` beyond ``√max``, about 1.8e19 in float32) gives NaN — not the zeros that
``1/√inf`` would — and a constant group gives exactly 0 even at 3e38. torch agrees on NaN/inf
inputs; on overflow it gives NaN for some sizes and zeros for others, and garbage for constant
channels far from 0, so lamina keeps one rule.

NOTE (biased vs unbiased): batch statistics use the biased variance (÷M) to normalize, but
the running variance is updated with the unbiased one (÷(M−1)) — torch's convention.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .. import backend
from ..autograd.function import Context, Function
from ..autograd.grad_mode import is_grad_enabled, no_grad
from ..autograd.tensor import Tensor
from .common import check_tensor, const, xp_of
from .kernels import norm as K
from .kernels.norm_select import explain as explain_norm
from .kernels.norm_select import force as force_norm
from .pad import pad
from .reduce import SqrtZeroGradAtZero
from .selection import maximum

__all__ = ["Normalize", "BatchNormTrain", "normalize", "batch_norm", "instance_norm", "layer_norm", "group_norm",
           "local_response_norm", "local_contrast_norm", "gaussian_window", "explain_norm", "force_norm"]

xp = backend.xp


class Normalize(Function):
    """``xhat`` of ``x`` over ``axes``; the batch mean and biased variance go to ``box``."""

    @staticmethod
    def forward(ctx: Context, x: Any, axes: tuple[int, ...], eps: float, box: dict[str, Any]) -> Any:
        xhat, mean, var, r = K.normalize_forward(x, axes, eps)
        box["mean"], box["var"] = mean, var
        ctx.axes, ctx.eps = axes, eps
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(x, xhat)  # xhat is the output: an in-place change to it is caught
            ctx.r = r
        return xhat

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        x, xhat = ctx.saved_tensors
        if not is_grad_enabled():  # plain backward: the fused kernel on saved arrays
            return const(K.normalize_backward(g.array, xhat.array, ctx.r, ctx.axes))
        axes = ctx.axes
        d = x - x.mean(axes, keepdim=True)
        r = ((d * d).mean(axes, keepdim=True) + ctx.eps).rsqrt()
        xh = d * r
        return r * (g - g.mean(axes, keepdim=True) - xh * (g * xh).mean(axes, keepdim=True))


class BatchNormTrain(Function):
    """Training-mode batch norm with the affine map fused in: ``y = (x − mean)·r·w + b`` over
    every axis but the channels (fewer passes over the data than op-by-op composition)."""

    @staticmethod
    def forward(ctx: Context, x: Any, w: Any, b: Any, eps: float, box: dict[str, Any]) -> Any:
        y, mean, var, r, d = K.batch_norm_forward(x, w, b, eps)
        box["mean"], box["var"] = mean, var
        ctx.eps = eps
        if any(ctx.needs_input_grad):
            ctx.save_for_backward(x, w)
            ctx.mean, ctx.r, ctx.d = mean, r, d
        return y

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> tuple[Tensor | None, ...]:
        x, w = ctx.saved_tensors
        need = ctx.needs_input_grad
        if not is_grad_enabled():  # plain backward: the fused kernel on saved arrays
            grads = K.batch_norm_backward(gy.array, x.array, ctx.mean, ctx.r, None if w is None else w.array, need,
                                          d=ctx.d)
            return tuple(None if g is None else const(g) for g in grads)
        axes = (0,) + tuple(range(2, x.ndim))
        shape = _channel_shape(x)
        d = x - x.mean(axes, keepdim=True)
        r = ((d * d).mean(axes, keepdim=True) + ctx.eps).rsqrt()
        xh = d * r
        gxh = gy if w is None else gy * w.reshape(shape)
        gx = gw = gb = None
        if need[0]:
            gx = r * (gxh - gxh.mean(axes, keepdim=True) - xh * (gxh * xh).mean(axes, keepdim=True))
        if need[1]:
            gw = (gy * xh).sum(axes)
        if need[2]:
            gb = gy.sum(axes)
        return gx, gw, gb


def normalize(x: Tensor, axes: tuple[int, ...], eps: float) -> tuple[Tensor, Any, Any]:
    """``(xhat, mean, var)``: ``x`` standardized over ``axes``, with the statistics as arrays."""
    box: dict[str, Any] = {}
    return Normalize.apply(x, axes=tuple(axes), eps=float(eps), box=box), box["mean"], box["var"]


def _channel_shape(x: Tensor) -> tuple[int, ...]:
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def _affine(y: Tensor, weight: Tensor | None, bias: Tensor | None, shape: tuple[int, ...]) -> Tensor:
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def _check_channels(op: str, x: Tensor, name: str, t: Tensor | None) -> None:
    if t is not None and tuple(t.shape) != (x.shape[1],):
        raise ValueError(f"{op}: {name} should have shape ({x.shape[1]},) for an input with {x.shape[1]} "
                         f"channels (input shape {tuple(x.shape)}), got {tuple(t.shape)}")


def _update(running: Tensor | None, stat: Any, momentum: float) -> None:
    if running is None:
        return
    a = running.array
    a *= 1.0 - momentum
    a += momentum * stat.reshape(a.shape).astype(a.dtype)
    running._bump_version()


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalization (``torch.nn.functional.batch_norm``).

    In training, each channel is standardized with the batch mean and *biased* variance over
    ``(N, *spatial)``, and the running statistics (if given) move in place:
    ``running = (1 − momentum)·running + momentum·batch_stat`` with the *unbiased* variance.
    Otherwise the running statistics normalize.

    Args:
        input: ``(N, C)`` or ``(N, C, *spatial)``.
        running_mean, running_var: ``(C,)`` buffers, or None.
        weight, bias: the ``(C,)`` affine parameters γ, β, or None.
        training: use batch statistics (and update the running ones).
        momentum: the running-average factor.
        eps: added to the variance.

    Example:
        >>> import lamina
        >>> y = batch_norm(lamina.tensor([[1.], [3.]]), None, None, training=True)
        >>> [round(v, 4) for v in y.reshape(-1).tolist()]
        [-1.0, 1.0]
    """
    op = "batch_norm"
    check_tensor(input, op)
    if input.ndim < 2:
        raise ValueError(f"{op}: expected an input of shape (N, C, *), got {tuple(input.shape)}")
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        _check_channels(op, input, name, t)
    shape = _channel_shape(input)
    if training:
        axes = (0,) + tuple(range(2, input.ndim))
        m = math.prod(input.shape[a] for a in axes)
        if m == 0:  # an empty batch: an empty output, running statistics left as they are (as torch)
            y = input
            if weight is not None:
                y = y * weight.reshape(shape)
            return y + bias.reshape(shape) if bias is not None else y * 1
        if m == 1:
            raise ValueError(f"{op}: expected more than 1 value per channel when training, got input "
                             f"of shape {tuple(input.shape)}")
        for name, t in (("weight", weight), ("bias", bias)):
            if t is not None and t.dtype != input.dtype:
                raise TypeError(f"{op}: {name} has dtype {t.dtype} but input has {input.dtype}")
        box: dict[str, Any] = {}
        y = BatchNormTrain.apply(input, weight, bias, eps=float(eps), box=box)
        _update(running_mean, box["mean"], momentum)
        _update(running_var, box["var"] * (m / (m - 1)), momentum)
        return y
    if running_mean is None or running_var is None:
        raise ValueError(f"{op}: running_mean and running_var must be given when training=False")
    scale = (running_var.detach() + eps).rsqrt()
    if weight is not None:
        scale = scale * weight
    shift = -running_mean.detach() * scale
    if bias is not None:
        shift = shift + bias
    return input * scale.reshape(shape) + shift.reshape(shape)


def instance_norm(input: Tensor, running_mean: Tensor | None = None, running_var: Tensor | None = None,
                  weight: Tensor | None = None, bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Instance normalization (``torch.nn.functional.instance_norm``): each ``(n, c)`` plane
    standardized over its own spatial positions. The running statistics (if given) move
    towards the batch average of the per-instance mean and unbiased variance.

    Example:
        >>> import lamina
        >>> [round(v, 4) for v in instance_norm(lamina.tensor([[[1., 3.]]])).reshape(-1).tolist()]
        [-1.0, 1.0]
    """
    op = "instance_norm"
    check_tensor(input, op)
    if input.ndim < 3:
        raise ValueError(f"{op}: expected an input of shape (N, C, *spatial), got {tuple(input.shape)}")
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        _check_channels(op, input, name, t)
    shape = _channel_shape(input)
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError(f"{op}: expected running_mean and running_var when use_input_stats=False")
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    axes = tuple(range(2, input.ndim))
    m = math.prod(input.shape[2:])
    if m <= 1:
        raise ValueError(f"{op}: expected more than 1 spatial element when training, got input of shape "
                         f"{tuple(input.shape)}")
    y, mean, var = normalize(input, axes, eps)
    if running_mean is not None:
        _update(running_mean, mean.mean(0), momentum)
    if running_var is not None:
        _update(running_var, (var * (m / (m - 1))).mean(0), momentum)
    return _affine(y, weight, bias, shape)


def layer_norm(input: Tensor, normalized_shape: Sequence[int] | int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Layer normalization over the last ``len(normalized_shape)`` dims
    (``torch.nn.functional.layer_norm``), then ``· weight + bias`` elementwise.

    Example:
        >>> import lamina
        >>> [round(v, 4) for v in layer_norm(lamina.tensor([[0., 2.], [5., 5.]]), (2,)).reshape(-1).tolist()]
        [-1.0, 1.0, 0.0, 0.0]
    """
    op = "layer_norm"
    check_tensor(input, op)
    ns = (int(normalized_shape),) if isinstance(normalized_shape, (int, xp.integer)) else tuple(normalized_shape)
    k = len(ns)
    if k == 0 or input.ndim < k or tuple(input.shape[input.ndim - k:]) != ns:
        raise ValueError(f"{op}: input of shape {tuple(input.shape)} does not end in normalized_shape {ns}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != ns:
            raise ValueError(f"{op}: {name} should have shape {ns}, got {tuple(t.shape)}")
    y, _, _ = normalize(input, tuple(range(input.ndim - k, input.ndim)), eps)
    return _affine(y, weight, bias, ns)


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Group normalization (``torch.nn.functional.group_norm``): the channels split into
    ``num_groups`` groups, each ``(n, group)`` standardized over its channels and positions.

    Example:
        >>> import lamina
        >>> group_norm(lamina.randn(2, 6, 4, 4), 3).shape
        (2, 6, 4, 4)
    """
    op = "group_norm"
    check_tensor(input, op)
    if input.ndim < 2:
        raise ValueError(f"{op}: expected an input of shape (N, C, *), got {tuple(input.shape)}")
    c = input.shape[1]
    if num_groups <= 0 or c % num_groups:
        raise ValueError(f"{op}: the number of channels ({c}) must be divisible by num_groups ({num_groups})")
    for name, t in (("weight", weight), ("bias", bias)):
        _check_channels(op, input, name, t)
    n = input.shape[0]
    per_group = (c // num_groups) * math.prod(input.shape[2:])
    y, _, _ = normalize(input.reshape(n, num_groups, per_group), (2,), eps)
    return _affine(y.reshape(*input.shape), weight, bias, _channel_shape(input))


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Tensor:
    """Local response normalization across channels (``torch.nn.functional.local_response_norm``):
    ``y_c = x_c / (k + α/n · Σ_{c' near c} x_{c'}²)^β`` over a window of ``n = size`` channels
    (zero beyond the ends), as in AlexNet.

    Example:
        >>> import lamina
        >>> local_response_norm(lamina.ones(1, 1, 1), 1, alpha=1., beta=1., k=1.).item()
        0.5
    """
    op = "local_response_norm"
    check_tensor(input, op)
    if input.ndim < 3:
        raise ValueError(f"{op}: expected a 3-D or higher input (N, C, *), got shape {tuple(input.shape)}")
    if size <= 0:
        raise ValueError(f"{op}: size must be positive, got {size}")
    c = input.shape[1]
    sq = pad(input * input, [0, 0] * (input.ndim - 2) + [size // 2, (size - 1) // 2])
    acc = sq[:, 0:c]
    for i in range(1, size):
        acc = acc + sq[:, i:i + c]
    return input / (acc * (alpha / size) + k) ** beta


def gaussian_window(size: int, sigma: float, dtype: Any = None) -> Any:
    """A 1-D Gaussian of ``size`` taps (centred, odd ``size``), summing to 1."""
    t = xp.arange(size) - (size - 1) / 2
    g = xp.exp(-0.5 * (t / sigma) ** 2)
    return (g / g.sum()).astype(dtype or backend.get_default_dtype())


def _blur(x: Tensor, g: Any) -> Tensor:
    """Separable correlation of the last two dims with ``g ⊗ g``, zero padding, same size."""
    r = len(g) // 2
    h, w = x.shape[-2:]
    xp_ = pad(x, [r, r, r, r])
    rows = xp_[..., 0:h, :] * float(g[0])
    for i in range(1, len(g)):
        rows = rows + xp_[..., i:i + h, :] * float(g[i])
    out = rows[..., 0:w] * float(g[0])
    for i in range(1, len(g)):
        out = out + rows[..., i:i + w] * float(g[i])
    return out


def local_contrast_norm(input: Tensor, kernel_size: int = 9, sigma: float = 2.0, eps: float = 1e-4) -> Tensor:
    """Local contrast normalization (Jarrett et al. 2009) — lamina's own, no torch equivalent.

    With ``G`` the ``kernel_size × kernel_size`` Gaussian window (std ``sigma``) and means taken
    over the ``C`` channels and the window (zero outside the image, divided by the window's
    mass inside the image so border pixels get a true weighted mean):

    - subtractive: ``v = x − mean_G(x)``;
    - divisive: ``σ = √mean_G(v²)``, ``y = v / max(c, σ, eps)`` with ``c`` the mean of ``σ``
      over each sample's positions.

    Args:
        input: ``(N, C, H, W)`` or ``(C, H, W)``.
        kernel_size: the window's width (odd).
        sigma: the Gaussian's standard deviation, in pixels.
        eps: the floor of the divisor.

    Example:
        >>> import lamina
        >>> local_contrast_norm(lamina.ones(1, 2, 5, 5)).abs().max().item()
        0.0
    """
    op = "local_contrast_norm"
    check_tensor(input, op)
    if input.ndim not in (3, 4):
        raise ValueError(f"{op}: expected (N, C, H, W) or (C, H, W), got shape {tuple(input.shape)}")
    if kernel_size <= 0 or kernel_size % 2 == 0:
        raise ValueError(f"{op}: kernel_size must be odd and positive, got {kernel_size}")
    if sigma <= 0:
        raise ValueError(f"{op}: sigma must be positive, got {sigma}")
    x = input.unsqueeze(0) if input.ndim == 3 else input
    g = gaussian_window(kernel_size, sigma, x.dtype)
    with no_grad():
        mass = _blur(const(xp_of(x).ones((1, 1) + tuple(x.shape[-2:]), dtype=x.dtype)), g)
    v = x - _blur(x.mean(1, keepdim=True), g) / mass
    s = SqrtZeroGradAtZero.apply(_blur((v * v).mean(1, keepdim=True), g) / mass)
    c = s.mean((2, 3), keepdim=True)
    y = v / maximum(maximum(s, c), const(xp_of(x).asarray(eps, dtype=x.dtype)))
    return y.squeeze(0) if input.ndim == 3 else y
