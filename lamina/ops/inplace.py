"""In-place ops: ``add_ sub_ mul_ div_ zero_ fill_ copy_ clamp_ …`` with version counting.

Every in-place op bumps the tensor's version counter (shared with its views). A tensor saved
for backward remembers the version it was saved at; backward raises if it has changed — so a
gradient is never silently computed from overwritten values.

With grad recording on, an in-place op on a non-leaf tensor is recorded (the tensor's
``grad_fn`` becomes the op's node, as torch "rebases" it); on a leaf that requires grad, or on
a view of a graph tensor, it raises: do it under ``lamina.no_grad()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import backend
from ..autograd.grad_mode import is_grad_enabled
from ..autograd.tensor import Tensor, register
from .arithmetic import add, div, mul, sub
from .cast import clone, to_dtype
from .common import const, to_tensor
from .promotion import can_cast, result_dtype
from .selection import clamp, where

__all__ = ["apply_inplace"]

xp = backend.xp


def apply_inplace(self: Tensor, op: str, graph_fn: Callable[[Tensor], Tensor],
                  array_fn: Callable[[], Any], others: tuple[Any, ...] = ()) -> Tensor:
    """Run an in-place op: ``graph_fn(src)`` computes the result out of place from ``src`` (a
    recorded copy of ``self``, so that what the op saves for backward is not overwritten);
    ``array_fn()`` writes it straight into ``self.array`` when nothing needs recording.
    ``others`` are the op's other tensor operands (recording is needed if one requires grad)."""
    record = is_grad_enabled() and (
        self.requires_grad or any(isinstance(o, Tensor) and o.requires_grad for o in others)
    )
    if record:
        if self.is_leaf and self.requires_grad:
            raise RuntimeError(
                f"{op}: a leaf Variable that requires grad is being used in an in-place operation "
                "(wrap it in lamina.no_grad() to change parameters in place)"
            )
        if self._is_view:
            raise RuntimeError(
                f"{op}: in-place change of a view of a tensor that requires grad is not supported "
                "by lamina; use the out-of-place op"
            )
        result = graph_fn(clone(self))  # the op may save its input: give it a copy, not self.array
        if result.shape != self.shape:
            raise RuntimeError(
                f"{op}: output with shape {tuple(self.shape)} doesn't match the broadcast shape "
                f"{tuple(result.shape)}"
            )
        if not self.array.flags.writeable:
            raise RuntimeError(f"{op}: the tensor is a read-only view (e.g. from expand)")
        self.array[...] = result.array
        self._bump_version()
        if result.grad_fn is not None:
            self.grad_fn = result.grad_fn
        return self
    if not self.array.flags.writeable:
        raise RuntimeError(
            f"{op}: the tensor is a read-only view (e.g. from expand); clone() it first"
        )
    array_fn()
    self._bump_version()
    return self


def _check_out_dtype(self: Tensor, result: Any, op: str) -> None:
    if not can_cast(result, self.dtype):
        raise RuntimeError(f"{op}: result type {result} can't be cast to the desired output type {self.dtype}")


def _binary_inplace(name: str, op: Callable[..., Tensor], ufunc: Any) -> None:
    def method(self: Tensor, other: Any, *, alpha: Any = 1) -> Tensor:
        if isinstance(other, (list, tuple)):
            other = Tensor._wrap(xp.asarray(other, dtype=self.dtype))
        d = result_dtype(self, other)  # torch computes in the promoted dtype, then casts into self
        _check_out_dtype(self, d, name)
        o = other if isinstance(other, Tensor) else const(xp.array(other).astype(d))
        if o.dtype != d:
            o = to_dtype(o, d)
        if alpha != 1:
            o = o * alpha

        def array_fn() -> None:
            if xp.broadcast_shapes(self.shape, o.shape) != self.shape:
                raise RuntimeError(
                    f"{name}: output with shape {tuple(self.shape)} doesn't match the broadcast "
                    f"shape {xp.broadcast_shapes(self.shape, o.shape)}"
                )
            if ufunc is xp.true_divide and self.dtype.kind != "f":
                raise RuntimeError(f"{name}: result type Float can't be cast to {self.dtype}")
            ufunc(self.array, o.array, out=self.array, casting="unsafe")

        return apply_inplace(self, name, lambda src: to_dtype(op(src, o), self.dtype), array_fn, (o,))

    method.__name__ = name
    method.__doc__ = f"In-place ``{name[:-1]}``; bumps the version counter."
    register(name, f"__i{name[:-1]}__" if name[:-1] in ("add", "sub", "mul") else f"_{name}")(method)


