"""Box geometry with ``torchvision.ops``'s names and semantics: format conversion, areas, the
pairwise IoU family (IoU, generalized, distance and complete IoU), clipping, small-box removal
and the boxes around masks.

Every function composes differentiable Tensor ops: the IoUs are differentiable (twice, too: no
function here has a backward of its own), with torch's subgradients where a ``max``, ``min`` or
``clamp`` has a kink (half the gradient to each side of a tie; ``clamp`` passes it at the bound).

Boxes are ``(x1, y1, x2, y2)`` unless a format says otherwise. torchvision expects
``0 <= x1 < x2`` and ``0 <= y1 < y2`` and checks no values; neither do these differentiable
functions: an inverted box has the negative area the formula gives, two boxes of zero area give
IoU ``0/0 = nan``, and a nan coordinate gives nan where it enters, as in torchvision (and as any
torch op: visible in the output, not a wrong number). The shapes are checked (``Tensor[N, 4]``),
and so is the dtype. (:func:`lamina.ops.nms.nms`, whose output is a selection, rejects
non-finite boxes instead.)

dtypes follow torchvision's ``_upcast``: float16 boxes are computed in float32 (a product of two
half-precision widths overflows at 65504) and int8 / int16 / uint8 boxes in int32; the IoUs of
integer boxes are floating. lamina does not promote one float dtype to another implicitly, so
``boxes1`` and ``boxes2`` of different float dtypes raise.
"""

from __future__ import annotations

import math
from typing import Any

from .. import backend
from ..autograd.tensor import Tensor
from .common import check_tensor, const
from .join import stack
from .selection import maximum, minimum
from .unary import atan

__all__ = ["box_convert", "box_area", "box_iou", "generalized_box_iou", "distance_box_iou", "complete_box_iou",
           "clip_boxes_to_image", "remove_small_boxes", "masks_to_boxes", "upcast", "check_boxes"]

xp = backend.xp

_FORMATS = ("xyxy", "xywh", "cxcywh")


def upcast(t: Tensor) -> Tensor:
    """torchvision's ``_upcast``: float16 → float32, integers narrower than 32 bits → int32;
    float32, float64, int32 and int64 stay (products then neither overflow nor lose the sign)."""
    kind, size = t.dtype.kind, t.dtype.itemsize
    if kind == "f":
        return t if size >= 4 else t.float()
    if size < 4:
        return t.to(backend.int32)
    return t if kind == "i" else t.to(backend.int64)


def check_boxes(boxes: Any, op: str, name: str = "boxes", last_dim_only: bool = False) -> Tensor:
    """``boxes`` as a real-valued ``Tensor[N, 4]`` (``[..., 4]`` with ``last_dim_only``), or a
    clear error naming ``op``."""
    check_tensor(boxes, op, name)
    if boxes.dtype.kind not in "fiu":
        raise TypeError(f"{op}: {name} must hold real numbers, got dtype {boxes.dtype}")
    if last_dim_only:
        if boxes.ndim == 0 or boxes.shape[-1] != 4:
            raise ValueError(f"{op}: {name} should be a Tensor[..., 4] (4 coordinates per box), "
                             f"got shape {tuple(boxes.shape)}")
    elif boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{op}: {name} should be a Tensor[N, 4] of (x1, y1, x2, y2) boxes, "
                         f"got shape {tuple(boxes.shape)}")
    return boxes


def _check_pair(boxes1: Any, boxes2: Any, op: str) -> tuple[Tensor, Tensor]:
    boxes1 = check_boxes(boxes1, op, "boxes1")
    boxes2 = check_boxes(boxes2, op, "boxes2")
    d1, d2 = boxes1.dtype, boxes2.dtype
    if d1.kind == "f" and d2.kind == "f" and d1 != d2:
        raise TypeError(f"{op}: boxes1 has dtype {d1} but boxes2 has {d2} (convert one with .to(dtype))")
    return boxes1, boxes2


