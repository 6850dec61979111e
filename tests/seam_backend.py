"""A second array type for the device seam's tests: :class:`SeamArray`, an array that is not an
ndarray, with its own module (:data:`seam_xp`) and its own conv, pooling and batch-norm kernels
registered through the seam (:func:`install`).

A SeamArray holds an ndarray and behaves as CuPy's arrays do towards NumPy code: NumPy's ufuncs
and dispatched functions (NEP 13 ``__array_ufunc__``, NEP 18 ``__array_function__``) unwrap it,
compute, and wrap the result again (0-d results too, as CuPy's reductions); methods and
attributes are the ndarray's, results wrapped. As with CuPy, a ufunc refuses an ndarray operand
of one or more dims (numbers and 0-d arrays mix in). An implicit conversion to an ndarray
(``numpy.asarray(a)``, ``ndarray[...] = a``) raises when lamina's own code asks for it — so a
place in lamina that would not work for another array type fails loudly — and is allowed
elsewhere (the tests' comparisons with torch). Unlike CuPy, NumPy's dispatched functions
(``concatenate``, ``where`` …) accept a mix of the two types.

Its kernels unwrap, call lamina's NumPy reference implementations and wrap the results,
counting their calls in :data:`CALLS` (``(family, pass) -> count``), so tests can tell they ran.

``LAMINA_TEST_ARRAY=seam`` makes :mod:`tests.helpers` put the oracle tests' lamina inputs on
this type (see :func:`enabled`).
"""

from __future__ import annotations

import collections
import os
import sys
from typing import Any

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

import lamina
from lamina import backend
from lamina.ops.kernels import conv_gemm, conv_select, norm, norm_select, pool, pool_select
from lamina.ops.kernels.select import Impl, always

__all__ = ["SeamArray", "seam_xp", "CALLS", "install", "uninstall", "enabled", "to_seam", "to_host", "seam_tensor"]

CALLS: collections.Counter = collections.Counter()


def _unwrap(v: Any) -> Any:
    if type(v) is SeamArray:
        return v.a
    if type(v) is tuple:
        return tuple(_unwrap(i) for i in v)
    if type(v) is list:
        return [_unwrap(i) for i in v]
    if type(v) is dict:
        return {k: _unwrap(i) for k, i in v.items()}
    return v


def _wrap(v: Any) -> Any:
    if isinstance(v, (np.ndarray, np.generic)) and not isinstance(v, np.dtype):
        return SeamArray(np.asarray(v))
    if type(v) is tuple:
        return tuple(_wrap(i) for i in v)
    if type(v) is list:
        return [_wrap(i) for i in v]
    return v


_OK_OPERANDS = (int, float, complex, bool, np.ndarray, np.generic)


class SeamArray(NDArrayOperatorsMixin):
    """An array that holds an ndarray (``.a``) and is not one; see the module docstring."""

    __slots__ = ("a",)
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, a: np.ndarray) -> None:
        if type(a) is not np.ndarray:
            raise TypeError(f"SeamArray: expected an ndarray, got {type(a).__name__}")
        self.a = a

    # NEP 13 / 18: unwrap, compute with NumPy, wrap
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        operands = inputs if method != "at" else inputs[:1] + inputs[2:]  # (a, index, b)
        if not all(type(i) is SeamArray or isinstance(i, _OK_OPERANDS) for i in operands):
            return NotImplemented  # a Tensor: its own operators run
        for i in operands:  # as CuPy: numbers and 0-d arrays mix in, whole ndarrays do not
            if type(i) is np.ndarray and i.ndim:
                caller = sys._getframe(1).f_globals.get("__name__", "")
                raise TypeError(f"SeamArray: an ndarray operand of shape {i.shape} in {ufunc.__name__} "
                                f"(called from {caller}, line {sys._getframe(1).f_lineno})")
        out = kwargs.get("out")
        result = getattr(ufunc, method)(*_unwrap(inputs), **_unwrap(kwargs))
        if out is not None:
            return out[0] if len(out) == 1 else out
        return None if method == "at" else _wrap(result)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        if not all(issubclass(t, (SeamArray, np.ndarray)) for t in types):
            return NotImplemented
        out = kwargs.get("out")
        result = func(*_unwrap(args), **_unwrap(kwargs))
        return out if out is not None and type(out) is SeamArray else _wrap(result)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller.startswith("lamina"):
            frame = sys._getframe(1)
            raise TypeError(f"SeamArray: implicit conversion to a NumPy array in {caller} "
                            f"(line {frame.f_lineno}); lamina must keep a seam array's type")
        return self.a if dtype is None else self.a.astype(dtype)

    # the ndarray's attributes and methods, results wrapped
    def __getattr__(self, name: str) -> Any:
        if name == "a" or name.startswith("__"):  # no __array_interface__ (it converts silently), no recursion
            raise AttributeError(name)
        attr = getattr(self.a, name)
        if callable(attr):
            def method(*args: Any, **kwargs: Any) -> Any:
                return _wrap(attr(*_unwrap(args), **_unwrap(kwargs)))
            return method
        return _wrap(attr) if isinstance(attr, np.ndarray) else attr

    shape = property(lambda self: self.a.shape)
    dtype = property(lambda self: self.a.dtype)
    ndim = property(lambda self: self.a.ndim)
    size = property(lambda self: self.a.size)
    T = property(lambda self: SeamArray(self.a.T))

    def __getitem__(self, idx: Any) -> Any:
        return _wrap(self.a[_unwrap(idx)])

    def __setitem__(self, idx: Any, value: Any) -> None:
        self.a[_unwrap(idx)] = _unwrap(value)

    def __len__(self) -> int:
        return len(self.a)

    def __iter__(self) -> Any:
        return (_wrap(v) for v in self.a)

    def __bool__(self) -> bool:
        return bool(self.a)

    def __float__(self) -> float:
        return float(self.a)

    def __int__(self) -> int:
        return int(self.a)

    def __index__(self) -> int:
        return self.a.__index__()

    def __format__(self, spec: str) -> str:
        return format(self.a.item() if self.a.ndim == 0 else self.a, spec)

    def __repr__(self) -> str:
        return f"SeamArray({self.a!r})"

    def __copy__(self) -> SeamArray:
        return SeamArray(self.a.copy())

    def __deepcopy__(self, memo: Any) -> SeamArray:
        return SeamArray(self.a.copy())


