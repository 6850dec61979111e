"""MTCNN, the three-stage face detector of Zhang et al. (2016), as facenet-pytorch implements it.

P-Net proposes face windows on an image pyramid (a fully convolutional 12×12 detector, stride 2),
R-Net refines the surviving windows cut out at 24×24, O-Net at 48×48 gives the final boxes, scores
and five facial landmarks. Between the stages: thresholds on the face probability, non-maximum
suppression (:func:`lamina.vision.ops.batched_nms`), box regression and square-ing of the boxes.

The module names (``conv1``, ``prelu1``, ``dense4`` …) are facenet-pytorch's, so the trained
weights its wheel ships (``data/pnet.pt``, ``rnet.pt``, ``onet.pt``) load with :func:`lamina.load`
(which reads torch's files without unpickling) — see :func:`mtcnn`. It is a detector with its own
:meth:`MTCNN.detect`, not a classifier, so ``get_model`` / ``lamina train`` do not list it. The cascade follows
facenet-pytorch's ``detect_face`` step by step (the same pyramid, rounding, padding and NMS
variants), so the same weights give the same detections.

Example:
    >>> import lamina
    >>> net = lamina.models.mtcnn()  # random weights; pass weights_dir= for the trained ones
    >>> boxes, probs = net.detect(lamina.backend.xp.zeros((40, 40, 3), dtype="uint8"))
    >>> boxes.shape[1]
    4
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import numpy as np

from .. import nn
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..nn import functional as F
from ..ops import cat
from ..ops.nms import batched_nms

__all__ = ["PNet", "RNet", "ONet", "MTCNN", "mtcnn", "facenet_pytorch_weights_dir"]


class PNet(nn.Module):
    """The proposal network: ``(N, 3, H, W)`` → box offsets ``(N, 4, H', W')`` and face probabilities
    ``(N, 2, H', W')``, one 12×12 window per output cell, stride 2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.softmax4_1 = nn.Softmax(dim=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(self.pool1(self.prelu1(self.conv1(x)))))))
        return self.conv4_2(x), self.softmax4_1(self.conv4_1(x))


class RNet(nn.Module):
    """The refinement network: ``(N, 3, 24, 24)`` → box offsets ``(N, 4)`` and face probabilities ``(N, 2)``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.softmax5_1 = nn.Softmax(dim=1)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.pool2(self.prelu2(self.conv2(self.pool1(self.prelu1(self.conv1(x))))))
        x = self.prelu3(self.conv3(x))
        # the weights were converted from Caffe/TensorFlow, which flatten in (W, H, C) order
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu4(self.dense4(x.view(x.shape[0], -1)))
        return self.dense5_2(x), self.softmax5_1(self.dense5_1(x))


class ONet(nn.Module):
    """The output network: ``(N, 3, 48, 48)`` → box offsets ``(N, 4)``, landmarks ``(N, 10)`` (five x then
    five y, relative to the box) and face probabilities ``(N, 2)``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.softmax6_1 = nn.Softmax(dim=1)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = self.pool2(self.prelu2(self.conv2(self.pool1(self.prelu1(self.conv1(x))))))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).contiguous()  # (W, H, C) flattening, as RNet
        x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))


def _nms(boxes: np.ndarray, scores: np.ndarray, idxs: np.ndarray, threshold: float) -> np.ndarray:
    keep = batched_nms(Tensor._wrap(boxes), Tensor._wrap(scores), Tensor._wrap(idxs), threshold)
    return np.asarray(keep.array)


def _nms_min(boxes: np.ndarray, scores: np.ndarray, idxs: np.ndarray, threshold: float) -> np.ndarray:
    """The last stage's NMS (facenet-pytorch's ``nms_numpy(..., 'Min')``): overlap is the intersection over
    the *smaller* box, areas count pixels inclusively (``+1``), ties go to the later box."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    boxes = boxes + (idxs.astype(boxes.dtype) * (boxes.max() + 1))[:, None]  # images cannot overlap
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)  # ascending: the last is visited first
    pick = []
    while order.size:
        i, rest = order[-1], order[:-1]
        pick.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        order = rest[(w * h) / np.minimum(area[i], area[rest]) <= threshold]
    return np.asarray(pick, dtype=np.int64)


def _square(b: np.ndarray) -> np.ndarray:
    """Boxes grown to squares about their centres (facenet-pytorch's ``rerec``)."""
    b = b.copy()
    h, w = b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]
    side = np.maximum(w, h)
    b[:, 0] = b[:, 0] + w * 0.5 - side * 0.5
    b[:, 1] = b[:, 1] + h * 0.5 - side * 0.5
    b[:, 2:4] = b[:, :2] + side[:, None]
    return b


