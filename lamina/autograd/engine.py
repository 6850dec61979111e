"""The backward engine: one iterative pass over the graph in reverse topological order.

No recursion anywhere, so a chain of any depth (100,000 ops and more) works. Gradients that
reach a node along several paths are summed before the node runs; each node runs once.
"""

from __future__ import annotations

import contextlib
import contextvars
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from .. import backend
from .anomaly_mode import _state as _anomaly
from .grad_mode import set_grad_enabled
from .graph import AccumulateGrad, Node
from .tensor import Tensor

__all__ = ["run_backward", "grad", "watch_backward"]

# (calls, keep_graph) inside watch_backward: per thread and asyncio task
_WATCH: contextvars.ContextVar[tuple[list[Any], bool] | None] = contextvars.ContextVar("lamina_backward_watch",
                                                                                       default=None)


@contextlib.contextmanager
def watch_backward(keep_graph: bool = False) -> Iterator[list[Any]]:
    """Record the tensors that ``backward()`` is called on in this thread inside the block; with
    ``keep_graph``, calls that leave ``retain_graph`` unset keep the graph (as ``retain_graph=True``).

    For optimizers that take a torch-style closure (``zero_grad(); loss.backward(); return loss``)
    yet need the loss's graph afterwards (Newton's Hessian-vector products)."""
    calls: list[Any] = []
    token = _WATCH.set((calls, keep_graph))
    try:
        yield calls
    finally:
        _WATCH.reset(token)

xp = backend.xp


def _as_tuple(x: Any) -> tuple[Any, ...]:
    if x is None:
        return ()
    if isinstance(x, Tensor):
        return (x,)
    return tuple(x)


def _root_grad(t: Tensor, g: Any, i: int) -> Tensor:
    if g is None:
        if t.array.size != 1:
            raise RuntimeError(
                f"grad can be implicitly created only for scalar outputs (output {i} has shape "
                f"{tuple(t.shape)}); pass gradient= / grad_outputs= of that shape"
            )
        return Tensor._wrap(backend.get_array_module(t.array).ones(t.shape, dtype=t.dtype))
    if not isinstance(g, Tensor):
        g = Tensor._wrap(backend.get_array_module(t.array, g).asarray(g, dtype=t.dtype))
    if g.shape != t.shape:
        raise RuntimeError(
            f"Mismatch in shape: grad_output[{i}] has a shape of {tuple(g.shape)} and output[{i}] "
            f"has a shape of {tuple(t.shape)}."
        )
    if g.dtype != t.dtype:
        raise RuntimeError(
            f"backward: grad_output[{i}] has dtype {g.dtype} but output[{i}] has dtype {t.dtype}"
        )
    return g


def _root_node(t: Tensor, i: int) -> Node:
    if t.grad_fn is not None:
        return t.grad_fn
    if t.requires_grad:
        return t._get_accumulator()
    raise RuntimeError(
        f"element {i} of tensors does not require grad and does not have a grad_fn"
    )


def _run_hooks(hooks: dict[int, Any] | None, g: Tensor) -> Tensor:
    if hooks:
        for hook in list(hooks.values()):
            r = hook(g)
            if r is not None:
                g = r
    return g


def _check_grad(node: Node, i: int, g: Tensor) -> None:
    shape = node.input_shapes[i]
    if shape is not None and g.shape != shape:
        raise RuntimeError(
            f"Function {node.name()} returned an invalid gradient at index {i} - got "
            f"{list(g.shape)} but expected shape compatible with {list(shape)}"
        )


