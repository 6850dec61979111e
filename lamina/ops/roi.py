"""RoI pooling: ``roi_align``, ``roi_pool``, ``ps_roi_align``, ``ps_roi_pool`` (torchvision.ops's).

A region of interest (RoI) is a box on the image; these ops cut the matching window out of a
feature map and pool it to a fixed ``output_size`` grid of bins, whatever the box's size, as
Fast/Faster/Mask R-CNN and R-FCN do. Boxes come as ``Tensor[K, 5]`` (``batch index, x1, y1, x2,
y2``) or as a list of ``Tensor[L, 4]``, one per image; ``spatial_scale`` maps image coordinates
onto the map (``1/16`` for a map 16 times smaller).

Every op is linear in its input (RoI Align, both position-sensitive ops), or a gather of chosen
elements (roi_pool), so each has a transposed twin and the two are each other's backward:
gradients of any order flow to the input. Boxes get no gradient, as in torchvision.

The plain loops in :mod:`lamina.ops.kernels.roi_reference` are the readable definition; the
kernels in :mod:`lamina.ops.kernels.roi_align` and :mod:`lamina.ops.kernels.roi_pool` compute the
same for all boxes at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .. import backend
from ..autograd.function import Context, Function
from ..autograd.tensor import Tensor
from .common import check_tensor
from .kernels import roi_align as KA
from .kernels import roi_pool as KP
from .pooling import ntuple

__all__ = ["roi_align", "roi_pool", "ps_roi_align", "ps_roi_pool", "boxes_to_rois"]

xp = backend.xp

_BOXES = "a Tensor[K, 5] (batch index, x1, y1, x2, y2) or a list of Tensor[L, 4] (x1, y1, x2, y2), one per image"


def _check_input(op: str, input: Any) -> None:
    check_tensor(input, op)
    if input.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W), got a {input.ndim}-D tensor of shape "
                         f"{tuple(input.shape)}")
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point input, got {input.dtype}")


def _check_dtype(op: str, input: Tensor, box: Tensor, name: str) -> None:
    if box.dtype != input.dtype:
        raise TypeError(f"{op}: {name} must have the input's dtype ({input.dtype}), got {box.dtype} "
                        "(torchvision requires one dtype too; convert with .to(input.dtype))")


def boxes_to_rois(op: str, input: Tensor, boxes: Any) -> Any:
    """``boxes`` (either form) as a checked array ``(K, 5)`` in the input's dtype.

    Raises a clear error naming ``op`` for a wrong type or shape, another dtype, a coordinate
    or batch index that is NaN or infinite, a batch index that is not a whole number or not an
    image of ``input``. Boxes with ``x2 < x1`` or ``y2 < y1`` are let through: each op treats
    them as torchvision does (see its docstring).
    """
    _check_input(op, input)
    n = input.shape[0]
    if isinstance(boxes, Tensor):
        if boxes.ndim != 2 or boxes.shape[1] != 5:
            raise ValueError(f"{op}: boxes must be {_BOXES}; got a tensor of shape {tuple(boxes.shape)}")
        _check_dtype(op, input, boxes, "boxes")
        rois = xp.array(boxes.array, copy=True)
    elif isinstance(boxes, Sequence) and not isinstance(boxes, str):
        parts = []
        for i, b in enumerate(boxes):
            if not isinstance(b, Tensor):
                raise TypeError(f"{op}: boxes must be {_BOXES}; boxes[{i}] is a {type(b).__name__}")
            if b.ndim != 2 or b.shape[1] != 4:
                raise ValueError(f"{op}: boxes must be {_BOXES}; boxes[{i}] has shape {tuple(b.shape)}")
            _check_dtype(op, input, b, f"boxes[{i}]")
            if i >= n and b.shape[0]:
                raise ValueError(f"{op}: boxes[{i}] holds {b.shape[0]} boxes for image {i}, but the input holds "
                                 f"{n} image{'s' if n != 1 else ''}")
            parts.append(xp.concatenate([xp.full((b.shape[0], 1), i, input.dtype), b.array], 1))
        rois = xp.concatenate(parts) if parts else xp.zeros((0, 5), input.dtype)
    else:
        raise TypeError(f"{op}: boxes must be {_BOXES}; got {type(boxes).__name__}")
    finite = xp.isfinite(rois).all(1)
    if not finite.all():
        k = int(xp.flatnonzero(~finite)[0])
        raise ValueError(f"{op}: box {k} holds NaN or infinity: {rois[k].tolist()}")
    batch = rois[:, 0]
    whole = batch == xp.floor(batch)
    if not whole.all():
        k = int(xp.flatnonzero(~whole)[0])
        raise ValueError(f"{op}: box {k} has batch index {batch[k]}, which is not a whole number")
    inside = (batch >= 0) & (batch < n)
    if not inside.all():
        k = int(xp.flatnonzero(~inside)[0])
        raise ValueError(f"{op}: box {k} has batch index {int(batch[k])}, but the input holds {n} "
                         f"image{'s' if n != 1 else ''} (indices 0 to {n - 1})")
    if len(rois) and (input.shape[2] == 0 or input.shape[3] == 0):
        raise ValueError(f"{op}: the input's maps are empty (shape {tuple(input.shape)}): there is nothing to pool")
    return rois


def _options(op: str, output_size: Any, spatial_scale: Any) -> tuple[tuple[int, int], float]:
    size = ntuple(output_size, 2, "output_size", op)
    if isinstance(spatial_scale, Tensor):
        spatial_scale = spatial_scale.item()
    scale = float(spatial_scale)
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"{op}: spatial_scale must be a positive finite number, got {spatial_scale!r}")
    return size, scale


def _sampling(op: str, sampling_ratio: Any) -> int:
    if isinstance(sampling_ratio, bool) or not isinstance(sampling_ratio, (int, xp.integer)):
        raise TypeError(f"{op}: sampling_ratio must be an int (<= 0 for adaptive), got {sampling_ratio!r}")
    return int(sampling_ratio)


def _ps_channels(op: str, input: Tensor, size: tuple[int, int]) -> None:
    bins = size[0] * size[1]
    if input.shape[1] % bins:
        raise ValueError(f"{op}: the input's channels ({input.shape[1]}) must be a multiple of "
                         f"output_size[0]·output_size[1] = {size[0]}·{size[1]} = {bins}")


# --- RoI Align and its transpose (position-sensitive or not) ---------------------------------

class RoIAlignFunction(Function):
    """``y = A x``: every bin the mean of bilinear samples of ``x``."""

    @staticmethod
    def forward(ctx: Context, x: Any, plan: KA.AlignPlan) -> Any:
        ctx.plan = plan
        return KA.roi_align_forward(x, plan)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        return RoIAlignTranspose.apply(gy, plan=ctx.plan)


class RoIAlignTranspose(Function):
    """``Aᵀ g``: each bin's value sent back to the pixels its samples read, with their weights."""

    @staticmethod
    def forward(ctx: Context, g: Any, plan: KA.AlignPlan) -> Any:
        ctx.plan = plan
        return KA.roi_align_backward(g, plan)

    @staticmethod
    def backward(ctx: Context, gg: Tensor) -> Tensor:
        return RoIAlignFunction.apply(gg, plan=ctx.plan)


