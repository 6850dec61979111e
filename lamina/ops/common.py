"""Helpers shared by the op files: operand coercion, dim normalization, constants."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from .. import backend
from ..autograd.grad_mode import is_grad_enabled
from ..autograd.legacy import TYPE_NAMES
from ..autograd.tensor import Tensor, _infer_array
from .cast import to_dtype
from .promotion import result_dtype

__all__ = ["const", "xp_of", "to_tensor", "binary_operands", "normalize_dim", "normalize_dims",
           "check_tensor", "broadcast_shape", "into_out"]

xp = backend.xp

_SCALARS = (bool, int, float, xp.generic)
_ndarray = xp.ndarray


def xp_of(*items: Any) -> Any:
    """The array module of ``items`` (tensors, arrays, numbers): NumPy unless one of them holds an
    array of another registered type (:func:`lamina.backend.get_array_module`)."""
    for a in items:
        if isinstance(a, Tensor):
            a = a.array
        if type(a) is not _ndarray and a is not None:
            m = backend.get_array_module(a)
            if m is not xp:
                return m
    return xp


def const(array: Any) -> Tensor:
    """A constant (graph-free) tensor around ``array`` (an array of any registered type stays one)."""
    if type(array) is not _ndarray:
        array = backend.get_array_module(array).asarray(array)
    return Tensor._wrap(array)


def check_tensor(x: Any, op: str, name: str = "input") -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected {name} to be a lamina Tensor, got {type(x).__name__}")
    return x


def to_tensor(x: Any, like: Tensor | None = None) -> Tensor:
    """``x`` as a Tensor; a Python number or NumPy value takes the dtype of ``like`` when
    ``like`` is floating (torch's rule that a scalar never changes a tensor's float dtype)."""
    if isinstance(x, Tensor):
        return x
    arr = xp.asarray(x)
    if like is not None and like.dtype.kind == "f" and arr.dtype.kind in "fiub":
        return const(arr.astype(like.dtype))
    if arr.dtype.kind == "f":
        return const(arr.astype(backend.get_default_dtype()))
    if arr.dtype.kind in "iu" and not isinstance(x, xp.ndarray):
        return const(arr.astype(backend.int64))
    return const(arr)


def broadcast_shape(op: str, *shapes: Sequence[int]) -> tuple[int, ...]:
    try:
        return tuple(xp.broadcast_shapes(*[tuple(s) for s in shapes]))
    except ValueError:
        raise RuntimeError(
            f"{op}: shapes {', '.join(str(tuple(s)) for s in shapes)} cannot be broadcast together"
        ) from None


def binary_operands(op: str, a: Any, b: Any, promote: bool = True) -> tuple[Tensor, Tensor]:
    """Coerce the operands of a binary op to Tensors of one dtype: torch's ``result_type``.

    A tensor with dimensions outranks a 0-d tensor, which outranks a Python (or NumPy) number; a
    lower-ranked operand changes the dtype only when it is of a higher category (bool < integer <
    float) — see :mod:`lamina.ops.promotion`. So ``float32 * 2.5`` and ``float32 + 0-d float64``
    stay float32, ``int64 * 2.5`` is the default float dtype, and ``float32 + float64`` tensors
    is float64 (the float32 operand is cast, differentiably). Lists are a lamina extension, taken
    as ``lamina.tensor(list)``. ``promote=False`` (``matmul``, as torch) refuses two float dtypes.
    """
    # fast paths: two tensors of one dtype and shape, or a tensor and a Python number
    ta, tb = type(a), type(b)
    if isinstance(a, Tensor):
        if isinstance(b, Tensor):
            if a.array.dtype == b.array.dtype and a.array.shape == b.array.shape:
                return a, b
        elif tb is float or tb is int:
            if a.array.dtype.kind == "f" or tb is int and a.array.dtype.kind in "iu":
                return a, Tensor._wrap(xp.asarray(b, dtype=a.array.dtype))
    elif isinstance(b, Tensor) and (ta is float or ta is int):
        if b.array.dtype.kind == "f" or ta is int and b.array.dtype.kind in "iu":
            return Tensor._wrap(xp.asarray(a, dtype=b.array.dtype)), b
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{op}: expected at least one Tensor operand")
    a, b = _operand(op, a), _operand(op, b)
    if not promote and isinstance(a, Tensor) and isinstance(b, Tensor) and a.dtype != b.dtype \
            and a.dtype.kind == "f" and b.dtype.kind == "f":
        raise TypeError(f"{op}: expected both operands to have the same dtype, but got {a.dtype} and {b.dtype} "
                        f"(convert one with .to(dtype), .float() or .double())")
    d = result_dtype(a, b)
    a, b = _as_dtype(a, d), _as_dtype(b, d)
    if a.shape != b.shape and a.ndim and b.ndim:
        broadcast_shape(op, a.shape, b.shape)
    return a, b


def _operand(op: str, x: Any) -> Any:
    """A Tensor, a NumPy array or a number, checked; a list becomes an array as ``lamina.tensor`` infers."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (list, tuple)):
        x = _infer_array(x, None)
    elif not isinstance(x, (_SCALARS, xp.ndarray)):
        raise TypeError(f"{op}: unsupported operand of type {type(x).__name__}")
    if xp.asarray(x).dtype.kind not in "fiub":
        raise TypeError(f"{op}: unsupported operand dtype {xp.asarray(x).dtype}")
    return x


