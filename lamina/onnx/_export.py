"""``export``: a lamina model traced into an ONNX ``ModelProto`` (torch's ``torch.onnx.export``).

The model runs once on ``args`` while lamina's per-thread op recorder (``_record_ops``) lists
every ``Function`` applied; each becomes ONNX nodes (see ``_export_ops``). Ops on parameters
alone (a linear layer's ``Wᵀ``) are folded into initializers. Layers whose functional form
computes masks from the data (``ReLU6``, ``LeakyReLU`` …) and batch norm are exported whole,
caught by forward hooks on this model only. The model runs a second time on another random
input of the same scale: a constant input or index option that changed between the two runs
was computed from the data (a mask, a gather's indices) and would be frozen into the graph, so
export refuses it by name; so too a different sequence of ops (data-dependent branches). This
is a check by example, not a proof: a mask that happens to agree on both inputs passes.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import backend, nn
from ..autograd import Tensor, no_grad
from ..autograd.function import _record_ops
from ._export_ops import FUNCTIONS, MODULES

__all__ = ["export", "UnsupportedOperatorError"]


class UnsupportedOperatorError(ValueError):
    """An operation has no ONNX form in lamina's exporter (or an ONNX operator no lamina form)."""


class _Builder:
    """Collects nodes and initializers; names tensors."""

    def __init__(self, opset: int, dynamic: bool, params: dict[int, str]) -> None:
        self.opset, self.dynamic = opset, dynamic
        self.nodes: list[Any] = []
        self.inits: dict[str, np.ndarray] = {}
        self.params = params
        self.names: dict[int, str] = {}
        self.keep: list[Any] = []  # tensors named by id stay alive, so their ids stay unique
        self.count = 0
        self.where = ""

    def fresh(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def unsupported(self, what: str) -> UnsupportedOperatorError:
        return UnsupportedOperatorError(f"lamina.onnx.export: cannot export {what}{self.where}")

    def node(self, op: str, inputs: Sequence[str], **attrs: Any) -> str:
        from onnx import helper
        out = self.fresh(op)
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out

    def const(self, array: Any, hint: str = "const") -> str:
        name = self.fresh(hint)
        self.inits[name] = np.asarray(array)
        return name

    def param(self, t: Tensor) -> str:
        if id(t) in self.names:
            return self.names[id(t)]
        name = self.params.get(id(t)) or self.fresh("const")
        self.inits[name] = t.detach().numpy()
        self.names[id(t)] = name
        self.keep.append(t)
        return name


def _flatten(out: Any, names: Sequence[str] | None) -> list[tuple[str, Tensor]]:
    if isinstance(out, Tensor):
        items = [("output", out)]
    elif isinstance(out, Mapping):
        items = [(str(k), v) for k, v in out.items()]
    elif isinstance(out, (tuple, list)):
        items = [(f"output_{i}", v) for i, v in enumerate(out)]
    else:
        raise TypeError(f"lamina.onnx.export: the model must return a Tensor, a tuple or a dict of Tensors, "
                        f"got {type(out).__name__}")
    for k, v in items:
        if not isinstance(v, Tensor):
            raise TypeError(f"lamina.onnx.export: output {k!r} is a {type(v).__name__}, not a Tensor")
    if names is not None:
        if len(names) != len(items):
            raise ValueError(f"lamina.onnx.export: {len(names)} output_names given for {len(items)} outputs")
        items = [(n, v) for n, (_, v) in zip(names, items)]
    return items


def _run(model: nn.Module, args: tuple[Tensor, ...]) -> tuple[Any, list[tuple[Any, ...]]]:
    """The model's output on ``args`` and the ops it applied, each layer of ``MODULES`` as one record."""
    stack: list[int] = []
    handles = []
    with no_grad(), _record_ops() as made:
        def pre(m: nn.Module, a: tuple[Any, ...]) -> None:
            stack.append(len(made))

        def post(m: nn.Module, a: tuple[Any, ...], out: Any) -> None:
            del made[stack.pop():]
            made.append((type(m), a, out, {"module": m}))

        for _, m in model.named_modules():
            if type(m) in MODULES:
                handles.append(m.register_forward_pre_hook(pre))
                handles.append(m.register_forward_hook(post))
        try:
            out = model(*args)
        finally:
            for h in handles:
                h.remove()
    return out, list(made)


def _module_names(model: nn.Module) -> dict[int, str]:
    where: dict[int, str] = {}
    for name, m in model.named_modules():
        where[id(m)] = name or type(model).__name__
    return where


def _perturbed(args: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    rng = np.random.default_rng(0x0A11CE)  # a seed of its own: not the draws that made the example input
    out = []
    for a in args:
        if a.dtype.kind == "f":
            # another input of the same scale: independent of the first, so that masks and
            # indices taken from the data differ between the two runs
            arr = np.asarray(a.array, dtype=np.float64)
            scale = float(arr.std()) if arr.size > 1 and arr.std() > 0 else 1.0
            other = float(arr.mean()) + scale * rng.standard_normal(a.shape)
            out.append(Tensor._wrap(backend.xp.asarray(other.astype(a.array.dtype))))
        else:
            out.append(a)
    return tuple(out)


def build(model: nn.Module, args: Any, input_names: Sequence[str] | None = None,
          output_names: Sequence[str] | None = None, dynamic_axes: Mapping[str, Any] | None = None,
          opset_version: int = 17) -> Any:
    """The ``onnx.ModelProto`` of ``model`` traced on ``args`` (see :func:`export`)."""
    import onnx
    from onnx import helper, numpy_helper

    if not 13 <= int(opset_version) <= 21:
        raise ValueError(f"lamina.onnx.export: opset_version must lie in 13..21, got {opset_version}")
    args = (args,) if isinstance(args, Tensor) else tuple(args)
    if not args or not all(isinstance(a, Tensor) for a in args):
        raise TypeError("lamina.onnx.export: args must be a Tensor or a tuple of Tensors")
    in_names = list(input_names) if input_names is not None else (
        ["input"] if len(args) == 1 else [f"input_{i}" for i in range(len(args))])
    if len(in_names) != len(args):
        raise ValueError(f"lamina.onnx.export: {len(in_names)} input_names given for {len(args)} inputs")
    dynamic_axes = dict(dynamic_axes or {})
    was_training = {id(m): m.training for _, m in model.named_modules()}
    model.eval()  # as torch.onnx.export's default training=TrainingMode.EVAL
    try:
        out, made = _run(model, args)
        _, made2 = _run(model, _perturbed(args))
    finally:
        for _, m in model.named_modules():
            m.training = was_training[id(m)]
    params = {}
    for n, p in model.named_parameters():
        params[id(p)] = n
    for n, b in model.named_buffers():
        if b is not None:
            params[id(b)] = n
    outs = _flatten(out, output_names)
    g = _Builder(int(opset_version), bool(dynamic_axes), params)
    dynamic: set[int] = set()
    for name, a in zip(in_names, args):
        g.names[id(a)] = name
        dynamic.add(id(a))
    where = _module_names(model)
    if len(made) != len(made2) or any(r[0] is not s[0] for r, s in zip(made, made2)):
        raise UnsupportedOperatorError("lamina.onnx.export: the model applies different operations to different "
                                       "inputs (data-dependent control flow), which a traced graph cannot hold")
    for rec, rec2 in zip(made, made2):
        cls, ins, res, opts = rec
        module = opts.get("module") if cls in MODULES else None
        g.where = f" (in {where.get(id(module), type(module).__name__)})" if module is not None else ""
        tensors = [i for i in ins if isinstance(i, Tensor)]
        if not any(id(t) in dynamic for t in tensors):  # parameters and constants only: fold
            if isinstance(res, Tensor):
                g.keep.append(res)
            continue
        for i, (t, t2) in enumerate(zip(ins, rec2[1])):
            if (isinstance(t, Tensor) and id(t) not in dynamic and id(t) not in params and id(t) not in g.names
                    and isinstance(t2, Tensor) and t.shape == t2.shape
                    and not np.array_equal(np.asarray(t.array), np.asarray(t2.array))):
                raise g.unsupported(f"{cls.__name__}: its input {i} is a constant computed from the data "
                                    f"(shape {tuple(t.shape)}); call the layer as its nn module (nn.ReLU6 …), "
                                    f"which exports whole")
        for k, v in opts.items():  # an index array (a gather's, a mask's) may come from the data too
            v2 = rec2[3].get(k)
            if isinstance(v, np.ndarray) and not (isinstance(v2, np.ndarray) and np.array_equal(v, v2)):
                raise g.unsupported(f"{cls.__name__}: its option {k!r} is computed from the data")
        names = [None if i is None else (g.names.get(id(i)) or g.param(i)) if isinstance(i, Tensor) else i
                 for i in ins]
        if module is not None:
            y = MODULES[cls](g, module, names[0], ins[0], res)
        else:
            emit = FUNCTIONS.get(cls)
            if emit is None:
                raise UnsupportedOperatorError(
                    f"lamina.onnx.export: the operation {cls.__name__} ({cls.__module__}) has no ONNX export")
            if any(not isinstance(i, Tensor) and i is not None for i in ins):
                raise g.unsupported(f"{cls.__name__} with a non-Tensor input")
            y = emit(g, names, ins, res, opts)
        g.names[id(res)] = y
        g.keep.append(res)
        dynamic.add(id(res))
    graph_outputs = []
    for oname, t in outs:
        if id(t) not in dynamic:
            raise ValueError(f"lamina.onnx.export: output {oname!r} does not depend on the inputs")
        g.nodes.append(helper.make_node("Identity", [g.names[id(t)]], [oname], name=f"{oname}_identity"))
        graph_outputs.append((oname, t))

    def info(name: str, t: Tensor) -> Any:
        dims: list[Any] = list(t.shape)
        axes = dynamic_axes.get(name, {})
        if isinstance(axes, Mapping):
            for k, v in axes.items():
                dims[int(k)] = str(v)
        else:
            for k in axes:
                dims[int(k)] = f"{name}_dim_{k}"
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.dtype(t.array.dtype)), dims)

    unknown = set(dynamic_axes) - set(in_names) - {n for n, _ in graph_outputs}
    if unknown:
        raise ValueError(f"lamina.onnx.export: dynamic_axes names {sorted(unknown)}, which are neither inputs "
                         f"{in_names} nor outputs {[n for n, _ in graph_outputs]}")
    graph = helper.make_graph(
        g.nodes, type(model).__name__, [info(n, a) for n, a in zip(in_names, args)],
        [info(n, t) for n, t in graph_outputs],
        initializer=[numpy_helper.from_array(np.array(a, order="C"), n) for n, a in g.inits.items()])
    opset = [helper.make_opsetid("", int(opset_version))]
    # the oldest IR version that holds this opset: what every onnxruntime from 1.17 on reads
    ir = helper.find_min_ir_version_for(opset)
    proto = helper.make_model(graph, opset_imports=opset, producer_name="lamina", ir_version=ir)
    onnx.checker.check_model(proto)
    return proto


