"""Comparisons and logical ops. Their results are bool tensors and record no graph."""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd.tensor import Tensor, register
from .common import binary_operands, check_tensor, const, normalize_dims

__all__ = ["eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor",
           "logical_not", "isnan", "isinf", "isfinite", "any", "all", "equal", "isclose",
           "allclose", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not"]

xp = backend.xp


def _cmp(name: str, fn: Any, *dunders: str) -> Any:
    def op(input: Any, other: Any) -> Any:
        if other is None and name in ("eq", "ne"):  # ``t == None`` is a plain bool, as torch
            return name == "ne"
        a, b = binary_operands(name, input, other)
        return const(fn(a.array, b.array))

    op.__name__ = name
    op.__doc__ = f"Elementwise ``{name}`` comparison (a bool tensor, no graph)."
    register(name, *dunders)(op)
    return op


eq = _cmp("eq", xp.equal, "__eq__")
ne = _cmp("ne", xp.not_equal, "__ne__")
lt = _cmp("lt", xp.less, "__lt__")
le = _cmp("le", xp.less_equal, "__le__")
gt = _cmp("gt", xp.greater, "__gt__")
ge = _cmp("ge", xp.greater_equal, "__ge__")
logical_and = _cmp("logical_and", xp.logical_and)
logical_or = _cmp("logical_or", xp.logical_or)
logical_xor = _cmp("logical_xor", xp.logical_xor)


def _bitwise(name: str, fn: Any, *dunders: str) -> Any:
    def op(input: Any, other: Any) -> Tensor:
        a, b = binary_operands(name, input, other)
        if a.dtype.kind == "f":
            raise TypeError(f"{name}: not defined for floating tensors (got {a.dtype})")
        return const(fn(a.array, b.array))

    op.__name__ = name
    register(name, *dunders)(op)
    return op


bitwise_and = _bitwise("bitwise_and", xp.bitwise_and, "__and__", "__rand__")
bitwise_or = _bitwise("bitwise_or", xp.bitwise_or, "__or__", "__ror__")
bitwise_xor = _bitwise("bitwise_xor", xp.bitwise_xor, "__xor__", "__rxor__")


@register("bitwise_not", "__invert__")
def bitwise_not(input: Tensor) -> Tensor:
    if input.dtype.kind == "f":
        raise TypeError(f"bitwise_not: not defined for floating tensors (got {input.dtype})")
    return const(~input.array)


@register("logical_not")
def logical_not(input: Tensor) -> Tensor:
    return const(xp.logical_not(input.array))


@register("isnan")
def isnan(input: Tensor) -> Tensor:
    return const(xp.isnan(input.array))


@register("isinf")
def isinf(input: Tensor) -> Tensor:
    return const(xp.isinf(input.array))


@register("isfinite")
def isfinite(input: Tensor) -> Tensor:
    return const(xp.isfinite(input.array))


@register("any")
def any(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:  # noqa: A001
    check_tensor(input, "any")
    axes = normalize_dims(dim, input.ndim, "any")
    return const(xp.any(input.array, axis=axes, keepdims=keepdim))


@register("all")
def all(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:  # noqa: A001
    check_tensor(input, "all")
    axes = normalize_dims(dim, input.ndim, "all")
    return const(xp.all(input.array, axis=axes, keepdims=keepdim))


@register("equal")
def equal(input: Tensor, other: Tensor) -> bool:
    """True when both tensors have the same shape and elements."""
    return input.shape == other.shape and bool(xp.array_equal(input.array, other.array))


@register("isclose")
def isclose(input: Tensor, other: Any, rtol: float = 1e-05, atol: float = 1e-08,
            equal_nan: bool = False) -> Tensor:
    a, b = binary_operands("isclose", input, other)
    return const(xp.isclose(a.array, b.array, rtol=rtol, atol=atol, equal_nan=equal_nan))


@register("allclose")
def allclose(input: Tensor, other: Any, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> bool:
    a, b = binary_operands("allclose", input, other)
    return bool(xp.allclose(a.array, b.array, rtol=rtol, atol=atol, equal_nan=equal_nan))
