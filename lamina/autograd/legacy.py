"""The legacy API still in circulation: ``Variable``, ``FloatTensor`` and friends, and the
``torch.Tensor(...)`` constructor's rules (sizes, or data in the default float dtype)."""

from __future__ import annotations

import warnings
from typing import Any

from .. import backend
from .tensor import Tensor, legacy_array

__all__ = ["Variable", "FloatTensor", "DoubleTensor", "HalfTensor", "LongTensor", "IntTensor", "ShortTensor",
           "CharTensor", "ByteTensor", "BoolTensor", "TYPE_NAMES", "type_name", "legacy_array"]

xp = backend.xp


class _TypedTensorMeta(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, Tensor) and obj.dtype == cls.dtype

    def __call__(cls, *args: Any, **kwargs: Any) -> Tensor:
        if kwargs:
            raise TypeError(f"{cls.__name__}(): unexpected keyword arguments {sorted(kwargs)} (the legacy "
                            f"constructors take sizes or data only; use lamina.tensor(data, dtype=...))")
        return Tensor._wrap(xp.array(legacy_array(args, cls.dtype, cls.__name__), copy=True))

    def __repr__(cls) -> str:
        return f"<class 'lamina.{cls.__name__}'>"


def _typed(name: str, dtype: Any) -> type:
    doc = (f"``torch.{name}``: ``{name}(*sizes)`` is an uninitialized {dtype} tensor, ``{name}(data)`` the "
           f"data as {dtype}; ``isinstance(x, {name})`` asks whether ``x`` is a {dtype} tensor.")
    return _TypedTensorMeta(name, (), {"dtype": dtype, "__doc__": doc, "__slots__": ()})


FloatTensor = _typed("FloatTensor", backend.float32)
DoubleTensor = _typed("DoubleTensor", backend.float64)
HalfTensor = _typed("HalfTensor", backend.float16)
LongTensor = _typed("LongTensor", backend.int64)
IntTensor = _typed("IntTensor", backend.int32)
ShortTensor = _typed("ShortTensor", backend.int16)
CharTensor = _typed("CharTensor", backend.int8)
ByteTensor = _typed("ByteTensor", backend.uint8)
BoolTensor = _typed("BoolTensor", backend.bool_)

TYPE_NAMES = {c.dtype: c.__name__ for c in (FloatTensor, DoubleTensor, HalfTensor, LongTensor, IntTensor,
                                             ShortTensor, CharTensor, ByteTensor, BoolTensor)}
_BY_NAME = {v: k for k, v in TYPE_NAMES.items()}


def type_name(dtype: Any) -> str:
    """``'lamina.FloatTensor'`` for float32 …, as ``Tensor.type()`` reports it."""
    return "lamina." + TYPE_NAMES[dtype]


def dtype_of_type(t: Any) -> Any:
    """The dtype that ``Tensor.type(t)`` asks for: a dtype, a legacy class or its name
    (``'torch.DoubleTensor'`` or ``'lamina.DoubleTensor'``)."""
    if isinstance(t, _TypedTensorMeta):
        return t.dtype
    if isinstance(t, str):
        name = t.rsplit(".", 1)[-1]
        if name in _BY_NAME and (t.startswith("torch.") or t.startswith("lamina.")) and ".cuda." not in t:
            return _BY_NAME[name]
        if ".cuda." in t:
            backend.to_device("cuda")
        raise ValueError(f"type: invalid type {t!r} (expected e.g. 'torch.FloatTensor' or a dtype)")
    return backend.to_dtype(t)


class _VariableMeta(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, Tensor)


class Variable(metaclass=_VariableMeta):
    """``torch.autograd.Variable(tensor, requires_grad=False)``: since torch 0.4 a tensor is a
    variable; this returns a new leaf tensor sharing ``tensor``'s values, with ``requires_grad``
    as asked, and every tensor is an instance of ``Variable``. ``volatile`` has no effect (use
    :class:`lamina.no_grad`), as in torch.
    """

    def __new__(cls, data: Any = None, requires_grad: bool = False, volatile: bool | None = None) -> Any:
        if volatile is not None:
            warnings.warn("volatile was removed and now has no effect. Use `with lamina.no_grad():` instead.",
                          UserWarning, stacklevel=2)
        if data is None:
            data = Tensor._wrap(xp.empty((0,), dtype=backend.get_default_dtype()))
        if not isinstance(data, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__}")
        out = Tensor._wrap(data.array, vc=data._vc)
        return out.requires_grad_(requires_grad) if requires_grad else out
