"""Tensor factories with torch's names and signatures: ``zeros``, ``randn``, ``arange`` …

Random factories draw from lamina's global generator (``lamina.manual_seed``) unless a
``generator`` (a ``numpy.random.Generator``) is given.
"""

from __future__ import annotations

import math
from typing import Any

from .. import backend
from .tensor import Tensor

__all__ = [
    "zeros", "ones", "full", "empty", "arange", "linspace", "eye", "rand", "randn", "randint",
    "randperm", "zeros_like", "ones_like", "full_like", "empty_like", "rand_like", "randn_like",
    "randint_like",
]

xp = backend.xp


def _size(size: tuple[Any, ...], op: str) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    out = []
    for s in size:
        if isinstance(s, Tensor):
            s = s.item()
        if not isinstance(s, (int, xp.integer)) or isinstance(s, bool) or s < 0:
            raise ValueError(f"{op}: size must be non-negative integers, got {size}")
        out.append(int(s))
    return tuple(out)


def _finish(arr: Any, requires_grad: bool, device: Any) -> Tensor:
    if device is not None:
        backend.to_device(device)
    t = Tensor._wrap(arr)
    if requires_grad:
        t.requires_grad = True
    return t


def _float_dtype(dtype: Any, op: str) -> Any:
    d = backend.to_dtype(dtype)
    if d.kind != "f":
        raise TypeError(f"{op}: expected a floating dtype, got {d}")
    return d


def zeros(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros of shape ``size`` (default dtype float32)."""
    return _finish(xp.zeros(_size(size, "zeros"), dtype=backend.to_dtype(dtype)), requires_grad, device)


def ones(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones of shape ``size``."""
    return _finish(xp.ones(_size(size, "ones"), dtype=backend.to_dtype(dtype)), requires_grad, device)


def empty(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """An uninitialized tensor of shape ``size``."""
    return _finish(xp.empty(_size(size, "empty"), dtype=backend.to_dtype(dtype)), requires_grad, device)


def _infer_scalar_dtype(*values: Any) -> Any:
    if any(isinstance(v, bool) for v in values) and all(isinstance(v, bool) for v in values):
        return backend.bool_
    if all(isinstance(v, (int, xp.integer)) for v in values):
        return backend.int64
    return backend.get_default_dtype()


def full(size: Any, fill_value: Any, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """A tensor of shape ``size`` filled with ``fill_value`` (dtype inferred from it)."""
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    d = backend.to_dtype(dtype) if dtype is not None else _infer_scalar_dtype(fill_value)
    shape = _size((size,) if not isinstance(size, (tuple, list)) else tuple(size), "full")
    return _finish(xp.full(shape, fill_value, dtype=d), requires_grad, device)


def arange(start: Any, end: Any = None, step: Any = 1, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:
    """Values from ``start`` to ``end`` (exclusive) by ``step``, as ``torch.arange``."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    d = backend.to_dtype(dtype) if dtype is not None else _infer_scalar_dtype(start, end, step)
    n = max(0, math.ceil((end - start) / step))
    arr = (start + step * xp.arange(n, dtype=xp.float64)) if d.kind == "f" else xp.arange(start, end, step)
    return _finish(arr.astype(d), requires_grad, device)


def linspace(start: float, end: float, steps: int, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    if steps < 0:
        raise ValueError(f"linspace: number of steps must be non-negative, got {steps}")
    d = backend.to_dtype(dtype)
    return _finish(xp.linspace(start, end, steps).astype(d), requires_grad, device)


def eye(n: int, m: int | None = None, dtype: Any = None, device: Any = None,
        requires_grad: bool = False) -> Tensor:
    """The ``n × m`` identity matrix."""
    return _finish(xp.eye(n, m if m is not None else n, dtype=backend.to_dtype(dtype)), requires_grad, device)


def _gen(generator: Any) -> Any:
    return generator if generator is not None else backend.generator()


def rand(*size: Any, generator: Any = None, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """Uniform samples on [0, 1)."""
    d = _float_dtype(dtype, "rand")
    arr = _gen(generator).random(_size(size, "rand"), dtype=xp.float64).astype(d)
    return _finish(arr, requires_grad, device)


def randn(*size: Any, generator: Any = None, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    """Standard normal samples."""
    d = _float_dtype(dtype, "randn")
    arr = _gen(generator).standard_normal(_size(size, "randn")).astype(d)
    return _finish(arr, requires_grad, device)


def randint(low: int = 0, high: int | None = None, size: Any = None, generator: Any = None,
            dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Integers uniform on [low, high), as ``torch.randint(low=0, high, size)``."""
    if size is None:  # randint(high, size)
        low, high, size = 0, low, high
    if high is None:
        raise TypeError("randint: missing 'high'")
    if high <= low:
        raise ValueError(f"randint: expected low < high, got low={low}, high={high}")
    d = backend.to_dtype(dtype) if dtype is not None else backend.int64
    arr = _gen(generator).integers(low, high, _size((size,), "randint")).astype(d)
    return _finish(arr, requires_grad, device)


def randperm(n: int, generator: Any = None, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    """A random permutation of ``0 … n−1`` (int64)."""
    d = backend.to_dtype(dtype) if dtype is not None else backend.int64
    return _finish(_gen(generator).permutation(n).astype(d), requires_grad, device)


def _like(t: Tensor, dtype: Any) -> Any:
    return t.dtype if dtype is None else backend.to_dtype(dtype)


def zeros_like(input: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _finish(xp.zeros(input.shape, dtype=_like(input, dtype)), requires_grad, device)


def ones_like(input: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _finish(xp.ones(input.shape, dtype=_like(input, dtype)), requires_grad, device)


def empty_like(input: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return _finish(xp.empty(input.shape, dtype=_like(input, dtype)), requires_grad, device)


def full_like(input: Tensor, fill_value: Any, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    return _finish(xp.full(input.shape, fill_value, dtype=_like(input, dtype)), requires_grad, device)


def rand_like(input: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return rand(input.shape, dtype=_like(input, dtype), device=device, requires_grad=requires_grad)


def randn_like(input: Tensor, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    return randn(input.shape, dtype=_like(input, dtype), device=device, requires_grad=requires_grad)


def randint_like(input: Tensor, low: int = 0, high: int | None = None, dtype: Any = None,
                 device: Any = None, requires_grad: bool = False) -> Tensor:
    return randint(low, high, input.shape, dtype=_like(input, dtype), device=device,
                   requires_grad=requires_grad)
