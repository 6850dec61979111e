"""``convert``: an ONNX graph as a lamina module (onnx2torch's convention).

Reading a file parses protobuf only (no code runs); every initializer's byte count is checked
against its shape, and external data is refused. Nodes whose inputs are all constants (shape
arithmetic, ``Constant`` chains) are folded at conversion; what remains runs in order on lamina
Tensors. The float initializers that feed weights (Conv, Gemm, MatMul, BatchNormalization's
scale and bias, PRelu, a bias Add …) become trainable Parameters; batch norm's statistics
become buffers.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

from .. import nn
from ..autograd import Tensor, no_grad
from ._convert_ops import BUFFER_INPUTS, OPS, PARAM_INPUTS, Node
from ._export import UnsupportedOperatorError

__all__ = ["convert", "OnnxModule"]

_MAX_BYTES = 2 ** 31  # protobuf's own limit on one message


def _load(source: Any) -> Any:
    import onnx
    from google.protobuf.message import DecodeError

    if isinstance(source, onnx.ModelProto):
        return source
    if isinstance(source, (bytes, bytearray)):
        data, where = bytes(source), "the given bytes"
    else:
        path = os.fspath(source)
        where = repr(path)
        size = os.path.getsize(path)
        if size > _MAX_BYTES:
            raise ValueError(f"lamina.onnx.convert: {where} is {size} bytes, over ONNX's 2 GiB limit for one file")
        with open(path, "rb") as fh:
            data = fh.read()
    try:
        proto = onnx.load_model_from_string(data)
    except DecodeError as e:
        raise ValueError(f"lamina.onnx.convert: {where} is not an ONNX model ({type(e).__name__}: {e})") from None
    if not proto.graph.node:
        raise ValueError(f"lamina.onnx.convert: {where} holds no graph nodes (not an ONNX model?)")
    return proto


def _array(t: Any, where: str) -> np.ndarray:
    from onnx import TensorProto, helper, numpy_helper

    if t.data_location == TensorProto.EXTERNAL:
        raise ValueError(f"lamina.onnx.convert: tensor {t.name!r} keeps its data in an external file, which "
                         f"lamina does not read")
    dims = [int(d) for d in t.dims]
    if any(d < 0 for d in dims):
        raise ValueError(f"lamina.onnx.convert: tensor {t.name!r} has a negative dim {dims}")
    n = int(np.prod(dims, dtype=np.int64)) if dims else 1
    if t.HasField("raw_data") and t.data_type != TensorProto.STRING:
        itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
        if len(t.raw_data) != n * itemsize:
            raise ValueError(f"lamina.onnx.convert: tensor {t.name!r} of shape {tuple(dims)} should hold "
                             f"{n * itemsize} bytes, got {len(t.raw_data)}{where}")
    a = numpy_helper.to_array(t)
    if a.size != n:
        raise ValueError(f"lamina.onnx.convert: tensor {t.name!r} of shape {tuple(dims)} holds {a.size} values")
    return np.array(a)


def _safe(name: str, taken: set[str]) -> str:
    s = re.sub(r"\W", "_", name) or "t"
    if s[0].isdigit():
        s = "t_" + s
    base, k = s, 1
    while s in taken:
        k += 1
        s = f"{base}_{k}"
    taken.add(s)
    return s


class OnnxModule(nn.Module):
    """An ONNX graph run on lamina Tensors: ``forward(*inputs)`` returns the graph's output
    (a tuple when it has several). ``nodes`` are the remaining nodes in order; ``initializers``
    holds the Parameters and buffers, named after the ONNX tensors."""

    def __init__(self, nodes: list[Node], inputs: list[str], outputs: list[str], consts: dict[str, np.ndarray],
                 tensors: dict[str, str]) -> None:
        super().__init__()
        self.nodes = nn.ModuleList(nodes)
        self.initializers = nn.Module()
        self.input_names, self.output_names = inputs, outputs
        self._consts = consts
        self._tensors = tensors  # ONNX name → attribute of self.initializers

    def add_tensor(self, onnx_name: str, safe: str, value: np.ndarray, trainable: bool) -> None:
        t = Tensor._wrap(np.ascontiguousarray(value))
        if trainable:
            setattr(self.initializers, safe, nn.Parameter(t))
        else:
            self.initializers.register_buffer(safe, t)
        self._tensors[onnx_name] = safe

    def forward(self, *inputs: Tensor) -> Any:
        if len(inputs) != len(self.input_names):
            raise ValueError(f"OnnxModule: the graph takes {len(self.input_names)} inputs {self.input_names}, "
                             f"got {len(inputs)}")
        env: dict[str, Any] = dict(self._consts)
        for k, s in self._tensors.items():
            env[k] = getattr(self.initializers, s)
        env.update(zip(self.input_names, inputs))
        for node in self.nodes:
            node.run(env)
        outs = tuple(env[o] if isinstance(env[o], Tensor) else Tensor._wrap(np.asarray(env[o]))
                     for o in self.output_names)
        return outs[0] if len(outs) == 1 else outs


def convert(path_or_model: str | os.PathLike[str] | bytes | Any) -> OnnxModule:
    """An ONNX model (a file path, its bytes or an ``onnx.ModelProto``) as a lamina module.

    Operators of opsets 11 to 21 that CNNs use are supported (Conv, ConvTranspose,
    BatchNormalization, the activations, elementwise arithmetic, MatMul, Gemm, pooling, Concat,
    Reshape, Flatten, Transpose, Resize, Pad, Softmax, reductions, Squeeze/Unsqueeze and the
    Shape/Gather/Slice/Constant arithmetic of shapes …).

    The module comes in eval mode; ``module.train()`` before fine-tuning makes its batch norms
    use (and update) batch statistics.

    Raises:
        UnsupportedOperatorError: naming every operator of the graph that lamina cannot run.
        ValueError: for a file that is not ONNX, or whose tensors do not match their shapes.

    Example:
        >>> import io, lamina
        >>> from lamina.onnx import export
        >>> buf = io.BytesIO()
        >>> export(lamina.nn.Linear(3, 2), lamina.randn(1, 3), buf)
        >>> m = convert(buf.getvalue())
        >>> m(lamina.ones(4, 3)).shape
        (4, 2)
    """
    proto = _load(path_or_model)
    opset = next((int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None or not 7 <= opset <= 22:
        raise UnsupportedOperatorError(f"lamina.onnx.convert: the model's default opset is {opset}; lamina "
                                       f"converts opsets 11 to 21")
    other = [o.domain for o in proto.opset_import if o.domain not in ("", "ai.onnx")]
    graph = proto.graph
    bad = sorted({n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}" for n in graph.node
                  if n.domain not in ("", "ai.onnx") or n.op_type not in OPS})
    if bad:
        raise UnsupportedOperatorError(f"lamina.onnx.convert: unsupported ONNX operator(s): {', '.join(bad)}"
                                       + (f" (custom domains {other})" if other else ""))
    inits = {t.name: _array(t, "") for t in graph.initializer}
    for n in graph.node:  # some exporters keep the weights in Constant nodes
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx") and len(n.output) == 1:
            for a in n.attribute:
                if a.name == "value":
                    inits[n.output[0]] = _array(a.t, f" (Constant node {n.name!r})")
    inputs = [i.name for i in graph.input if i.name not in inits]
    outputs = [o.name for o in graph.output]
    nodes = [Node(n, opset) for n in graph.node if not (n.op_type == "Constant" and n.output[0] in inits)]
    # roles of initializers, from the nodes that read them
    role: dict[str, str] = {}
    for n in nodes:
        for pos, name in enumerate(n.inputs):
            if name in inits and inits[name].dtype.kind == "f":
                if pos in BUFFER_INPUTS.get(n.op_type, ()):
                    role.setdefault(name, "buffer")
                elif pos in PARAM_INPUTS.get(n.op_type, ()) and (n.op_type not in ("Add", "Sub", "Mul", "Div")
                                                                 or inits[name].size > 1):
                    role[name] = "param"
    static = {k: v for k, v in inits.items() if k not in role}
    kept = []
    with no_grad():
        for n in nodes:  # fold nodes on constants only
            if all(i == "" or i in static for i in n.inputs):
                n.run(static)
                for o in n.outputs:
                    v = static[o]
                    static[o] = v.numpy() if isinstance(v, Tensor) else np.asarray(v)
            else:
                kept.append(n)
    module = OnnxModule(kept, inputs, outputs, {}, {})
    used = {i for n in kept for i in n.inputs} | set(outputs)
    module._consts = {k: v for k, v in static.items() if k in used}
    module.eval()  # an ONNX graph is an inference graph: batch norm uses its running statistics
    taken: set[str] = set()
    for name, r in role.items():
        module.add_tensor(name, _safe(name, taken), inits[name], trainable=(r == "param"))
    missing = [o for o in outputs if o not in used and o not in static]
    if missing:
        raise ValueError(f"lamina.onnx.convert: graph outputs {missing} are produced by no node")
    return module