def box_convert(boxes: Tensor, in_fmt: str, out_fmt: str) -> Tensor:
    """Convert boxes between the formats ``'xyxy'`` (corners), ``'xywh'`` (top-left corner,
    width, height) and ``'cxcywh'`` (centre, width, height).

    Matches ``torchvision.ops.box_convert`` for these three formats (the rotated ones are not
    implemented), including its rounding: ``xywh`` ↔ ``cxcywh`` goes through ``xyxy``.

    Args:
        boxes: ``Tensor[..., 4]`` in ``in_fmt``.
        in_fmt: ``'xyxy'``, ``'xywh'`` or ``'cxcywh'``.
        out_fmt: the same choices.

    Returns:
        ``Tensor[..., 4]`` in ``out_fmt`` (a copy when the formats agree); differentiable.

    Example:
        >>> import lamina
        >>> box_convert(lamina.tensor([[1.0, 2.0, 4.0, 8.0]]), "xyxy", "cxcywh")
        tensor([[2.5000, 5.0000, 3.0000, 6.0000]])
    """
    boxes = check_boxes(boxes, "box_convert", last_dim_only=True)
    if in_fmt not in _FORMATS or out_fmt not in _FORMATS:
        raise ValueError(f"box_convert: unsupported conversion from in_fmt {in_fmt!r} to out_fmt {out_fmt!r} "
                         f"(supported formats: {', '.join(repr(f) for f in _FORMATS)})")
    if in_fmt == out_fmt:
        return boxes.clone()
    a, b, c, d = boxes.unbind(-1)
    if in_fmt == "xywh":  # (x, y, w, h) → corners
        a, b, c, d = a, b, a + c, b + d
    elif in_fmt == "cxcywh":  # (cx, cy, w, h) → corners
        a, b, c, d = a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d
    if out_fmt == "xywh":
        a, b, c, d = a, b, c - a, d - b
    elif out_fmt == "cxcywh":
        a, b, c, d = (a + c) / 2, (b + d) / 2, c - a, d - b
    return stack((a, b, c, d), dim=-1)


def box_area(boxes: Tensor) -> Tensor:
    """The areas ``(x2 − x1)·(y2 − y1)`` of ``boxes (Tensor[N, 4])``: a ``Tensor[N]``.

    Matches ``torchvision.ops.box_area`` (float16 boxes give float32 areas; an inverted box a
    negative area).

    Example:
        >>> import lamina
        >>> box_area(lamina.tensor([[0.0, 0.0, 2.0, 3.0], [1.0, 1.0, 2.0, 1.5]]))
        tensor([6.0000, 0.5000])
    """
    boxes = upcast(check_boxes(boxes, "box_area"))
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _pairs(boxes1: Tensor, boxes2: Tensor) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
    """The coordinates ``x1, y1, x2, y2`` of ``boxes1`` as ``[N, 1]`` columns and of ``boxes2`` as
    ``[M]`` rows, which broadcast to the ``[N, M]`` pairs. (One ``[N, M]`` array per coordinate,
    rather than torchvision's ``[N, M, 2]`` corners: the same values, but NumPy's inner loop
    then runs along M instead of over 2 elements.)"""
    return tuple(c[:, None] for c in boxes1.unbind(-1)), boxes2.unbind(-1)


def _inter_union(boxes1: Tensor, boxes2: Tensor) -> tuple[Tensor, Tensor]:
    """The ``[N, M]`` intersection and union areas of every pair."""
    area1, area2 = box_area(boxes1), box_area(boxes2)
    (x1, y1, x2, y2), (u1, v1, u2, v2) = _pairs(boxes1, boxes2)
    # the overlap's width and height; boxes apart have an empty overlap, not a negative one
    w = upcast(minimum(x2, u2) - maximum(x1, u1)).clamp(min=0)
    h = upcast(minimum(y2, v2) - maximum(y1, v1)).clamp(min=0)
    inter = w * h
    return inter, area1[:, None] + area2 - inter