def export(model: nn.Module, args: Any, f: str | os.PathLike[str] | io.BytesIO,
           input_names: Sequence[str] | None = None, output_names: Sequence[str] | None = None,
           dynamic_axes: Mapping[str, Any] | None = None, opset_version: int = 17) -> None:
    """Export ``model`` to ONNX by tracing it on ``args`` (``torch.onnx.export``'s signature).

    Args:
        model: the lamina module; it runs in eval mode during the trace (its modes are restored).
        args: a Tensor or a tuple of Tensors, the example inputs.
        f: a file path (written atomically) or a binary file-like object.
        input_names, output_names: names of the graph's inputs and outputs (default ``input``,
            ``output``; a dict output keeps its keys).
        dynamic_axes: ``{name: [axis, ...]}`` or ``{name: {axis: "dim_name"}}``, dims left
            symbolic (a dynamic batch: ``{"input": {0: "batch"}, "output": {0: "batch"}}``).
        opset_version: the ONNX opset, 13 to 21.

    Raises:
        UnsupportedOperatorError: naming the operation (and layer) that has no ONNX form.

    Example:
        >>> import io, lamina, onnx
        >>> buf = io.BytesIO()
        >>> export(lamina.nn.Linear(3, 2), lamina.randn(1, 3), buf)
        >>> sorted({n.op_type for n in onnx.load_from_string(buf.getvalue()).graph.node})
        ['Add', 'Identity', 'MatMul']
    """
    proto = build(model, args, input_names, output_names, dynamic_axes, opset_version)
    data = proto.SerializeToString()
    if hasattr(f, "write"):
        f.write(data)
        return
    path = os.fspath(f)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
