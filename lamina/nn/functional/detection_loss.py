"""The detection losses of ``torchvision.ops``: the IoU losses of box regression (generalized,
distance and complete IoU) and the sigmoid focal loss of RetinaNet.

torch.nn.functional has none of them, so ``lamina.nn.functional`` does not re-export this file;
their public home is :mod:`lamina.vision.ops`. Each is composed from differentiable ops (no
backward of its own; twice differentiable).

The IoU losses pair ``boxes1[i]`` with ``boxes2[i]`` (elementwise, unlike the ``[N, M]``
matrices of :func:`lamina.ops.boxes.box_iou`), and keep ``eps`` in every denominator, so that
degenerate boxes (zero width or height, one point) still give a finite loss and gradient.
They compute in float32 for float16 and integer boxes (torchvision's ``_upcast_non_float``).
"""

from __future__ import annotations

import math
from typing import Any

from ... import backend
from ...autograd.tensor import Tensor
from ...ops.boxes import check_boxes
from ...ops.common import broadcast_shape, check_tensor
from ...ops.selection import maximum, minimum, where
from ...ops.unary import atan, sigmoid
from .loss import binary_cross_entropy_with_logits

__all__ = ["generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss", "sigmoid_focal_loss"]


def _loss_boxes(boxes1: Any, boxes2: Any, op: str) -> tuple[Tensor, Tensor]:
    boxes1 = check_boxes(boxes1, op, "boxes1", last_dim_only=True)
    boxes2 = check_boxes(boxes2, op, "boxes2", last_dim_only=True)
    try:
        broadcast_shape(op, boxes1.shape[:-1], boxes2.shape[:-1])
    except RuntimeError:
        raise ValueError(f"{op}: boxes1 of shape {tuple(boxes1.shape)} and boxes2 of shape {tuple(boxes2.shape)} "
                         "do not pair up (the losses compare boxes1[i] with boxes2[i])") from None
    d1, d2 = boxes1.dtype, boxes2.dtype
    if d1 in (backend.float32, backend.float64) and d2 in (backend.float32, backend.float64) and d1 != d2:
        raise TypeError(f"{op}: boxes1 has dtype {d1} but boxes2 has {d2} (convert one with .to(dtype))")
    # torchvision's _upcast_non_float: anything but float32 / float64 computes in float32
    boxes1 = boxes1 if d1 in (backend.float32, backend.float64) else boxes1.float()
    boxes2 = boxes2 if d2 in (backend.float32, backend.float64) else boxes2.float()
    return boxes1, boxes2


def _reduce(loss: Tensor, reduction: str, op: str, empty_mean_zero: bool = True) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "mean":
        # torchvision's IoU losses: the mean of no boxes is 0 (still wired to the graph), not nan
        return loss.mean() if loss.numel() > 0 or not empty_mean_zero else loss.sum() * 0.0
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"{op}: {reduction!r} is not a valid value for reduction (expected 'none', 'mean' or 'sum')")


