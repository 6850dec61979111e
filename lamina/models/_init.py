"""Fast weight initialization for whole models (private to ``lamina.models``).

``lamina.nn.Linear`` and ``Conv2d`` initialize themselves when built (torch's default), drawing
float64 samples and casting them: for VGG-16's 138 M parameters that alone takes many seconds,
and torchvision then draws every weight a second time with the model's own scheme. Models here
are built inside :func:`deferred_init`, which skips the layers' own draw, and then every layer
is initialized once by :func:`init_model`, drawing float32 samples directly (≈10× faster).

The distributions are exactly torchvision's; only the random stream differs.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

from .. import backend, nn
from ..autograd.tensor import Tensor
from ..nn.modules.conv import _ConvNd
from ..nn.modules.normalization import _NormBase

__all__ = ["no_weight_init", "deferred_init", "init_model", "fill_uniform", "fill_normal", "kaiming_normal",
           "default_init", "zero_bias"]


@contextlib.contextmanager
def deferred_init() -> Iterator[None]:
    """Build layers without their default random draw; call :func:`init_model` afterwards.

    Only layers built in the calling thread inside the block are affected (a context variable of
    ``lamina.nn.init``; no class is patched), so layers built at the same time in other threads
    initialize as usual.

    Trap: conv and linear parameters built inside hold uninitialized memory until ``init_model``
    runs.
    """
    with nn.init._on_build("skip"):
        yield


@contextlib.contextmanager
def no_weight_init() -> Iterator[None]:
    """Build models without drawing any random weight: every conv and linear parameter is zero.

    For counting parameters, reading ``state_dict`` keys and shapes, or checking output shapes
    of big models instantly (the zeros are allocated lazily by the OS). Not for training. It
    affects models built in the calling thread only.

    Example:
        >>> from lamina import models
        >>> with models.no_weight_init():
        ...     m = models.vgg16()
        >>> sum(p.numel() for p in m.parameters())
        138357544
    """
    with nn.init._on_build("zeros"):
        yield


def _fill(t: Tensor, values: Any) -> None:
    t.array[...] = values
    t._bump_version()


def _target(t: Tensor) -> Any:
    """Where to draw: the parameter's own memory when possible (no temporary copy)."""
    a = t.array
    if a.dtype in (backend.xp.float32, backend.xp.float64) and a.flags.c_contiguous:
        return a
    return backend.xp.empty(a.shape, dtype=backend.xp.float64)


def _finish(t: Tensor, a: Any) -> None:
    if a is not t.array:
        t.array[...] = a
    t._bump_version()


def fill_uniform(t: Tensor, bound: float) -> None:
    """``t ~ U(−bound, bound)``, drawn in ``t``'s dtype."""
    a = _target(t)
    backend.generator().random(out=a, dtype=a.dtype)
    a *= 2 * bound
    a -= bound
    _finish(t, a)


def fill_normal(t: Tensor, std: float, mean: float = 0.0) -> None:
    """``t ~ N(mean, std²)``, drawn in ``t``'s dtype."""
    a = _target(t)
    backend.generator().standard_normal(out=a, dtype=a.dtype)
    a *= std
    if mean:
        a += mean
    _finish(t, a)


def _fans(w: Tensor) -> tuple[int, int]:
    receptive = math.prod(w.shape[2:])
    return w.shape[1] * receptive, w.shape[0] * receptive


def kaiming_normal(w: Tensor, mode: str = "fan_in") -> None:
    """``nn.init.kaiming_normal_(w, mode=mode, nonlinearity='relu')``: ``N(0, 2/fan)``."""
    fan_in, fan_out = _fans(w)
    fill_normal(w, math.sqrt(2.0 / (fan_in if mode == "fan_in" else fan_out)))


def default_init(m: nn.Module) -> None:
    """torch's own default for a ``Linear`` or conv layer: weight and bias ``U(±1/√fan_in)``
    (``kaiming_uniform_(a=√5)``)."""
    fan_in = _fans(m.weight)[0]
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    fill_uniform(m.weight, bound)
    if m.bias is not None:
        fill_uniform(m.bias, bound)


def init_model(model: nn.Module, conv: Callable[[Any], None] | None = None,
               linear: Callable[[Any], None] | None = None) -> None:
    """Initialize every conv and linear layer of ``model`` once (``conv``/``linear`` schemes, or
    torch's default where ``None``); batch-norm weights to 1 and biases to 0."""
    if nn.init._build_mode() == "zeros":  # inside no_weight_init: the layers were zeroed when built
        return
    for m in model.modules():
        if isinstance(m, _ConvNd):
            (conv or default_init)(m)
        elif isinstance(m, nn.Linear):
            (linear or default_init)(m)
        elif isinstance(m, (_NormBase, nn.GroupNorm)) and getattr(m, "weight", None) is not None:
            _fill(m.weight, 1.0)
            _fill(m.bias, 0.0)


def zero_bias(m: Any) -> None:
    if m.bias is not None:
        _fill(m.bias, 0.0)
