"""MTCNN with facenet-pytorch's trained weights, read by lamina.load from the .pt files its wheel ships: the three
nets equal torch's with the same weights, and the cascade finds the face in scikit-image's astronaut photo exactly
where facenet-pytorch's own detect_face (run in torch) finds it.

facenet-pytorch is installed with --no-deps (its code imports torchvision, which the tests do not need): the
package is never imported; its weights are read from its data folder and its detect_face.py is loaded with
stand-ins for the two torchvision functions it names."""

import importlib.util
import os
import sys
import types

import numpy as np
import pytest
import torch

import lamina
from lamina.models.mtcnn import MTCNN, facenet_pytorch_weights_dir


def _need(what, ok, how):
    if ok:
        return
    message = f"{what} is not installed ({how})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must install it")
    pytest.skip(message)


@pytest.fixture(scope="module")
def weights_dir():
    d = facenet_pytorch_weights_dir()
    _need("facenet-pytorch", d is not None, "pip install --no-deps facenet-pytorch")
    return d


@pytest.fixture(scope="module")
def astronaut():
    _need("scikit-image", importlib.util.find_spec("skimage") is not None, "pip install scikit-image")
    from skimage.data import astronaut

    return astronaut()


# ---- facenet-pytorch's nets, rebuilt with torch.nn (its models/mtcnn.py without the loading code) ----

class TPNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.conv1, self.prelu1, self.pool1 = nn.Conv2d(3, 10, 3), nn.PReLU(10), nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.softmax4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Softmax(dim=1), nn.Conv2d(32, 4, 1)

    def forward(self, x):
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(self.pool1(self.prelu1(self.conv1(x)))))))
        return self.conv4_2(x), self.softmax4_1(self.conv4_1(x))


class TRNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.conv1, self.prelu1, self.pool1 = nn.Conv2d(3, 28, 3), nn.PReLU(28), nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2, self.pool2 = nn.Conv2d(28, 48, 3), nn.PReLU(48), nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.softmax5_1, self.dense5_2 = nn.Linear(128, 2), nn.Softmax(dim=1), nn.Linear(128, 4)

    def forward(self, x):
        x = self.prelu3(self.conv3(self.pool2(self.prelu2(self.conv2(self.pool1(self.prelu1(self.conv1(x))))))))
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu4(self.dense4(x.view(x.shape[0], -1)))
        return self.dense5_2(x), self.softmax5_1(self.dense5_1(x))


class TONet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.conv1, self.prelu1, self.pool1 = nn.Conv2d(3, 32, 3), nn.PReLU(32), nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2, self.pool2 = nn.Conv2d(32, 64, 3), nn.PReLU(64), nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3, self.pool3 = nn.Conv2d(64, 64, 3), nn.PReLU(64), nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.softmax6_1 = nn.Linear(256, 2), nn.Softmax(dim=1)
        self.dense6_2, self.dense6_3 = nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x):
        x = self.pool2(self.prelu2(self.conv2(self.pool1(self.prelu1(self.conv1(x))))))
        x = self.prelu4(self.conv4(self.pool3(self.prelu3(self.conv3(x)))))
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))


@pytest.fixture(scope="module")
def nets(weights_dir):
    lm = lamina.models.mtcnn(weights_dir)
    tm = {}
    for name, cls in (("pnet", TPNet), ("rnet", TRNet), ("onet", TONet)):
        tm[name] = cls().eval()
        tm[name].load_state_dict(torch.load(os.path.join(weights_dir, f"{name}.pt"), weights_only=True))
    return lm, tm


@pytest.mark.parametrize("name, shape", [("pnet", (2, 3, 37, 50)), ("rnet", (5, 3, 24, 24)), ("onet", (5, 3, 48, 48))])
def test_the_three_nets_equal_torch_with_the_same_weights(nets, name, shape):
    lm, tm = nets
    sd = torch.load(os.path.join(facenet_pytorch_weights_dir(), f"{name}.pt"), weights_only=True)
    mine = getattr(lm, name).state_dict()
    assert list(mine) == list(sd)  # facenet-pytorch's names, in its order
    for k in sd:
        np.testing.assert_array_equal(mine[k].numpy(), sd[k].numpy(), err_msg=k)
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    with torch.no_grad():
        want = tm[name](torch.from_numpy(x))
    with lamina.no_grad():
        got = getattr(lm, name)(lamina.from_numpy(x))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-4, atol=1e-5)


