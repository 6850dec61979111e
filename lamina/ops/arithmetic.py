"""Elementwise arithmetic: + − × ÷, neg, pow, abs, sign, rounding, lerp/addcmul/addcdiv (clamp,
maximum/minimum and where: :mod:`.selection`).

Binary ops broadcast as torch does; each backward sums the gradient back to its input's shape
(``sum_to``), the adjoint of broadcasting.
"""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd.function import Context, Function
from ..autograd.tensor import Tensor, register
from .common import binary_operands, const, into_out, to_tensor
from .selection import where
from .shape import sum_to

__all__ = [
    "add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide", "neg", "negative",
    "pow", "abs", "sign", "square",
    "reciprocal", "lerp", "addcmul", "addcdiv", "floor_divide", "remainder", "fmod", "floor",
    "ceil", "round", "trunc",
]

xp = backend.xp


def _errstate() -> Any:
    return xp.errstate(divide="ignore", invalid="ignore", over="ignore")


class Add(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        ctx.shapes = (a.shape, b.shape)
        return a + b

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        return (sum_to(gy, sa) if na else None, sum_to(gy, sb) if nb else None)


class Sub(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        ctx.shapes = (a.shape, b.shape)
        return a - b

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        return (sum_to(gy, sa) if na else None, sum_to(-gy, sb) if nb else None)


class Mul(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        return (sum_to(gy * b, a.shape) if na else None, sum_to(gy * a, b.shape) if nb else None)


class Div(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        ctx.save_for_backward(a, b)
        with _errstate():
            return a / b

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        ga = gy / b
        gb = sum_to(-ga * a / b, b.shape) if nb else None
        return (sum_to(ga, a.shape) if na else None, gb)


class Neg(Function):
    @staticmethod
    def forward(ctx: Context, a: Any) -> Any:
        return -a

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        return -gy


def _int_div_check(op: str, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    # torch's true division of integers gives the default float dtype
    if a.dtype.kind != "f":
        d = backend.get_default_dtype()
        a, b = const(a.array.astype(d)), const(b.array.astype(d))
    return a, b


@register("add", "__add__", "__radd__")
def add(input: Any, other: Any, alpha: Any = 1, *, out: Tensor | None = None) -> Tensor:
    """``input + alpha * other`` with broadcasting (``out=``: written into ``out``, as torch)."""
    if out is not None:
        return into_out(add(input, other, alpha), out, "add")
    a, b = binary_operands("add", input, other)
    if alpha != 1:
        b = b * alpha
    if a.dtype == backend.bool_:
        return const(a.array | b.array)
    return Add.apply(a, b)


@register("sub", "subtract", "__sub__")
def sub(input: Any, other: Any, alpha: Any = 1, *, out: Tensor | None = None) -> Tensor:
    """``input − alpha * other`` with broadcasting (``out=``: written into ``out``, as torch)."""
    if out is not None:
        return into_out(sub(input, other, alpha), out, "sub")
    a, b = binary_operands("sub", input, other)
    if a.dtype == backend.bool_:
        raise TypeError("sub: subtraction of bool tensors is not supported; use logical_xor")
    if alpha != 1:
        b = b * alpha
    return Sub.apply(a, b)


subtract = sub


@register("__rsub__")
def _rsub(input: Tensor, other: Any) -> Tensor:
    return sub(other, input)


@register("mul", "multiply", "__mul__", "__rmul__")
def mul(input: Any, other: Any, *, out: Tensor | None = None) -> Tensor:
    """Elementwise product with broadcasting (``out=``: written into ``out``, as torch)."""
    if out is not None:
        return into_out(mul(input, other), out, "mul")
    a, b = binary_operands("mul", input, other)
    if a.dtype == backend.bool_:
        return const(a.array & b.array)
    return Mul.apply(a, b)


multiply = mul


@register("div", "divide", "true_divide", "__truediv__")
def div(input: Any, other: Any, rounding_mode: str | None = None, *, out: Tensor | None = None) -> Tensor:
    """Elementwise quotient (true division; ``rounding_mode='floor'|'trunc'`` gives no graph;
    ``out=``: written into ``out``, as torch)."""
    if out is not None:
        return into_out(div(input, other, rounding_mode), out, "div")
    a, b = binary_operands("div", input, other)
    if rounding_mode is not None:
        if rounding_mode not in ("floor", "trunc"):
            raise ValueError(f"div: rounding_mode must be None, 'floor' or 'trunc', got {rounding_mode!r}")
        with _errstate():
            q = a.array / b.array if a.dtype.kind == "f" else None
            if rounding_mode == "floor":
                r = xp.floor(q) if q is not None else xp.floor_divide(a.array, b.array)
            else:
                r = xp.trunc(q) if q is not None else (xp.trunc(a.array / b.array)).astype(a.dtype)
        return const(r.astype(a.dtype))
    a, b = _int_div_check("div", a, b)
    return Div.apply(a, b)


divide = true_divide = div


@register("__rtruediv__")
def _rdiv(input: Tensor, other: Any) -> Tensor:
    return div(other, input)


@register("__floordiv__", "floor_divide")
def floor_divide(input: Any, other: Any) -> Tensor:
    return div(input, other, rounding_mode="floor")


@register("__rfloordiv__")
def _rfloordiv(input: Tensor, other: Any) -> Tensor:
    return div(other, input, rounding_mode="floor")


@register("remainder", "__mod__")
def remainder(input: Any, other: Any) -> Tensor:
    """Python-style modulus (sign of the divisor); differentiable in ``input`` (slope 1)."""
    a, b = binary_operands("remainder", input, other)
    with _errstate():
        q = xp.floor(a.array / b.array) if a.dtype.kind == "f" else xp.floor_divide(a.array, b.array)
    return a - b * const(q.astype(a.dtype))


def fmod(input: Any, other: Any) -> Tensor:
    """C-style modulus (sign of the dividend)."""
    a, b = binary_operands("fmod", input, other)
    with _errstate():
        q = xp.trunc(a.array / b.array)
    return a - b * const(q.astype(a.dtype))


@register("neg", "negative", "__neg__")
def neg(input: Tensor) -> Tensor:
    """``−input``."""
    if input.dtype == backend.bool_:
        raise TypeError("neg: negation of a bool tensor is not supported; use logical_not")
    return Neg.apply(input)


negative = neg


@register("__pos__")
def _pos(input: Tensor) -> Tensor:
    return input


class Pow(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        with _errstate():
            y = a ** b
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b, y = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        ga = gb = None
        if na:
            ga = sum_to(where(b == 0, 0.0, gy * b * a ** (b - 1)), a.shape)
        if nb:
            # ∂(aᵇ)/∂b = aᵇ·ln a; torch sets it to 0 where a == 0 and b >= 0
            with _errstate():
                safe_log = where(a == 0, 1.0, a).log()
            gb = sum_to(where((a == 0) & (b >= 0), 0.0, gy * y * safe_log), b.shape)
        return ga, gb


class PowScalar(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, exponent: float) -> Any:
        ctx.exponent = exponent
        ctx.save_for_backward(a)
        with _errstate():
            return a ** a.dtype.type(exponent) if a.dtype.kind == "f" else a ** exponent

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        (a,) = ctx.saved_tensors
        p = ctx.exponent
        if p == 0:
            return gy * 0.0
        if p == 1:
            return gy
        if p == 2:
            return gy * a * 2.0
        return gy * p * a ** (p - 1)


@register("pow", "__pow__")
def pow(input: Any, exponent: Any) -> Tensor:
    """``input ** exponent``; the exponent is a number or a tensor (broadcast)."""
    scalar = isinstance(exponent, (int, float, xp.number)) and not isinstance(exponent, bool)
    if isinstance(input, Tensor) and scalar:
        if input.dtype.kind != "f" and not isinstance(exponent, float) and exponent < 0:
            raise RuntimeError("pow: Integers to negative integer powers are not allowed.")
        if input.dtype.kind != "f" and isinstance(exponent, float):
            input = const(input.array.astype(backend.get_default_dtype()))
        return PowScalar.apply(input, exponent=exponent)
    a, b = binary_operands("pow", input, exponent)
    return Pow.apply(a, b)


@register("__rpow__")
def _rpow(input: Tensor, other: Any) -> Tensor:
    return pow(to_tensor(other, input), input)


@register("square")
def square(input: Tensor) -> Tensor:
    return pow(input, 2)


@register("reciprocal")
def reciprocal(input: Tensor) -> Tensor:
    return div(1.0, input)


class Abs(Function):
    @staticmethod
    def forward(ctx: Context, a: Any) -> Any:
        ctx.save_for_backward(a)
        return xp.abs(a)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        (a,) = ctx.saved_tensors
        return gy * const(xp.sign(a.array))  # NOTE: subgradient 0 at 0, as torch


@register("abs", "__abs__", "absolute")
def abs(input: Tensor) -> Tensor:  # noqa: A001
    """``|input|``; the gradient at 0 is 0 (torch's subgradient choice)."""
    return Abs.apply(input)


@register("sign")
def sign(input: Tensor) -> Tensor:
    """−1, 0 or 1; its gradient is zero everywhere (no graph)."""
    r = const(xp.sign(input.array))
    if input.requires_grad:
        return _ZeroGrad.apply(input, value=r.array)
    return r


class _ZeroGrad(Function):
    """A piecewise-constant function of ``x``: value given, gradient zero."""

    @staticmethod
    def forward(ctx: Context, x: Any, value: Any) -> Any:
        return value

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        return gy * 0.0


def _rounding(name: str, fn: Any) -> Any:
    def op(input: Tensor) -> Tensor:
        value = fn(input.array)
        if input.requires_grad:
            return _ZeroGrad.apply(input, value=value)
        return const(value)

    op.__name__ = name
    op.__doc__ = f"Elementwise {name}; the gradient is zero (as torch)."
    register(name)(op)
    return op


floor = _rounding("floor", xp.floor)
ceil = _rounding("ceil", xp.ceil)
trunc = _rounding("trunc", xp.trunc)
round = _rounding("round", xp.round)  # noqa: A001  (round half to even, as torch)


@register("lerp")
def lerp(input: Tensor, end: Any, weight: Any) -> Tensor:
    """``input + weight * (end − input)``."""
    return input + (end - input) * weight


@register("addcmul")
def addcmul(input: Tensor, tensor1: Tensor, tensor2: Tensor, value: float = 1) -> Tensor:
    return input + value * tensor1 * tensor2


@register("addcdiv")
def addcdiv(input: Tensor, tensor1: Tensor, tensor2: Tensor, value: float = 1) -> Tensor:
    return input + value * tensor1 / tensor2