def roi_align(input: Tensor, boxes: Any, output_size: Any, spatial_scale: float = 1.0, sampling_ratio: int = -1,
              aligned: bool = False) -> Tensor:
    """RoI Align (Mask R-CNN): each box cut into ``output_size`` bins, each bin the mean of a grid
    of bilinear samples of the map — no rounding of the box anywhere (``torchvision.ops.roi_align``).

    Readable definition: :func:`lamina.ops.kernels.roi_reference.roi_align_reference`.

    Args:
        input: the feature maps ``(N, C, H, W)``.
        boxes: ``Tensor[K, 5]`` (batch index, x1, y1, x2, y2) or a list of ``Tensor[L, 4]``,
            one per image, in image coordinates and in the input's dtype.
        output_size: bins ``(h, w)`` (or one int for both).
        spatial_scale: factor from image to map coordinates (``0.5`` for a map half the image).
        sampling_ratio: samples per bin along each axis; ``<= 0``: adaptive,
            ``ceil(roi_height / output_h)`` (and likewise for the width), about one per pixel.
        aligned: shift the box by −0.5 pixel so that a pixel's centre sits at its integer
            coordinate (Detectron2's choice). ``False``: the legacy rule, and a box is at least
            1×1 pixel.

    Shape:
        ``(N, C, H, W)`` → ``(K, C, output_h, output_w)``.

    Returns:
        The pooled boxes. A sample more than one pixel outside the map reads 0, one between −1
        and 0 reads the border. Boxes with ``x2 < x1`` are allowed and behave as in torchvision
        (not aligned: 1 pixel wide; aligned: sampled backwards, or nothing — 0 — with an
        adaptive grid). Differentiable in ``input`` to any order, not in ``boxes``.

    Example:
        >>> import lamina
        >>> from lamina.vision.ops import roi_align
        >>> x = lamina.arange(16.0).reshape(1, 1, 4, 4)
        >>> box = lamina.tensor([[0.0, 0.0, 0.0, 2.0, 2.0]])  # image 0, (x1, y1, x2, y2)
        >>> roi_align(x, box, output_size=1, aligned=True).tolist()  # mean of x[0:2, 0:2]
        [[[[2.5]]]]
    """
    op = "roi_align"
    rois = boxes_to_rois(op, input, boxes)
    size, scale = _options(op, output_size, spatial_scale)
    plan = KA.align_plan(rois, tuple(input.shape), size, scale, _sampling(op, sampling_ratio), bool(aligned))
    return RoIAlignFunction.apply(input, plan=plan)


