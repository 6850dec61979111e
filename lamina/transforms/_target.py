"""Moving a detection or semantic target with its image: flips, resizes, crops (plain array code).

A target is a detection dict (``boxes`` ``(N, 4)`` xyxy, optional ``masks`` ``(N, H, W)`` and
other per-instance keys) or a semantic map ``(H, W)`` of class indices (a lamina Tensor or a
NumPy array). Functions return a new target of the same kind; the given one is not changed.

Boxes: with ``masks`` in the target, the boxes after a geometric change are the tight boxes of the
moved masks (``masks_to_boxes``: pixel indices, the maximum inclusive), and an instance whose mask
is left empty is dropped; without masks the boxes move as ``torchvision.transforms.v2`` moves them
(continuous coordinates: a flip maps ``x`` to ``W - x``) and one left without area is dropped.
``area`` follows: the mask pixel count with masks, the box area without.
"""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd.tensor import Tensor
from ..ops.boxes import masks_to_boxes

__all__ = ["INSTANCE_KEYS", "IGNORE_INDEX", "is_semantic", "flip_target", "resize_target", "crop_target",
           "target_boxes", "keep_instances"]

xp = backend.xp

INSTANCE_KEYS = ("boxes", "labels", "masks", "area", "iscrowd", "difficult", "scores")
"""The per-instance keys of a detection target: filtered together when instances are dropped."""

IGNORE_INDEX = 255  # semantic maps: pixels padded in by a crop are ignored by losses and metrics


def _arr(v: Any) -> Any:
    return v.array if isinstance(v, Tensor) else xp.asarray(v)


def _like(a: Any, ref: Any) -> Any:
    return Tensor._wrap(xp.ascontiguousarray(a)) if isinstance(ref, Tensor) else xp.ascontiguousarray(a)


def is_semantic(target: Any) -> bool:
    """Whether ``target`` is a semantic map (an array or Tensor ``(H, W)``) rather than a detection dict."""
    return not isinstance(target, dict) and target is not None


def _check(target: Any, op: str) -> None:
    if target is None:
        return
    if is_semantic(target):
        if not (isinstance(target, Tensor) or isinstance(target, xp.ndarray)) or _arr(target).ndim != 2:
            raise TypeError(f"{op}: a semantic target must be an array or Tensor (H, W), got "
                            f"{type(target).__name__} of shape {getattr(target, 'shape', None)}")
        return
    if "boxes" not in target:
        raise ValueError(f"{op}: a detection target needs 'boxes', got keys {sorted(target)}")
    b = _arr(target["boxes"])
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"{op}: target['boxes'] must have shape (N, 4), got {tuple(b.shape)}")


def target_boxes(target: dict[str, Any]) -> Any:
    """The boxes of a detection target as a float64 array ``(N, 4)``."""
    return _arr(target["boxes"]).astype(xp.float64)


def keep_instances(target: dict[str, Any], keep: Any, boxes: Any | None = None, masks: Any | None = None) -> dict:
    """``target`` with the per-instance keys filtered by the boolean ``keep``, and new boxes / masks."""
    out = dict(target)
    for k in INSTANCE_KEYS:
        if k in out and k not in ("boxes", "masks"):
            out[k] = _like(_arr(out[k])[keep], out[k])
    ref = target["boxes"]
    if masks is not None:
        m = masks[keep]
        out["masks"] = _like(m, target["masks"])
        out["boxes"] = _like(_mask_boxes(m), ref)
        if "area" in out:
            out["area"] = _like(m.sum(axis=(1, 2)).astype(backend.float32), target["area"])
    else:
        b = boxes[keep].astype(backend.float32)
        out["boxes"] = _like(b, ref)
        if "area" in out:
            out["area"] = _like(((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).astype(backend.float32), target["area"])
    return out


def _mask_boxes(m: Any) -> Any:
    if len(m) == 0:
        return xp.zeros((0, 4), dtype=backend.float32)
    return masks_to_boxes(Tensor._wrap(m)).array.astype(backend.float32)


def _apply(target: Any, op: str, on_map: Any, on_boxes: Any) -> Any:
    """Move ``target``: ``on_map`` moves (N, H, W) or (H, W) pixel arrays, ``on_boxes`` boxes (N, 4) ->
    (new boxes, keep)."""
    _check(target, op)
    if target is None:
        return None
    if is_semantic(target):
        return _like(on_map(_arr(target)[None], IGNORE_INDEX)[0], target)
    if "masks" in target:
        m = _arr(target["masks"])
        moved = on_map(m, 0)
        keep = moved.reshape(len(moved), moved.shape[-2] * moved.shape[-1]).any(axis=1)
        return keep_instances(target, keep, masks=moved)
    boxes, keep = on_boxes(target_boxes(target))
    return keep_instances(target, keep, boxes=boxes)


def flip_target(target: Any, width: int, op: str = "hflip") -> Any:
    """The target of an image of ``width`` flipped left to right."""
    def on_boxes(b: Any) -> Any:
        return xp.stack([width - b[:, 2], b[:, 1], width - b[:, 0], b[:, 3]], axis=1), xp.ones(len(b), dtype=bool)

    return _apply(target, op, lambda m, fill: m[..., ::-1], on_boxes)


def resize_target(target: Any, size: tuple[int, int], new_size: tuple[int, int], op: str = "resize") -> Any:
    """The target of an image of ``size = (h, w)`` resized to ``new_size``: maps and masks by nearest
    neighbour (torch's ``nearest``: source pixel ``floor(i * h / new_h)``), boxes scaled."""
    (h, w), (nh, nw) = size, new_size

    def on_map(m: Any, fill: int) -> Any:
        ry = xp.minimum(xp.floor(xp.arange(nh) * (h / nh)).astype(xp.int64), h - 1)
        rx = xp.minimum(xp.floor(xp.arange(nw) * (w / nw)).astype(xp.int64), w - 1)
        return m[:, ry[:, None], rx[None, :]]

    def on_boxes(b: Any) -> Any:
        s = xp.asarray([nw / w, nh / h, nw / w, nh / h])
        b = b * s
        return b, (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])

    return _apply(target, op, on_map, on_boxes)


def crop_target(target: Any, top: int, left: int, height: int, width: int, op: str = "crop") -> Any:
    """The target of the ``height x width`` window at ``(top, left)`` (which may reach beyond the image:
    masks are padded with 0, semantic maps with 255); boxes are shifted and clipped to the window."""
    def on_map(m: Any, fill: int) -> Any:
        h, w = m.shape[-2:]
        out = xp.full(m.shape[:-2] + (height, width), fill, dtype=m.dtype)
        y0, x0, y1, x1 = max(top, 0), max(left, 0), min(top + height, h), min(left + width, w)
        if y1 > y0 and x1 > x0:
            out[..., y0 - top:y1 - top, x0 - left:x1 - left] = m[..., y0:y1, x0:x1]
        return out

    def on_boxes(b: Any) -> Any:
        b = b - xp.asarray([left, top, left, top], dtype=xp.float64)
        b[:, 0::2] = xp.clip(b[:, 0::2], 0, width)
        b[:, 1::2] = xp.clip(b[:, 1::2], 0, height)
        return b, (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])

    return _apply(target, op, on_map, on_boxes)
