"""Type promotion as torch's ``result_type``: which dtype a binary op (or ``cat``) computes in.

Operands are ranked: tensors with dimensions, then 0-d tensors, then Python numbers (and NumPy
scalars). Within each rank the dtypes promote (:func:`lamina.backend.promote_types`); a lower
rank changes the result only when it is of a higher category (bool < integer < float), so a
0-d tensor or a Python number never widens a tensor's float dtype (``float32 tensor * 2.5`` is
float32, ``float32 tensor + 0-d float64`` is float32) but an integer tensor times ``2.5`` is the
default float dtype, and ``float32 + float64`` tensors is float64.
"""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd.tensor import Tensor

__all__ = ["result_type", "promote_types", "can_cast"]

xp = backend.xp

promote_types = backend.promote_types
can_cast = backend.can_cast

_NUMBER = (bool, int, float, xp.generic)


def _combine(higher: Any, lower: Any) -> Any:
    """torch's ``combine_categories``: the lower rank's dtype counts only from a higher category."""
    if higher is None:
        return lower
    if lower is None:
        return higher
    if higher.kind == "f":
        return higher
    if higher.kind == "b" or lower.kind == "f":
        return promote_types(higher, lower)
    return higher


def _scalar_dtype(x: Any) -> Any:
    """A number's dtype as a wrapped scalar: bool, int64 or the default float dtype."""
    kind = xp.asarray(x).dtype.kind
    if kind == "b":
        return backend.bool_
    if kind in "iu":
        return backend.int64
    if kind == "f":
        return backend.get_default_dtype()
    raise TypeError(f"result_type: unsupported number {x!r} of type {type(x).__name__}")


def _operand_dtype(x: Any) -> tuple[int, Any]:
    """(rank, dtype) of an operand: 0 for n-d tensors and arrays, 1 for 0-d, 2 for numbers."""
    if isinstance(x, Tensor):
        return (0 if x.ndim else 1), x.dtype
    if isinstance(x, xp.ndarray):
        return (0 if x.ndim else 1), x.dtype
    if isinstance(x, _NUMBER):
        return 2, _scalar_dtype(x)
    raise TypeError(f"result_type: expected tensors or numbers, got {type(x).__name__}")


def result_dtype(*operands: Any) -> Any:
    """The dtype torch computes ``operands`` in (tensors, NumPy arrays or numbers)."""
    best: list[Any] = [None, None, None]
    for x in operands:
        rank, d = _operand_dtype(x)
        best[rank] = d if best[rank] is None else promote_types(best[rank], d)
    return _combine(best[0], _combine(best[1], best[2]))


def result_type(tensor: Any, other: Any) -> Any:
    """The dtype of ``tensor op other`` for an elementwise op, as ``torch.result_type``.

    Example:
        >>> import lamina
        >>> lamina.result_type(lamina.ones(2), lamina.tensor(1.0, dtype=lamina.float64))
        dtype('float32')
        >>> lamina.result_type(lamina.ones(2), lamina.ones(2, dtype=lamina.float64))
        dtype('float64')
        >>> lamina.result_type(lamina.tensor([1, 2]), 2.5)
        dtype('float32')
    """
    if not isinstance(tensor, Tensor) and not isinstance(other, Tensor):
        if isinstance(tensor, _NUMBER) and isinstance(other, _NUMBER):
            return result_dtype(tensor, other)
        raise TypeError(f"result_type: expected a Tensor or a number, got {type(tensor).__name__} and "
                        f"{type(other).__name__}")
    return result_dtype(tensor, other)