def _execute(
    roots: Sequence[Tensor],
    root_grads: Sequence[Tensor],
    retain_graph: bool,
    create_graph: bool,
    capture: dict[Node, list[int]] | None,
    accumulate_into: set[Node] | None,
) -> dict[Node, Tensor]:
    """Walk the graph. ``capture`` maps nodes whose incoming gradient the caller wants (for
    ``autograd.grad``); leaves accumulate into ``.grad`` only when ``accumulate_into`` says so
    (None = every leaf)."""
    buffers: dict[Node, Tensor] = {}
    root_nodes: list[Node] = []
    for i, (t, g) in enumerate(zip(roots, root_grads)):
        node = _root_node(t, i)
        buffers[node] = buffers[node] + g if node in buffers else g
        if node not in root_nodes:
            root_nodes.append(node)

    # dependency counts: how many edges from reachable nodes point at each node
    deps: dict[Node, int] = {n: 0 for n in root_nodes}
    stack = list(root_nodes)
    while stack:
        n = stack.pop()
        for nxt in n.edges:
            if nxt is None:
                continue
            if nxt in deps:
                deps[nxt] += 1
            else:
                deps[nxt] = 1
                stack.append(nxt)

    needed: set[Node] | None = None
    if capture is not None:  # autograd.grad: run only nodes that lead to a captured node
        parents: dict[Node, list[Node]] = {}
        for n in deps:
            for nxt in n.edges:
                if nxt is not None:
                    parents.setdefault(nxt, []).append(n)
        needed = set()
        stack = [n for n in capture if n in deps]
        while stack:
            n = stack.pop()
            if n in needed:
                continue
            needed.add(n)
            stack.extend(parents.get(n, ()))

    captured: dict[Node, Tensor] = {}
    ready = [n for n in root_nodes if deps[n] == 0]
    with set_grad_enabled(create_graph):
        while ready:
            node = ready.pop()
            g = buffers.pop(node, None)
            run = g is not None and (needed is None or node in needed)
            if run:
                g = _run_hooks(node.pre_hooks, g)
                if isinstance(node, AccumulateGrad):
                    g = _run_hooks(node.variable._hooks, g)
                if node.retained is not None:
                    t = node.retained()
                    if t is not None:
                        t.grad = g if create_graph else Tensor._wrap(g.array.copy())
                if capture is not None and node in capture:
                    captured[node] = g
            if isinstance(node, AccumulateGrad):
                if run and capture is None and (accumulate_into is None or node in accumulate_into):
                    _accumulate(node.variable, g, create_graph)
                    post = node.variable._post_acc_hooks
                    if post:
                        for hook in list(post.values()):
                            hook(node.variable)
                continue
            if run and (capture is None or node not in capture or _needed_beyond(node, needed)):
                grads = node.apply(g)
            else:
                grads = (None,) * len(node.edges)
            if not retain_graph:
                node.release()
            for i, (nxt, gi) in enumerate(zip(node.edges, grads)):
                if nxt is None:
                    continue
                if gi is not None:
                    if not isinstance(gi, Tensor):
                        raise RuntimeError(f"{node.name()} returned a non-Tensor gradient at {i}")
                    _check_grad(node, i, gi)
                    if _anomaly["enabled"] and _anomaly["check_nan"] and gi.dtype.kind == "f" \
                            and bool(xp.isnan(gi.array).any()):
                        raise RuntimeError(f"Function '{node.name()}' returned nan values in its {i}th output.")
                    buffers[nxt] = buffers[nxt] + gi if nxt in buffers else gi
                deps[nxt] -= 1
                if deps[nxt] == 0:
                    ready.append(nxt)
    return captured


def _needed_beyond(node: Node, needed: set[Node] | None) -> bool:
    """Whether some captured node lies further down from ``node``."""
    if needed is None:
        return True
    return any(n is not None and n in needed for n in node.edges)


def _accumulate(leaf: Tensor, g: Tensor, create_graph: bool) -> None:
    if g.dtype != leaf.dtype:
        raise RuntimeError(f"backward: gradient of dtype {g.dtype} for a leaf of dtype {leaf.dtype}")
    if leaf.grad is None:
        # a copy: the incoming array may be shared with other gradients or be a read-only view
        leaf.grad = g if create_graph else Tensor._wrap(backend.get_array_module(g.array).array(g.array, copy=True))
    elif create_graph or leaf.grad.grad_fn is not None:
        leaf.grad = leaf.grad + g
    else:
        leaf.grad.array += g.array
        leaf.grad._bump_version()


