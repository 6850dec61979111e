"""MTCNN, the multi-task cascaded face detector (Zhang et al., 2016), as facenet-pytorch builds it.

Three small networks look at an image in turn: P-Net slides over an image pyramid and proposes
face windows (a fully convolutional net: one 12×12 window per output cell, stride 2); R-Net
rescores each proposal cropped to 24×24 and refines its box; O-Net does the same at 48×48 and
adds five facial landmarks. Between stages, non-maximum suppression drops overlapping windows
and each box is moved by the regression the net predicts, then made square.

The layer names are facenet-pytorch's, so its trained weights (``data/pnet.pt``, ``rnet.pt``,
``onet.pt`` in its wheel) load with ``lamina.load`` — read by lamina's restricted unpickler,
nothing executed.

Example:
    >>> import lamina
    >>> m = lamina.models.MTCNN()
    >>> boxes, probs, points = m.detect(lamina.zeros(64, 64, 3, dtype=lamina.uint8).numpy())
    >>> boxes.shape, probs.shape, points.shape
    ((0, 4), (0,), (0, 5, 2))
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .. import nn
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..nn import functional as F
from ..ops.join import cat
from ..serialization import load
from ..vision.ops import nms

__all__ = ["PNet", "RNet", "ONet", "MTCNN", "mtcnn"]


class PNet(nn.Module):
    """P-Net: proposals from a 12×12 window per output cell. Returns (box regression, face probability)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, kernel_size=3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, kernel_size=3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, kernel_size=3), nn.PReLU(32)
        self.conv4_1, self.softmax4_1 = nn.Conv2d(32, 2, kernel_size=1), nn.Softmax(dim=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), self.softmax4_1(self.conv4_1(x))


class RNet(nn.Module):
    """R-Net: rescores 24×24 crops. Returns (box regression, face probability)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, kernel_size=3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, kernel_size=3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, kernel_size=2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.softmax5_1 = nn.Linear(128, 2), nn.Softmax(dim=1)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = x.permute(0, 3, 2, 1).contiguous()  # the Caffe original flattens W before H
        x = self.prelu4(self.dense4(x.reshape(x.shape[0], -1)))
        return self.dense5_2(x), self.softmax5_1(self.dense5_1(x))


class ONet(nn.Module):
    """O-Net: rescores 48×48 crops. Returns (box regression, 5 landmarks as x1..x5, y1..y5, face probability)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, kernel_size=3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, kernel_size=3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, kernel_size=3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, kernel_size=2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.softmax6_1 = nn.Linear(256, 2), nn.Softmax(dim=1)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.reshape(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))


def _normalize(crops: Tensor) -> Tensor:
    return (crops - 127.5) * 0.0078125


def _square(boxes: np.ndarray) -> np.ndarray:
    """Each box made square around its centre, side = its longer side (facenet's ``rerec``)."""
    h, w = boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]
    side = np.maximum(w, h)
    boxes[:, 0] += w * 0.5 - side * 0.5
    boxes[:, 1] += h * 0.5 - side * 0.5
    boxes[:, 2:4] = boxes[:, :2] + side[:, None]
    return boxes


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Boxes moved by the predicted offsets, in units of the box's size (facenet's ``bbreg``)."""
    w, h = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
    boxes[:, :4] += reg[:, :4] * np.stack([w, h, w, h], axis=1)
    return boxes


def _crops(image: Tensor, boxes: np.ndarray, size: int) -> tuple[Tensor | None, np.ndarray]:
    """The boxes' pixels (1-based, clipped to the image) resized to ``size``² by area averaging."""
    _, _, h, w = image.shape
    b = np.trunc(boxes[:, :4]).astype(np.int32)
    x, y = np.maximum(b[:, 0], 1), np.maximum(b[:, 1], 1)
    ex, ey = np.minimum(b[:, 2], w), np.minimum(b[:, 3], h)
    keep = (ey > y - 1) & (ex > x - 1)
    crops = [F.interpolate(image[:, :, y[k] - 1:ey[k], x[k] - 1:ex[k]], size=(size, size), mode="area")
             for k in np.flatnonzero(keep)]
    return (cat(crops) if crops else None), keep


def _nms(boxes: np.ndarray, threshold: float) -> np.ndarray:
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    b, s = np.ascontiguousarray(boxes[:, :4]), np.ascontiguousarray(boxes[:, 4])
    return nms(Tensor._wrap(b), Tensor._wrap(s), threshold).numpy()