def _as_dtype(x: Any, d: Any) -> Tensor:
    if isinstance(x, Tensor):
        return x if x.dtype == d else to_dtype(x, d)
    return const(xp.array(x).astype(d))  # astype, not asarray(dtype=): uint8 - 1 wraps, as torch


def normalize_dim(dim: Any, ndim: int, op: str) -> int:
    n = max(ndim, 1)
    if isinstance(dim, Tensor):
        dim = dim.item()
    if not isinstance(dim, (int, xp.integer)) or isinstance(dim, bool):
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}")
    if not -n <= dim < n:
        raise IndexError(
            f"{op}: dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})"
        )
    return int(dim) % n


def normalize_dims(dim: Any, ndim: int, op: str) -> tuple[int, ...]:
    """``dim`` (None, int, or a sequence of ints) as a sorted tuple of non-negative axes."""
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        return tuple(range(ndim))
    dims = (dim,) if not isinstance(dim, (tuple, list)) else tuple(dim)
    out = sorted(normalize_dim(d, ndim, op) for d in dims)
    if len(set(out)) != len(out):
        raise RuntimeError(f"{op}: dim {dim} appears multiple times in the list of dims")
    return tuple(out) if ndim > 0 else ()


def _can_cast(src: Any, dst: Any) -> bool:
    """torch's ``canCast``: no float to an integer type, nothing but bool to bool."""
    if src.kind == "f" and dst.kind in "biu":
        return False
    return not (dst.kind == "b" and src.kind != "b")


def into_out(result: Tensor, out: Any, op: str, exact_dtype: bool = False) -> Tensor:
    """torch's ``out=``: ``result`` written into ``out`` (cast to its dtype, or, with ``exact_dtype``
    as torch's matmul, only of the result's dtype; resized, with torch's warning when ``out`` had
    elements, if the shapes differ), and ``out`` returned. As torch, there is no gradient through
    ``out=`` (an error while grad mode records a graph)."""
    if out is None:
        return result
    if not isinstance(out, Tensor):
        raise TypeError(f"{op}(): argument 'out' must be Tensor, not {type(out).__name__}")
    if is_grad_enabled() and (result.requires_grad or out.requires_grad):
        raise RuntimeError(f"{op}(): functions with out=... arguments don't support automatic differentiation, "
                           "but one of the arguments requires grad.")
    if exact_dtype and out.dtype != result.dtype:
        def c10(d: Any) -> str:
            return TYPE_NAMES[d].removesuffix("Tensor").lower()
        raise RuntimeError(f"Expected out tensor to have dtype {c10(result.dtype)}, but got {c10(out.dtype)} instead")
    if not _can_cast(result.dtype, out.dtype):
        raise RuntimeError(f"result type {TYPE_NAMES[result.dtype].removesuffix('Tensor')} can't be cast to the "
                           f"desired output type {TYPE_NAMES[out.dtype].removesuffix('Tensor')}")
    if tuple(out.shape) == tuple(result.shape):
        out.array[...] = result.array
    else:
        if out.array.size:
            warnings.warn(f"{op}: An output with one or more elements was resized since it had shape "
                          f"{list(out.shape)}, which does not match the required output shape {list(result.shape)}. "
                          "This behavior is deprecated, and in a future PyTorch release outputs will not be resized "
                          "unless they have zero elements.", UserWarning, stacklevel=3)
        out.array = result.array.astype(out.dtype, copy=True)
    out._bump_version()
    return out
