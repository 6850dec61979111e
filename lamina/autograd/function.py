"""``Function``: the base of every differentiable primitive, and its ``Context``.

A primitive subclasses :class:`Function` with two static methods:

- ``forward(ctx, *arrays, **options)`` computes on raw backend arrays and calls
  ``ctx.save_for_backward(...)`` with the arrays backward needs;
- ``backward(ctx, grad_output)`` receives a ``Tensor`` and returns one ``Tensor`` (or ``None``)
  per positional input, **computed with lamina's own differentiable operations**. Under
  ``backward(create_graph=True)`` those operations record a graph, which gives higher-order
  derivatives for free.

``ctx.saved_tensors`` hands back the saved arrays as Tensors: an input's own Tensor (so that a
second derivative flows into it), the output (wired to this node), or a constant.

Example:
    >>> import lamina
    >>> from lamina.autograd import Function
    >>> class Cube(Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x ** 3
    ...     @staticmethod
    ...     def backward(ctx, gy):
    ...         (x,) = ctx.saved_tensors
    ...         return gy * 3 * x * x
    >>> x = lamina.tensor(2.0, requires_grad=True)
    >>> Cube.apply(x).backward()
    >>> x.grad.item()
    12.0
"""

from __future__ import annotations

import contextlib
import contextvars
import weakref
from collections.abc import Iterator
from typing import Any

from .. import backend
from .grad_mode import is_grad_enabled
from .graph import Node, node_class
from .tensor import Tensor
from .torch_names import torch_name

__all__ = ["Function", "Context"]

# Where ``Function.apply`` reports each op it runs, inside :func:`_record_ops` (per thread and
# asyncio task, so a recording in one thread never sees, nor leaves behind, another's ops).
_RECORDER: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar("lamina_op_recorder", default=None)


@contextlib.contextmanager
def _record_ops() -> Iterator[list[tuple[type, tuple[Any, ...], Tensor, dict[str, Any]]]]:
    """Collect ``(Function class, inputs, output, options)`` of every op applied in this thread
    inside the block (for ``lamina.vis.graph``'s drawings of computational graphs and
    ``lamina.onnx``'s export)."""
    made: list[tuple[type, tuple[Any, ...], Tensor, dict[str, Any]]] = []
    token = _RECORDER.set(made)
    try:
        yield made
    finally:
        _RECORDER.reset(token)

_FREED = (
    "Trying to backward through the graph a second time (or directly access saved tensors after "
    "they have already been freed). Saved intermediate values of the graph are freed when you "
    "call .backward() or autograd.grad(). Specify retain_graph=True if you need to backward "
    "through the graph a second time or if you need to access saved tensors after calling backward."
)


class Context:
    """What a ``Function`` keeps between forward and backward."""

    def __init__(self, needs_input_grad: tuple[bool, ...]) -> None:
        self.needs_input_grad = needs_input_grad
        self._to_save: tuple[Any, ...] = ()
        self._saved: list[tuple[str, Any, Any, int]] | None = None  # (kind, payload, vc, version)
        self._node: weakref.ref[Node] | None = None
        self._freed = False

    def save_for_backward(self, *items: Any) -> None:
        """Keep ``items`` (arrays of the forward, or Tensors) for backward."""
        self._to_save = items

    # called by Function.apply once the output Tensor exists
    def _pack(self, inputs: tuple[Any, ...], output: Tensor) -> None:
        saved = []
        for item in self._to_save:
            if item is None:
                saved.append(("none", None, None, 0))
                continue
            if isinstance(item, Tensor):
                saved.append(("tensor", item, item._vc, item._vc[0]))
                continue
            for t in inputs:
                if isinstance(t, Tensor) and item is t.array:
                    saved.append(("tensor", t, t._vc, t._vc[0]))
                    break
            else:
                if item is output.array:
                    saved.append(("output", item, output._vc, output._vc[0]))
                else:
                    saved.append(("const", item, None, 0))
        self._to_save = ()
        self._saved = saved

    @property
    def saved_tensors(self) -> tuple[Tensor, ...]:
        if self._freed:
            raise RuntimeError(_FREED)
        if self._saved is None:  # apply was not recording (no grad needed): hand back constants
            return tuple(i if isinstance(i, Tensor) or i is None else Tensor._wrap(i)
                         for i in self._to_save)
        out = []
        for kind, payload, vc, version in self._saved:
            if vc is not None and vc[0] != version:
                shape = tuple(payload.shape)
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by an "
                    f"inplace operation: [Tensor of shape {shape}] is at version {vc[0]}; expected "
                    f"version {version} instead"
                    + (f" (saved by {self._node().name()})" if self._node and self._node() else "")
                )
            if kind == "tensor":
                out.append(payload)
            elif kind == "none":
                out.append(None)
            elif kind == "output":
                t = Tensor._wrap(payload, vc=vc)
                node = self._node() if self._node is not None else None
                if node is not None and is_grad_enabled():
                    t.grad_fn = node
                out.append(t)
            else:
                out.append(Tensor._wrap(payload))
        return tuple(out)

    def release(self) -> bool:
        """Free what the forward kept for backward, once backward has run (``retain_graph=False``):
        the saved tensors and every array a ``forward`` stored on ``ctx`` itself (``ctx.xpad``,
        ``ctx.arg`` …). Returns whether there was any; the node then swaps this context for
        :data:`FREED`. A context that kept only small settings (strides, shapes, dims) stays, so
        its node can run again, as in torch."""
        held = bool(self._saved)
        d = self.__dict__
        if not held and len(d) > len(_BOOKKEEPING):  # the forward stored settings or arrays on ctx
            held = any(_holds_array(v) for k, v in d.items() if k not in _BOOKKEEPING)
        if held:
            self.__dict__.clear()
            self._freed = True
            self._node = None
        self._saved = None
        self._to_save = ()
        return held


