"""Elementwise selection between values: clamp (clip), maximum/minimum, where.

Their gradients follow torch's: clamp passes the gradient where ``min <= input <= max``
(inclusive), maximum and minimum give each input half the gradient at a tie, and ``where``
routes it to the chosen side; every backward sums the gradient back to its input's shape
(``sum_to``), the adjoint of broadcasting.
"""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd.function import Context, Function
from ..autograd.tensor import Tensor, register
from .cast import to_dtype
from .common import binary_operands, broadcast_shape, check_tensor, const, to_tensor, xp_of
from .promotion import result_dtype
from .shape import sum_to

__all__ = ["clamp", "clip", "maximum", "minimum", "where"]

xp = backend.xp


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