def _enclosing_wh(boxes1: Tensor, boxes2: Tensor) -> tuple[Tensor, Tensor]:
    """Width and height ``[N, M]`` of the smallest box enclosing each pair."""
    (x1, y1, x2, y2), (u1, v1, u2, v2) = _pairs(boxes1, boxes2)
    return (upcast(maximum(x2, u2) - minimum(x1, u1)).clamp(min=0),
            upcast(maximum(y2, v2) - minimum(y1, v1)).clamp(min=0))


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Intersection over union (Jaccard index) of every pair of boxes.

    ``IoU(A, B) = |A ∩ B| / |A ∪ B|``, with ``|A ∪ B| = |A| + |B| − |A ∩ B|``. Matches
    ``torchvision.ops.box_iou``.

    Args:
        boxes1: ``Tensor[N, 4]``, ``(x1, y1, x2, y2)``.
        boxes2: ``Tensor[M, 4]``.

    Returns:
        ``Tensor[N, M]``: ``out[i, j]`` is the IoU of ``boxes1[i]`` and ``boxes2[j]``.

    Example:
        >>> import lamina
        >>> a = lamina.tensor([[0.0, 0.0, 2.0, 2.0]])
        >>> box_iou(a, lamina.tensor([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 1.0]]))
        tensor([[0.1429, 0.5000]])
    """
    boxes1, boxes2 = _check_pair(boxes1, boxes2, "box_iou")
    inter, union = _inter_union(boxes1, boxes2)
    return inter / union


def generalized_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Generalized IoU of every pair: ``IoU − |C \\ (A ∪ B)| / |C|``, ``C`` the smallest box
    enclosing ``A`` and ``B`` (Rezatofighi et al., 2019). In ``[−1, 1]``; below 0 only for
    boxes apart, and then still informative (the farther apart, the lower).

    Matches ``torchvision.ops.generalized_box_iou``. Shapes as :func:`box_iou`.

    Example:
        >>> import lamina
        >>> a = lamina.tensor([[0.0, 0.0, 1.0, 1.0]])
        >>> generalized_box_iou(a, lamina.tensor([[2.0, 0.0, 3.0, 1.0]]))
        tensor([[-0.3333]])
    """
    boxes1, boxes2 = _check_pair(boxes1, boxes2, "generalized_box_iou")
    inter, union = _inter_union(boxes1, boxes2)
    iou = inter / union
    wc, hc = _enclosing_wh(boxes1, boxes2)
    area_c = wc * hc
    return iou - (area_c - union) / area_c


