"""Elementwise functions: exp, log, log1p, expm1, sqrt, rsqrt, sin, cos, atan, sigmoid, tanh, relu.

Where the derivative is a function of the output (exp, sqrt, sigmoid, tanh) backward reuses the
saved output; under ``create_graph=True`` that output is wired to this node, so second
derivatives come out right.
"""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd.function import Context, Function
from ..autograd.tensor import Tensor, register
from .common import check_tensor, const

__all__ = ["exp", "log", "log1p", "expm1", "log2", "log10", "sqrt", "rsqrt", "sin", "cos", "atan",
           "sigmoid", "tanh", "relu"]

xp = backend.xp


def _float_input(x: Tensor, op: str) -> Tensor:
    check_tensor(x, op)
    if x.dtype.kind != "f":
        return const(x.array.astype(backend.get_default_dtype()))
    return x


def _errstate() -> Any:
    return xp.errstate(divide="ignore", invalid="ignore", over="ignore")


class Exp(Function):
    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        with _errstate():
            y = xp.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return gy * y


class Log(Function):
    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        ctx.save_for_backward(x)
        with _errstate():
            return xp.log(x)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return gy / x


class Log1p(Function):
    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        ctx.save_for_backward(x)
        with _errstate():
            return xp.log1p(x)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return gy / (x + 1.0)


class Expm1(Function):
    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        with _errstate():
            y = xp.expm1(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return gy * (y + 1.0)


class Sqrt(Function):
    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        with _errstate():
            y = xp.sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return gy / (y * 2.0)


class Rsqrt(Function):
    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        with _errstate():
            y = 1.0 / xp.sqrt(x)
        y = y.astype(x.dtype, copy=False)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return gy * y * y * y * -0.5


class Sin(Function):
    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        ctx.save_for_backward(x)
        return xp.sin(x)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return gy * cos(x)


class Cos(Function):
    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        ctx.save_for_backward(x)
        return xp.cos(x)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return -gy * sin(x)


class Atan(Function):
    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        ctx.save_for_backward(x)
        return xp.arctan(x)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return gy / (x * x + 1.0)


class Sigmoid(Function):
    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        # stable for any |x|: exp is only ever taken of a non-positive number
        e = xp.exp(-xp.abs(x))
        y = xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return gy * y * (1.0 - y)


class Tanh(Function):
    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        y = xp.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return gy * (1.0 - y * y)


class Relu(Function):
    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        y = xp.maximum(x, 0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        # NOTE: the subgradient at 0 is 0, as torch (the mask tests y > 0, not x >= 0)
        return gy * const((y.array > 0).astype(gy.dtype))


def _unary(fn_cls: type[Function], name: str, doc: str) -> Any:
    def op(input: Tensor) -> Tensor:
        return fn_cls.apply(_float_input(input, name))

    op.__name__ = name
    op.__doc__ = doc
    register(name)(op)
    return op


exp = _unary(Exp, "exp", "``e ** input``.")
log = _unary(Log, "log", "Natural logarithm (−inf at 0, nan below).")
log1p = _unary(Log1p, "log1p", "``log(1 + input)``, accurate for small inputs.")
expm1 = _unary(Expm1, "expm1", "``exp(input) − 1``, accurate for small inputs.")
sqrt = _unary(Sqrt, "sqrt", "Square root.")
rsqrt = _unary(Rsqrt, "rsqrt", "``1 / sqrt(input)``.")
sin = _unary(Sin, "sin", "Sine.")
cos = _unary(Cos, "cos", "Cosine.")
atan = _unary(Atan, "atan", "Arctangent, in ``(−π/2, π/2)``.")
sigmoid = _unary(Sigmoid, "sigmoid", "``1 / (1 + exp(−input))``, computed stably for any input.")
tanh = _unary(Tanh, "tanh", "Hyperbolic tangent.")


@register("relu")
def relu(input: Tensor) -> Tensor:
    """``max(input, 0)``; the gradient at 0 is 0 (as torch)."""
    check_tensor(input, "relu")
    return Relu.apply(input)


@register("log2")
def log2(input: Tensor) -> Tensor:
    return log(input) * (1.0 / float(xp.log(2.0)))


@register("log10")
def log10(input: Tensor) -> Tensor:
    return log(input) * (1.0 / float(xp.log(10.0)))
