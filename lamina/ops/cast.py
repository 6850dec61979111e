"""Dtype conversion and copies: ``to``/``float()``/``double()``… (differentiable between float
dtypes: the gradient is cast back), ``clone``."""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd.function import Context, Function
from ..autograd.legacy import dtype_of_type, type_name
from ..autograd.tensor import Tensor, register, tensor
from ._ints import as_int

__all__ = ["to_dtype", "clone"]

xp = backend.xp


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


class ToMemoryFormat(Function):
    """The same values laid out in memory as ``fmt``; the gradient passes through unchanged."""

    @staticmethod
    def forward(ctx: Context, x: Any, fmt: Any) -> Any:
        return backend.to_memory_format(x, fmt)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        return gy


def to_memory_format(input: Tensor, memory_format: Any) -> Tensor:
    """``input`` laid out as ``memory_format`` (``input`` itself if it already is)."""
    if memory_format is backend.preserve_format or backend.is_memory_format(input.array, memory_format):
        return input
    return ToMemoryFormat.apply(input, fmt=memory_format)


@register("to")
def to(input: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    """``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(other)`` or ``to(memory_format=)``
    as torch. Any device other than the CPU raises: lamina has no GPU backend."""
    dtype = kwargs.pop("dtype", None)
    device = kwargs.pop("device", None)
    kwargs.pop("non_blocking", None)
    copy = kwargs.pop("copy", False)
    memory_format = kwargs.pop("memory_format", backend.preserve_format)
    if kwargs:
        raise TypeError(f"to: unexpected arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, Tensor):
            dtype = a.dtype
        elif backend.is_device_spec(a):
            device = a
        else:
            dtype = a
    if device is not None:
        backend.to_device(device)
    out = to_dtype(input, dtype) if dtype is not None else input
    out = to_memory_format(out, memory_format)
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


@register("cpu")
def _cpu(input: Tensor, memory_format: Any = None) -> Tensor:
    """The tensor itself: lamina's tensors live on the CPU."""
    return input


@register("cuda", "xpu", "mps")
def _gpu(input: Tensor, device: Any = None, non_blocking: bool = False, memory_format: Any = None) -> Tensor:
    """Raises as ``input.to('cuda')`` does: lamina has no GPU backend."""
    backend.to_device("cuda" if device is None else device if backend.is_device_spec(device) else f"cuda:{device}")
    return input


@register("type")
def type_(input: Tensor, dtype: Any = None, non_blocking: bool = False, **kwargs: Any) -> Any:
    """``x.type()`` is the legacy type name (``'lamina.FloatTensor'``); ``x.type(t)`` converts to ``t``
    (a dtype, ``lamina.DoubleTensor`` or ``'torch.DoubleTensor'``), as torch.

    The name says ``lamina.``, not ``torch.``, even under ``import lamina as torch``: it names the
    class that made the tensor; compare dtypes (``x.dtype == torch.float32``) or use
    ``isinstance(x, torch.FloatTensor)`` for a check that holds in both libraries."""
    if dtype is None:
        return type_name(input.dtype)
    return to_dtype(input, dtype_of_type(dtype))


@register("type_as")
def type_as(input: Tensor, other: Tensor) -> Tensor:
    """``input`` converted to ``other``'s dtype."""
    return to_dtype(input, other.dtype)


def _new(name: str, fill: Any) -> None:
    def method(self: Tensor, *size: Any, dtype: Any = None, device: Any = None,
               requires_grad: bool = False, **kw: Any) -> Tensor:
        if len(size) == 1 and isinstance(size[0], (tuple, list)):
            size = tuple(size[0])
        d = self.dtype if dtype is None else backend.to_dtype(dtype)
        arr = fill(tuple(as_int(s, "size", name) for s in size), d, kw)
        t = Tensor._wrap(arr)
        return t.requires_grad_() if requires_grad else t

    method.__name__ = name
    method.__doc__ = f"``{name}(size)``: a new tensor with this tensor's dtype (as torch)."
    register(name)(method)


_new("new_zeros", lambda size, d, kw: xp.zeros(size, dtype=d))
_new("new_ones", lambda size, d, kw: xp.ones(size, dtype=d))
_new("new_empty", lambda size, d, kw: xp.empty(size, dtype=d))


@register("new_full")
def new_full(self: Tensor, size: Any, fill_value: Any, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    t = Tensor._wrap(xp.full(tuple(size), fill_value, dtype=self.dtype if dtype is None else backend.to_dtype(dtype)))
    return t.requires_grad_() if requires_grad else t


@register("new_tensor")
def new_tensor(self: Tensor, data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return tensor(data, dtype=self.dtype if dtype is None else dtype, requires_grad=requires_grad)
