"""MTCNN with facenet-pytorch's trained weights: the three nets equal torch's, and the cascade finds
the face in scikit-image's astronaut photo. Skips where facenet-pytorch (installed with --no-deps,
for its data/*.pt) or scikit-image is absent."""

import importlib.util
import os

import numpy as np
import pytest
import torch
from torch import nn as tnn

import lamina

spec = importlib.util.find_spec("facenet_pytorch")  # found, not imported: it needs torchvision
WEIGHTS = os.path.join(spec.submodule_search_locations[0], "data") if spec else None
pytestmark = pytest.mark.skipif(WEIGHTS is None or not os.path.exists(os.path.join(WEIGHTS, "pnet.pt")),
                                reason="facenet-pytorch (pip install facenet-pytorch --no-deps) is not installed")


class TorchPNet(tnn.Module):  # facenet-pytorch's definitions, in torch
    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1, self.pool1 = tnn.Conv2d(3, 10, 3), tnn.PReLU(10), tnn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = tnn.Conv2d(10, 16, 3), tnn.PReLU(16)
        self.conv3, self.prelu3 = tnn.Conv2d(16, 32, 3), tnn.PReLU(32)
        self.conv4_1, self.conv4_2 = tnn.Conv2d(32, 2, 1), tnn.Conv2d(32, 4, 1)

    def forward(self, x):
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(self.pool1(self.prelu1(self.conv1(x)))))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)


class TorchRNet(tnn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1, self.pool1 = tnn.Conv2d(3, 28, 3), tnn.PReLU(28), tnn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2, self.pool2 = tnn.Conv2d(28, 48, 3), tnn.PReLU(48), tnn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = tnn.Conv2d(48, 64, 2), tnn.PReLU(64)
        self.dense4, self.prelu4 = tnn.Linear(576, 128), tnn.PReLU(128)
        self.dense5_1, self.dense5_2 = tnn.Linear(128, 2), tnn.Linear(128, 4)

    def forward(self, x):
        x = self.pool2(self.prelu2(self.conv2(self.pool1(self.prelu1(self.conv1(x))))))
        x = self.prelu3(self.conv3(x)).permute(0, 3, 2, 1).contiguous()
        x = self.prelu4(self.dense4(x.view(x.shape[0], -1)))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)


class TorchONet(tnn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1, self.pool1 = tnn.Conv2d(3, 32, 3), tnn.PReLU(32), tnn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2, self.pool2 = tnn.Conv2d(32, 64, 3), tnn.PReLU(64), tnn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3, self.pool3 = tnn.Conv2d(64, 64, 3), tnn.PReLU(64), tnn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = tnn.Conv2d(64, 128, 2), tnn.PReLU(128)
        self.dense5, self.prelu5 = tnn.Linear(1152, 256), tnn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = tnn.Linear(256, 2), tnn.Linear(256, 4), tnn.Linear(256, 10)

    def forward(self, x):
        x = self.pool2(self.prelu2(self.conv2(self.pool1(self.prelu1(self.conv1(x))))))
        x = self.prelu4(self.conv4(self.pool3(self.prelu3(self.conv3(x))))).permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)


@pytest.fixture(scope="module")
def detector():
    return lamina.models.mtcnn(weights=WEIGHTS)


@pytest.fixture(scope="module")
def astronaut():
    data = pytest.importorskip("skimage.data")
    return data.astronaut()


@pytest.mark.parametrize("name,torch_net,size", [("pnet", TorchPNet, (61, 77)), ("rnet", TorchRNet, (24, 24)),
                                                 ("onet", TorchONet, (48, 48))])
def test_the_three_nets_with_the_trained_weights_equal_torch(detector, astronaut, name, torch_net, size):
    ref = torch_net().eval()
    ref.load_state_dict(torch.load(os.path.join(WEIGHTS, f"{name}.pt"), weights_only=True))
    crop = astronaut[40:40 + size[0] * 2:2, 150:150 + size[1] * 2:2]  # a patch around the face
    x = ((np.stack([crop, astronaut[300:300 + size[0], 100:100 + size[1]]]).transpose(0, 3, 1, 2)
          .astype("float32") - 127.5) * 0.0078125)
    with torch.no_grad():
        theirs = ref(torch.tensor(x))
    ours = getattr(detector, name)(lamina.tensor(x))
    assert len(ours) == len(theirs)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.detach().numpy(), t.numpy(), rtol=1e-4, atol=2e-5)


def test_the_cascade_finds_the_astronauts_face(detector, astronaut):
    boxes, probs, points = detector.detect(astronaut)
    assert boxes.shape == (1, 4) and probs.shape == (1,) and points.shape == (1, 5, 2)
    x1, y1, x2, y2 = boxes[0]
    assert probs[0] > 0.999
    # Eileen Collins' face in the 512 x 512 photo: about x 180-270, y 60-175
    assert 160 < x1 < 200 and 40 < y1 < 85 and 250 < x2 < 290 and 150 < y2 < 195
    eyes, nose, mouth = points[0, :2], points[0, 2], points[0, 3:]
    assert eyes[0, 0] < nose[0] < eyes[1, 0] and eyes[:, 1].max() < nose[1] < mouth[:, 1].min()
    assert ((points[0] >= boxes[0, :2]) & (points[0] <= boxes[0, 2:])).all()


def test_no_face_in_a_blank_image_and_bad_input_is_a_clear_error(detector):
    boxes, probs, points = detector.detect(np.full((80, 80, 3), 128, dtype=np.uint8))
    assert boxes.shape == (0, 4) and probs.shape == (0,) and points.shape == (0, 5, 2)
    with pytest.raises(ValueError, match="MTCNN.detect: expected an H x W x 3 RGB image"):
        detector.detect(np.zeros((10, 10)))
