"""How each recorded lamina ``Function`` (and each layer exported whole) becomes ONNX nodes.

An emitter receives the graph builder ``g``, the ONNX names of the op's inputs (``None`` for an
absent input), the inputs themselves, the output Tensor and the op's options, and returns the
ONNX name of the output.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import nn
from ..models import cifar
from ..nn.modules import _hooks
from ..ops import activation, arithmetic, indexing, join, linalg, pooling, resample, selection, unary
from ..ops import cast as _cast_ops
from ..ops import conv as _conv_ops
from ..ops import reduce as _reduce_ops
from ..ops import shape as _shape_ops
from ..ops.kernels import pool as pool_kernels
from ..ops.pad import ConstantPad

__all__ = ["FUNCTIONS", "MODULES"]


def _binary(op: str):
    return lambda g, names, ins, out, o: g.node(op, [names[0], names[1]])


def _unary(op: str):
    return lambda g, names, ins, out, o: g.node(op, [names[0]])


def _rsqrt(g, names, ins, out, o):
    return g.node("Reciprocal", [g.node("Sqrt", [names[0]])])


def _pow_scalar(g, names, ins, out, o):
    return g.node("Pow", [names[0], g.const(np.asarray(o["exponent"], dtype=out.array.dtype))])


def _softplus(g, names, ins, out, o):
    beta = float(o["beta"])
    if beta == 1.0:
        return g.node("Softplus", [names[0]])
    b = g.const(np.asarray(beta, dtype=out.array.dtype))
    return g.node("Div", [g.node("Softplus", [g.node("Mul", [names[0], b])]), b])


def _clamp(g, names, ins, out, o):
    y = names[0]
    if names[1] is not None:
        y = g.node("Max", [y, names[1]])
    if len(names) > 2 and names[2] is not None:
        y = g.node("Min", [y, names[2]])
    return y


def _softmax(op: str):
    def emit(g, names, ins, out, o):
        axes = tuple(o["axes"])
        if len(axes) != 1:
            raise g.unsupported(f"{op} over several dims {axes}")
        return g.node(op, [names[0]], axis=int(axes[0]))
    return emit


def _reduce(g, names, ins, out, o, op: str = "ReduceSum"):
    axes = [int(a) for a in o["axes"]]
    if op == "ReduceSum" or g.opset >= 18:
        return g.node(op, [names[0], g.const(np.asarray(axes, dtype=np.int64))], keepdims=int(o["keepdim"]))
    return g.node(op, [names[0]], axes=axes, keepdims=int(o["keepdim"]))


def _amax(g, names, ins, out, o):
    return _reduce(g, names, ins, out, o, "ReduceMax" if o["largest"] else "ReduceMin")


def _reshape(g, names, ins, out, o):
    target = list(out.shape)
    if len(target) and ins[0].ndim and target[0] == ins[0].shape[0]:
        target[0] = 0  # ONNX: copy the leading (batch) dim from the input, so that it may vary
    return g.node("Reshape", [names[0], g.const(np.asarray(target, dtype=np.int64))])


def _expand(g, names, ins, out, o):
    x = ins[0]
    lead = out.ndim - x.ndim
    # a dim the input already has stays 1 in the target, so that a dynamic batch broadcasts through
    target = [1 if i >= lead and x.shape[i - lead] == n else n for i, n in enumerate(out.shape)]
    return g.node("Expand", [names[0], g.const(np.asarray(target, dtype=np.int64))])


def _cast(g, names, ins, out, o):
    from onnx import helper
    return g.node("Cast", [names[0]], to=helper.np_dtype_to_tensor_dtype(out.array.dtype))


def _slice(g, x: str, starts, ends, axes, steps) -> str:
    arr = [np.asarray(v, dtype=np.int64) for v in (starts, ends, axes, steps)]
    return g.node("Slice", [x] + [g.const(a) for a in arr])


def _flip(g, names, ins, out, o):
    dims = [int(d) for d in o["dims"]]
    big = np.iinfo(np.int64).min
    return _slice(g, names[0], [-1] * len(dims), [big] * len(dims), dims, [-1] * len(dims))


def _getitem(g, names, ins, out, o):
    index = o["index"]
    index = index if isinstance(index, tuple) else (index,)
    x = ins[0]
    if any(i is Ellipsis for i in index):
        k = index.index(Ellipsis)
        used = sum(1 for i in index if i is not None and i is not Ellipsis)
        index = index[:k] + (slice(None),) * (x.ndim - used) + index[k + 1:]
    starts, ends, axes, steps, squeeze, unsq = [], [], [], [], [], []
    dim = 0
    pos = 0
    for i in index:
        if i is None:
            unsq.append(pos)
            pos += 1
            continue
        if isinstance(i, slice):
            a, b, s = i.indices(x.shape[dim])
            if (a, b, s) != (0, x.shape[dim], 1):
                if s < 0 and b < 0:
                    b = np.iinfo(np.int64).min
                starts.append(a), ends.append(b), axes.append(dim), steps.append(s)
            pos += 1
        elif isinstance(i, (int, np.integer)) and not isinstance(i, bool):
            a = int(i) % x.shape[dim]
            starts.append(a), ends.append(a + 1), axes.append(dim), steps.append(1)
            squeeze.append(dim)
        else:
            raise g.unsupported(f"indexing with {type(i).__name__} (only ints, slices, None and ... export)")
        dim += 1
    y = _slice(g, names[0], starts, ends, axes, steps) if axes else g.node("Identity", [names[0]])
    if squeeze:
        y = g.node("Squeeze", [y, g.const(np.asarray(squeeze, dtype=np.int64))])
    if unsq:
        y = g.node("Unsqueeze", [y, g.const(np.asarray(unsq, dtype=np.int64))])
    return y


def _index_select(g, names, ins, out, o):
    idx = g.const(np.asarray(o["index"], dtype=np.int64))
    return g.node("Gather", [names[0], idx], axis=int(o["dim"]))


def _gather_elements(g, names, ins, out, o):
    idx = g.const(np.asarray(o["index"], dtype=np.int64))
    return g.node("GatherElements", [names[0], idx], axis=int(o["dim"]))


def _cat(g, names, ins, out, o):
    return g.node("Concat", list(names), axis=int(o["dim"]))


def _constant_pad(g, names, ins, out, o):
    widths = o["widths"]
    pads = [int(a) for a, _ in widths] + [int(b) for _, b in widths]
    value = g.const(np.asarray(o["value"], dtype=out.array.dtype))
    return g.node("Pad", [names[0], g.const(np.asarray(pads, dtype=np.int64)), value], mode="constant")


def _conv(g, names, ins, out, o):
    x, w = ins[0], ins[1]
    k = w.shape[2:]
    ext = [d * (kk - 1) + 1 for d, kk in zip(o["dilation"], k)]
    hi = [max(0, (n_out - 1) * s + e - n - lo)
          for n_out, s, e, n, lo in zip(o["out"], o["stride"], ext, x.shape[2:], o["pad_lo"])]
    inputs = [names[0], names[1]] + ([names[2]] if names[2] is not None else [])
    return g.node("Conv", inputs, kernel_shape=list(k), strides=list(o["stride"]), dilations=list(o["dilation"]),
                  pads=list(o["pad_lo"]) + hi, group=int(o["groups"]))


def _conv_transpose(g, names, ins, out, o):
    x, w = ins[0], ins[1]
    k = w.shape[2:]
    base = [(n - 1) * s - 2 * p + d * (kk - 1) + 1
            for n, s, p, d, kk in zip(x.shape[2:], o["stride"], o["pad_lo"], o["dilation"], k)]
    inputs = [names[0], names[1]] + ([names[2]] if names[2] is not None else [])
    return g.node("ConvTranspose", inputs, kernel_shape=list(k), strides=list(o["stride"]),
                  dilations=list(o["dilation"]), pads=list(o["pad_lo"]) * 2, group=int(o["groups"]),
                  output_padding=[s - b for s, b in zip(o["size"], base)])


def _max_pool(g, names, ins, out, o):
    geom = o["geom"]
    return g.node("MaxPool", [names[0]], kernel_shape=list(geom.kernel), strides=list(geom.stride),
                  dilations=list(geom.dilation), pads=list(geom.padding) + list(geom.pad_after))


def _avg_pool(g, names, ins, out, o):
    geom = o["geom"]
    y = g.node("AveragePool", [names[0]], kernel_shape=list(geom.kernel), strides=list(geom.stride),
               pads=list(geom.padding) + list(geom.pad_after), count_include_pad=0)
    # ONNX divides by the elements inside the input; lamina's divisor (torch's rules for
    # count_include_pad, ceil_mode and divisor_override) differs by a constant factor per window
    dtype = out.array.dtype
    excl = np.broadcast_to(np.asarray(pool_kernels.avg_divisor(geom, False, None, dtype)), geom.out_size)
    ratio = excl / np.broadcast_to(np.asarray(o["div"], dtype=dtype), geom.out_size)
    if np.allclose(ratio, 1.0, rtol=0, atol=0):
        return y
    return g.node("Mul", [y, g.const(ratio.astype(dtype))])


def _spatial_mean(g, names, ins, out, o):
    nd = int(o["nd"])
    if ins[0].ndim == nd + 2:
        return g.node("GlobalAveragePool", [names[0]])
    return _reduce(g, names, ins, out, dict(axes=list(range(ins[0].ndim - nd, ins[0].ndim)), keepdim=True),
                   "ReduceMean")


def _axis_map(g, names, ins, out, o):
    m = g.const(np.ascontiguousarray(o["m"]).astype(out.array.dtype))
    axis, nd = int(o["axis"]) % ins[0].ndim, ins[0].ndim
    if axis == nd - 1:
        return g.node("MatMul", [names[0], m])
    perm = list(range(nd))
    perm[axis], perm[-1] = perm[-1], perm[axis]
    t = g.node("Transpose", [names[0]], perm=perm)
    return g.node("Transpose", [g.node("MatMul", [t, m])], perm=perm)


def _axis_gather(g, names, ins, out, o):
    idx = g.const(np.asarray(o["idx"], dtype=np.int64))
    return g.node("Gather", [names[0], idx], axis=int(o["axis"]))


def _subsample_pad(g, names, ins, out, o):
    big = np.iinfo(np.int64).max
    y = _slice(g, names[0], [0, 0], [big, big], [2, 3], [2, 2])
    p = int(o["pad"])
    pads = np.asarray([0, p, 0, 0, 0, p, 0, 0], dtype=np.int64)
    return g.node("Pad", [y, g.const(pads), g.const(np.zeros((), out.array.dtype))], mode="constant")


def _identity(g, names, ins, out, o):
    return g.node("Identity", [names[0]])


FUNCTIONS: dict[type, Any] = {
    arithmetic.Add: _binary("Add"), arithmetic.Sub: _binary("Sub"), arithmetic.Mul: _binary("Mul"),
    arithmetic.Div: _binary("Div"), arithmetic.Pow: _binary("Pow"), selection.Maximum: _binary("Max"),
    selection.Minimum: _binary("Min"), arithmetic.Neg: _unary("Neg"), arithmetic.Abs: _unary("Abs"),
    arithmetic.PowScalar: _pow_scalar, selection.Clamp: _clamp,
    selection.Where: lambda g, names, ins, out, o: g.node("Where", list(names)),
    unary.Exp: _unary("Exp"), unary.Log: _unary("Log"), unary.Sqrt: _unary("Sqrt"), unary.Rsqrt: _rsqrt,
    unary.Sin: _unary("Sin"), unary.Cos: _unary("Cos"), unary.Atan: _unary("Atan"),
    unary.Sigmoid: _unary("Sigmoid"), unary.Tanh: _unary("Tanh"), unary.Relu: _unary("Relu"),
    activation.Erf: _unary("Erf"), activation.Softplus: _softplus, activation.Hardswish: _unary("HardSwish"),
    _reduce_ops.Softmax: _softmax("Softmax"), _reduce_ops.LogSoftmax: _softmax("LogSoftmax"),
    _reduce_ops.Sum: _reduce, _reduce_ops.AMax: _amax,
    _reduce_ops.Mean: lambda g, names, ins, out, o: _reduce(g, names, ins, out, o, "ReduceMean"),
    _shape_ops.Reshape: _reshape, _shape_ops.Permute: lambda g, names, ins, out, o: g.node(
        "Transpose", [names[0]], perm=[int(d) for d in o["dims"]]),
    _shape_ops.BroadcastTo: _expand, _shape_ops.Contiguous: _identity, _shape_ops.Flip: _flip,
    _cast_ops.Clone: _identity, _cast_ops.Cast: _cast, _hooks._Identity: _identity,
    indexing.GetItem: _getitem, indexing.IndexSelect: _index_select, indexing.Gather: _gather_elements,
    join.Cat: _cat, ConstantPad: _constant_pad, linalg.Matmul: _binary("MatMul"),
    _conv_ops.Conv: _conv, _conv_ops.ConvTranspose: _conv_transpose, pooling.MaxPool: _max_pool,
    pooling.AvgPool: _avg_pool, pooling.SpatialMean: _spatial_mean,
    resample.AxisMap: _axis_map, resample.AxisGather: _axis_gather, cifar._SubsamplePad: _subsample_pad,
}


# --- layers exported whole (their functional forms compute masks from the data) ----------------

def _m_clip(lo: float, hi: float):
    def emit(g, m, name, x, out):
        dt = out.array.dtype
        return g.node("Clip", [name, g.const(np.asarray(lo, dt)), g.const(np.asarray(hi, dt))])
    return emit


def _m_hardtanh(g, m, name, x, out):
    return _m_clip(m.min_val, m.max_val)(g, m, name, x, out)


def _m_prelu(g, m, name, x, out):
    w = g.param(m.weight)
    if x.ndim > 2 and m.weight.numel() > 1:
        w = g.node("Reshape", [w, g.const(np.asarray([-1] + [1] * (x.ndim - 2), dtype=np.int64))])
    return g.node("PRelu", [name, w])


def _m_gelu(g, m, name, x, out):
    dt = out.array.dtype
    if m.approximate != "none":
        raise g.unsupported("GELU(approximate='tanh')")
    e = g.node("Erf", [g.node("Div", [name, g.const(np.asarray(math.sqrt(2.0), dt))])])
    return g.node("Mul", [g.node("Mul", [name, g.node("Add", [e, g.const(np.asarray(1.0, dt))])]),
                          g.const(np.asarray(0.5, dt))])


def _m_batch_norm(g, m, name, x, out):
    if m.running_mean is None:
        raise g.unsupported(f"{type(m).__name__} without running statistics (track_running_stats=False)")
    c = m.num_features
    dt = out.array.dtype
    scale = g.param(m.weight) if m.weight is not None else g.const(np.ones(c, dt))
    bias = g.param(m.bias) if m.bias is not None else g.const(np.zeros(c, dt))
    y = g.node("BatchNormalization", [name, scale, bias, g.param(m.running_mean), g.param(m.running_var)],
               epsilon=float(m.eps))
    return y


MODULES: dict[type, Any] = {
    nn.ReLU6: _m_clip(0.0, 6.0), nn.Hardtanh: _m_hardtanh,
    nn.LeakyReLU: lambda g, m, name, x, out: g.node("LeakyRelu", [name], alpha=float(m.negative_slope)),
    nn.Hardsigmoid: lambda g, m, name, x, out: g.node("HardSigmoid", [name], alpha=1.0 / 6.0, beta=0.5),
    nn.Hardswish: lambda g, m, name, x, out: g.node("HardSwish", [name]),
    nn.ELU: lambda g, m, name, x, out: g.node("Elu", [name], alpha=float(m.alpha)),
    nn.SiLU: lambda g, m, name, x, out: g.node("Mul", [name, g.node("Sigmoid", [name])]),
    nn.PReLU: _m_prelu, nn.GELU: _m_gelu,
    nn.BatchNorm1d: _m_batch_norm, nn.BatchNorm2d: _m_batch_norm, nn.BatchNorm3d: _m_batch_norm,
}
