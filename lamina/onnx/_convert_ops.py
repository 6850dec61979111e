"""The ONNX operators ``convert`` runs, each on lamina Tensors (and on NumPy arrays for the
static shape arithmetic: ``Shape`` gives an array, so ``Gather``/``Concat``/``Slice`` of shapes
stay arrays and never enter the autograd graph)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import nn
from ..autograd import Tensor
from ..nn import functional as F
from ..ops import cat, clamp, matmul, where

__all__ = ["OPS", "PARAM_INPUTS", "BUFFER_INPUTS", "Node"]

PARAM_INPUTS = {"Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (0, 1, 2), "MatMul": (0, 1), "PRelu": (1,),
                "BatchNormalization": (1, 2), "Add": (0, 1), "Sub": (0, 1), "Mul": (0, 1), "Div": (0, 1)}
BUFFER_INPUTS = {"BatchNormalization": (3, 4)}


class Node(nn.Module):
    """One ONNX node: its operator, attributes, input and output names."""

    def __init__(self, proto: Any, opset: int) -> None:
        from onnx import helper

        super().__init__()
        self.op_type, self.opset = proto.op_type, opset
        self.inputs, self.outputs = list(proto.input), list(proto.output)
        self.attrs = {a.name: helper.get_attribute_value(a) for a in proto.attribute}
        for k, v in self.attrs.items():
            if isinstance(v, bytes):
                self.attrs[k] = v.decode()
        self.label = proto.name or f"{proto.op_type}->{self.outputs[0] if self.outputs else ''}"

    def extra_repr(self) -> str:
        return f"{self.op_type}: {', '.join(self.inputs)} -> {', '.join(self.outputs)}"

    def run(self, env: dict[str, Any]) -> None:
        args = [env[i] if i else None for i in self.inputs]
        try:
            out = OPS[self.op_type](self, *args)
        except (ValueError, TypeError, IndexError, RuntimeError) as e:  # name the node that failed
            raise type(e)(f"ONNX node {self.label!r} ({self.op_type}): {e}") from None
        outs = out if isinstance(out, tuple) else (out,)
        for name, v in zip(self.outputs, outs):
            if name:
                env[name] = v


def _static(v: Any) -> bool:
    return not isinstance(v, Tensor)


def _t(v: Any) -> Tensor:
    return v if isinstance(v, Tensor) else Tensor._wrap(np.ascontiguousarray(np.asarray(v)))


def _np(v: Any, what: str) -> np.ndarray:
    if isinstance(v, Tensor):
        if v.requires_grad or v.grad_fn is not None:
            raise ValueError(f"{what} must be a constant, not computed from the inputs")
        return v.numpy()
    return np.asarray(v)


def _ints(v: Any, what: str) -> list[int]:
    return [int(i) for i in _np(v, what).reshape(-1)]


def _binary(np_fn: Any, fn: Any):
    def op(n: Node, a: Any, b: Any) -> Any:
        if _static(a) and _static(b):
            r = np_fn(np.asarray(a), np.asarray(b))
            return r.astype(np.result_type(a, b)) if np.asarray(a).dtype.kind in "iu" else r
        a, b = _t(a), _t(b)
        return fn(a, b)
    return op


def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.trunc(a / b).astype(a.dtype) if a.dtype.kind in "iu" else a / b


def _unary(fn: Any):
    return lambda n, x: fn(_t(x))


def _axes(n: Node, given: Any, ndim: int) -> list[int] | None:
    """Axes from the attribute (older opsets) or the optional input."""
    axes = n.attrs.get("axes") if given is None else _ints(given, "axes")
    return None if axes is None else [int(a) % ndim for a in axes]


def _pads(n: Node, nd: int) -> tuple[list[int], list[int]]:
    p = list(n.attrs.get("pads", [0] * 2 * nd))
    return p[:nd], p[nd:]


def _auto_pad(n: Node, size: Sequence, k: Sequence, s: Sequence, d: Sequence) -> tuple[list[int], list[int]]:
    mode = n.attrs.get("auto_pad", "NOTSET")
    if mode in ("NOTSET", ""):
        return _pads(n, len(k))
    if mode == "VALID":
        return [0] * len(k), [0] * len(k)
    total = [max(0, (math.ceil(i / si) - 1) * si + di * (ki - 1) + 1 - i) for i, ki, si, di in zip(size, k, s, d)]
    lo = [t // 2 if mode == "SAME_UPPER" else t - t // 2 for t in total]
    return lo, [t - a for t, a in zip(total, lo)]


def _conv(n: Node, x: Tensor, w: Tensor, b: Any = None) -> Tensor:
    nd = w.ndim - 2
    k = list(n.attrs.get("kernel_shape", w.shape[2:]))
    s, d = list(n.attrs.get("strides", [1] * nd)), list(n.attrs.get("dilations", [1] * nd))
    lo, hi = _auto_pad(n, x.shape[2:], k, s, d)
    x, w = _t(x), _t(w)
    if lo != hi:
        x = F.pad(x, [v for i in reversed(range(nd)) for v in (lo[i], hi[i])])
        lo = [0] * nd
    fn = (F.conv1d, F.conv2d, F.conv3d)[nd - 1]
    return fn(x, w, None if b is None else _t(b), stride=s, padding=lo, dilation=d, groups=int(n.attrs.get("group", 1)))


def _conv_transpose(n: Node, x: Tensor, w: Tensor, b: Any = None) -> Tensor:
    nd = w.ndim - 2
    k = list(n.attrs.get("kernel_shape", w.shape[2:]))
    s, d = list(n.attrs.get("strides", [1] * nd)), list(n.attrs.get("dilations", [1] * nd))
    if n.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "", "VALID"):
        raise ValueError("auto_pad SAME_* of ConvTranspose is not supported")
    lo, hi = _pads(n, nd)
    opad = list(n.attrs.get("output_padding", [0] * nd))
    full = [(i - 1) * si + di * (ki - 1) + 1 + op for i, si, di, ki, op in zip(x.shape[2:], s, d, k, opad)]
    if "output_shape" in n.attrs:
        want = list(n.attrs["output_shape"])[-nd:]
        total = [f - o - w_ for f, o, w_ in zip(full, opad, want)]
        lo = [t // 2 for t in total]  # ONNX's rule when output_shape is given (SAME_UPPER-like)
        hi = [t - a for t, a in zip(total, lo)]
        opad = [0] * nd
    fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[nd - 1]
    g = int(n.attrs.get("group", 1))
    if lo == hi and all(o < max(si, di) for o, si, di in zip(opad, s, d)):
        return fn(_t(x), _t(w), None if b is None else _t(b), stride=s, padding=lo, output_padding=opad, groups=g,
                  dilation=d)
    y = fn(_t(x), _t(w), None if b is None else _t(b), stride=s, padding=0, output_padding=0, groups=g, dilation=d)
    ends = [f - op - h for f, op, h in zip(full, opad, hi)]
    y = y[(slice(None), slice(None)) + tuple(slice(a, e) for a, e in zip(lo, ends))]
    if any(opad):  # output_padding beyond the computed extent: zeros at the end
        y = F.pad(y, [v for i in reversed(range(nd)) for v in (0, max(0, full[i] - lo[i] - hi[i] - y.shape[2 + i]))])
    return y


def _pool(n: Node, x: Tensor, kind: str) -> Tensor:
    x = _t(x)
    k = list(n.attrs["kernel_shape"])
    nd = len(k)
    s, d = list(n.attrs.get("strides", [1] * nd)), list(n.attrs.get("dilations", [1] * nd))
    lo, hi = _auto_pad(n, x.shape[2:], k, s, d)
    ceil = bool(n.attrs.get("ceil_mode", 0))
    if kind == "max":
        if lo != hi or any(p > kk // 2 for p, kk in zip(lo, k)):
            x = F.pad(x, [v for i in reversed(range(nd)) for v in (lo[i], hi[i])], value=-math.inf)
            lo = [0] * nd
        fn = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[nd - 1]
        return fn(x, k, s, lo, d, ceil_mode=ceil)
    include = bool(n.attrs.get("count_include_pad", 0))
    if any(v != 1 for v in d):
        raise ValueError(f"AveragePool with dilations {d} is not supported")
    if lo != hi:
        if not include:
            raise ValueError(f"AveragePool with asymmetric pads {lo}/{hi} and count_include_pad=0 is not supported")
        x = F.pad(x, [v for i in reversed(range(nd)) for v in (lo[i], hi[i])])
        lo = [0] * nd
    fn = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[nd - 1]
    return fn(x, k, s, lo, ceil_mode=ceil, count_include_pad=include)


def _batch_norm(n: Node, x: Tensor, scale: Any, bias: Any, mean: Any, var: Any) -> Tensor:
    momentum = 1.0 - float(n.attrs.get("momentum", 0.9))
    # in train mode (after ``module.train()``, to fine-tune) the batch statistics normalize and the
    # running ones move, as in torch's BatchNorm
    return F.batch_norm(_t(x), _t(mean), _t(var), _t(scale), _t(bias), training=n.training,
                        momentum=momentum, eps=float(n.attrs.get("epsilon", 1e-5)))


def _gemm(n: Node, a: Tensor, b: Tensor, c: Any = None) -> Tensor:
    a, b = _t(a), _t(b)
    if n.attrs.get("transA", 0):
        a = a.transpose(0, 1)
    if n.attrs.get("transB", 0):
        b = b.transpose(0, 1)
    y = matmul(a, b)
    alpha, beta = float(n.attrs.get("alpha", 1.0)), float(n.attrs.get("beta", 1.0))
    if alpha != 1.0:
        y = y * alpha
    if c is not None:
        y = y + (_t(c) * beta if beta != 1.0 else _t(c))
    return y


def _clip(n: Node, x: Tensor, lo: Any = None, hi: Any = None) -> Tensor:
    lo = n.attrs.get("min", -math.inf) if lo is None and n.opset < 11 else lo
    hi = n.attrs.get("max", math.inf) if hi is None and n.opset < 11 else hi
    x = _t(x)
    dt = x.array.dtype
    lo = None if lo is None else float(_np(lo, "Clip min").reshape(-1)[0])
    hi = None if hi is None else float(_np(hi, "Clip max").reshape(-1)[0])
    return clamp(x, lo, hi) if dt.kind == "f" else x


def _hard_sigmoid(n: Node, x: Tensor) -> Tensor:
    return clamp(_t(x) * float(n.attrs.get("alpha", 0.2)) + float(n.attrs.get("beta", 0.5)), 0.0, 1.0)


def _prelu(n: Node, x: Tensor, slope: Any) -> Tensor:
    x, slope = _t(x), _t(slope)
    if slope.ndim == 1 and x.ndim > 2 and slope.shape[0] == x.shape[1] and slope.shape[0] > 1:
        slope = slope.reshape(-1, *([1] * (x.ndim - 2)))  # per channel (a layout some exporters use)
    return F.relu(x) + slope * (x - F.relu(x))


def _softmax(fn: Any):
    def op(n: Node, x: Tensor) -> Tensor:
        x = _t(x)
        axis = int(n.attrs.get("axis", -1 if n.opset >= 13 else 1)) % x.ndim
        if n.opset >= 13 or axis == x.ndim - 1:
            return fn(x, dim=axis)
        shape = x.shape  # before opset 13: over the flattened trailing dims
        return fn(x.reshape(math.prod(shape[:axis]), -1), dim=1).reshape(*shape)
    return op


def _reduce(kind: str):
    def op(n: Node, x: Any, axes: Any = None) -> Any:
        x = _t(x)
        ax = _axes(n, axes, x.ndim)
        if ax is None or len(ax) == 0:
            if ax is not None and n.attrs.get("noop_with_empty_axes", 0):
                return x
            ax = list(range(x.ndim))
        keep = bool(n.attrs.get("keepdims", 1))
        if kind == "mean":
            return x.mean(tuple(ax), keepdim=keep)
        if kind == "sum":
            return x.sum(tuple(ax), keepdim=keep)
        return (x.amax if kind == "max" else x.amin)(tuple(ax), keepdim=keep)
    return op


def _reshape(n: Node, x: Any, shape: Any) -> Any:
    shape = _ints(shape, "Reshape shape")
    cur = np.shape(x) if _static(x) else x.shape
    if not n.attrs.get("allowzero", 0):
        shape = [cur[i] if s == 0 else s for i, s in enumerate(shape)]
    return np.reshape(x, shape) if _static(x) else x.reshape(*shape)


def _flatten(n: Node, x: Any) -> Any:
    x = _t(x)
    axis = int(n.attrs.get("axis", 1)) % (x.ndim + 1) if x.ndim else 0
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


def _transpose(n: Node, x: Any) -> Any:
    perm = n.attrs.get("perm")
    if _static(x):
        return np.transpose(x, perm)
    return x.permute(*(perm if perm is not None else reversed(range(x.ndim))))


def _squeeze(n: Node, x: Any, axes: Any = None) -> Any:
    nd = np.ndim(x) if _static(x) else x.ndim
    shape = np.shape(x) if _static(x) else x.shape
    ax = _axes(n, axes, nd)
    ax = [i for i, s in enumerate(shape) if s == 1] if ax is None else ax
    new = [s for i, s in enumerate(shape) if i not in ax]
    return np.reshape(x, new) if _static(x) else x.reshape(*new)


def _unsqueeze(n: Node, x: Any, axes: Any = None) -> Any:
    shape = list(np.shape(x) if _static(x) else x.shape)
    given = n.attrs.get("axes") if axes is None else _ints(axes, "axes")
    ax = sorted(int(a) % (len(shape) + len(given)) for a in given)  # axes of the output
    for a in ax:
        shape.insert(a, 1)
    return np.reshape(x, shape) if _static(x) else x.reshape(*shape)


def _concat(n: Node, *xs: Any) -> Any:
    axis = int(n.attrs["axis"])
    if all(_static(x) for x in xs):
        return np.concatenate([np.asarray(x) for x in xs], axis=axis)
    xs = [_t(x) for x in xs if (np.size(x) if _static(x) else x.numel()) or len(xs) == 1]
    return cat(xs, dim=axis % xs[0].ndim)


def _shape(n: Node, x: Any) -> np.ndarray:
    s = np.asarray(np.shape(x) if _static(x) else x.shape, dtype=np.int64)
    start, end = n.attrs.get("start", 0), n.attrs.get("end")
    return s[start:end]


def _gather(n: Node, x: Any, idx: Any) -> Any:
    axis = int(n.attrs.get("axis", 0))
    idx = _np(idx, "Gather indices").astype(np.int64)
    if _static(x):
        return np.take(np.asarray(x), idx, axis=axis)
    axis %= x.ndim
    size = x.shape[axis]
    idx = np.where(idx < 0, idx + size, idx)
    index = (slice(None),) * axis + (Tensor._wrap(idx) if idx.ndim else int(idx),)
    return x[index]


def _slice(n: Node, x: Any, starts: Any = None, ends: Any = None, axes: Any = None, steps: Any = None) -> Any:
    if starts is None:  # opset < 10: attributes
        st, en, ax = n.attrs["starts"], n.attrs["ends"], n.attrs.get("axes")
        sp = [1] * len(st)
    else:
        st, en = _ints(starts, "Slice starts"), _ints(ends, "Slice ends")
        ax = None if axes is None else _ints(axes, "Slice axes")
        sp = [1] * len(st) if steps is None else _ints(steps, "Slice steps")
    shape = np.shape(x) if _static(x) else x.shape
    ax = list(range(len(st))) if ax is None else [a % len(shape) for a in ax]
    index = [slice(None)] * len(shape)
    for a, s0, e0, step in zip(ax, st, en, sp):
        dim = shape[a]
        s0 = min(max(s0 + dim if s0 < 0 else s0, 0 if step > 0 else -1), dim if step > 0 else dim - 1)
        e0 = min(max(e0 + dim if e0 < 0 else e0, 0 if step > 0 else -1), dim if step > 0 else dim - 1)
        index[a] = slice(s0, None if e0 < 0 else e0, step)
    return np.asarray(x)[tuple(index)] if _static(x) else x[tuple(index)]


def _pad(n: Node, x: Tensor, pads: Any = None, value: Any = None, axes: Any = None) -> Tensor:
    x = _t(x)
    p = list(n.attrs["pads"]) if pads is None else _ints(pads, "Pad pads")
    ax = list(range(x.ndim)) if axes is None else [a % x.ndim for a in _ints(axes, "Pad axes")]
    k = len(ax)
    lo, hi = dict(zip(ax, p[:k])), dict(zip(ax, p[k:]))
    mode = n.attrs.get("mode", "constant")
    v = float(n.attrs.get("value", 0.0)) if value is None else float(_np(value, "Pad value").reshape(-1)[0])
    widths = [w for i in reversed(range(x.ndim)) for w in (lo.get(i, 0), hi.get(i, 0))]
    while len(widths) > 2 and widths[-1] == 0 and widths[-2] == 0:
        widths = widths[:-2]
    mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}[mode]
    return F.pad(x, widths, mode=mode, value=v) if mode == "constant" else F.pad(x, widths, mode=mode)


def _resize(n: Node, x: Tensor, roi: Any = None, scales: Any = None, sizes: Any = None) -> Tensor:
    x = _t(x)
    if n.opset < 11:
        scales = roi
    nd = x.ndim - 2
    if sizes is not None and np.size(sizes):
        out = _ints(sizes, "Resize sizes")[-nd:]
    else:
        sc = _np(scales, "Resize scales").astype(np.float64).reshape(-1)
        if len(sc) != x.ndim or sc[0] != 1 or sc[1] != 1:
            raise ValueError(f"only spatial scales are supported, got {sc.tolist()}")
        out = [int(math.floor(s * f)) for s, f in zip(x.shape[2:], sc[2:])]
    mode = n.attrs.get("mode", "nearest")
    ctm = n.attrs.get("coordinate_transformation_mode", "half_pixel")
    if mode == "nearest":
        nm = n.attrs.get("nearest_mode", "round_prefer_floor")
        if ctm == "asymmetric" and nm == "floor":
            return F.interpolate(x, size=out, mode="nearest")
        if ctm == "half_pixel" and nm == "round_prefer_ceil":  # ⌊(o + ½)·in/out⌋: torch's nearest-exact
            return F.interpolate(x, size=out, mode="nearest-exact")
        if all(o % i == 0 for o, i in zip(out, x.shape[2:])):  # integer upsampling: every rule reads the same pixel
            return F.interpolate(x, size=out, mode="nearest")
        raise ValueError(f"nearest resizing with coordinate_transformation_mode={ctm!r}, nearest_mode={nm!r}")
    if mode == "linear":
        lin = ("linear", "bilinear", "trilinear")[nd - 1]
        if ctm == "align_corners":
            return F.interpolate(x, size=out, mode=lin, align_corners=True)
        if ctm in ("half_pixel", "pytorch_half_pixel"):
            if ctm == "pytorch_half_pixel" and any(o == 1 for o in out):
                raise ValueError("pytorch_half_pixel resizing to a size of 1")
            return F.interpolate(x, size=out, mode=lin, align_corners=False)
        raise ValueError(f"linear resizing with coordinate_transformation_mode={ctm!r}")
    raise ValueError(f"Resize mode {mode!r}")


def _constant(n: Node) -> np.ndarray:
    from onnx import numpy_helper

    a = n.attrs
    if "value" in a:
        return np.array(numpy_helper.to_array(a["value"]))
    for key, dt in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                    ("value_ints", np.int64)):
        if key in a:
            return np.asarray(a[key], dtype=dt)
    raise ValueError(f"Constant with attributes {sorted(a)}")


def _constant_of_shape(n: Node, shape: Any) -> np.ndarray:
    from onnx import numpy_helper

    v = np.array(numpy_helper.to_array(n.attrs["value"])) if "value" in n.attrs else np.zeros(1, np.float32)
    return np.full(_ints(shape, "ConstantOfShape shape"), v.reshape(-1)[0], dtype=v.dtype)


def _cast(n: Node, x: Any) -> Any:
    from onnx import helper

    dt = np.dtype(helper.tensor_dtype_to_np_dtype(int(n.attrs["to"])))
    if _static(x):
        return np.asarray(x).astype(dt)
    return x if x.array.dtype == dt else x.to(dt)


def _expand(n: Node, x: Any, shape: Any) -> Any:
    shape = _ints(shape, "Expand shape")
    cur = np.shape(x) if _static(x) else x.shape
    target = np.broadcast_shapes(tuple(cur), tuple(shape))
    return np.broadcast_to(x, target) if _static(x) else x.expand(*target)


def _split(n: Node, x: Tensor, split: Any = None) -> tuple[Any, ...]:
    x = _t(x)
    axis = int(n.attrs.get("axis", 0)) % x.ndim
    sizes = n.attrs.get("split") if split is None else _ints(split, "Split sizes")
    if sizes is None:
        k = len(n.outputs)
        sizes = [x.shape[axis] // k] * k
    out, start = [], 0
    for s in sizes:
        out.append(x[(slice(None),) * axis + (slice(start, start + s),)])
        start += s
    return tuple(out)


def _where(n: Node, c: Any, a: Any, b: Any) -> Any:
    if _static(c) and _static(a) and _static(b):
        return np.where(c, a, b)
    return where(_t(np.asarray(_np(c, "Where condition"), dtype=bool)), _t(a), _t(b))


def _elementwise(np_fn: Any, fn: Any):
    return lambda n, x: np_fn(x) if _static(x) else fn(x)


OPS: dict[str, Any] = {
    "Conv": _conv, "ConvTranspose": _conv_transpose, "BatchNormalization": _batch_norm,
    "Relu": _elementwise(lambda a: np.maximum(a, 0), F.relu),
    "LeakyRelu": lambda n, x: F.leaky_relu(_t(x), float(n.attrs.get("alpha", 0.01))), "PRelu": _prelu,
    "Sigmoid": _unary(F.sigmoid), "Tanh": _unary(F.tanh), "HardSigmoid": _hard_sigmoid,
    "HardSwish": lambda n, x: _t(x) * clamp(_t(x) * (1.0 / 6.0) + 0.5, 0.0, 1.0), "Clip": _clip,
    "Elu": lambda n, x: F.elu(_t(x), float(n.attrs.get("alpha", 1.0))), "Softplus": _unary(F.softplus),
    "Erf": _elementwise(lambda a: np.vectorize(math.erf)(a).astype(np.asarray(a).dtype), F.erf),
    "Exp": _unary(lambda x: x.exp()), "Log": _unary(lambda x: x.log()),
    "Sqrt": _elementwise(np.sqrt, lambda x: x.sqrt()),
    "Neg": _elementwise(np.negative, lambda x: -x), "Abs": _elementwise(np.abs, lambda x: x.abs()),
    "Reciprocal": _unary(lambda x: 1.0 / x),
    "Add": _binary(np.add, lambda a, b: a + b), "Sub": _binary(np.subtract, lambda a, b: a - b),
    "Mul": _binary(np.multiply, lambda a, b: a * b), "Div": _binary(_int_div, lambda a, b: a / b),
    "Pow": _binary(np.power, lambda a, b: a ** b), "Max": _binary(np.maximum, lambda a, b: a.maximum(b)),
    "Min": _binary(np.minimum, lambda a, b: a.minimum(b)),
    "Equal": lambda n, a, b: np.equal(_np(a, "Equal"), _np(b, "Equal")),
    "MatMul": _binary(np.matmul, matmul), "Gemm": _gemm,
    "MaxPool": lambda n, x: _pool(n, x, "max"), "AveragePool": lambda n, x: _pool(n, x, "avg"),
    "GlobalAveragePool": lambda n, x: _t(x).mean(tuple(range(2, _t(x).ndim)), keepdim=True),
    "GlobalMaxPool": lambda n, x: _t(x).amax(tuple(range(2, _t(x).ndim)), keepdim=True),
    "Concat": _concat, "Reshape": _reshape, "Flatten": _flatten, "Transpose": _transpose, "Resize": _resize,
    "Upsample": _resize, "Pad": _pad, "Softmax": _softmax(F.softmax), "LogSoftmax": _softmax(F.log_softmax),
    "ReduceMean": _reduce("mean"), "ReduceSum": _reduce("sum"), "ReduceMax": _reduce("max"),
    "ReduceMin": _reduce("min"), "Squeeze": _squeeze, "Unsqueeze": _unsqueeze, "Shape": _shape, "Gather": _gather,
    "Slice": _slice, "Constant": lambda n: _constant(n), "ConstantOfShape": _constant_of_shape, "Cast": _cast,
    "Identity": lambda n, x: x, "Dropout": lambda n, x, *rest: x, "Expand": _expand, "Split": _split,
    "Where": _where,
}
