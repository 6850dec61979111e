"""lamina.onnx.export: the zoo and each exported op run in onnxruntime as in lamina."""

import io

import numpy as np
import pytest

import lamina
import lamina.models as M
import lamina.nn.functional as F
import lamina.onnx
from lamina import nn

from ._helpers import onnx, rel_err, session, to_bytes

DYN = {"input": {0: "batch"}, "output": {0: "batch"}}


def _outputs(model, x):
    with lamina.no_grad():
        y = model(x)
    return [v.numpy() for v in (y.values() if isinstance(y, dict) else [y])]


def _check_zoo(name, shape, **kw):
    _check_model(M.get_model(name, **kw), name, shape)


def _check_model(model, name, shape, dynamic=None):
    model.train()
    for m in model.modules():  # non-trivial statistics, so batch norm is really exercised
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(lamina.randn(m.num_features) * 0.1)
            m.running_var.copy_(lamina.rand(m.num_features) + 0.5)
    names = ["input"]
    if dynamic is None:
        dynamic = DYN if name != "deeplabv3" else {"input": {0: "batch"}, "out": {0: "batch"}}
    data = to_bytes(model, lamina.randn(*shape), input_names=names, dynamic_axes=dynamic)
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto, full_check=True)
    assert proto.ir_version <= 9  # onnxruntime 1.17 reads IR versions up to 9
    assert model.training  # export traced in eval mode and restored the model's mode
    sess = session(data)
    model.eval()
    for batch in (shape[0], shape[0] + 1):  # the dynamic batch
        x = lamina.randn(batch, *shape[1:])
        ref = _outputs(model, x)
        got = sess.run(None, {"input": x.numpy()})
        assert len(got) == len(ref)
        for r, o in zip(ref, got):
            assert rel_err(r, o) < 1e-4, name


ZOO_FAST = [("lenet5", (2, 1, 32, 32), {}), ("lenet_small", (2, 1, 8, 8), {}), ("resnet20", (2, 3, 32, 32), {}), ("resnet18", (2, 3, 64, 64), {}),
            ("resnet50", (1, 3, 64, 64), {"num_classes": 10}),
            ("resnext50_32x4d", (1, 3, 64, 64), {}), ("densenet121", (1, 3, 64, 64), {}),
            ("googlenet", (1, 3, 64, 64), {}), ("mobilenet_v1", (1, 3, 64, 64), {}),
            ("mobilenet_v2", (1, 3, 64, 64), {}), ("unet", (1, 1, 64, 64), {}),
            ("deeplabv3", (1, 3, 64, 64), {"num_classes": 5})]
ZOO_SLOW = [("alexnet", (1, 3, 64, 64), {"num_classes": 10}), ("vgg11_bn", (1, 3, 32, 32), {"num_classes": 10}),
            ("fcn8s", (1, 3, 64, 64), {"num_classes": 5, "fc_channels": 64}),
            ("fcn32s", (1, 3, 64, 64), {"num_classes": 5, "fc_channels": 64})]  # every layer, narrower fc6/fc7


@pytest.mark.parametrize("name,shape,kw", ZOO_FAST, ids=[z[0] for z in ZOO_FAST])
def test_zoo_matches_onnxruntime(name, shape, kw):
    _check_zoo(name, shape, **kw)


@pytest.mark.slow
@pytest.mark.parametrize("name,shape,kw", ZOO_SLOW, ids=[z[0] for z in ZOO_SLOW])
def test_zoo_matches_onnxruntime_large(name, shape, kw):
    _check_zoo(name, shape, **kw)


class _YoloGrid(nn.Module):
    """YOLO v1's network from the image tensor to its S×S grid (the decoding and NMS stay in Python)."""

    def __init__(self, yolo):
        super().__init__()
        self.yolo = yolo

    def forward(self, x):
        return self.yolo.predict_grid(x)


