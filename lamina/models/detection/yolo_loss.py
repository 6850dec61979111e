"""The YOLO-v1 loss (Redmon, Divvala, Girshick & Farhadi, 2016, eq. 3) and its target assignment.

Predictions are the network's activated ``(N, S, S, B·5 + C)`` grid, laid out per cell as the
paper's ``7×7×30`` tensor: ``B`` boxes of ``(x, y, √w, √h, confidence)`` then ``C`` class
probabilities. ``x, y`` are the box centre's offset inside its cell (0..1), ``√w, √h`` the square
roots of the box's width and height as fractions of the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...autograd.tensor import Tensor

__all__ = ["yolov1_loss", "yolov1_targets", "cell_boxes"]


def cell_boxes(pred: Any, num_boxes: int) -> Any:
    """The predicted boxes of an ``(N, S, S, B·5 + C)`` array as ``(N, S, S, B, 4)`` normalized
    ``(x1, y1, x2, y2)`` (fractions of the image's width and height)."""
    n, s = pred.shape[0], pred.shape[1]
    b = pred[..., :num_boxes * 5].reshape(n, s, s, num_boxes, 5)
    col = np.arange(s, dtype=pred.dtype).reshape(1, 1, s, 1)
    row = np.arange(s, dtype=pred.dtype).reshape(1, s, 1, 1)
    cx, cy = (col + b[..., 0]) / s, (row + b[..., 1]) / s
    w, h = b[..., 2] ** 2, b[..., 3] ** 2
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


def _iou(a: Any, b: Any) -> Any:
    """IoU of boxes ``a (..., 4)`` with one box ``b (4,)``."""
    lt = np.maximum(a[..., :2], b[:2])
    rb = np.minimum(a[..., 2:], b[2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    union = area_a + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def yolov1_targets(pred: Any, targets: Sequence[dict[str, Any]], image_size: tuple[int, int], num_boxes: int,
                   confidence_target: str = "iou") -> dict[str, Any]:
    """Which predictor is responsible for which object, and what it should predict (no gradient).

    Each ground-truth box belongs to the cell holding its centre. A cell holds at most one object
    (the paper's limit): when several centres fall into one cell, the first in target order is
    kept. Of the cell's ``B`` predictors, the one whose predicted box has the highest IoU with the
    object is responsible (the first on ties).

    Args:
        pred: the predictions as an array ``(N, S, S, B·5 + C)``.
        targets: one dict per image, ``boxes`` ``[M, 4]`` xyxy in pixels of an image of
            ``image_size`` (height, width), ``labels`` ``[M]`` in ``1..C``.
        image_size: ``(height, width)`` of the network input.
        num_boxes: ``B``.
        confidence_target: ``'iou'`` (the paper: the IoU of the responsible box with the object)
            or ``'one'``.

    Returns:
        arrays ``resp`` ``(N, S, S, B)`` (1 for responsible predictors), ``coords`` ``(N, S, S, B, 4)``
        (target ``x, y, √w, √h``), ``conf`` ``(N, S, S, B)``, ``obj`` ``(N, S, S)`` (1 for cells with an
        object) and ``classes`` ``(N, S, S, C)`` (one-hot).
    """
    if confidence_target not in ("iou", "one"):
        raise ValueError(f"yolov1_loss: confidence_target must be 'iou' or 'one', got {confidence_target!r}")
    n, s = pred.shape[0], pred.shape[1]
    num_classes = pred.shape[-1] - num_boxes * 5
    dt = pred.dtype
    resp = np.zeros((n, s, s, num_boxes), dt)
    coords = np.zeros((n, s, s, num_boxes, 4), dt)
    conf = np.zeros((n, s, s, num_boxes), dt)
    obj = np.zeros((n, s, s), dt)
    classes = np.zeros((n, s, s, num_classes), dt)
    pboxes = cell_boxes(pred, num_boxes)
    hi, wi = image_size
    for k, t in enumerate(targets):
        boxes = np.asarray(t["boxes"].array if isinstance(t["boxes"], Tensor) else t["boxes"], dtype=np.float64)
        labels = np.asarray(t["labels"].array if isinstance(t["labels"], Tensor) else t["labels"])
        for box, label in zip(boxes.reshape(-1, 4), labels.reshape(-1)):
            nb = box / np.array([wi, hi, wi, hi])  # normalized xyxy
            cx, cy = (nb[0] + nb[2]) / 2, (nb[1] + nb[3]) / 2
            j, i = min(int(cx * s), s - 1), min(int(cy * s), s - 1)
            if obj[k, i, j]:
                continue
            ious = _iou(pboxes[k, i, j].astype(np.float64), nb)
            r = int(np.argmax(ious))
            obj[k, i, j] = 1
            classes[k, i, j, int(label) - 1] = 1
            resp[k, i, j, r] = 1
            coords[k, i, j, r] = (cx * s - j, cy * s - i, np.sqrt(nb[2] - nb[0]), np.sqrt(nb[3] - nb[1]))
            conf[k, i, j, r] = ious[r] if confidence_target == "iou" else 1.0
    return {"resp": resp, "coords": coords, "conf": conf, "obj": obj, "classes": classes}


def yolov1_loss(pred: Tensor, targets: Sequence[dict[str, Any]], image_size: tuple[int, int], num_boxes: int = 2,
                lambda_coord: float = 5.0, lambda_noobj: float = 0.5,
                confidence_target: str = "iou") -> dict[str, Tensor]:
    r"""The YOLO-v1 sum-squared loss, split into its four parts.

    With :math:`\mathbb 1^{obj}_{ij}` for the responsible predictor ``j`` of cell ``i``,
    :math:`\mathbb 1^{noobj}_{ij} = 1 - \mathbb 1^{obj}_{ij}` and :math:`\mathbb 1^{obj}_i` for
    cells holding an object, summed over the batch and divided by the batch size ``N``:

    - ``loss_coord`` :math:`= \lambda_{coord}\sum \mathbb 1^{obj}_{ij}[(x-\hat x)^2 + (y-\hat y)^2
      + (\sqrt w-\sqrt{\hat w})^2 + (\sqrt h-\sqrt{\hat h})^2]`
    - ``loss_conf_obj`` :math:`= \sum \mathbb 1^{obj}_{ij}(C-\hat C)^2`, where the target
      :math:`\hat C` is the IoU of the predicted box with the object (``confidence_target='iou'``,
      the paper; taken as a constant) or 1 (``'one'``)
    - ``loss_conf_noobj`` :math:`= \lambda_{noobj}\sum \mathbb 1^{noobj}_{ij} C^2` (every predictor
      that is not responsible, in empty cells and beside the responsible one)
    - ``loss_class`` :math:`= \sum \mathbb 1^{obj}_i \sum_c (p(c)-\hat p(c))^2`

    The network predicts :math:`\sqrt w, \sqrt h` directly, so no square root of a prediction is
    taken (its gradient is unbounded at 0).

    Args:
        pred: ``(N, S, S, B·5 + C)`` activated predictions (see the module docstring).
        targets: one dict per image: ``boxes`` ``[M, 4]`` xyxy in pixels of the network input,
            ``labels`` ``[M]`` in ``1..C``; ``M = 0`` is valid.
        image_size: ``(height, width)`` of the network input.
        num_boxes: ``B``.
        lambda_coord, lambda_noobj: the paper's weights (5 and 0.5).
        confidence_target: ``'iou'`` or ``'one'``.

    Returns:
        ``{'loss_coord', 'loss_conf_obj', 'loss_conf_noobj', 'loss_class'}``, scalar Tensors.
    """
    if pred.ndim != 4 or pred.shape[1] != pred.shape[2] or pred.shape[-1] <= num_boxes * 5:
        raise ValueError(f"yolov1_loss: expected predictions (N, S, S, {num_boxes}·5 + C), got {tuple(pred.shape)}")
    if len(targets) != pred.shape[0]:
        raise ValueError(f"yolov1_loss: {len(targets)} targets for a batch of {pred.shape[0]} predictions")
    t = yolov1_targets(pred.array, targets, image_size, num_boxes, confidence_target)
    n, s = pred.shape[0], pred.shape[1]
    boxes = pred[..., :num_boxes * 5].reshape(n, s, s, num_boxes, 5)
    probs = pred[..., num_boxes * 5:]

    def const(a: Any) -> Tensor:
        return Tensor._wrap(a.astype(pred.dtype))

    resp = const(t["resp"])
    coord_err = ((boxes[..., :4] - const(t["coords"])) ** 2).sum(-1)
    conf = boxes[..., 4]
    return {
        "loss_coord": (coord_err * resp).sum() * (lambda_coord / n),
        "loss_conf_obj": (((conf - const(t["conf"])) ** 2) * resp).sum() * (1.0 / n),
        "loss_conf_noobj": ((conf ** 2) * const(1 - t["resp"])).sum() * (lambda_noobj / n),
        "loss_class": (((probs - const(t["classes"])) ** 2).sum(-1) * const(t["obj"])).sum() * (1.0 / n),
    }
