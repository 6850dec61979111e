"""Graph nodes: one ``Node`` per recorded operation, one ``AccumulateGrad`` per leaf.

A node knows the ``Function`` that made it, the context that function saved, and its edges: for
each input, the node that produced it (or the leaf's accumulator, or ``None`` for an input that
needs no gradient). The edges are fixed when the node is made, so later in-place rebasing of a
tensor never rewires an existing graph. ``next_functions`` shows them as torch does, ``(node,
output index)`` pairs; every lamina node has one output, so the index is 0.

Each ``Function`` class records its nodes as instances of its own ``Node`` subclass, named as
torch names that op's node (``MulBackward0``; see :mod:`.torch_names`), so that ``grad_fn.name()``
and ``type(grad_fn).__name__`` read as torch's.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .function import Context, Function
    from .tensor import Tensor

__all__ = ["Node", "AccumulateGrad", "RemovableHandle", "node_class"]


class RemovableHandle:
    """Returned by ``register_*hook``; ``remove()`` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: dict[int, Any]) -> None:
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


class Node:
    """A recorded operation: applies its Function's backward to the output gradient."""

    __slots__ = (
        "fn", "ctx", "edges", "input_shapes", "pre_hooks", "retained", "__weakref__",
    )

    def __init__(
        self,
        fn: type[Function] | None,
        ctx: Context | None,
        edges: tuple[Node | None, ...],
        input_shapes: tuple[tuple[int, ...] | None, ...] = (),
    ) -> None:
        self.fn = fn
        self.ctx = ctx
        self.edges = edges  # what the engine walks; next_functions is torch's view of it
        self.input_shapes = input_shapes  # to check the gradients backward returns
        self.pre_hooks: dict[int, Callable[[Tensor], Tensor | None]] | None = None
        self.retained: weakref.ref[Tensor] | None = None  # non-leaf tensor with retain_grad()

    def name(self) -> str:
        return type(self).__name__

    @property
    def next_functions(self) -> tuple[tuple[Node | None, int], ...]:
        """torch's view of the edges: ``(node, 0)`` per input, ``(None, 0)`` where no gradient flows."""
        return tuple((n, 0) for n in self.edges)

    def __repr__(self) -> str:
        return f"<{self.name()}>"

    def apply(self, grad: Tensor) -> tuple[Tensor | None, ...]:
        assert self.fn is not None and self.ctx is not None
        out = self.fn.backward(self.ctx, grad)
        if not isinstance(out, tuple):
            out = (out,)
        if len(out) != len(self.edges):
            raise RuntimeError(
                f"{self.fn.__name__}.backward returned {len(out)} gradients but the op has "
                f"{len(self.edges)} inputs"
            )
        return out

    def release(self) -> None:
        """Free the arrays saved for backward (after a backward without ``retain_graph``)."""
        if self.ctx is not None and self.ctx.release():
            from .function import FREED  # function.py imports this module

            self.ctx = FREED

    def add_pre_hook(self, hook: Callable[[Tensor], Tensor | None]) -> RemovableHandle:
        if self.pre_hooks is None:
            self.pre_hooks = {}
        handle = RemovableHandle(self.pre_hooks)
        self.pre_hooks[handle.id] = hook
        return handle


class AccumulateGrad(Node):
    """The sink of a leaf tensor: adds the incoming gradient into ``leaf.grad``."""

    __slots__ = ("variable",)

    def __init__(self, variable: Tensor) -> None:
        super().__init__(None, None, ())
        self.variable = variable

    def name(self) -> str:
        return "AccumulateGrad"

    def apply(self, grad: Tensor) -> tuple[Tensor | None, ...]:  # pragma: no cover - engine handles it
        return ()


_NODE_CLASSES: dict[str, type[Node]] = {}


def node_class(name: str) -> type[Node]:
    """The ``Node`` subclass called ``name`` (one per name, made on first use)."""
    cls = _NODE_CLASSES.get(name)
    if cls is None:
        cls = _NODE_CLASSES[name] = type(name, (Node,), {"__slots__": (), "__module__": __name__})
    return cls
