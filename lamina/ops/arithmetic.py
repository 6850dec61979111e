"""Elementwise arithmetic: + − × ÷, neg, pow, abs, sign, clamp, maximum/minimum, where, casts.

Binary ops broadcast as torch does; each backward sums the gradient back to its input's shape
(``sum_to``), the adjoint of broadcasting.
"""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd.function import Context, Function
from ..autograd.tensor import Tensor, register
from .cast import to_dtype
from .common import binary_operands, broadcast_shape, check_tensor, const, into_out, to_tensor, xp_of
from .promotion import result_dtype
from .shape import sum_to

__all__ = [
    "add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide", "neg", "negative",
    "pow", "abs", "sign", "clamp", "clip", "maximum", "minimum", "where", "square",
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


class Clamp(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, lo: Any, hi: Any) -> Any:
        ctx.save_for_backward(x, lo, hi)
        y = x
        if lo is not None:
            y = xp.maximum(y, lo)
        if hi is not None:
            y = xp.minimum(y, hi)
        return y

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> tuple[Tensor | None, ...]:
        x, lo, hi = ctx.saved_tensors
        _, nlo, nhi = ctx.needs_input_grad
        ge_lo = x.array >= lo.array if lo is not None else xp_of(x).ones(x.shape, bool)
        le_hi = x.array <= hi.array if hi is not None else xp_of(x).ones(x.shape, bool)
        gx = where(const(ge_lo & le_hi), gy, 0.0)
        # NOTE: as torch, when min > max the output is max, so min gets no gradient there
        lo_ok = lo.array < hi.array if (lo is not None and hi is not None) else xp.bool_(True)
        glo = sum_to(where(const(~ge_lo & lo_ok), gy, 0.0), lo.shape) if nlo else None
        ghi = sum_to(where(const(~le_hi | ~lo_ok), gy, 0.0), hi.shape) if nhi else None
        return gx, glo, ghi


@register("clamp", "clip")
def clamp(input: Tensor, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
    """Clamp to ``[min, max]`` (numbers or broadcastable tensors); if ``min > max`` the result is
    ``max``. The gradient passes where ``min <= input <= max`` (inclusive, as torch)."""
    check_tensor(input, "clamp")
    if min is None and max is None:
        raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
    d = result_dtype(input, *[b for b in (min, max) if b is not None])  # torch's promotion over all three
    input = input if input.dtype == d else to_dtype(input, d)
    bounds = []
    for name, b in (("min", min), ("max", max)):
        if b is not None:
            b = to_tensor(b, input)
            b = b if b.dtype == d else to_dtype(b, d)
            if broadcast_shape("clamp", input.shape, b.shape) != input.shape:
                raise RuntimeError(
                    f"clamp: {name} of shape {tuple(b.shape)} would broadcast the input "
                    f"{tuple(input.shape)} to a larger shape"
                )
        bounds.append(b)
    return Clamp.apply(input, *bounds)


clip = clamp


class Maximum(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        ctx.save_for_backward(a, b)
        return xp.maximum(a, b)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = ctx.saved_tensors
        return _split_ties(ctx, gy, a, b, a.array > b.array)


class Minimum(Function):
    @staticmethod
    def forward(ctx: Context, a: Any, b: Any) -> Any:
        ctx.save_for_backward(a, b)
        return xp.minimum(a, b)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = ctx.saved_tensors
        return _split_ties(ctx, gy, a, b, a.array < b.array)


def _split_ties(ctx: Context, gy: Tensor, a: Tensor, b: Tensor, a_wins: Any) -> tuple[Any, Any]:
    # NOTE: at a tie torch gives each side half the gradient
    tie = a.array == b.array
    wa = const((a_wins + 0.5 * tie).astype(gy.dtype))
    wb = const(((~a_wins & ~tie) + 0.5 * tie).astype(gy.dtype))
    na, nb = ctx.needs_input_grad
    return (sum_to(gy * wa, a.shape) if na else None, sum_to(gy * wb, b.shape) if nb else None)


@register("maximum")
def maximum(input: Any, other: Any) -> Tensor:
    """Elementwise maximum; at ties each input gets half the gradient (as torch)."""
    return Maximum.apply(*binary_operands("maximum", input, other))


@register("minimum")
def minimum(input: Any, other: Any) -> Tensor:
    """Elementwise minimum; at ties each input gets half the gradient (as torch)."""
    return Minimum.apply(*binary_operands("minimum", input, other))


class Where(Function):
    @staticmethod
    def forward(ctx: Context, cond: Any, a: Any, b: Any) -> Any:
        ctx.save_for_backward(cond)
        ctx.shapes = (a.shape, b.shape)
        return xp.where(cond, a, b)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> tuple[None, Tensor | None, Tensor | None]:
        (cond,) = ctx.saved_tensors
        _, na, nb = ctx.needs_input_grad
        zero = const(xp_of(gy).zeros((), dtype=gy.dtype))
        ga = sum_to(Where.apply(cond, gy, zero), ctx.shapes[0]) if na else None
        gb = sum_to(Where.apply(cond, zero, gy), ctx.shapes[1]) if nb else None
        return None, ga, gb


@register("where")
def where(condition: Any, input: Any = None, other: Any = None) -> Any:
    """``input`` where ``condition`` holds, else ``other`` (all broadcast together).

    ``where(condition)`` alone is ``nonzero(condition, as_tuple=True)``: one index tensor per dim.
    """
    cond = condition if isinstance(condition, Tensor) else const(xp.asarray(condition))
    if input is None and other is None:
        a = cond.array if cond.ndim else cond.array.reshape(1)
        return tuple(const(w.astype(backend.int64)) for w in xp.nonzero(a))
    if input is None or other is None:
        raise TypeError("where: expected both input and other, or neither (where(condition) alone)")
    if cond.dtype != backend.bool_:
        raise TypeError(f"where: expected condition to be a bool tensor, got {cond.dtype}")
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):  # two numbers: as torch.where
        input = to_tensor(input)
        other = to_tensor(other, input)
    a, b = binary_operands("where", input, other)
    broadcast_shape("where", cond.shape, a.shape, b.shape)
    return Where.apply(cond, a, b)


def _tensor_where(self: Tensor, condition: Any, other: Any) -> Tensor:
    return where(condition, self, other)


Tensor.where = _tensor_where  # type: ignore[attr-defined]


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