def _inter_union(boxes1: Tensor, boxes2: Tensor) -> tuple[Tensor, Tensor]:
    """Elementwise intersection and union areas; the intersection is 0 (with no gradient) unless
    the boxes overlap with a positive width and height, as torchvision's masked assignment."""
    x1, y1, x2, y2 = boxes1.unbind(-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(-1)
    xk1, yk1 = maximum(x1, x1g), maximum(y1, y1g)
    xk2, yk2 = minimum(x2, x2g), minimum(y2, y2g)
    overlap = (yk2 > yk1) & (xk2 > xk1)
    inter = where(overlap, (xk2 - xk1) * (yk2 - yk1), 0.0)
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter
    return inter, union


def _enclosing(boxes1: Tensor, boxes2: Tensor) -> tuple[Tensor, Tensor]:
    """Width and height of the smallest box enclosing each pair."""
    x1, y1, x2, y2 = boxes1.unbind(-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(-1)
    return maximum(x2, x2g) - minimum(x1, x1g), maximum(y2, y2g) - minimum(y1, y1g)


def _diou_loss_iou(boxes1: Tensor, boxes2: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    inter, union = _inter_union(boxes1, boxes2)
    iou = inter / (union + eps)
    wc, hc = _enclosing(boxes1, boxes2)
    diagonal_sq = wc ** 2 + hc ** 2 + eps
    x1, y1, x2, y2 = boxes1.unbind(-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(-1)
    centers_sq = ((x2 + x1) / 2 - (x1g + x2g) / 2) ** 2 + ((y2 + y1) / 2 - (y1g + y2g) / 2) ** 2
    return 1 - iou + centers_sq / diagonal_sq, iou


def generalized_box_iou_loss(boxes1: Tensor, boxes2: Tensor, reduction: str = "none", eps: float = 1e-7) -> Tensor:
    """``1 − GIoU(boxes1[i], boxes2[i])``: an IoU loss whose gradient does not vanish for boxes
    apart (the enclosing-box penalty grows with the gap). Symmetric in its arguments.

    Matches ``torchvision.ops.generalized_box_iou_loss``:
    ``IoU = I / (U + eps)``, ``GIoU = IoU − (C − U) / (C + eps)``, ``C`` the enclosing box's area.

    Args:
        boxes1: ``Tensor[..., 4]`` (``(x1, y1, x2, y2)``), e.g. predictions ``[N, 4]`` or one ``[4]``.
        boxes2: boxes of the same (or a broadcastable) shape, e.g. the targets.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``; the mean of no boxes is 0.
        eps: keeps degenerate boxes finite.

    Returns:
        The loss per box ``[...]``, or reduced to a scalar.

    Example:
        >>> import lamina
        >>> a = lamina.tensor([[0.0, 0.0, 1.0, 1.0]])
        >>> generalized_box_iou_loss(a, lamina.tensor([[2.0, 0.0, 3.0, 1.0]]), eps=0.0)
        tensor([1.3333])
    """
    op = "generalized_box_iou_loss"
    boxes1, boxes2 = _loss_boxes(boxes1, boxes2, op)
    inter, union = _inter_union(boxes1, boxes2)
    iou = inter / (union + eps)
    wc, hc = _enclosing(boxes1, boxes2)
    area_c = wc * hc
    return _reduce(1 - (iou - (area_c - union) / (area_c + eps)), reduction, op)


def distance_box_iou_loss(boxes1: Tensor, boxes2: Tensor, reduction: str = "none", eps: float = 1e-7) -> Tensor:
    """``1 − DIoU(boxes1[i], boxes2[i]) = 1 − IoU + ρ² / (c² + eps)``: the IoU loss plus the squared
    distance of the centres over the squared diagonal of the enclosing box, which pulls the
    centres together even for nested or distant boxes. Symmetric.

    Matches ``torchvision.ops.distance_box_iou_loss`` (``IoU = I / (U + eps)``). Args, shapes
    and the reduction as :func:`generalized_box_iou_loss`.

    Example:
        >>> import lamina
        >>> a = lamina.tensor([[0.0, 0.0, 1.0, 1.0]])
        >>> distance_box_iou_loss(a, lamina.tensor([[2.0, 0.0, 3.0, 1.0]]), eps=0.0)
        tensor([1.4000])
    """
    op = "distance_box_iou_loss"
    boxes1, boxes2 = _loss_boxes(boxes1, boxes2, op)
    loss, _ = _diou_loss_iou(boxes1, boxes2, eps)
    return _reduce(loss, reduction, op)


def complete_box_iou_loss(boxes1: Tensor, boxes2: Tensor, reduction: str = "none", eps: float = 1e-7) -> Tensor:
    """``1 − CIoU``: the distance IoU loss plus ``α·v``, the aspect-ratio term
    ``v = (4/π²)·(atan(w₂/h₂) − atan(w₁/h₁))²`` with the weight ``α = v / (1 − IoU + v + eps)``
    held constant in the gradient. Symmetric.

    Matches ``torchvision.ops.complete_box_iou_loss``. Args, shapes and the reduction as
    :func:`generalized_box_iou_loss`; a box of zero height has aspect angle ``π/2`` (finite
    loss), but the gradient of ``atan(w/h)`` there is not (``h = 0`` divides).

    Example:
        >>> import lamina
        >>> a = lamina.tensor([[0.0, 0.0, 2.0, 2.0]])
        >>> complete_box_iou_loss(a, lamina.tensor([[0.0, 0.0, 4.0, 2.0]]))  # 1 − 1/2 + 1/20 + α·v
        tensor([0.5532])
    """
    op = "complete_box_iou_loss"
    boxes1, boxes2 = _loss_boxes(boxes1, boxes2, op)
    loss, iou = _diou_loss_iou(boxes1, boxes2, eps)
    x1, y1, x2, y2 = boxes1.unbind(-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(-1)
    v = (4 / math.pi ** 2) * (atan((x2g - x1g) / (y2g - y1g)) - atan((x2 - x1) / (y2 - y1))) ** 2
    alpha = (v / (1 - iou + v + eps)).detach()  # a weight, not a path for the gradient
    return _reduce(loss + alpha * v, reduction, op)


def sigmoid_focal_loss(inputs: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2,
                       reduction: str = "none") -> Tensor:
    """The focal loss of RetinaNet (Lin et al., 2017) for binary (per-class) logits:
    ``α_t·(1 − p_t)^γ·BCE(inputs, targets)``, where ``p = σ(inputs)``,
    ``p_t = p·t + (1 − p)·(1 − t)`` and ``α_t = α·t + (1 − α)·(1 − t)``. The factor
    ``(1 − p_t)^γ`` shrinks the loss of the well-classified (mostly background) examples.

    Matches ``torchvision.ops.sigmoid_focal_loss``; the cross-entropy is the stable
    :func:`binary_cross_entropy_with_logits`.

    Args:
        inputs: logits, any shape.
        targets: the same shape, 1 for the positive class and 0 for the negative (soft labels
            are allowed, as the formula is).
        alpha: weight of the positives in ``(0, 1)``; ``alpha < 0`` turns the weighting off.
        gamma: the focusing exponent (0 gives the plain BCE, weighted by ``α_t``).
        reduction: ``'none'`` | ``'mean'`` | ``'sum'`` (the mean of an empty tensor is nan, as torch).

    Example:
        >>> import lamina
        >>> sigmoid_focal_loss(lamina.tensor([0.0]), lamina.tensor([1.0]), alpha=-1, gamma=1)
        tensor([0.3466])
    """
    op = "sigmoid_focal_loss"
    check_tensor(inputs, op, "inputs")
    check_tensor(targets, op, "targets")
    if inputs.dtype.kind != "f":
        raise TypeError(f"{op}: inputs must be floating logits, got dtype {inputs.dtype}")
    if targets.shape != inputs.shape:
        raise ValueError(f"{op}: targets of shape {tuple(targets.shape)} should have the shape of inputs "
                         f"{tuple(inputs.shape)}")
    if targets.dtype.kind == "f" and targets.dtype != inputs.dtype:
        raise TypeError(f"{op}: targets has dtype {targets.dtype} but inputs has {inputs.dtype}")
    targets = targets.to(inputs.dtype)
    p = sigmoid(inputs)
    ce = binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return _reduce(loss, reduction, op, empty_mean_zero=False)
