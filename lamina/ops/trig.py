"""Trigonometric and hyperbolic functions: tan, asin, acos, sinh, cosh, asinh, acosh, atanh, atan2.

Each backward is written with lamina's differentiable ops on the saved input, so second
derivatives come out right. Outside a function's domain (``asin(2)``, ``acosh(0.5)``) the value
and the gradient are nan, as in torch.
"""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd.function import Context, Function
from ..autograd.tensor import Tensor, register
from .common import binary_operands, const
from .shape import sum_to
from .unary import _errstate, _float_input, atan, cos, sqrt

__all__ = ["tan", "asin", "acos", "sinh", "cosh", "asinh", "acosh", "atanh", "atan2", "arcsin", "arccos", "arctan",
           "arcsinh", "arccosh", "arctanh", "arctan2"]

xp = backend.xp


def _fn(name: str, forward: Any, derivative: Any, doc: str) -> Any:
    """A unary op ``forward`` whose gradient is ``gy * derivative(x)``."""

    class Op(Function):
        @staticmethod
        def forward(ctx: Context, x: Any) -> Any:
            ctx.save_for_backward(x)
            with _errstate():
                return forward(x)

        @staticmethod
        def backward(ctx: Context, gy: Tensor) -> Tensor:
            (x,) = ctx.saved_tensors
            with _errstate():
                return gy * derivative(x)

    Op.__name__ = Op.__qualname__ = name.capitalize()

    def op(input: Tensor) -> Tensor:
        return Op.apply(_float_input(input, name))

    op.__name__, op.__doc__ = name, doc
    register(name)(op)
    return op


tan = _fn("tan", xp.tan, lambda x: 1.0 / (cos(x) * cos(x)), "Tangent.")
asin = _fn("asin", xp.arcsin, lambda x: 1.0 / sqrt(1.0 - x * x), "Arcsine, in ``[−π/2, π/2]`` (nan outside [−1, 1]).")
acos = _fn("acos", xp.arccos, lambda x: -1.0 / sqrt(1.0 - x * x), "Arccosine, in ``[0, π]`` (nan outside [−1, 1]).")
sinh = _fn("sinh", xp.sinh, lambda x: cosh(x), "Hyperbolic sine.")
cosh = _fn("cosh", xp.cosh, lambda x: sinh(x), "Hyperbolic cosine.")
asinh = _fn("asinh", xp.arcsinh, lambda x: 1.0 / sqrt(x * x + 1.0), "Inverse hyperbolic sine.")
acosh = _fn("acosh", xp.arccosh, lambda x: 1.0 / sqrt(x * x - 1.0), "Inverse hyperbolic cosine (nan below 1).")
atanh = _fn("atanh", xp.arctanh, lambda x: 1.0 / (1.0 - x * x),
            "Inverse hyperbolic tangent (±inf at ±1, nan outside [−1, 1]).")


class Atan2(Function):
    @staticmethod
    def forward(ctx: Context, y: Any, x: Any) -> Any:
        ctx.save_for_backward(y, x)
        return xp.arctan2(y, x)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        y, x = ctx.saved_tensors
        with _errstate():
            r2 = x * x + y * y
            ny, nx = ctx.needs_input_grad
            return (sum_to(gy * x / r2, y.shape) if ny else None, sum_to(-gy * y / r2, x.shape) if nx else None)


@register("atan2", "arctan2")
def atan2(input: Any, other: Any) -> Tensor:
    """The angle of the point ``(other, input)``: ``atan(input / other)`` in the right quadrant, in
    ``(−π, π]``. Integer inputs give the default float dtype, as torch."""
    y, x = binary_operands("atan2", input, other)
    if y.dtype.kind != "f":
        d = backend.get_default_dtype()
        y, x = const(y.array.astype(d)), const(x.array.astype(d))
    return Atan2.apply(y, x)


arcsin, arccos, arcsinh, arccosh, arctanh, arctan2 = asin, acos, asinh, acosh, atanh, atan2
for _alias, _op in (("arcsin", asin), ("arccos", acos), ("arcsinh", asinh), ("arccosh", acosh), ("arctanh", atanh)):
    register(_alias)(_op)

arctan = atan
register("arctan")(atan)