DETECTOR_BACKBONES = {
    "fasterrcnn_small": lambda: M.detection.fasterrcnn_small(num_classes=3).backbone,
    "maskrcnn_small": lambda: M.detection.maskrcnn_small(num_classes=3).backbone,
    "yolov1": lambda: _YoloGrid(M.detection.yolov1(num_classes=3)),
    "resnet18_fpn": lambda: M.detection.resnet_fpn_backbone(backbone_name="resnet18", trainable_layers=5),
    "classifier_backbone": lambda: M.classifier_backbone("resnet18"),
}


@pytest.mark.parametrize("name", sorted(DETECTOR_BACKBONES))
def test_detector_backbones_match_onnxruntime(name):
    """The detectors' networks (backbones, FPN, YOLO's grid head) export; the box decoding, NMS and
    RoI sampling around them are Python, as in torchvision's exports of the same models."""
    size = 112 if name == "yolov1" else 64
    _check_model(DETECTOR_BACKBONES[name](), name, (2, 3, size, size), dynamic={"input": {0: "batch"}})


class _Ops(nn.Module):
    """One of each exported layer and option."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
        self.c2 = nn.Conv2d(8, 8, 3, padding="same", dilation=2, groups=4)
        self.c3 = nn.Conv2d(8, 6, (3, 2), stride=(2, 1), padding=(2, 0))
        self.bn = nn.BatchNorm2d(6)
        self.t1 = nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1, dilation=1, groups=2)
        self.t2 = nn.ConvTranspose2d(4, 4, 2, stride=2, dilation=2, bias=False)
        self.acts = nn.ModuleList([nn.ReLU6(), nn.LeakyReLU(0.2), nn.Hardsigmoid(), nn.Hardswish(), nn.ELU(0.7),
                                   nn.SiLU(), nn.PReLU(4), nn.GELU(), nn.Sigmoid(), nn.Tanh(), nn.ReLU(),
                                   nn.Hardtanh(-0.5, 0.5)])
        self.mp = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
        self.mp2 = nn.MaxPool2d(2, dilation=2)
        self.ap = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True)
        self.ap2 = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.ap3 = nn.AvgPool2d(2, divisor_override=3)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.up2 = nn.Upsample(size=(7, 9), mode="bilinear", align_corners=True)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * 2, 5)

    def forward(self, x):
        y = self.bn(self.c3(self.c2(self.c1(x))))
        y = self.t2(self.t1(y))
        outs = [a(y) for a in self.acts]
        y = sum(outs[1:], outs[0]) + y  # residual adds
        a, b, c = self.mp(y), self.ap(y), self.ap2(y)
        y = lamina.cat([a, b + c], dim=1)
        y = self.up2(self.up(self.ap3(y) + self.mp2(y)[..., :1, :1]))
        y = F.interpolate(y, scale_factor=0.5, mode="bilinear") + y[:, :, ::2, 1::2][..., :3, :4]
        y = self.gap(y).flatten(1)
        return F.softmax(self.fc(y), dim=1)


class _Means(nn.Module):
    def forward(self, x):
        return x.mean((2, 3), keepdim=True).flatten(1) + x.mean(2).mean(-1) * x.mean()


@pytest.mark.parametrize("opset", [17, 18])
def test_mean_is_reduce_mean(opset):
    """mean is one op (ReduceMean: axes an attribute before opset 18, an input from 18 on)."""
    x = lamina.randn(2, 3, 4, 3)
    data = to_bytes(_Means(), x, dynamic_axes=DYN, opset_version=opset)
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    assert [n.op_type for n in onnx.load_from_string(data).graph.node].count("ReduceMean") == 4
    xb = lamina.randn(3, 3, 4, 3)
    assert rel_err(_outputs(_Means(), xb)[0], session(data).run(None, {"input": xb.numpy()})[0]) < 1e-5


def test_every_op_matches_onnxruntime():
    model = _Ops()
    with lamina.no_grad():
        model.bn.running_mean.copy_(lamina.randn(6))
        model.bn.running_var.copy_(lamina.rand(6) + 0.5)
        model.acts[6].weight.copy_(lamina.rand(4))
    x = lamina.randn(2, 3, 30, 34)
    data = to_bytes(model, x, dynamic_axes=DYN, opset_version=17)
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    ops = {n.op_type for n in onnx.load_from_string(data).graph.node}
    assert {"Conv", "ConvTranspose", "BatchNormalization", "Clip", "LeakyRelu", "HardSigmoid", "HardSwish", "Elu",
            "PRelu", "Erf", "MaxPool", "AveragePool", "Concat", "Gather", "MatMul", "Softmax", "Slice",
            "GlobalAveragePool"} <= ops
    sess = session(data)
    model.eval()
    for batch in (2, 3):
        xb = lamina.randn(batch, 3, 30, 34)
        assert rel_err(_outputs(model, xb)[0], sess.run(None, {"input": xb.numpy()})[0]) < 1e-4


def test_export_writes_a_file_atomically_and_restores_training_mode(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    model.train()
    path = tmp_path / "m.onnx"
    lamina.onnx.export(model, lamina.randn(1, 1, 6, 6), path, input_names=["img"], output_names=["logits"])
    assert model.training and model[1].training
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]
    proto = onnx.load(str(path))
    assert [i.name for i in proto.graph.input] == ["img"] and [o.name for o in proto.graph.output] == ["logits"]
    assert {i.name for i in proto.graph.initializer} >= {"0.weight", "1.running_mean", "1.running_var"}


def test_unsupported_op_is_named():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveMaxPool2d(2))
    with pytest.raises(lamina.onnx.UnsupportedOperatorError, match="PlaneGather"):
        to_bytes(model, lamina.randn(1, 1, 7, 7))


def test_constant_computed_from_the_data_is_refused():
    class M(nn.Module):
        def forward(self, x):
            return F.relu6(x) * 2  # the functional hardtanh builds its mask from the data

    with pytest.raises(lamina.onnx.UnsupportedOperatorError, match="Where: its input [0-9] is a constant computed "
                                                                    "from the data"):
        to_bytes(M(), lamina.randn(1, 4))


def test_index_computed_from_the_data_is_refused():
    class M(nn.Module):
        def forward(self, x):
            return x.gather(1, x.argmax(1, keepdim=True))  # the index array is taken from the data

    with pytest.raises(lamina.onnx.UnsupportedOperatorError, match="Gather: its option 'index' is computed from "
                                                                    "the data"):
        to_bytes(M(), lamina.randn(16, 8))


def test_padding_modes_and_other_ranks():
    cases = [(nn.Conv2d(2, 3, 3, padding=2, padding_mode="reflect"), (1, 2, 8, 9)),
             (nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular"), (1, 2, 8, 9)),
             (nn.Conv2d(2, 3, (3, 1), padding=(1, 2), padding_mode="replicate"), (1, 2, 8, 9)),
             (nn.Conv1d(2, 3, 3, stride=2, padding=1), (2, 2, 11)), (nn.Conv3d(2, 3, 3, padding=1), (1, 2, 5, 6, 7)),
             (nn.ConvTranspose3d(2, 3, 3, stride=2), (1, 2, 3, 4, 5)), (nn.MaxPool1d(3, 2, ceil_mode=True), (1, 2, 10)),
             (nn.AvgPool3d(2, ceil_mode=True), (1, 2, 5, 5, 5)), (nn.Upsample(scale_factor=2, mode="trilinear"),
                                                                   (1, 2, 3, 4, 5)), (nn.LogSoftmax(dim=1), (2, 5))]
    for model, shape in cases:
        x = lamina.randn(*shape)
        got = session(to_bytes(model, x)).run(None, {"input": x.numpy()})[0]
        assert rel_err(_outputs(model, x)[0], got) < 1e-5, model


def test_bad_arguments():
    with pytest.raises(ValueError, match="opset_version must lie in 13..21, got 9"):
        to_bytes(nn.Linear(2, 2), lamina.randn(1, 2), opset_version=9)
    with pytest.raises(ValueError, match="dynamic_axes names \\['x'\\]"):
        to_bytes(nn.Linear(2, 2), lamina.randn(1, 2), dynamic_axes={"x": [0]})
    with pytest.raises(TypeError, match="args must be a Tensor"):
        lamina.onnx.export(nn.Linear(2, 2), np.zeros((1, 2)), io.BytesIO())
