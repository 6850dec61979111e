"""torch's names for the graph nodes of lamina's primitives (``y.grad_fn.name()``,
``type(y.grad_fn).__name__``).

torch names a node after the ATen overload that recorded it (``MulBackward0``, ``SumBackward1`` for
``sum(dim)``, ``ConvolutionBackward0`` for every convolution), so the table maps each of lamina's
``Function`` classes that has one torch counterpart to that name, or to a rule that picks the
overload from the inputs' dimensions and the op's options. The table names classes by their
dotted path, so this floor imports nothing from ``lamina/ops``.

Nodes of ops that lamina composes differently from torch name what lamina ran: ``F.linear`` is an
``AddBackward0`` over an ``MmBackward0`` (torch fuses an ``AddmmBackward0``), ``unsqueeze`` and
``flatten`` are a ``ViewBackward0``, ``t()`` and ``transpose`` a ``PermuteBackward0``; lamina's own
primitives without a torch counterpart (``AxisMap`` …) and user-defined Functions
are named ``<Class>Backward``, as torch names the nodes of a user-defined ``autograd.Function``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

__all__ = ["torch_name"]


def _all_reduced(zero: str, one: str) -> Callable[[tuple[Any, ...], dict[str, Any]], str]:
    """``zero`` for a reduction over every dim without keepdim (torch's overload without ``dim``),
    ``one`` otherwise. An explicit ``dim`` that lists every dim also reads as ``zero``."""
    def pick(arrays: tuple[Any, ...], options: dict[str, Any]) -> str:
        axes = options.get("axes", options.get("dim"))
        every = axes is None or len(axes) == getattr(arrays[0], "ndim", 0)
        return zero if every and not options.get("keepdim", False) else one
    return pick


def _matmul(arrays: tuple[Any, ...], options: dict[str, Any]) -> str:
    dims = (getattr(arrays[0], "ndim", 0), getattr(arrays[1], "ndim", 0))
    return {(2, 2): "MmBackward0", (1, 1): "DotBackward0", (2, 1): "MvBackward0"}.get(dims, "MatmulBackward")


def _by_spatial_dims(two: str, three: str, other: str) -> Callable[[tuple[Any, ...], dict[str, Any]], str]:
    def pick(arrays: tuple[Any, ...], options: dict[str, Any]) -> str:
        return {4: two, 5: three}.get(getattr(arrays[0], "ndim", 0), other)
    return pick


def _getitem(arrays: tuple[Any, ...], options: dict[str, Any]) -> str:
    """torch records ``x[i]`` as a ``SelectBackward0``, ``x[a:b]`` a ``SliceBackward0``, ``x[None]`` an
    ``UnsqueezeBackward0`` and an index by tensor or list an ``IndexBackward0``; an index that does
    several of these at once is one lamina node (a chain of nodes in torch), named lamina's way."""
    index = options.get("index")
    parts = index if isinstance(index, tuple) else (index,)
    if any(getattr(p, "ndim", 0) > 0 for p in parts):
        return "IndexBackward0"
    steps = [p for p in parts if p is not Ellipsis and p != slice(None)]
    if not steps:
        return "SliceBackward0"
    if len(steps) > 1:
        return "GetItemBackward"
    step = steps[0]
    if isinstance(step, slice):
        return "SliceBackward0"
    if step is None:
        return "UnsqueezeBackward0"
    return "SelectBackward0" if isinstance(step, numbers.Integral) and not isinstance(step, bool) else "GetItemBackward"


_SAME = {  # lamina's class name and torch's name without the overload suffix coincide
    "arithmetic": ("Abs", "Add", "Div", "Mul", "Neg", "Sub"),
    "selection": ("Maximum", "Minimum", "Where"),
    "unary": ("Atan", "Cos", "Exp", "Expm1", "Log", "Relu", "Rsqrt", "Sigmoid", "Sin", "Sqrt", "Tanh"),
    "trig": ("Acos", "Acosh", "Asin", "Asinh", "Atan2", "Atanh", "Cosh", "Sinh", "Tan"),
    "activation": ("Erf", "Hardswish", "Softplus"),
    "cast": ("Clone",),
    "indexing": ("Gather", "IndexAdd", "IndexPut", "IndexSelect", "Scatter", "ScatterAdd"),
    "join": ("Cat",),
    "reduce": ("Cumsum", "LogSoftmax", "Softmax"),
    "shape": ("Flip", "Permute", "Roll"),
}

_NAMES: dict[str, str | Callable[[tuple[Any, ...], dict[str, Any]], str]] = {
    f"lamina.ops.{family}.{cls}": f"{cls}Backward0" for family, names in _SAME.items() for cls in names
}
_NAMES.update({
    "lamina.ops.unary.Log1p": "Log1PBackward0",
    "lamina.ops.arithmetic.Pow": "PowBackward1",
    "lamina.ops.arithmetic.PowScalar": "PowBackward0",
    "lamina.ops.selection.Clamp": "ClampBackward1",
    "lamina.ops.cast.Cast": "ToCopyBackward0",
    "lamina.ops.shape.Contiguous": "CloneBackward0",
    "lamina.ops.shape.Reshape": "ViewBackward0",
    "lamina.ops.shape.BroadcastTo": "ExpandBackward0",
    "lamina.ops.conv.Conv": "ConvolutionBackward0",
    "lamina.ops.conv.ConvTranspose": "ConvolutionBackward0",
    "lamina.ops.linalg.Matmul": _matmul,
    "lamina.ops.normalization.BatchNormTrain": "NativeBatchNormBackward0",
    "lamina.ops.pad.ConstantPad": "ConstantPadNdBackward0",
    "lamina.ops.pooling.MaxPool": _by_spatial_dims("MaxPool2DWithIndicesBackward0", "MaxPool3DWithIndicesBackward0",
                                                   "MaxPoolBackward"),
    "lamina.ops.pooling.AvgPool": _by_spatial_dims("AvgPool2DBackward0", "AvgPool3DBackward0", "AvgPoolBackward"),
    "lamina.ops.reduce.Sum": _all_reduced("SumBackward0", "SumBackward1"),
    "lamina.ops.reduce.Mean": _all_reduced("MeanBackward0", "MeanBackward1"),
    "lamina.ops.reduce.AMax": _all_reduced("MaxBackward1", "AmaxBackward0"),
    "lamina.ops.indexing.GetItem": _getitem,
    "lamina.ops.reduce.Prod": "ProdBackward1",  # prod() over every dim is a ViewBackward0 of it
})


def torch_name(qualified: str) -> str | Callable[[tuple[Any, ...], dict[str, Any]], str] | None:
    """torch's node name for the Function class at ``qualified`` (``module.QualName``), a rule
    ``(arrays, options) -> name`` where it depends on the call, or None where torch has none."""
    return _NAMES.get(qualified)
