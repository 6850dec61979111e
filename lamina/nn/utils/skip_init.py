"""``skip_init``: build a module without drawing its layers' random weights."""

from __future__ import annotations

from typing import Any

from .. import init

__all__ = ["skip_init"]


def skip_init(module_cls: type, *args: Any, **kwargs: Any) -> Any:
    """Build ``module_cls(*args, **kwargs)`` without the default random init of its ``Linear``
    and conv layers, for weights you are about to overwrite (``load_state_dict``, your own init).

    As ``torch.nn.utils.skip_init``, the skipped parameters hold uninitialized memory. Unlike torch
    (which builds on the meta device and so skips every parameter and buffer), only the layers
    that draw random weights skip their init; the others (batch norm, PReLU …) initialize as
    usual. Only the calling thread is affected: layers built meanwhile in other threads draw
    their weights.

    Example:
        >>> from lamina import nn
        >>> m = nn.utils.skip_init(nn.Linear, 5, 1)
        >>> nn.init.zeros_(m.weight).shape
        (1, 5)
    """
    if not isinstance(module_cls, type):
        raise TypeError(f"skip_init: expected a module class, got {type(module_cls).__name__}")
    with init._on_build("skip"):
        return module_cls(*args, **kwargs)
