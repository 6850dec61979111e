"""Transfer learning and fine-tuning helpers: freeze / unfreeze by module or name pattern, a new
classifier head, discriminative learning rates by depth, and frozen batch norm.

Example:
    >>> import lamina
    >>> from lamina import models
    >>> m = models.resnet18()
    >>> head = models.replace_head(m, num_classes=5)
    >>> frozen = models.freeze(m)
    >>> models.unfreeze(m, "fc.*")
    ['fc.weight', 'fc.bias']
    >>> opt = lamina.optim.SGD(models.trainable_parameters(m), lr=0.01)
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from typing import Any

from .. import backend, nn
from ..autograd.tensor import Tensor

__all__ = ["freeze", "unfreeze", "trainable_parameters", "replace_head", "discriminative_lr_groups",
           "FrozenBatchNorm2d", "freeze_batchnorm"]


def _select(model: nn.Module, patterns: str | Iterable[str] | None, what: str) -> list[tuple[str, Any]]:
    named = list(model.named_parameters())
    if patterns is None:
        return named
    pats = [patterns] if isinstance(patterns, str) else list(patterns)
    chosen = [(n, p) for n, p in named if any(fnmatch.fnmatchcase(n, pat) for pat in pats)]
    for pat in pats:
        if not any(fnmatch.fnmatchcase(n, pat) for n, _ in named):
            raise ValueError(f"{what}: pattern {pat!r} matches no parameter of {type(model).__name__} "
                             f"(names look like {named[0][0]!r})" if named else f"{what}: the model has no parameters")
    return chosen


def freeze(model: nn.Module, patterns: str | Iterable[str] | None = None) -> list[str]:
    """Stop training parameters: ``requires_grad = False``.

    Args:
        model: the model, or a submodule (``freeze(model.features)``).
        patterns: glob patterns on parameter names (``'layer[12].*'``, ``'*.bn*.weight'``); ``None``
            freezes every parameter of ``model``.

    Returns:
        the names of the parameters frozen.

    Frozen parameters get no gradient, so optimizers leave them bit-identical. Batch-norm running
    statistics still update in training mode: see :func:`freeze_batchnorm`.
    """
    chosen = _select(model, patterns, "freeze")
    for _, p in chosen:
        p.requires_grad_(False)
    return [n for n, _ in chosen]


def unfreeze(model: nn.Module, patterns: str | Iterable[str] | None = None) -> list[str]:
    """Train parameters again (``requires_grad = True``); arguments as :func:`freeze`."""
    chosen = _select(model, patterns, "unfreeze")
    for _, p in chosen:
        p.requires_grad_(True)
    return [n for n, _ in chosen]


def trainable_parameters(model: nn.Module) -> list[Any]:
    """The parameters with ``requires_grad`` (what to hand the optimizer)."""
    return [p for p in model.parameters() if p.requires_grad]


_HEAD_NAMES = ("fc", "classifier", "head")


def _find_head(model: nn.Module) -> tuple[nn.Module, str, nn.Linear]:
    for name in _HEAD_NAMES:
        m = model._modules.get(name)
        if isinstance(m, nn.Linear):
            return model, name, m
        if isinstance(m, nn.Sequential):
            keys = list(m._modules)
            for k in reversed(keys):
                if isinstance(m._modules[k], nn.Linear):
                    return m, k, m._modules[k]
    raise ValueError(f"replace_head: found no linear classifier in {type(model).__name__} (looked for "
                     f"attributes {_HEAD_NAMES}); pass name= the dotted name of the layer to replace")


def replace_head(model: nn.Module, num_classes: int, name: str | None = None) -> nn.Linear:
    """Replace the final linear classifier by a freshly initialized ``Linear(in_features,
    num_classes)`` (the auxiliary classifiers of GoogLeNet too).

    Args:
        model: a classification model (``fc``, ``classifier`` or ``head``, a ``Linear`` or a
            ``Sequential`` ending in one, as torchvision's models).
        num_classes: classes of the new task.
        name: dotted name of the layer to replace, if not found automatically.

    Returns:
        the new head.
    """
    if name is not None:
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        old = parent._modules.get(attr)
        if not isinstance(old, nn.Linear):
            raise ValueError(f"replace_head: {name!r} is not a Linear layer (got {type(old).__name__})")
    else:
        parent, attr, old = _find_head(model)
    new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None, dtype=old.weight.dtype)
    setattr(parent, attr, new)
    for aux in ("aux1", "aux2"):  # GoogLeNet's auxiliary classifiers
        a = model._modules.get(aux)
        if a is not None and isinstance(a._modules.get("fc2"), nn.Linear):
            a.fc2 = nn.Linear(a.fc2.in_features, num_classes, dtype=a.fc2.weight.dtype)
    return new


def discriminative_lr_groups(model: nn.Module, lr: float, decay: float = 2.6,
                             groups: Sequence[str | Sequence[str]] | None = None, include_frozen: bool = False,
                             **options: Any) -> list[dict[str, Any]]:
    """Optimizer parameter groups whose learning rate grows with depth (Howard & Ruder, 2018):
    the last group gets ``lr``, the one before ``lr/decay``, then ``lr/decay²`` …

    Args:
        model: the model.
        lr: learning rate of the deepest group (the head).
        decay: ratio between consecutive groups.
        groups: module-name prefixes from input to output, one entry (a prefix or a list of
            prefixes) per group; by default each top-level child of ``model`` that holds
            trainable parameters is a group, in registration order.
        include_frozen: keep parameters with ``requires_grad=False`` in their groups (no gradient,
            so no update until they are unfrozen: what ``lamina.train.GradualUnfreezing`` needs
            for a run that can be resumed).
        options: further keys for every group (``momentum``, ``weight_decay`` …).

    Returns:
        a list of ``{'params': [...], 'lr': ...}`` for any ``lamina.optim`` optimizer. Frozen
        parameters are left out unless ``include_frozen``.
    """
    if decay <= 0:
        raise ValueError(f"discriminative_lr_groups: decay must be positive, got {decay}")
    named = [(n, p) for n, p in model.named_parameters() if include_frozen or p.requires_grad]
    if groups is None:
        groups = [name for name, _ in model.named_children()]
    prefixes = [[g] if isinstance(g, str) else list(g) for g in groups]

    def owner(n: str) -> int | None:
        for i, pre in enumerate(prefixes):
            if any(n == q or n.startswith(q + ".") for q in pre):
                return i
        return None

    buckets: list[list[Any]] = [[] for _ in prefixes]
    missing = []
    for n, p in named:
        i = owner(n)
        if i is None:
            missing.append(n)
        else:
            buckets[i].append(p)
    if missing:
        raise ValueError(f"discriminative_lr_groups: parameters {missing[:3]} belong to no group {groups}")
    kept = [b for b in buckets if b]
    return [dict(params=b, lr=lr / decay ** (len(kept) - 1 - i), **options) for i, b in enumerate(kept)]


class FrozenBatchNorm2d(nn.Module):
    """Batch norm with fixed statistics and affine parameters (``torchvision.ops.FrozenBatchNorm2d``):
    ``y = (x − running_mean)/√(running_var + eps)·weight + bias``, in training mode too.

    All four are buffers (no gradient, unchanged by training). Difference from torchvision: a
    ``num_batches_tracked`` buffer is kept, so a ``BatchNorm2d`` state dict loads with ``strict=True``.

    Shape:
        ``(N, C, H, W)`` → same.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, dtype: Any = None) -> None:
        super().__init__()
        dt = backend.to_dtype(dtype)
        xp = backend.xp
        self.num_features, self.eps = num_features, eps
        self.register_buffer("weight", Tensor._wrap(xp.ones(num_features, dtype=dt)))
        self.register_buffer("bias", Tensor._wrap(xp.zeros(num_features, dtype=dt)))
        self.register_buffer("running_mean", Tensor._wrap(xp.zeros(num_features, dtype=dt)))
        self.register_buffer("running_var", Tensor._wrap(xp.ones(num_features, dtype=dt)))
        self.register_buffer("num_batches_tracked", Tensor._wrap(xp.zeros((), dtype=xp.int64)))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"FrozenBatchNorm2d: expected input (N, {self.num_features}, H, W), got "
                             f"{tuple(x.shape)}")
        xp = backend.xp
        scale = self.weight.array / xp.sqrt(self.running_var.array + self.eps)
        shift = self.bias.array - self.running_mean.array * scale
        return x * Tensor._wrap(scale.reshape(1, -1, 1, 1).astype(x.dtype)) + \
            Tensor._wrap(shift.reshape(1, -1, 1, 1).astype(x.dtype))

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


def freeze_batchnorm(model: nn.Module) -> int:
    """Replace every ``BatchNorm2d`` of ``model`` that tracks running statistics (in place) by a
    :class:`FrozenBatchNorm2d` holding its current statistics and affine parameters: normalization
    then stays that of the pretrained network in training mode too (small fine-tuning batches
    give poor statistics).

    Returns:
        the number of layers replaced.
    """
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):
            if isinstance(child, nn.BatchNorm2d) and child.running_mean is not None and child.running_var is not None:
                frozen = FrozenBatchNorm2d(child.num_features, child.eps, dtype=child.running_mean.dtype)
                frozen.running_mean.array[...] = child.running_mean.array
                frozen.running_var.array[...] = child.running_var.array
                frozen.num_batches_tracked.array[...] = child.num_batches_tracked.array
                if child.weight is not None:
                    frozen.weight.array[...] = child.weight.array
                    frozen.bias.array[...] = child.bias.array
                frozen.train(child.training)
                setattr(parent, name, frozen)
                count += 1
    return count
