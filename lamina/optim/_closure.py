"""The two closure conventions of the closure-taking optimizers (LBFGS, Newton, NonlinearCG).

torch's (``LBFGS``'s): the closure zeroes the gradients, computes the loss, calls
``loss.backward()`` and returns the loss. The other (scipy's ``fun``): the closure only returns
the loss, with its graph. Each optimizer here takes both and gives the same steps:

- a first-order method needs ``p.grad``: when the closure did not call ``backward()``, the
  optimizer calls it (:func:`loss_and_grad`);
- ``Newton`` needs the loss's graph for Hessian-vector products, which a plain ``backward()``
  frees: while its closure runs, ``backward()`` calls that leave ``retain_graph`` unset keep
  the graph (``lamina.autograd.engine.watch_backward``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..autograd.engine import watch_backward
from ..autograd.grad_mode import enable_grad
from ..autograd.tensor import Tensor

__all__ = ["watch_backward", "check_loss", "loss_and_grad"]


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
