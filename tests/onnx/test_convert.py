"""lamina.onnx.convert: single-operator graphs against onnxruntime, the round trip of the zoo,
trainable parameters and the checks on what is read."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import lamina
import lamina.models as M
import lamina.onnx
from lamina import nn

from ._helpers import onnx, rel_err, session, to_bytes
from .test_export import ZOO_FAST, ZOO_SLOW

R = np.random.default_rng(0)


def _f(*shape):
    return R.standard_normal(shape).astype(np.float32)


def _model(op, inputs, attrs=None, inits=(), opset=17, n_out=1):
    """A one-node graph: ``inputs`` maps names to arrays (graph inputs), ``inits`` to initializers."""
    ins = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
           for k, v in inputs.items()]
    outs = [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, None) for i in range(n_out)]
    order = list(inputs) + [k for k, _ in inits]
    node = helper.make_node(op, order, [f"y{i}" for i in range(n_out)],
                            **(attrs or {}))
    graph = helper.make_graph([node], "g", ins, outs, [numpy_helper.from_array(v, k) for k, v in inits])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                             ir_version=helper.find_min_ir_version_for([helper.make_opsetid("", opset)]))


def _compare(proto, inputs):
    data = proto.SerializeToString()
    ref = session(data).run(None, inputs)
    m = lamina.onnx.convert(data)
    with lamina.no_grad():
        got = m(*[lamina.tensor(v) for v in inputs.values()])
    got = got if isinstance(got, tuple) else (got,)
    for r, g in zip(ref, got):
        assert rel_err(r, g.numpy()) < 1e-5


CASES = [
    ("Conv", {"x": _f(2, 4, 9, 10)}, dict(pads=[1, 0, 2, 1], strides=[2, 1], dilations=[1, 2], group=2),
     [("w", _f(6, 2, 3, 3)), ("b", _f(6))], 17),
    ("Conv", {"x": _f(1, 3, 9, 10)}, dict(auto_pad="SAME_UPPER", strides=[2, 2]), [("w", _f(4, 3, 4, 3))], 11),
    ("Conv", {"x": _f(1, 3, 9, 10)}, dict(auto_pad="SAME_LOWER"), [("w", _f(4, 3, 2, 2))], 11),
    ("ConvTranspose", {"x": _f(2, 4, 5, 6)}, dict(strides=[2, 3], pads=[1, 1, 1, 1], output_padding=[1, 2],
                                                 group=2), [("w", _f(4, 3, 3, 3)), ("b", _f(6))], 17),
    ("ConvTranspose", {"x": _f(1, 2, 5, 6)}, dict(strides=[2, 2], pads=[0, 1, 1, 0], dilations=[2, 1]),
     [("w", _f(2, 3, 3, 2))], 13),
    ("MaxPool", {"x": _f(2, 3, 10, 11)}, dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
     [], 17),
    ("MaxPool", {"x": _f(1, 3, 10, 11)}, dict(kernel_shape=[2, 3], pads=[0, 1, 1, 2], dilations=[2, 1]), [], 12),
    ("AveragePool", {"x": _f(2, 3, 10, 11)}, dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                                 count_include_pad=1), [], 17),
    ("AveragePool", {"x": _f(2, 3, 10, 11)}, dict(kernel_shape=[3, 2], strides=[2, 2], pads=[1, 1, 1, 1],
                                                 ceil_mode=1), [], 19),
    ("GlobalAveragePool", {"x": _f(2, 3, 5, 7)}, {}, [], 11),
    ("BatchNormalization", {"x": _f(2, 3, 4, 5)}, dict(epsilon=1e-3),
     [("s", _f(3)), ("b", _f(3)), ("m", _f(3)), ("v", np.abs(_f(3)) + 0.5)], 15),
    ("Relu", {"x": _f(3, 4)}, {}, [], 14), ("LeakyRelu", {"x": _f(3, 4)}, dict(alpha=0.3), [], 16),
    ("PRelu", {"x": _f(2, 3, 4, 4)}, {}, [("s", _f(3, 1, 1))], 16),
    ("Sigmoid", {"x": _f(3, 4)}, {}, [], 13), ("HardSigmoid", {"x": _f(3, 4) * 4}, dict(alpha=0.25, beta=0.4), [], 13),
    ("HardSwish", {"x": _f(3, 4) * 4}, {}, [], 14),
    ("Clip", {"x": _f(3, 4)}, {}, [("lo", np.float32(-0.5)), ("hi", np.float32(0.7))], 13),
    ("Elu", {"x": _f(3, 4)}, dict(alpha=0.5), [], 11), ("Erf", {"x": _f(3, 4)}, {}, [], 13),
    ("Add", {"a": _f(2, 3, 4)}, {}, [("b", _f(3, 1))], 14), ("Sub", {"a": _f(2, 3)}, {}, [("b", _f(3))], 14),
    ("Mul", {"a": _f(2, 3)}, {}, [("b", _f(2, 1))], 14), ("Div", {"a": _f(2, 3)}, {}, [("b", np.abs(_f(3)) + 1)], 14),
    ("MatMul", {"a": _f(2, 5, 3)}, {}, [("b", _f(3, 4))], 13),
    ("Gemm", {"a": _f(4, 3)}, dict(transB=1, alpha=0.5, beta=2.0), [("b", _f(5, 3)), ("c", _f(5))], 13),
    ("Concat", {"a": _f(2, 3, 4), "b": _f(2, 1, 4)}, dict(axis=-2), [], 13),
    ("Reshape", {"x": _f(2, 3, 4)}, {}, [("s", np.asarray([0, -1, 2], np.int64))], 14),
    ("Flatten", {"x": _f(2, 3, 4, 5)}, dict(axis=2), [], 13),
    ("Transpose", {"x": _f(2, 3, 4)}, dict(perm=[2, 0, 1]), [], 13),
    ("Resize", {"x": _f(1, 2, 4, 5)}, dict(mode="nearest", coordinate_transformation_mode="asymmetric",
                                           nearest_mode="floor"), [("r", np.zeros(0, np.float32)),
                                                                  ("sc", np.asarray([1, 1, 2, 3], np.float32))], 13),
    ("Resize", {"x": _f(1, 2, 4, 5)}, dict(mode="linear"), [("r", np.zeros(0, np.float32)),
                                                           ("sc", np.asarray([1, 1, 2, 2], np.float32))], 11),
    ("Resize", {"x": _f(1, 2, 4, 5)}, dict(mode="linear", coordinate_transformation_mode="align_corners"),
     [("r", np.zeros(0, np.float32)), ("sc", np.zeros(0, np.float32)), ("sz", np.asarray([1, 2, 7, 9], np.int64))],
     18),
    ("Resize", {"x": _f(1, 2, 4, 6)}, dict(mode="nearest", nearest_mode="round_prefer_ceil"),
     [("r", np.zeros(0, np.float32)), ("sc", np.zeros(0, np.float32)), ("sz", np.asarray([1, 2, 7, 4], np.int64))],
     13),
    ("Pad", {"x": _f(1, 2, 4, 5)}, dict(mode="reflect"), [("p", np.asarray([0, 0, 1, 2, 0, 0, 2, 1], np.int64))], 13),
    ("Pad", {"x": _f(1, 2, 4, 5)}, dict(mode="edge"), [("p", np.asarray([0, 0, 1, 0, 0, 0, 2, 1], np.int64))], 13),
    ("Pad", {"x": _f(1, 2, 4, 5)}, {}, [("p", np.asarray([0, 1, 1, 0, 0, 0, 2, 1], np.int64)),
                                       ("v", np.float32(1.5))], 13),
    ("Softmax", {"x": _f(2, 3, 4)}, dict(axis=1), [], 11), ("Softmax", {"x": _f(2, 3, 4)}, dict(axis=1), [], 13),
    ("ReduceMean", {"x": _f(2, 3, 4)}, dict(axes=[1, 2], keepdims=0), [], 13),
    ("ReduceMean", {"x": _f(2, 3, 4)}, {}, [("a", np.asarray([-1], np.int64))], 18),
    ("ReduceSum", {"x": _f(2, 3, 4)}, dict(keepdims=1), [("a", np.asarray([0], np.int64))], 13),
    ("Squeeze", {"x": _f(2, 1, 4, 1)}, dict(axes=[1]), [], 11),
    ("Squeeze", {"x": _f(2, 1, 4, 1)}, {}, [("a", np.asarray([3], np.int64))], 13),
    ("Unsqueeze", {"x": _f(2, 4)}, dict(axes=[0, 3]), [], 11),
    ("Unsqueeze", {"x": _f(2, 4)}, {}, [("a", np.asarray([-1, 1], np.int64))], 13),
    ("Slice", {"x": _f(5, 6, 7)}, {}, [("s", np.asarray([4, 1], np.int64)), ("e", np.asarray([0, 100], np.int64)),
                                       ("a", np.asarray([0, 2], np.int64)), ("st", np.asarray([-2, 3], np.int64))], 13),
    ("Gather", {"x": _f(5, 6)}, dict(axis=1), [("i", np.asarray([[0, -1], [2, 2]], np.int64))], 13),
]


@pytest.mark.parametrize("op,inputs,attrs,inits,opset", CASES,
                         ids=[f"{c[0]}-{i}-opset{c[4]}" for i, c in enumerate(CASES)])
def test_operator_matches_onnxruntime(op, inputs, attrs, inits, opset):
    _compare(_model(op, inputs, attrs, inits, opset), inputs)


def test_shape_subgraph_is_folded_and_the_batch_stays_dynamic():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5])
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Constant", [], ["i0"], value=numpy_helper.from_array(np.asarray(0, np.int64))),
             helper.make_node("Gather", ["s", "i0"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
             helper.make_node("Constant", [], ["rest"], value=numpy_helper.from_array(np.asarray([-1], np.int64))),
             helper.make_node("Concat", ["n1", "rest"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["f"]),
             helper.make_node("Gemm", ["f", "w"], ["y"], transB=1)]
    inits = [numpy_helper.from_array(np.asarray([0], np.int64), "ax"), numpy_helper.from_array(_f(5, 48), "w")]
    proto = helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 13)], ir_version=7)
    onnx.checker.check_model(proto, full_check=True)
    m = lamina.onnx.convert(proto)
    assert [n.op_type for n in m.nodes] == ["Shape", "Gather", "Unsqueeze", "Concat", "Reshape", "Gemm"]
    for b in (1, 3):
        _compare(proto, {"x": _f(b, 3, 4, 4)})


def test_parameters_are_trainable():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 2))
    m = lamina.onnx.convert(to_bytes(model, lamina.randn(1, 3, 6, 6)))
    params = dict(m.named_parameters())
    assert {"initializers.t_0_weight", "initializers.t_4_bias", "initializers.t_1_weight"} <= set(params)
    assert "initializers.t_1_running_mean" in dict(m.named_buffers())
    assert all(p.requires_grad for p in params.values())
    x = lamina.randn(2, 3, 6, 6)
    m(x).sum().backward()
    assert all(p.grad is not None and np.abs(p.grad.numpy()).sum() > 0 for p in params.values())
    before = params["initializers.t_0_weight"].detach().numpy().copy()
    lamina.optim.SGD(m.parameters(), lr=0.1).step()
    assert not np.allclose(before, params["initializers.t_0_weight"].detach().numpy())


ROUND_TRIP = [pytest.param(*z, id=z[0]) for z in ZOO_FAST] + [pytest.param(*z, id=z[0], marks=pytest.mark.slow)
                                                               for z in ZOO_SLOW]


@pytest.mark.parametrize("name,shape,kw", ROUND_TRIP)
def test_zoo_round_trip(name, shape, kw):
    model = M.get_model(name, **kw).eval()
    x = lamina.randn(*shape)
    back = lamina.onnx.convert(to_bytes(model, x))
    with lamina.no_grad():
        ref, got = model(x), back(x)
    ref = list(ref.values()) if isinstance(ref, dict) else [ref]
    got = list(got) if isinstance(got, tuple) else [got]
    for r, g in zip(ref, got):
        assert rel_err(r.numpy(), g.numpy()) < 1e-4
    # every weight trainable again (a linear weight as its transpose; GoogLeNet's auxiliary
    # classifiers run only in training, so they are not in the graph)
    def keys(params):
        return sorted((p.numel(), round(float((p.detach().numpy().astype(np.float64) ** 2).sum()), 4))
                      for p in params)
    have = keys(back.parameters())
    for k in keys(p for n, p in model.named_parameters() if not n.startswith(("aux1.", "aux2."))):
        assert k in have
        have.remove(k)


def test_unsupported_operators_are_named_together():
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("NonMaxSuppression", ["a"], ["b"]),
             helper.make_node("LSTM", ["b"], ["y"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    proto = helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(lamina.onnx.UnsupportedOperatorError, match="unsupported ONNX operator\\(s\\): LSTM, "
                                                                     "NonMaxSuppression"):
        lamina.onnx.convert(proto)


def test_bad_files(tmp_path):
    p = tmp_path / "junk.onnx"
    p.write_bytes(b"\xff\xfe not protobuf at all")
    with pytest.raises(ValueError, match="junk.onnx"):
        lamina.onnx.convert(p)
    proto = _model("Add", {"a": _f(2, 3)}, {}, [("b", _f(2, 3))], 14)
    proto.graph.initializer[0].raw_data = proto.graph.initializer[0].raw_data[:-4]  # one float short
    with pytest.raises(ValueError, match="tensor 'b' of shape \\(2, 3\\) should hold 24 bytes, got 20"):
        lamina.onnx.convert(proto.SerializeToString())
    proto = _model("Add", {"a": _f(2, 3)}, {}, [("b", _f(2, 3))], 14)
    t = proto.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value="/etc/passwd")
    with pytest.raises(ValueError, match="external file"):
        lamina.onnx.convert(proto)


def test_a_failing_node_is_named():
    proto = _model("Reshape", {"x": _f(2, 3)}, {}, [("s", np.asarray([4, -1], np.int64))], 14)
    proto.graph.node[0].name = "the_reshape"
    m = lamina.onnx.convert(proto)
    with pytest.raises(RuntimeError, match="ONNX node 'the_reshape' \\(Reshape\\): reshape: shape"):
        m(lamina.randn(2, 3))