def ps_roi_align(input: Tensor, boxes: Any, output_size: Any, spatial_scale: float = 1.0,
                 sampling_ratio: int = -1) -> Tensor:
    """Position-sensitive RoI Align (R-FCN, ``torchvision.ops.ps_roi_align``): RoI Align with
    ``aligned=True``, but bin ``(i, j)`` of output channel ``c`` reads input channel
    ``c·h·w + i·w + j`` (for ``output_size = (h, w)``): every bin position has its own group of
    channels, so the output has ``C / (h·w)`` channels.

    Readable definition: :func:`lamina.ops.kernels.roi_reference.ps_roi_align_reference`.

    Args:
        input: ``(N, C, H, W)``, ``C`` a multiple of ``h·w``.
        boxes, output_size, spatial_scale, sampling_ratio: as :func:`roi_align`.

    Shape:
        ``(N, C, H, W)`` → ``(K, C / (h·w), h, w)``.

    Returns:
        The pooled boxes. One difference from torchvision: a bin with no samples (an empty box
        with ``sampling_ratio <= 0``) is 0, where torchvision divides 0 by 0 (NaN).

    Example:
        >>> import lamina
        >>> from lamina.vision.ops import ps_roi_align
        >>> x = lamina.ones(1, 8, 6, 6)
        >>> ps_roi_align(x, [lamina.tensor([[1.0, 1.0, 5.0, 5.0]])], output_size=2).shape
        (1, 2, 2, 2)
    """
    op = "ps_roi_align"
    rois = boxes_to_rois(op, input, boxes)
    size, scale = _options(op, output_size, spatial_scale)
    _ps_channels(op, input, size)
    plan = KA.align_plan(rois, tuple(input.shape), size, scale, _sampling(op, sampling_ratio), True, ps=True)
    return RoIAlignFunction.apply(input, plan=plan)


# --- RoI max pooling: a gather of the chosen elements ------------------------------------------

class RoIPoolFunction(Function):
    """The maximum of every bin; remembers which element won."""

    @staticmethod
    def forward(ctx: Context, x: Any, bins: KP.PoolBins) -> Any:
        y, ctx.arg = KP.roi_pool_forward(x, bins)
        ctx.bins = bins
        return y

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        return RoIPoolScatter.apply(gy, arg=ctx.arg, bins=ctx.bins)


class RoIPoolScatter(Function):
    """Each bin's value added to the element it chose (zeros elsewhere)."""

    @staticmethod
    def forward(ctx: Context, g: Any, arg: Any, bins: KP.PoolBins) -> Any:
        ctx.arg, ctx.bins = arg, bins
        return KP.roi_pool_scatter(g, arg, bins.batch, bins.input_shape)

    @staticmethod
    def backward(ctx: Context, gg: Tensor) -> Tensor:
        return RoIPoolGather.apply(gg, arg=ctx.arg, bins=ctx.bins)


class RoIPoolGather(Function):
    """Every bin reads the element it chose."""

    @staticmethod
    def forward(ctx: Context, x: Any, arg: Any, bins: KP.PoolBins) -> Any:
        ctx.arg, ctx.bins = arg, bins
        return KP.roi_pool_gather(x, arg, bins.batch)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        return RoIPoolScatter.apply(g, arg=ctx.arg, bins=ctx.bins)