def _torchvision_batched_nms(boxes, scores, idxs, threshold):
    """torchvision.ops.batched_nms as a plain loop: greedy by decreasing score, per category, IoU > threshold
    suppresses."""
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    b = boxes.double()
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    keep = []
    for i in order:
        ok = True
        for j in keep:
            if idxs[j] != idxs[i]:
                continue
            w = (torch.minimum(b[i, 2], b[j, 2]) - torch.maximum(b[i, 0], b[j, 0])).clamp(min=0)
            h = (torch.minimum(b[i, 3], b[j, 3]) - torch.maximum(b[i, 1], b[j, 1])).clamp(min=0)
            if w * h / (area[i] + area[j] - w * h) > threshold:
                ok = False
                break
        if ok:
            keep.append(i)
    return torch.tensor(keep, dtype=torch.long)


@pytest.fixture
def facenet_detect_face(weights_dir, monkeypatch):
    """facenet-pytorch's models/utils/detect_face.py, loaded with stand-ins for its torchvision imports."""
    tv_ops = types.ModuleType("torchvision.ops.boxes")
    tv_ops.batched_nms = _torchvision_batched_nms
    tv_functional = types.ModuleType("torchvision.transforms.functional")
    for name, mod in {"torchvision": types.ModuleType("torchvision"), "torchvision.ops": types.ModuleType("o"),
                      "torchvision.ops.boxes": tv_ops, "torchvision.transforms": types.ModuleType("t"),
                      "torchvision.transforms.functional": tv_functional}.items():
        monkeypatch.setitem(sys.modules, name, mod)
    sys.modules["torchvision.transforms"].functional = tv_functional
    path = os.path.join(os.path.dirname(weights_dir), "models", "utils", "detect_face.py")
    spec = importlib.util.spec_from_file_location("_facenet_detect_face", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.detect_face


def test_the_cascade_finds_the_astronauts_face_as_facenet_pytorch(nets, astronaut, facenet_detect_face):
    lm, tm = nets
    boxes, probs, points = lm.detect(astronaut, landmarks=True)
    with torch.no_grad():
        want_boxes, want_points = facenet_detect_face(astronaut, 20, tm["pnet"], tm["rnet"], tm["onet"],
                                                      [0.6, 0.7, 0.7], 0.709, "cpu")
    want_boxes, want_points = np.asarray(want_boxes[0], np.float32), np.asarray(want_points[0], np.float32)
    assert boxes.shape == (1, 4) and want_boxes.shape == (1, 5)  # one face, in both
    np.testing.assert_allclose(boxes, want_boxes[:, :4], atol=1e-2)
    np.testing.assert_allclose(probs, want_boxes[:, 4], atol=1e-5)
    np.testing.assert_allclose(points, want_points, atol=1e-2)
    assert probs[0] > 0.99
    x1, y1, x2, y2 = boxes[0]
    assert 150 < x1 < x2 < 300 and 40 < y1 < y2 < 200  # the face, upper middle of the 512×512 photo
    eyes, mouth = points[0, :2], points[0, 3:]
    assert (eyes[:, 1] < mouth[:, 1]).all() and eyes[0, 0] < eyes[1, 0]  # eyes above the mouth, left before right


def test_detect_on_an_image_without_faces_and_bad_input():
    net = MTCNN()
    boxes, probs = net.detect(np.full((30, 40, 3), 128, dtype=np.uint8))
    assert boxes.shape == (0, 4) and probs.shape == (0,)
    many = net.detect(np.zeros((2, 24, 24, 3), dtype=np.uint8), landmarks=True)
    assert len(many) == 3 and len(many[0]) == 2 and many[2][1].shape == (0, 5, 2)
    with pytest.raises(ValueError, match="MTCNN.detect: expected an \\(H, W, 3\\) image.*got shape \\(3, 30, 40\\)"):
        net.detect(np.zeros((3, 30, 40), dtype=np.uint8))
    # a detector with its own detect(), not a classifier for get_model / lamina train
    assert lamina.models.mtcnn().pnet.conv1.weight.shape == (10, 3, 3, 3) and "mtcnn" not in lamina.models.list_models()


def test_a_missing_package_fails_under_ci_and_skips_elsewhere(monkeypatch):
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="facenet-pytorch is not installed.*CI must install it"):
        _need("facenet-pytorch", False, "pip install --no-deps facenet-pytorch")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="facenet-pytorch is not installed"):
        _need("facenet-pytorch", False, "pip install --no-deps facenet-pytorch")
    _need("facenet-pytorch", True, "")  # present: neither
