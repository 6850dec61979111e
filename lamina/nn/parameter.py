"""``Parameter``: a leaf tensor that a ``Module`` registers as learnable."""

from __future__ import annotations

from typing import Any

from ..autograd.tensor import Tensor

__all__ = ["Parameter", "Buffer"]


class Parameter(Tensor):
    """A tensor that is a module parameter: assigning it to a ``Module`` attribute registers it.

    Args:
        data: the initial values (a Tensor or array-like; shared, not copied, when a Tensor).
        requires_grad: whether the parameter is trained (default True).
    """

    __slots__ = ()

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        if data is None:
            data = Tensor._wrap(Tensor([]).array)
        if isinstance(data, Tensor):
            self.array = data.array
            self.grad = None
            self.grad_fn = None
            self._requires_grad = False
            self._vc = [0]
            self._acc = None
            self._hooks = None
            self._post_acc_hooks = None
            self._retains_grad = False
            self._is_view = False
        else:
            super().__init__(data)
        if requires_grad:
            self.requires_grad = True

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, proto: Any) -> Any:  # pragma: no cover - lamina never pickles
        raise TypeError("lamina parameters are saved with lamina.save (no pickle)")


class Buffer(Tensor):
    """Marker type for a module buffer (``torch.nn.Buffer``): assigning one registers it."""

    __slots__ = ("persistent",)

    def __init__(self, data: Any, persistent: bool = True) -> None:
        super().__init__(data)
        self.persistent = persistent
