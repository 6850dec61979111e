"""The two closure conventions of the closure-taking optimizers (LBFGS, Newton, NonlinearCG).

torch's (``LBFGS``'s): the closure zeroes the gradients, computes the loss, calls
``loss.backward()`` and returns the loss. The other (scipy's ``fun``): the closure only returns
the loss, with its graph. Each optimizer here takes both and gives the same steps:

- a first-order method needs ``p.grad``: when the closure did not call ``backward()``, the
  optimizer calls it (:func:`loss_and_grad`);
- ``Newton`` needs the loss's graph for Hessian-vector products, which a plain ``backward()``
  frees: while its closure runs, ``backward()`` calls that leave ``retain_graph`` unset keep
  the graph (:func:`watch_backward`).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..autograd.grad_mode import enable_grad
from ..autograd.tensor import Tensor

__all__ = ["watch_backward", "check_loss", "loss_and_grad"]


class _Watch(threading.local):
    calls: list[Tensor] | None = None  # the tensors backward() was called on, while watched
    keep_graph = False


_watch = _Watch()
_install_lock = threading.Lock()
_installed = False


def _install() -> None:
    """Wrap ``Tensor.backward`` once: outside a watch (and in other threads) it behaves as before."""
    global _installed
    with _install_lock:
        if _installed:
            return
        original = Tensor.backward

        @functools.wraps(original)
        def backward(self: Tensor, gradient: Tensor | None = None, retain_graph: bool | None = None,
                     create_graph: bool = False, inputs: Any = None) -> None:
            calls = _watch.calls
            if calls is not None:
                calls.append(self)
                if retain_graph is None and _watch.keep_graph:
                    retain_graph = True
            original(self, gradient, retain_graph, create_graph, inputs)

        Tensor.backward = backward  # type: ignore[method-assign]
        _installed = True


@contextmanager
def watch_backward(keep_graph: bool = False) -> Iterator[list[Tensor]]:
    """Record the ``Tensor.backward()`` calls made in this thread inside the block; with
    ``keep_graph``, those that leave ``retain_graph`` unset keep the graph (as ``retain_graph=True``)."""
    _install()
    prev = (_watch.calls, _watch.keep_graph)
    calls: list[Tensor] = []
    _watch.calls, _watch.keep_graph = calls, keep_graph
    try:
        yield calls
    finally:
        _watch.calls, _watch.keep_graph = prev


def check_loss(loss: Any, op: str) -> Tensor:
    """The closure's loss, checked: a scalar lamina Tensor with a graph."""
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        raise RuntimeError(f"{op}: the closure must return the scalar loss as a lamina Tensor, "
                           f"got {type(loss).__name__}")
    if not loss.requires_grad:
        raise RuntimeError(f"{op}: the loss returned by the closure has no graph and the closure did not call "
                           "backward() (was it computed under no_grad, or detached?)")
    return loss


def loss_and_grad(closure: Callable[[], Any], params: list[Tensor], op: str) -> Any:
    """Run ``closure`` with grad enabled and make ``p.grad`` the gradient of its loss: the
    closure's own ``backward()`` (torch's convention), or, if it only returned the loss, one run
    here on fresh gradients. Returns the closure's loss."""
    with enable_grad(), watch_backward() as calls:
        loss = closure()
    if not calls:
        check_loss(loss, op)
        for p in params:
            p.grad = None
        with enable_grad():
            loss.backward()
    return loss
