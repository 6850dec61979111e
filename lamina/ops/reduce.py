"""Reductions and scans: sum, mean, prod, max/min (values and indices), amax/amin,
argmax/argmin, logsumexp, cumsum, and the softmax family built on logsumexp (var and std:
``moments.py``).

``sum``'s backward broadcasts the gradient back (broadcast is sum's adjoint). ``max(dim)`` is a
``gather`` at the argmax, so its gradient goes to the first maximal element, as torch's does;
``amax``/``max()`` share the gradient evenly among ties, as torch's do.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from .. import backend
from ..autograd.function import Context, Function
from ..autograd.grad_mode import is_grad_enabled, no_grad
from ..autograd.tensor import Tensor, register
from .common import check_tensor, const, normalize_dim, normalize_dims, xp_of
from .selection import where
from .shape import broadcast_to, movedim, reshape

__all__ = ["sum", "mean", "prod", "max", "min", "amax",
           "amin", "argmax", "argmin", "logsumexp", "cumsum", "softmax", "log_softmax", "norm"]

xp = backend.xp

return_types_max = namedtuple("max", ["values", "indices"])
return_types_min = namedtuple("min", ["values", "indices"])


def _keepdim_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def _expand_back(gy: Tensor, in_shape: tuple[int, ...], axes: tuple[int, ...]) -> Tensor:
    """Reshape a reduced gradient to keepdim form and broadcast it to the input's shape."""
    return broadcast_to(reshape(gy, _keepdim_shape(in_shape, axes)), in_shape)


