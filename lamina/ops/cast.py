"""Dtype conversion and copies: ``to``/``float()``/``double()``… (differentiable between float
dtypes: the gradient is cast back), ``clone``."""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd.function import Context, Function
from ..autograd.tensor import Tensor, register

__all__ = ["to_dtype", "clone"]


class Cast(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, dtype: Any) -> Any:
        ctx.in_dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        return Cast.apply(gy, dtype=ctx.in_dtype)


def to_dtype(input: Tensor, dtype: Any) -> Tensor:
    """``input`` converted to ``dtype`` (differentiable between float dtypes)."""
    d = backend.to_dtype(dtype)
    if input.dtype == d:
        return input
    return Cast.apply(input, dtype=d)


@register("to")
def to(input: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    """``to(dtype)``, ``to(device)``, ``to(device, dtype)`` or ``to(other)`` as torch."""
    dtype = kwargs.pop("dtype", None)
    device = kwargs.pop("device", None)
    kwargs.pop("non_blocking", None)
    copy = kwargs.pop("copy", False)
    if kwargs:
        raise TypeError(f"to: unexpected arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, Tensor):
            dtype = a.dtype
        elif isinstance(a, (str, backend.Device)) and str(a).split(":")[0] in ("cpu", "cuda"):
            device = a
        else:
            dtype = a
    if device is not None:
        backend.to_device(device)
    out = to_dtype(input, dtype) if dtype is not None else input
    return clone(out) if copy and out is input else out


def _caster(name: str, dtype: Any) -> None:
    def method(self: Tensor) -> Tensor:
        return to_dtype(self, dtype)

    method.__name__ = name
    register(name)(method)


for _n, _d in (("float", backend.float32), ("double", backend.float64), ("half", backend.float16),
               ("long", backend.int64), ("int", backend.int32), ("short", backend.int16),
               ("bool", backend.bool_), ("byte", backend.uint8)):
    _caster(_n, _d)


class Clone(Function):
    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        return x.copy()

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        return gy


@register("clone")
def clone(input: Tensor) -> Tensor:
    """A copy of ``input`` that stays in the graph (gradient flows through)."""
    return Clone.apply(input)


@register("cpu", "cuda")
def _cpu(input: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    return input
