"""Mapping an activation back to pixel space: the Zeiler–Fergus deconvnet and guided
backpropagation (Springenberg et al., 2015), built on full backward hooks of the ``nn.ReLU``
modules, so the model itself is not changed (the hooks are removed afterwards).

The three rules differ only in what a ReLU passes backwards, for forward input ``x`` and
incoming gradient ``g``:

===================  ==================================
backpropagation      ``g · [x > 0]``
deconvnet            ``ReLU(g)`` (= ``g · [g > 0]``)
guided backprop      ``ReLU(g) · [x > 0]``
===================  ==================================

Max pooling passes gradients back through its recorded switches in all three, as in Zeiler &
Fergus. ReLUs applied as functions (``F.relu`` inside ``forward``) cannot be hooked: such a
model raises an error naming the problem.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

from .. import nn
from ..autograd import grad
from ..nn import functional as F
from ._common import as_batch, find_layers, forward_capture, model_dtype, resolve_targets, select_scores, unit_score
from .attribution import evaluation_mode

__all__ = ["relu_backward_rule", "guided_backprop", "deconvnet", "RULES"]

RULES = ("backprop", "deconvnet", "guided")


@contextmanager
def relu_backward_rule(model: nn.Module, rule: str) -> Any:
    """Within the block, every ``nn.ReLU`` of ``model`` passes gradients back by ``rule``
    (``'backprop'``, ``'deconvnet'`` or ``'guided'``).

    Example:
        >>> import lamina
        >>> net = lamina.nn.Sequential(lamina.nn.ReLU())
        >>> x = lamina.tensor([[-1.0, 2.0]], requires_grad=True)
        >>> with relu_backward_rule(net, "deconvnet"):
        ...     (g,) = lamina.autograd.grad((net(x) * lamina.tensor([[3.0, -4.0]])).sum(), x)
        >>> g.tolist()
        [[3.0, 0.0]]
    """
    if rule not in RULES:
        raise ValueError(f"relu_backward_rule: rule must be one of {RULES}, got {rule!r}")
    relus = [m for _, m in find_layers(model, nn.ReLU)]
    if rule != "backprop" and not relus:
        raise ValueError(f"relu_backward_rule: the model has no nn.ReLU modules to apply the {rule!r} rule to "
                         "(ReLUs called as functions cannot be hooked)")

    def hook(mod: nn.Module, grad_input: tuple[Any, ...], grad_output: tuple[Any, ...]) -> Any:
        if grad_input[0] is None or grad_output is None:
            # grad_output is None when the seed is this ReLU's own output (a forward hook sees it
            # before the backward wrapping): the seed is a non-negative one-hot at an active unit,
            # so every rule agrees with plain backpropagation there.
            return None
        if rule == "deconvnet":
            return (F.relu(grad_output[0]),)
        return (F.relu(grad_input[0]),)  # grad_input = g·[x>0]; guided keeps its positive part

    handles = [m.register_full_backward_hook(hook) for m in relus] if rule != "backprop" else []
    try:
        yield model
    finally:
        for h in handles:
            h.remove()


def _backward_to_input(model: nn.Module, x: Any, rule: str, target: Any, layer: Any, unit: int | None,
                       op: str) -> Any:
    xb = as_batch(x, op, model_dtype(model)).requires_grad_()
    with evaluation_mode(model), relu_backward_rule(model, rule):
        if layer is None:
            out = model(xb)
            t = resolve_targets(target, out.detach().array, op)
            score = select_scores(out, t)
        else:
            _, act = forward_capture(model, xb, layer, op)
            score, _ = unit_score(act, unit, op)
        (g,) = grad(score, xb)
    return g.array


def guided_backprop(model: nn.Module, x: Any, target: Any = None, layer: Any = None, unit: int | None = None) -> Any:
    """Guided backpropagation of a class logit (default) or of a unit to the input pixels.

    Args:
        model: a network whose ReLUs are ``nn.ReLU`` modules.
        x: an image ``(C, H, W)`` or a batch ``(N, C, H, W)``.
        target: the class(es) when ``layer`` is None (default: the predicted class).
        layer: a layer (name or module): reconstruct one of its units instead of a logit.
        unit: the channel of ``layer``; its strongest activation per image is propagated (the
            others are zeroed, as in Zeiler & Fergus). None: the sum of the whole layer.

    Shape:
        Returns ``(N, C, H, W)``.
    """
    return _backward_to_input(model, x, "guided", target, layer, unit, "guided_backprop")


def deconvnet(model: nn.Module, x: Any, target: Any = None, layer: Any = None, unit: int | None = None) -> Any:
    """The Zeiler–Fergus deconvnet reconstruction of a class logit or a unit in pixel space:
    ReLUs rectify the backward signal, pooling uses its switches, convolutions their transposes.

    Args and shape as :func:`guided_backprop`.
    """
    return _backward_to_input(model, x, "deconvnet", target, layer, unit, "deconvnet")