def _nms_min(boxes: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy NMS with overlap = intersection / smaller area (facenet's last step, 'Min')."""
    x1, y1, x2, y2, s = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3], boxes[:, 4]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order, pick = np.argsort(s, kind="stable"), []
    while order.size:
        i, rest = order[-1], order[:-1]
        pick.append(i)
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        order = rest[(iw * ih) / np.minimum(area[i], area[rest]) <= threshold]
    return np.array(pick, dtype=np.int64)


class MTCNN(nn.Module):
    """The cascade: P-Net over an image pyramid, then R-Net and O-Net (facenet-pytorch's ``MTCNN``
    detection, for one image).

    Args:
        min_face_size: the smallest face searched for, in pixels (sets the pyramid's first scale).
        thresholds: the face probability each stage needs to keep a window.
        factor: the pyramid's scale step.
        weights: a folder holding ``pnet.pt``, ``rnet.pt`` and ``onet.pt`` (facenet-pytorch's
            ``data`` folder), or None for untrained nets.
    """

    def __init__(self, min_face_size: int = 20, thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
                 factor: float = 0.709, weights: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
        self.min_face_size, self.thresholds, self.factor = min_face_size, tuple(thresholds), factor
        if weights is not None:
            for name in ("pnet", "rnet", "onet"):
                getattr(self, name).load_state_dict(load(os.path.join(os.fspath(weights), f"{name}.pt")))
        self.eval()

    @no_grad()
    def detect(self, image: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Faces in ``image`` (an H×W×3 RGB array, values 0–255).

        Returns:
            ``(boxes, probs, points)``: ``boxes`` (N, 4) as x1, y1, x2, y2 in pixels, ``probs`` (N,)
            the O-Net face probabilities, ``points`` (N, 5, 2) the landmarks (eyes, nose, mouth corners).
        """
        arr = np.asarray(image)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(f"MTCNN.detect: expected an H x W x 3 RGB image, got shape {arr.shape}")
        dtype = self.pnet.conv1.weight.dtype
        img = Tensor._wrap(np.ascontiguousarray(arr.transpose(2, 0, 1)[None].astype(dtype)))
        h, w = arr.shape[:2]
        scale, minl, scales = 12.0 / self.min_face_size, min(h, w) * 12.0 / self.min_face_size, []
        while minl >= 12:
            scales.append(scale)
            scale, minl = scale * self.factor, minl * self.factor
        found = []
        for s in scales:
            reg, prob = self.pnet(_normalize(F.interpolate(img, size=(int(h * s + 1), int(w * s + 1)), mode="area")))
            p, r = prob.numpy()[0, 1], reg.numpy()[0]
            ys, xs = np.nonzero(p >= self.thresholds[0])
            cells = np.stack([xs, ys], axis=1).astype(dtype)
            q1, q2 = np.floor((2 * cells + 1) / s), np.floor((2 * cells + 12) / s)
            boxes = np.concatenate([q1, q2, p[ys, xs][:, None], r[:, ys, xs].T], axis=1)
            found.append(boxes[_nms(boxes, 0.5)])
        boxes = np.concatenate(found) if found else np.zeros((0, 9), dtype=dtype)
        boxes = boxes[_nms(boxes, 0.7)]
        if len(boxes):
            bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
            moved = boxes[:, :4] + boxes[:, 5:9] * np.stack([bw, bh, bw, bh], axis=1)
            boxes = _square(np.concatenate([moved, boxes[:, 4:5]], axis=1))
        boxes = self._refine(img, boxes, 24, self.rnet, self.thresholds[1])
        points = np.zeros((0, 5, 2), dtype=dtype)
        if len(boxes):
            crops, keep = _crops(img, boxes, 48)
            boxes = boxes[keep]
            reg, marks, prob = (o.numpy() for o in self.onet(_normalize(crops)))
            ok = prob[:, 1] > self.thresholds[2]
            boxes = np.concatenate([boxes[ok, :4], prob[ok, 1:2]], axis=1)
            marks, reg = marks[ok], reg[ok]
            bw, bh = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
            points = np.stack([bw[:, None] * marks[:, :5] + boxes[:, :1] - 1,
                               bh[:, None] * marks[:, 5:] + boxes[:, 1:2] - 1], axis=2)
            boxes = _regress(boxes, reg)
            pick = _nms_min(boxes, 0.7)
            boxes, points = boxes[pick], points[pick]
        return boxes[:, :4], boxes[:, 4], points

    def _refine(self, img: Tensor, boxes: np.ndarray, size: int, net: nn.Module, threshold: float) -> np.ndarray:
        if not len(boxes):
            return boxes
        crops, keep = _crops(img, boxes, size)
        boxes = boxes[keep]
        reg, prob = (o.numpy() for o in net(_normalize(crops)))
        ok = prob[:, 1] > threshold
        boxes, reg = np.concatenate([boxes[ok, :4], prob[ok, 1:2]], axis=1), reg[ok]
        pick = _nms(boxes, 0.7)
        return _square(_regress(boxes[pick], reg[pick]))

    def forward(self, image: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.detect(image)


def mtcnn(weights: str | os.PathLike[str] | None = None, **kwargs: Any) -> MTCNN:
    """The MTCNN cascade; ``weights`` is a folder with facenet-pytorch's ``pnet.pt``/``rnet.pt``/``onet.pt``."""
    return MTCNN(weights=weights, **kwargs)