def _regress(b: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Boxes moved by the regression offsets, in units of the inclusive width and height (``bbreg``)."""
    b = b.copy()
    w, h = b[:, 2] - b[:, 0] + 1, b[:, 3] - b[:, 1] + 1
    b[:, :4] = b[:, :4] + reg[:, :4] * np.stack([w, h, w, h], axis=1)
    return b


def _crops(imgs: Tensor, boxes: np.ndarray, inds: np.ndarray, size: int) -> Tensor:
    """The boxes' windows (1-based inclusive pixel boxes, clipped to the image) resized to ``size``²."""
    h, w = imgs.shape[2:4]
    b = np.trunc(boxes[:, :4]).astype(np.int32)
    x, y = np.maximum(b[:, 0], 1), np.maximum(b[:, 1], 1)
    ex, ey = np.minimum(b[:, 2], w), np.minimum(b[:, 3], h)
    out = [F.interpolate(imgs[int(inds[k]):int(inds[k]) + 1, :, y[k] - 1:ey[k], x[k] - 1:ex[k]], size=(size, size),
                         mode="area")
           for k in range(len(b)) if ey[k] > y[k] - 1 and ex[k] > x[k] - 1]
    return (cat(out, dim=0) - 127.5) * 0.0078125


class MTCNN(nn.Module):
    """The cascade of :class:`PNet`, :class:`RNet` and :class:`ONet` (facenet-pytorch's ``MTCNN.detect``).

    Args:
        min_face_size: the smallest face searched for, in pixels (sets the pyramid's first scale).
        thresholds: the face-probability thresholds of the three stages.
        factor: the pyramid's scale step.
        select_largest: order each image's faces by decreasing box area (else by the cascade's order).
    """

    def __init__(self, min_face_size: int = 20, thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
                 factor: float = 0.709, select_largest: bool = True) -> None:
        super().__init__()
        self.min_face_size, self.thresholds, self.factor = min_face_size, tuple(thresholds), factor
        self.select_largest = select_largest
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
        self.eval()

    def load_facenet_weights(self, weights_dir: str) -> MTCNN:
        """Load ``pnet.pt``, ``rnet.pt`` and ``onet.pt`` (torch files, read without unpickling) from ``weights_dir``."""
        from ..serialization import load

        for name in ("pnet", "rnet", "onet"):
            getattr(self, name).load_state_dict(load(os.path.join(weights_dir, f"{name}.pt")))
        return self

    def detect(self, img: Any, landmarks: bool = False) -> tuple[Any, ...]:
        """Faces in ``img``, an ``(H, W, 3)`` RGB image (uint8 values 0–255) or an ``(N, H, W, 3)`` batch.

        Returns:
            ``(boxes, probs)`` (and ``points`` with ``landmarks=True``): for one image, ``float32`` arrays
            ``(F, 4)`` of ``(x1, y1, x2, y2)``, ``(F,)`` and ``(F, 5, 2)``; for a batch, lists of these.
            Unlike facenet-pytorch, an image without faces gives empty arrays, not ``None``.
        """
        arr = np.asarray(img.numpy() if isinstance(img, Tensor) else img)
        if arr.ndim not in (3, 4) or arr.shape[-1] != 3:
            raise ValueError(f"MTCNN.detect: expected an (H, W, 3) image or an (N, H, W, 3) batch, got shape "
                             f"{arr.shape}")
        batch = arr.ndim == 4
        with no_grad():
            out = self._detect(arr if batch else arr[None])
        if self.select_largest:
            out = [(b[order], q[order]) for b, q in out
                   for order in [np.argsort((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[::-1]]]
        res = [list(col) for col in zip(*[(b[:, :4], b[:, 4], q) for b, q in out])]
        if not landmarks:
            res = res[:2]
        return tuple(res) if batch else tuple(r[0] for r in res)

    def _detect(self, arr: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per image: its boxes ``(F, 5)`` (x1, y1, x2, y2, probability) and landmarks ``(F, 5, 2)``."""
        imgs = Tensor._wrap(np.ascontiguousarray(arr.transpose(0, 3, 1, 2), dtype=np.float32))
        n, h, w = arr.shape[0], arr.shape[1], arr.shape[2]
        m = 12.0 / self.min_face_size
        minl, scale, scales = min(h, w) * m, m, []
        while minl >= 12:
            scales.append(scale)
            scale, minl = scale * self.factor, minl * self.factor
        # stage 1: P-Net over the pyramid, NMS per scale and image, then per image
        found, found_inds = [np.zeros((0, 9), np.float32)], [np.zeros(0, np.int64)]
        for scale in scales:
            x = F.interpolate(imgs, size=(int(h * scale + 1), int(w * scale + 1)), mode="area")
            reg, probs = self.pnet((x - 127.5) * 0.0078125)
            reg, probs = reg.numpy(), probs.numpy()[:, 1]
            inds, ys, xs = np.nonzero(probs >= self.thresholds[0])
            cells = np.stack([xs, ys], axis=1).astype(np.float32)
            q1, q2 = np.floor((2 * cells + 1) / scale), np.floor((2 * cells + 12) / scale)
            boxes = np.concatenate([q1, q2, probs[inds, ys, xs][:, None], reg[inds, :, ys, xs]], axis=1)
            keep = _nms(boxes[:, :4], boxes[:, 4], inds, 0.5)
            found.append(boxes[keep].astype(np.float32))
            found_inds.append(inds[keep])
        boxes, inds = np.concatenate(found), np.concatenate(found_inds)
        keep = _nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
        boxes, inds = boxes[keep], inds[keep]
        regw, regh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        boxes = np.stack([boxes[:, 0] + boxes[:, 5] * regw, boxes[:, 1] + boxes[:, 6] * regh,
                          boxes[:, 2] + boxes[:, 7] * regw, boxes[:, 3] + boxes[:, 8] * regh, boxes[:, 4]], axis=1)
        boxes = _square(boxes)
        # stage 2: R-Net on 24×24 crops
        if len(boxes):
            reg, probs = (t.numpy() for t in self.rnet(_crops(imgs, boxes, inds, 24)))
            ok = probs[:, 1] > self.thresholds[1]
            boxes = np.concatenate([boxes[ok, :4], probs[ok, 1:2]], axis=1)
            inds, reg = inds[ok], reg[ok]
            keep = _nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
            boxes = _square(_regress(boxes[keep], reg[keep]))
            inds = inds[keep]
        # stage 3: O-Net on 48×48 crops, landmarks, and a last "Min" NMS
        points = np.zeros((0, 5, 2), np.float32)
        if len(boxes):
            reg, marks, probs = (t.numpy() for t in self.onet(_crops(imgs, boxes, inds, 48)))
            ok = probs[:, 1] > self.thresholds[2]
            boxes = np.concatenate([boxes[ok, :4], probs[ok, 1:2]], axis=1)
            inds, reg, marks = inds[ok], reg[ok], marks[ok]
            bw, bh = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
            points = np.stack([bw[:, None] * marks[:, :5] + boxes[:, 0:1] - 1,
                               bh[:, None] * marks[:, 5:] + boxes[:, 1:2] - 1], axis=2)
            boxes = _regress(boxes, reg)
            keep = _nms_min(boxes[:, :4], boxes[:, 4], inds, 0.7)
            boxes, inds, points = boxes[keep], inds[keep], points[keep]
        return [(boxes[inds == i], points[inds == i]) for i in range(n)]


def facenet_pytorch_weights_dir() -> str | None:
    """The ``data`` folder of an installed facenet-pytorch (found without importing it), or None."""
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = os.path.join(list(spec.submodule_search_locations)[0], "data")
    return folder if os.path.isfile(os.path.join(folder, "pnet.pt")) else None


def mtcnn(weights_dir: str | None = None, **kwargs: Any) -> MTCNN:
    """An :class:`MTCNN` face detector; ``weights_dir`` holds facenet-pytorch's ``pnet.pt``/``rnet.pt``/``onet.pt``
    (:func:`facenet_pytorch_weights_dir` finds them in an installed facenet-pytorch); None keeps random weights."""
    net = MTCNN(**kwargs)
    if weights_dir is not None:
        net.load_facenet_weights(weights_dir)
    return net