_binary_inplace("add_", add, xp.add)
_binary_inplace("sub_", sub, xp.subtract)
_binary_inplace("mul_", mul, xp.multiply)
_binary_inplace("div_", div, xp.true_divide)
Tensor.__itruediv__ = Tensor.div_  # type: ignore[attr-defined]


@register("zero_")
def zero_(self: Tensor) -> Tensor:
    """Fill with zeros in place."""
    return apply_inplace(self, "zero_", lambda src: mul(src, 0.0),
                         lambda: self.array.fill(0))


@register("fill_")
def fill_(self: Tensor, value: Any) -> Tensor:
    """Fill with ``value`` in place."""
    v = value.item() if isinstance(value, Tensor) else value
    return apply_inplace(self, "fill_", lambda src: mul(src, 0.0) + v,
                         lambda: self.array.fill(v))


@register("copy_")
def copy_(self: Tensor, src: Any, non_blocking: bool = False) -> Tensor:
    """Copy ``src`` (broadcast, cast to this dtype) into this tensor in place; the gradient
    flows to ``src``."""
    s = to_tensor(src, self)
    try:
        shape = xp.broadcast_shapes(self.shape, s.shape)
    except ValueError:
        shape = None
    if shape != self.shape:
        raise RuntimeError(f"copy_: src of shape {tuple(s.shape)} cannot be broadcast to {tuple(self.shape)}")

    def graph_fn(src: Tensor) -> Tensor:
        return mul(src.detach(), 0.0) + to_dtype(s, self.dtype)

    def array_fn() -> None:
        self.array[...] = s.array

    return apply_inplace(self, "copy_", graph_fn, array_fn, (s,))


@register("clamp_", "clip_")
def clamp_(self: Tensor, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
    return apply_inplace(self, "clamp_", lambda src: clamp(src, min, max),
                         lambda: self.array.__setitem__(Ellipsis, clamp(self.detach(), min, max).array),
                         (min, max))


@register("neg_")
def neg_(self: Tensor) -> Tensor:
    return apply_inplace(self, "neg_", lambda src: -src, lambda: xp.negative(self.array, out=self.array))


@register("requires_grad_")
def _requires_grad_(self: Tensor, requires_grad: bool = True) -> Tensor:
    self.requires_grad = requires_grad
    return self


def _unary_inplace(name: str) -> None:
    def method(self: Tensor) -> Tensor:
        fn = getattr(Tensor, name[:-1])
        return apply_inplace(self, name, lambda src: fn(src), lambda: self.array.__setitem__(
            Ellipsis, fn(self.detach()).array))

    method.__name__ = name
    register(name)(method)


for _name in ("exp_", "log_", "sqrt_", "relu_", "sigmoid_", "tanh_", "abs_"):
    _unary_inplace(_name)


def _pow_(self: Tensor, exponent: Any) -> Tensor:
    return apply_inplace(self, "pow_", lambda src: src ** exponent,
                         lambda: self.array.__setitem__(Ellipsis, (self.detach() ** exponent).array))


register("pow_")(_pow_)


def _random_fill(name: str, draw: Any) -> None:
    def method(self: Tensor, *args: Any, generator: Any = None) -> Tensor:
        g = generator if generator is not None else backend.generator()
        values = draw(g, self.shape, *args).astype(self.dtype)
        # where, not src * 0 + values: that is nan where src holds inf or nan
        return apply_inplace(self, name, lambda src: where(const(xp.ones(self.shape, dtype=bool)), const(values), src),
                             lambda: self.array.__setitem__(Ellipsis, values))

    method.__name__ = name
    method.__doc__ = f"Fill in place with random samples (``{name}``, lamina's global generator)."
    register(name)(method)


_random_fill("normal_", lambda g, shape, mean=0.0, std=1.0: g.normal(mean, std, shape))
_random_fill("uniform_", lambda g, shape, a=0.0, b=1.0: g.uniform(a, b, shape))


@register("masked_fill_")
def masked_fill_(self: Tensor, mask: Tensor, value: Any) -> Tensor:
    """In-place ``masked_fill``."""
    from .indexing import masked_fill

    return apply_inplace(self, "masked_fill_", lambda src: masked_fill(src, mask, value),
                         lambda: self.array.__setitem__(Ellipsis, masked_fill(self.detach(), mask, value).array),
                         (value,))


@register("clamp_min")
def clamp_min(self: Tensor, min: Any) -> Tensor:  # noqa: A002
    return clamp(self, min=min)


@register("clamp_max")
def clamp_max(self: Tensor, max: Any) -> Tensor:  # noqa: A002
    return clamp(self, max=max)
