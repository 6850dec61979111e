"""Padding layers: ``ZeroPad{1,2,3}d``, ``ConstantPad{1,2,3}d``, ``ReflectionPad{1,2,3}d``,
``ReplicationPad{1,2,3}d``, ``CircularPad{1,2,3}d``, as torch's (around ``F.pad``)."""

from __future__ import annotations

from typing import Any

from ...autograd.tensor import Tensor
from ...ops.pad import pad
from .module import Module

__all__ = [f"{kind}Pad{n}d" for kind in ("Zero", "Constant", "Reflection", "Replication", "Circular")
           for n in (1, 2, 3)]


class _PadNd(Module):
    mode = "constant"
    rank = 2

    def __init__(self, padding: Any, value: float = 0.0) -> None:
        super().__init__()
        if isinstance(padding, int):
            padding = (padding,) * (2 * self.rank)
        padding = tuple(int(p) for p in padding)
        if len(padding) != 2 * self.rank:
            raise ValueError(f"{type(self).__name__}: padding must be an int or {2 * self.rank} ints "
                             f"(left, right, top, bottom, ...), got {padding}")
        self.padding, self.value = padding, float(value)

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim not in (self.rank + 1, self.rank + 2):
            raise RuntimeError(f"{type(self).__name__}: expected a {self.rank + 1}-d or {self.rank + 2}-d input, "
                               f"got shape {tuple(input.shape)}")
        if self.mode == "constant":
            return pad(input, self.padding, "constant", self.value)
        return pad(input, self.padding, self.mode)

    def extra_repr(self) -> str:
        if type(self).__name__.startswith("Constant"):  # torch's reprs differ by kind
            return f"padding={self.padding}, value={self.value}"
        return f"{self.padding}"


def _layer(kind: str, n: int) -> type:
    mode = {"Zero": "constant", "Constant": "constant", "Reflection": "reflect", "Replication": "replicate",
            "Circular": "circular"}[kind]
    name = f"{kind}Pad{n}d"
    doc = (f"``torch.nn.{name}``: pads the last {n} dim(s) ({mode}"
           + (" with zeros" if kind == "Zero" else "") + "); ``padding`` is an int or (left, right, ...).")
    if kind == "Constant":
        def __init__(self: Any, padding: Any, value: float) -> None:
            _PadNd.__init__(self, padding, value)
    else:
        def __init__(self: Any, padding: Any) -> None:
            _PadNd.__init__(self, padding)
    return type(name, (_PadNd,), {"mode": mode, "rank": n, "__doc__": doc, "__init__": __init__,
                                  "__module__": __name__})


for _kind in ("Zero", "Constant", "Reflection", "Replication", "Circular"):
    for _n in (1, 2, 3):
        globals()[f"{_kind}Pad{_n}d"] = _layer(_kind, _n)