class _SeamModule:
    """The NumPy-like module of SeamArrays: NumPy's functions with arrays in and out as
    SeamArrays; dtypes, constants, ufuncs and ``errstate``/``finfo``… as NumPy's."""

    __name__ = "seam_xp"
    ndarray = SeamArray

    def __getattr__(self, name: str) -> Any:
        attr = getattr(np, name)
        if isinstance(attr, (type, np.ufunc)) or not callable(attr) or name in ("errstate", "finfo", "iinfo",
                                                                                 "dtype", "result_type"):
            return attr

        def fn(*args: Any, **kwargs: Any) -> Any:
            return _wrap(attr(*_unwrap(args), **_unwrap(kwargs)))
        fn.__name__ = name
        return fn

    @staticmethod
    def asarray(a: Any, dtype: Any = None, **kwargs: Any) -> SeamArray:
        if type(a) is SeamArray:
            return a if dtype is None or a.dtype == dtype else SeamArray(a.a.astype(dtype))
        return SeamArray(np.asarray(_unwrap(a), dtype=dtype, **kwargs))


seam_xp = _SeamModule()


# ----------------------------------------------------------------------------- kernels

def _count(family: str, pass_: str) -> None:
    CALLS[family, pass_] += 1


def _conv_forward(p: Any, x: Any, w: Any, xpad: Any, bias: Any) -> Any:
    _count("conv", "forward")
    y, _ = conv_gemm._reference_forward(p, x.a, w.a, None, _unwrap(bias))
    return SeamArray(y), None


def _conv_input_grad(p: Any, gy: Any, w: Any, bias: Any) -> Any:
    _count("conv", "input_grad")
    return SeamArray(conv_gemm._reference_input_grad(p, gy.a, w.a, _unwrap(bias)))


def _conv_weight_grad(p: Any, x: Any, gy: Any, xpad: Any) -> Any:
    _count("conv", "weight_grad")
    return SeamArray(conv_gemm._reference_weight_grad(p, x.a, gy.a, None))


def _counted(family: str, pass_: str, fn: Any) -> Any:
    def run(*args: Any) -> Any:
        _count(family, pass_)
        return _wrap(fn(*_unwrap(args)))
    return run


_DOC = "seam arrays: lamina's NumPy reference on the held ndarray, counted"


def install() -> None:
    """Register SeamArray's module and kernels (idempotent)."""
    backend.register_array_module(SeamArray, seam_xp)
    for pass_, run in (("forward", _conv_forward), ("input_grad", _conv_input_grad),
                       ("weight_grad", _conv_weight_grad)):
        conv_select.register(SeamArray, pass_, Impl("seam", always, run, _DOC))
    for pass_, fn in (("max_forward", pool._numpy_max_forward), ("max_backward", pool._numpy_max_scatter),
                      ("avg_forward", pool._numpy_avg_forward), ("avg_backward", pool._numpy_avg_backward)):
        pool_select.register(SeamArray, pass_, Impl("seam", always, _counted("pool", pass_, fn), _DOC))
    for pass_, fn in (("batch_norm_forward", norm._numpy_bn_forward),
                      ("batch_norm_backward", norm._numpy_bn_backward)):
        norm_select.register(SeamArray, pass_, Impl("seam", always, _counted("norm", pass_, fn), _DOC))


def uninstall() -> None:
    backend.unregister_array_module(SeamArray)
    for sel in (conv_select.SELECTOR, pool_select.SELECTOR, norm_select.SELECTOR):
        sel.unregister(SeamArray)


def enabled() -> bool:
    """Whether the op tests put their lamina inputs on SeamArrays (``LAMINA_TEST_ARRAY=seam``)."""
    return os.environ.get("LAMINA_TEST_ARRAY", "") == "seam"


def to_seam(a: np.ndarray) -> SeamArray:
    return SeamArray(np.asarray(a))


def to_host(a: Any) -> np.ndarray:
    """The ndarray behind ``a`` (a SeamArray, a Tensor of one, or an ndarray)."""
    a = getattr(a, "array", a)
    return a.a if type(a) is SeamArray else np.asarray(a)


def seam_tensor(a: np.ndarray, requires_grad: bool = False) -> lamina.Tensor:
    """A lamina tensor on a SeamArray holding (not copying) ``a``."""
    t = lamina.Tensor._wrap(SeamArray(np.asarray(a)))
    return t.requires_grad_() if requires_grad else t
