"""Named intermediate activations of a model, in the spirit of torchvision's
``create_feature_extractor`` (built on forward hooks instead of FX tracing: nodes are module
names, the outputs of submodules).

Example:
    >>> import lamina
    >>> from lamina import models
    >>> m = models.resnet18().eval()
    >>> fx = models.create_feature_extractor(m, {"layer2": "mid", "layer4": "deep"})
    >>> out = fx(lamina.randn(1, 3, 64, 64))
    >>> out["mid"].shape, out["deep"].shape
    ((1, 128, 8, 8), (1, 512, 2, 2))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .. import nn
from ..autograd.tensor import Tensor

__all__ = ["create_feature_extractor", "get_graph_node_names", "FeatureExtractor"]


class _Done(Exception):
    """Raised by the last hook: the rest of the forward pass is not needed."""


def get_graph_node_names(model: nn.Module) -> tuple[list[str], list[str]]:
    """The names usable as ``return_nodes``: every submodule's dotted name, in registration order
    (a pair ``(train_nodes, eval_nodes)`` as torchvision's; here both lists are the same)."""
    names = [n for n, _ in model.named_modules() if n]
    return names, list(names)


class FeatureExtractor(nn.Module):
    """Runs ``model`` and returns ``{out_name: output of the module named node}``.

    It shares ``model``'s submodules (same parameters, same ``state_dict`` keys) and stops the
    forward pass as soon as every requested node has been computed.
    """

    def __init__(self, model: nn.Module, return_nodes: Sequence[str] | Mapping[str, str]) -> None:
        super().__init__()
        nodes = dict(return_nodes) if isinstance(return_nodes, Mapping) else {n: n for n in return_nodes}
        if not nodes:
            raise ValueError("create_feature_extractor: return_nodes is empty")
        known = dict(model.named_modules())
        for node in nodes:
            if node not in known or not node:
                sample = ", ".join(get_graph_node_names(model)[0][:8])
                raise ValueError(f"create_feature_extractor: {node!r} is not a submodule of {type(model).__name__} "
                                 f"(nodes are module names: {sample}, …)")
        for name, child in model.named_children():
            self.add_module(name, child)
        object.__setattr__(self, "_model", model)
        self.return_nodes = nodes
        self._targets = {known[n]: n for n in nodes}
        if len(self._targets) != len(nodes):
            raise ValueError("create_feature_extractor: two return_nodes name the same module")

    def train(self, mode: bool = True) -> FeatureExtractor:
        super().train(mode)
        self._model.train(mode)  # the root's own flag (GoogLeNet reads it)
        return self

    def forward(self, *args: Any, **kwargs: Any) -> dict[str, Tensor]:
        found: dict[str, Any] = {}

        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            found[self._targets[module]] = output
            if len(found) == len(self._targets):
                raise _Done

        handles = [m.register_forward_hook(hook) for m in self._targets]
        try:
            self._model(*args, **kwargs)
        except _Done:
            pass
        finally:
            for h in handles:
                h.remove()
        missing = [n for n in self.return_nodes if n not in found]
        if missing:
            raise RuntimeError(f"create_feature_extractor: modules {missing} were not called by the forward pass")
        return {out: found[node] for node, out in self.return_nodes.items()}


def create_feature_extractor(model: nn.Module, return_nodes: Sequence[str] | Mapping[str, str]) -> FeatureExtractor:
    """A module returning intermediate activations of ``model`` by name.

    Args:
        model: any lamina module.
        return_nodes: module names (``'layer3'``, ``'features.7'``), or a dict mapping them to the
            keys of the returned dict.

    Returns:
        a :class:`FeatureExtractor`; calling it returns a dict of tensors in ``return_nodes``
        order. Gradients flow through the returned tensors as usual.
    """
    return FeatureExtractor(model, return_nodes)