def roi_pool(input: Tensor, boxes: Any, output_size: Any, spatial_scale: float = 1.0) -> Tensor:
    """RoI max pooling (Fast R-CNN, ``torchvision.ops.roi_pool``): the box rounded to whole pixels
    (both ends included), cut into ``output_size`` bins of whole pixels, the maximum of each.

    Readable definition: :func:`lamina.ops.kernels.roi_reference.roi_pool_reference`.

    Args:
        input: ``(N, C, H, W)``.
        boxes, output_size, spatial_scale: as :func:`roi_align`.

    Shape:
        ``(N, C, H, W)`` → ``(K, C, output_h, output_w)``.

    Returns:
        The pooled boxes. As torchvision: coordinates are rounded half away from zero; a box is
        at least 1×1 pixel; a bin wholly outside the map is 0; ties go to the first element in
        row-major order; NaN is never chosen. The gradient goes to the chosen element.

    Example:
        >>> import lamina
        >>> from lamina.vision.ops import roi_pool
        >>> x = lamina.arange(16.0).reshape(1, 1, 4, 4)
        >>> roi_pool(x, lamina.tensor([[0.0, 0.0, 0.0, 3.0, 3.0]]), output_size=2).tolist()
        [[[[5.0, 7.0], [13.0, 15.0]]]]
    """
    op = "roi_pool"
    rois = boxes_to_rois(op, input, boxes)
    size, scale = _options(op, output_size, spatial_scale)
    bins = KP.pool_bins(rois, tuple(input.shape), size, scale, True, (input.shape[2], input.shape[3]))
    return RoIPoolFunction.apply(input, bins=bins)


# --- position-sensitive RoI average pooling and its transpose ----------------------------------

class PSRoIPoolFunction(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, bins: KP.PoolBins, output_size: tuple[int, int]) -> Any:
        ctx.bins, ctx.size = bins, output_size
        return KP.ps_roi_pool_forward(x, bins, output_size)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        return PSRoIPoolTranspose.apply(gy, bins=ctx.bins, output_size=ctx.size)


class PSRoIPoolTranspose(Function):
    @staticmethod
    def forward(ctx: Context, g: Any, bins: KP.PoolBins, output_size: tuple[int, int]) -> Any:
        ctx.bins, ctx.size = bins, output_size
        return KP.ps_roi_pool_transpose(g, bins, output_size)

    @staticmethod
    def backward(ctx: Context, gg: Tensor) -> Tensor:
        return PSRoIPoolFunction.apply(gg, bins=ctx.bins, output_size=ctx.size)


def ps_roi_pool(input: Tensor, boxes: Any, output_size: Any, spatial_scale: float = 1.0) -> Tensor:
    """Position-sensitive RoI average pooling (R-FCN, ``torchvision.ops.ps_roi_pool``): bins of
    whole pixels as :func:`roi_pool` (the box holds one of its end pixels, not both), bin
    ``(i, j)`` of output channel ``c`` the mean of input channel ``c·h·w + i·w + j``.

    Readable definition: :func:`lamina.ops.kernels.roi_reference.ps_roi_pool_reference`.

    Args:
        input: ``(N, C, H, W)``, ``C`` a multiple of ``h·w``.
        boxes, output_size, spatial_scale: as :func:`roi_align`.

    Shape:
        ``(N, C, H, W)`` → ``(K, C / (h·w), h, w)``.

    Returns:
        The pooled boxes. As torchvision's forward, bins are clipped to rows ``0 … H − 2`` and
        columns ``0 … W − 2``: the map's last row and column are never pooled. torchvision's
        backward clips to ``H − 1`` instead, so it is not the gradient of its forward for boxes
        that reach the last row or column; here the backward is the exact gradient.

    Example:
        >>> import lamina
        >>> from lamina.vision.ops import ps_roi_pool
        >>> x = lamina.ones(1, 4, 5, 5)
        >>> ps_roi_pool(x, lamina.tensor([[0.0, 0.0, 0.0, 4.0, 4.0]]), output_size=2).tolist()
        [[[[1.0, 1.0], [1.0, 1.0]]]]
    """
    op = "ps_roi_pool"
    rois = boxes_to_rois(op, input, boxes)
    size, scale = _options(op, output_size, spatial_scale)
    _ps_channels(op, input, size)
    bins = KP.pool_bins(rois, tuple(input.shape), size, scale, False, (input.shape[2] - 1, input.shape[3] - 1))
    return PSRoIPoolFunction.apply(input, bins=bins, output_size=size)