class Sum(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, axes: tuple[int, ...], keepdim: bool) -> Any:
        ctx.in_shape, ctx.axes = x.shape, axes
        return xp.sum(x, axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        return _expand_back(gy, ctx.in_shape, ctx.axes)


@register("sum")
def sum(input: Tensor, dim: Any = None, keepdim: bool = False, dtype: Any = None) -> Tensor:  # noqa: A001
    """Sum over ``dim`` (an int, a tuple, or None for all)."""
    check_tensor(input, "sum")
    if dtype is not None:
        input = input.to(dtype)
    axes = normalize_dims(dim, input.ndim, "sum")
    if input.dtype.kind in "biu" and input.dtype != backend.int64:
        input = const(input.array.astype(backend.int64))
    return Sum.apply(input, axes=axes, keepdim=keepdim)


@register("mean")
def mean(input: Tensor, dim: Any = None, keepdim: bool = False, dtype: Any = None) -> Tensor:
    """Arithmetic mean over ``dim``; defined for floating tensors (as torch)."""
    check_tensor(input, "mean")
    if dtype is not None:
        input = input.to(dtype)
    if input.dtype.kind != "f":
        raise RuntimeError(
            f"mean(): could not infer output dtype. Input dtype must be floating point, got {input.dtype}"
        )
    axes = normalize_dims(dim, input.ndim, "mean")
    return Mean.apply(input, axes=axes, keepdim=keepdim)


class Mean(Function):
    """The sum times ``1/n``, one node (torch's ``MeanBackward0/1``); over nothing (``n = 0``) NaN."""

    @staticmethod
    def forward(ctx: Context, x: Any, axes: tuple[int, ...], keepdim: bool) -> Any:
        n = 1
        for a in axes:
            n *= x.shape[a]
        ctx.in_shape, ctx.axes, ctx.scale = x.shape, axes, (1.0 / n if n else float("nan"))
        with xp.errstate(invalid="ignore"):
            return xp.sum(x, axis=axes, keepdims=keepdim) * ctx.scale

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        with xp.errstate(invalid="ignore"):
            return _expand_back(gy, ctx.in_shape, ctx.axes) * ctx.scale


class ProdOthers(Function):
    """``out[i] = ∏_{j≠i} x[j]`` along ``dim``, exact when ``x`` contains zeros.

    Its backward uses itself on an ``n × n`` arrangement, so every order of derivative of
    ``prod`` is exact, zeros included.
    """

    @staticmethod
    def forward(ctx: Context, x: Any, dim: int) -> Any:
        ctx.save_for_backward(x)
        ctx.dim = dim
        xm = xp.moveaxis(x, dim, -1)
        ones = backend.get_array_module(x).ones(xm.shape[:-1] + (1,), dtype=x.dtype)
        left = xp.cumprod(xp.concatenate([ones, xm[..., :-1]], axis=-1), axis=-1)
        right = xp.flip(xp.cumprod(xp.flip(xp.concatenate([xm[..., 1:], ones], axis=-1), -1), axis=-1), -1)
        return xp.moveaxis(left * right, -1, dim)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        d = ctx.dim
        xm = movedim(x, d, -1)  # (..., n)
        g = movedim(gy, d, -1)
        n = xm.shape[-1]
        eye = const(xp.eye(n, dtype=bool))
        # y[..., k, j] = x[j] with x[k] replaced by 1; ∏_{j≠i} y[k, j] = ∏_{j∉{i,k}} x[j]
        y = where(eye, 1.0, xm.unsqueeze(-2).expand(*xm.shape[:-1], n, n))
        p2 = ProdOthers.apply(y, dim=y.ndim - 1)
        off = const((~xp.eye(n, dtype=bool)).astype(gy.dtype))
        gx = (g.unsqueeze(-2) * p2 * off).sum(-1)
        return movedim(gx, -1, d)


class Prod(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, dim: int, keepdim: bool) -> Any:
        ctx.save_for_backward(x)
        ctx.dim, ctx.keepdim = dim, keepdim
        return xp.prod(x, axis=dim, keepdims=keepdim)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        g = _expand_back(gy, x.shape, (ctx.dim,))
        return g * ProdOthers.apply(x, dim=ctx.dim)


@register("prod")
def prod(input: Tensor, dim: int | None = None, keepdim: bool = False, dtype: Any = None) -> Tensor:
    """Product over ``dim`` (or all elements); the gradient is exact with zeros present."""
    check_tensor(input, "prod")
    if dtype is not None:
        input = input.to(dtype)
    if dim is None:
        flat = reshape(input, -1)
        if input.ndim == 0:
            return input.clone() if input.requires_grad else input
        return reshape(Prod.apply(flat, dim=0, keepdim=False), ())
    if input.ndim == 0:
        return input
    return Prod.apply(input, dim=normalize_dim(dim, input.ndim, "prod"), keepdim=keepdim)


class SqrtZeroGradAtZero(Function):
    """``√v`` whose derivative is taken as 0 where ``v = 0`` (instead of ∞·0 = NaN): torch's
    convention for ``std`` and the 2-norm of a zero vector; local contrast normalization uses it
    so that flat image regions do not poison the gradient."""

    @staticmethod
    def forward(ctx: Context, v: Any) -> Any:
        y = xp.sqrt(v)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        zero = const(y.array == 0)
        return where(zero, 0.0, gy / where(zero, 1.0, y * 2.0))


class AMax(Function):
    """amax/amin over ``axes``: the gradient is shared evenly among the tied extrema."""

    @staticmethod
    def forward(ctx: Context, x: Any, axes: tuple[int, ...], keepdim: bool, largest: bool) -> Any:
        if x.size == 0 and any(x.shape[a] == 0 for a in axes):
            raise IndexError(f"{'amax' if largest else 'amin'}: cannot reduce over a zero-size dim")
        y = (xp.max if largest else xp.min)(x, axis=axes, keepdims=True)
        ctx.save_for_backward(x, y)
        ctx.axes = axes
        return y if keepdim else y.reshape([s for i, s in enumerate(x.shape) if i not in axes])

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        x, y = ctx.saved_tensors
        mask = (x.array == y.array) | (xp.isnan(x.array) & xp.isnan(y.array))
        count = mask.sum(axis=ctx.axes, keepdims=True)
        w = const((mask / count).astype(gy.dtype))
        return _expand_back(gy, x.shape, ctx.axes) * w


def _amax_like(input: Tensor, dim: Any, keepdim: bool, largest: bool, op: str) -> Tensor:
    check_tensor(input, op)
    axes = normalize_dims(dim, input.ndim, op)
    if input.dtype.kind != "f":
        fn = xp.max if largest else xp.min
        return const(fn(input.array, axis=axes, keepdims=keepdim))
    return AMax.apply(input, axes=axes, keepdim=keepdim, largest=largest)


@register("amax")
def amax(input: Tensor, dim: Any = (), keepdim: bool = False) -> Tensor:
    """Maximum over ``dim``; ties share the gradient evenly (as torch)."""
    return _amax_like(input, dim, keepdim, True, "amax")


@register("amin")
def amin(input: Tensor, dim: Any = (), keepdim: bool = False) -> Tensor:
    """Minimum over ``dim``; ties share the gradient evenly (as torch)."""
    return _amax_like(input, dim, keepdim, False, "amin")


def _arg(input: Tensor, dim: Any, keepdim: bool, largest: bool, op: str) -> Tensor:
    check_tensor(input, op)
    a = input.array
    if dim is None:
        if a.size == 0:
            raise RuntimeError(f"{op}: expected a non-empty tensor")
        idx = (xp.nanargmax if False else (xp.argmax if largest else xp.argmin))(a.reshape(-1))
        r = xp_of(a).asarray(idx, dtype=backend.int64)
        return const(r.reshape((1,) * a.ndim) if keepdim else r)
    d = normalize_dim(dim, a.ndim, op)
    if a.ndim == 0:
        return const(xp_of(a).zeros((), dtype=backend.int64))
    if a.shape[d] == 0:
        raise IndexError(f"{op}: expected reduction dim {d} to have non-zero size")
    idx = (xp.argmax if largest else xp.argmin)(a, axis=d, keepdims=keepdim)
    return const(idx.astype(backend.int64))


@register("argmax")
def argmax(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the first maximum (over all elements when ``dim`` is None)."""
    return _arg(input, dim, keepdim, True, "argmax")


@register("argmin")
def argmin(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the first minimum."""
    return _arg(input, dim, keepdim, False, "argmin")


def _max_min(input: Tensor, dim: Any, keepdim: bool, largest: bool, op: str) -> Any:
    from .indexing import gather
    from .selection import maximum, minimum

    check_tensor(input, op)
    if isinstance(dim, Tensor):  # torch.max(input, other): elementwise
        return (maximum if largest else minimum)(input, dim)
    if dim is None:
        return _amax_like(input, None, False, largest, op)
    d = normalize_dim(dim, input.ndim, op)
    idx = _arg(input, d, True, largest, op)
    values = gather(input, d, idx) if input.ndim > 0 else input
    if not keepdim and input.ndim > 0:
        values, idx = values.squeeze(d), idx.squeeze(d)
    return (return_types_max if largest else return_types_min)(values, idx)


@register("max")
def max(input: Tensor, dim: Any = None, keepdim: bool = False) -> Any:  # noqa: A001
    """``max(input)``: the maximum (ties share the gradient); ``max(input, dim)``: a
    ``(values, indices)`` pair whose gradient goes to the first maximum; ``max(input, other)``:
    elementwise ``maximum``."""
    return _max_min(input, dim, keepdim, True, "max")


@register("min")
def min(input: Tensor, dim: Any = None, keepdim: bool = False) -> Any:  # noqa: A001
    """As :func:`max`, for the minimum."""
    return _max_min(input, dim, keepdim, False, "min")


def _shift(input: Tensor, axes: tuple[int, ...]) -> Tensor:
    """The max along ``axes`` (keepdim), a constant, with non-finite maxima replaced by 0 so
    that all −inf rows stay −inf."""
    with no_grad():
        m = amax(input, axes, keepdim=True)
        return where(m.isfinite(), m, 0.0)


@register("logsumexp")
def logsumexp(input: Tensor, dim: Any, keepdim: bool = False) -> Tensor:
    """``log(sum(exp(input), dim))`` computed stably (the max is shifted out first)."""
    check_tensor(input, "logsumexp")
    axes = normalize_dims(dim, input.ndim, "logsumexp")
    m = _shift(input, axes)
    s = sum((input - m).exp(), axes, keepdim=True)
    with xp.errstate(divide="ignore"):
        out = s.log() + m
    return out if keepdim else reshape(out, [n for i, n in enumerate(input.shape) if i not in axes])


class Cumsum(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, dim: int) -> Any:
        ctx.dim = dim
        return xp.cumsum(x, axis=dim)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        d = ctx.dim
        return Cumsum.apply(gy.flip(d), dim=d).flip(d)


@register("cumsum")
def cumsum(input: Tensor, dim: int, dtype: Any = None) -> Tensor:
    """Cumulative sum along ``dim``."""
    check_tensor(input, "cumsum")
    if dtype is not None:
        input = input.to(dtype)
    if input.ndim == 0:
        return input
    if input.dtype.kind in "biu" and input.dtype != backend.int64:
        input = const(input.array.astype(backend.int64))
    return Cumsum.apply(input, dim=normalize_dim(dim, input.ndim, "cumsum"))


def _shift_array(x: Any, axes: tuple[int, ...]) -> Any:
    """The max along ``axes`` with −∞ maxima (all −∞ slices) replaced by 0, so that such a slice
    gives NaN rather than −∞ − (−∞) warnings; a +∞ maximum stays (its slice is NaN, as torch)."""
    m = x.max(axis=axes, keepdims=True) if x.size else backend.get_array_module(x).zeros((1,) * x.ndim, dtype=x.dtype)
    return xp.where(m == -xp.inf, 0, m)


class LogSoftmax(Function):
    """``log_softmax`` along ``axes`` as one graph node: ``z − log Σ exp z`` with the max shifted
    out; backward ``g − exp(out)·Σg``, on arrays under plain ``backward()`` and with lamina ops
    on the saved output when a graph is being built (the output is tied to this node, so double
    backward is exact). Only the output is saved, as torch: the input may change in place
    afterwards. A cross-entropy step has a dozen fewer nodes than with the composed form."""

    @staticmethod
    def forward(ctx: Context, x: Any, axes: tuple[int, ...]) -> Any:
        with xp.errstate(divide="ignore", invalid="ignore"):  # NaN slices, as torch's
            z = x - _shift_array(x, axes)
            out = z - xp.log(xp.exp(z).sum(axis=axes, keepdims=True))
        ctx.axes = axes
        ctx.save_for_backward(out)  # the output: an in-place change to it is caught
        return out

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        (out,) = ctx.saved_tensors
        axes = ctx.axes
        if not is_grad_enabled():
            ga = g.array
            return const(ga - xp.exp(out.array) * ga.sum(axis=axes, keepdims=True))
        return g - out.exp() * sum(g, axes, keepdim=True)


class Softmax(Function):
    """``softmax`` along ``axes`` as one graph node: ``exp(z) / Σ exp z``; backward
    ``y·(g − Σ g·y)`` (arrays, or lamina ops on the saved output when a graph is being built)."""

    @staticmethod
    def forward(ctx: Context, x: Any, axes: tuple[int, ...]) -> Any:
        with xp.errstate(invalid="ignore"):  # NaN slices, as torch's
            e = xp.exp(x - _shift_array(x, axes))
            y = e / e.sum(axis=axes, keepdims=True)
        ctx.axes = axes
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        axes = ctx.axes
        if not is_grad_enabled():
            ga, ya = g.array, y.array
            return const(ya * (ga - (ga * ya).sum(axis=axes, keepdims=True)))
        return y * (g - sum(g * y, axes, keepdim=True))


def _softmax_input(input: Tensor, dim: Any, dtype: Any, op: str) -> tuple[Tensor, tuple[int, ...]]:
    """The input (cast to ``dtype``; integers to the default float dtype, as lamina's ``exp``)
    and the axes; ``dim=None`` is torch's deprecated implicit choice, with its warning."""
    check_tensor(input, op)
    if dtype is not None:
        input = input.to(dtype)
    elif input.dtype.kind in "biu":
        input = input.to(backend.get_default_dtype())
    if dim is None:
        import warnings

        warnings.warn(f"Implicit dimension choice for {op} has been deprecated. Change the call to include "
                      f"dim=X as an argument.", UserWarning, stacklevel=3)
        dim = 0 if input.ndim in (0, 1, 3) else 1
    if input.ndim == 0:
        normalize_dim(dim, 1, op)  # a 0-d input takes dim 0 or −1, as torch
        return input, ()
    return input, normalize_dims(dim, input.ndim, op)


@register("log_softmax")
def log_softmax(input: Tensor, dim: Any = None, dtype: Any = None) -> Tensor:
    """``z − log(sum(exp(z), dim))`` with ``z = input − max(input, dim)``: exact to rounding
    for any magnitude of input (no ``exp`` of a positive number is ever taken)."""
    input, axes = _softmax_input(input, dim, dtype, "log_softmax")
    return LogSoftmax.apply(input, axes=axes)


@register("softmax")
def softmax(input: Tensor, dim: Any = None, dtype: Any = None) -> Tensor:
    """``exp(z) / sum(exp(z), dim)`` with ``z = input − max(input, dim)``: sums to 1 along
    ``dim``, stable for any input."""
    input, axes = _softmax_input(input, dim, dtype, "softmax")
    return Softmax.apply(input, axes=axes)


@register("norm")
def norm(input: Tensor, p: Any = 2, dim: Any = None, keepdim: bool = False) -> Tensor:
    """The vector p-norm over ``dim`` (``'fro'`` = 2)."""
    if p == "fro":
        p = 2
    if p == float("inf"):
        return amax(input.abs(), dim if dim is not None else (), keepdim)
    if p == 2:
        return SqrtZeroGradAtZero.apply(sum(input * input, dim, keepdim))
    if p == 1:
        return sum(input.abs(), dim, keepdim)
    return sum(input.abs() ** p, dim, keepdim) ** (1.0 / p)