class _FreedContext:
    """What a node keeps in place of its context once backward has freed it: every use raises
    torch's "backward through the graph a second time" error."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # introspection (doctest, copy, inspect) asks for dunders
            raise AttributeError(name)
        raise RuntimeError(_FREED)

    def release(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "<freed Context>"


FREED = _FreedContext()

_BOOKKEEPING = frozenset(("needs_input_grad", "_to_save", "_saved", "_node", "_freed"))


def _holds_array(v: Any, depth: int = 0) -> bool:
    """Whether ``v`` is an array or a Tensor, or a tuple/list/dict holding one (nested twice at most)."""
    if isinstance(v, Tensor) or backend.is_array(v):
        return True
    if depth < 2 and isinstance(v, (tuple, list)):
        return any(_holds_array(i, depth + 1) for i in v)
    if depth < 2 and isinstance(v, dict):
        return any(_holds_array(i, depth + 1) for i in v.values())
    return False


class Function:
    """Base class of differentiable primitives; see the module docstring.

    A subclass that returns a view of its first input sets ``is_view = True``: the output then
    shares the input's version counter, so in-place changes through either are seen.
    """

    is_view = False
    # the Node subclass its nodes are made of, or None where a rule picks it per call (_node_rule)
    _node_type: type[Node] | None = None
    _node_rule: Any = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = torch_name(f"{cls.__module__}.{cls.__qualname__}")
        if callable(name):
            cls._node_type, cls._node_rule = None, name
        else:  # torch's name, or torch's for a user-defined autograd.Function: "<Class>Backward"
            cls._node_type, cls._node_rule = node_class(name or f"{cls.__name__}Backward"), None

    @staticmethod
    def forward(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad_output: Tensor) -> Any:
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Any, **options: Any) -> Tensor:
        """Run ``forward`` on the inputs' arrays and, if a gradient is needed, record a node."""
        # NOTE: this runs once per operation, so it is written for speed rather than brevity
        needs = []
        arrays = []
        any_need = False
        for t in inputs:
            if isinstance(t, Tensor):
                arrays.append(t.array)
                need = t._requires_grad or t.grad_fn is not None
                needs.append(need)
                any_need = any_need or need
            else:
                arrays.append(t)
                needs.append(False)
        record = any_need and is_grad_enabled()
        ctx = Context(tuple(needs) if record else (False,) * len(inputs))
        out = cls.forward(ctx, *arrays, **options)
        if type(out) is not _ndarray and type(out) not in _ARRAY_MODULES:  # a scalar, a list: as an ndarray
            out = backend.xp.asarray(out)
        result = Tensor._wrap(out)
        if cls.is_view and isinstance(inputs[0], Tensor) and backend.xp.may_share_memory(out, arrays[0]):
            result._vc = inputs[0]._vc
            result._is_view = record
        if record and out.dtype.kind == "f":  # integer and bool results are never differentiable
            nexts = []
            shapes = []
            for t, need in zip(inputs, needs):
                if need:
                    nexts.append(t.grad_fn if t.grad_fn is not None else t._get_accumulator())
                    shapes.append(t.array.shape)
                else:
                    nexts.append(None)
                    shapes.append(None)
            node_type = cls._node_type or node_class(cls._node_rule(arrays, options))
            node = node_type(cls, ctx, tuple(nexts), tuple(shapes))
            ctx._node = weakref.ref(node)
            ctx._pack(inputs, result)
            result.grad_fn = node
        rec = _RECORDER.get()
        if rec is not None:
            rec.append((cls, inputs, result, options))
        return result


_ndarray = backend.xp.ndarray
_ARRAY_MODULES = backend._ARRAY_MODULES