def run_backward(
    tensors: Sequence[Tensor],
    grad_tensors: Sequence[Any],
    retain_graph: bool | None = None,
    create_graph: bool = False,
    inputs: Any = None,
) -> None:
    """Backward from ``tensors`` seeded with ``grad_tensors``; used by ``Tensor.backward``."""
    tensors = _as_tuple(tensors)
    grads = tuple(_root_grad(t, g, i) for i, (t, g) in enumerate(zip(tensors, grad_tensors)))
    watch = _WATCH.get()
    if watch is not None:
        watch[0].extend(tensors)
        if retain_graph is None and watch[1]:
            retain_graph = True
    if retain_graph is None:
        retain_graph = create_graph
    accumulate_into = None
    if inputs is not None:
        inputs = _as_tuple(inputs)
        if not inputs:
            raise RuntimeError("backward: 'inputs' argument to backward() cannot be empty")
        accumulate_into = set()
        for t in inputs:
            if not t.is_leaf:
                raise RuntimeError("backward: inputs= must be leaf tensors in lamina")
            accumulate_into.add(t._get_accumulator())
    _execute(tensors, grads, retain_graph, create_graph, None, accumulate_into)


def grad(
    outputs: Any,
    inputs: Any,
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    only_inputs: bool = True,
    allow_unused: bool | None = None,
    is_grads_batched: bool = False,
    materialize_grads: bool = False,
) -> tuple[Tensor | None, ...]:
    """Gradients of ``outputs`` with respect to ``inputs``, returned (``.grad`` is untouched).

    Matches ``torch.autograd.grad``. With ``create_graph=True`` the returned gradients carry a
    graph, so they can be differentiated again (Hessian-vector products, double backprop).

    Example:
        >>> import lamina
        >>> x = lamina.tensor(3.0, requires_grad=True)
        >>> (g,) = lamina.autograd.grad(x ** 3, x, create_graph=True)
        >>> (h,) = lamina.autograd.grad(g, x)
        >>> g.item(), h.item()
        (27.0, 18.0)
    """
    if not only_inputs:
        warnings.warn("only_inputs argument is deprecated and is ignored now (defaults to True). To "
                      "accumulate gradient for other parts of the graph, please use lamina.autograd.backward.",
                      FutureWarning, stacklevel=2)
    if is_grads_batched:
        raise NotImplementedError("grad: is_grads_batched=True (torch's vmap over grad_outputs) is not implemented")
    outputs = _as_tuple(outputs)
    inputs = _as_tuple(inputs)
    if not inputs:
        raise RuntimeError("grad requires at least one input")
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    else:
        grad_outputs = _as_tuple(grad_outputs) if not isinstance(grad_outputs, Tensor) else (grad_outputs,)
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(
            f"grad: got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs"
        )
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad")
    grads = tuple(_root_grad(t, g, i) for i, (t, g) in enumerate(zip(outputs, grad_outputs)))
    if retain_graph is None:
        retain_graph = create_graph
    capture: dict[Node, list[int]] = {}
    for i, t in enumerate(inputs):
        node = t.grad_fn if t.grad_fn is not None else t._get_accumulator()
        capture.setdefault(node, []).append(i)
    captured = _execute(outputs, grads, retain_graph, create_graph, capture, None)
    result: list[Tensor | None] = [None] * len(inputs)
    for node, idxs in capture.items():
        for i in idxs:
            g = captured.get(node)
            if g is None:
                if materialize_grads:
                    a = inputs[i].array
                    g = Tensor._wrap(backend.get_array_module(a).zeros(a.shape, dtype=a.dtype))
                elif not allow_unused:
                    raise RuntimeError(
                        f"One of the differentiated Tensors (input {i}) appears to not have been "
                        "used in the graph. Set allow_unused=True if this is the desired behavior."
                    )
            result[i] = g
    return tuple(result)