def _diou_iou(boxes1: Tensor, boxes2: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """Distance IoU and IoU ``[N, M]`` of upcast boxes."""
    inter, union = _inter_union(boxes1, boxes2)
    iou = inter / union
    wc, hc = _enclosing_wh(boxes1, boxes2)
    diagonal_sq = wc ** 2 + hc ** 2 + eps
    cx1, cy1 = (boxes1[:, 0] + boxes1[:, 2]) / 2, (boxes1[:, 1] + boxes1[:, 3]) / 2
    cx2, cy2 = (boxes2[:, 0] + boxes2[:, 2]) / 2, (boxes2[:, 1] + boxes2[:, 3]) / 2
    centers_sq = upcast(cx1[:, None] - cx2[None, :]) ** 2 + upcast(cy1[:, None] - cy2[None, :]) ** 2
    return iou - centers_sq / diagonal_sq, iou


def distance_box_iou(boxes1: Tensor, boxes2: Tensor, eps: float = 1e-7) -> Tensor:
    """Distance IoU of every pair: ``IoU − ρ²(centres) / c²``, ``ρ`` the distance between the
    boxes' centres and ``c`` the diagonal of the smallest enclosing box (Zheng et al., 2019).

    Matches ``torchvision.ops.distance_box_iou``. Shapes as :func:`box_iou`.

    Args:
        boxes1: ``Tensor[N, 4]``.
        boxes2: ``Tensor[M, 4]``.
        eps: added to ``c²`` so that two points at one place do not divide by zero.

    Example:
        >>> import lamina
        >>> a = lamina.tensor([[0.0, 0.0, 1.0, 1.0]])
        >>> distance_box_iou(a, lamina.tensor([[2.0, 0.0, 3.0, 1.0]]), eps=0.0)
        tensor([[-0.4000]])
    """
    boxes1, boxes2 = _check_pair(boxes1, boxes2, "distance_box_iou")
    diou, _ = _diou_iou(upcast(boxes1), upcast(boxes2), eps)
    return diou


def complete_box_iou(boxes1: Tensor, boxes2: Tensor, eps: float = 1e-7) -> Tensor:
    """Complete IoU of every pair: the distance IoU less ``α·v``, where
    ``v = (4/π²)·(atan(w₁/h₁) − atan(w₂/h₂))²`` compares the aspect ratios and
    ``α = v / (1 − IoU + v + eps)`` is a weight held constant in the gradient (Zheng et al.).

    Matches ``torchvision.ops.complete_box_iou`` (``α`` computed under no-grad there too).
    Shapes as :func:`box_iou`; a box of zero height has aspect angle ``atan(w/0) = π/2``.

    Example:
        >>> import lamina
        >>> a = lamina.tensor([[0.0, 0.0, 2.0, 2.0]])
        >>> complete_box_iou(a, lamina.tensor([[0.0, 0.0, 2.0, 2.0]]))
        tensor([[1.]])
    """
    boxes1, boxes2 = _check_pair(boxes1, boxes2, "complete_box_iou")
    boxes1, boxes2 = upcast(boxes1), upcast(boxes2)
    diou, iou = _diou_iou(boxes1, boxes2, eps)
    w1, h1 = boxes1[:, None, 2] - boxes1[:, None, 0], boxes1[:, None, 3] - boxes1[:, None, 1]
    w2, h2 = boxes2[:, 2] - boxes2[:, 0], boxes2[:, 3] - boxes2[:, 1]
    v = (4 / math.pi ** 2) * (atan(w1 / h1) - atan(w2 / h2)) ** 2
    alpha = (v / (1 - iou + v + eps)).detach()  # a weight, not a path for the gradient
    return diou - alpha * v


def clip_boxes_to_image(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Clip boxes into an image of ``size = (height, width)``: x into ``[0, width]``, y into
    ``[0, height]``. Matches ``torchvision.ops.clip_boxes_to_image``.

    Args:
        boxes: ``Tensor[..., 4]``, ``(x1, y1, x2, y2)``.
        size: ``(height, width)`` of the image.

    Returns:
        The clipped boxes, same shape; differentiable (the gradient passes where a coordinate
        was inside, bounds included, as torch's ``clamp``).

    Example:
        >>> import lamina
        >>> clip_boxes_to_image(lamina.tensor([[-1.0, 2.0, 7.0, 5.0]]), (4, 6))
        tensor([[0., 2., 6., 4.]])
    """
    boxes = check_boxes(boxes, "clip_boxes_to_image", last_dim_only=True)
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise ValueError(f"clip_boxes_to_image: size should be (height, width), got {size!r}")
    height, width = size
    x1, y1, x2, y2 = boxes.unbind(-1)
    return stack((x1.clamp(0, width), y1.clamp(0, height), x2.clamp(0, width), y2.clamp(0, height)), dim=-1)


def remove_small_boxes(boxes: Tensor, min_size: float) -> Tensor:
    """The indices (int64, ascending) of the boxes whose width and height are both at least
    ``min_size``. Matches ``torchvision.ops.remove_small_boxes``.

    Example:
        >>> import lamina
        >>> remove_small_boxes(lamina.tensor([[0.0, 0.0, 1.0, 5.0], [0.0, 0.0, 3.0, 3.0]]), 2.0)
        tensor([1])
    """
    b = check_boxes(boxes, "remove_small_boxes").array
    keep = ((b[:, 2] - b[:, 0]) >= min_size) & ((b[:, 3] - b[:, 1]) >= min_size)
    return const(xp.nonzero(keep)[0].astype(backend.int64))


def masks_to_boxes(masks: Tensor) -> Tensor:
    """The box around the nonzero pixels of each mask: ``(x_min, y_min, x_max, y_max)`` in pixel
    indices (so a one-pixel mask has ``x1 == x2``). Matches ``torchvision.ops.masks_to_boxes``.

    Args:
        masks: ``Tensor[N, H, W]``; nonzero pixels belong to the object.

    Returns:
        ``Tensor[N, 4]``, float32 (``Tensor[0, 4]`` for ``N = 0``).

    Raises:
        ValueError: a mask has no nonzero pixel (torchvision fails there too, in its ``min`` of an
            empty tensor).

    Example:
        >>> import lamina
        >>> m = lamina.zeros(1, 4, 5)
        >>> m[0, 1:3, 2:5] = 1
        >>> masks_to_boxes(m)
        tensor([[2., 1., 4., 2.]])
    """
    check_tensor(masks, "masks_to_boxes", "masks")
    if masks.ndim != 3:
        raise ValueError(f"masks_to_boxes: masks should be a Tensor[N, H, W], got shape {tuple(masks.shape)}")
    m = masks.array != 0
    n = m.shape[0]
    if n == 0:
        return const(xp.zeros((0, 4), dtype=backend.float32))
    rows, cols = m.any(axis=2), m.any(axis=1)  # [N, H]: some pixel on row y; [N, W]: on column x
    empty = ~rows.any(axis=1)
    if empty.any():
        raise ValueError(f"masks_to_boxes: mask {int(xp.nonzero(empty)[0][0])} of {n} is empty "
                         "(no nonzero pixel, so no box around it)")
    h, w = m.shape[1], m.shape[2]
    x1, y1 = cols.argmax(axis=1), rows.argmax(axis=1)  # the first True
    x2, y2 = w - 1 - cols[:, ::-1].argmax(axis=1), h - 1 - rows[:, ::-1].argmax(axis=1)  # the last True
    return const(xp.stack([x1, y1, x2, y2], axis=1).astype(backend.float32))
