"""``GeneralizedRCNNTransform``: what an R-CNN does to its input images and targets before the
backbone sees them, and to its detections afterwards, as ``torchvision.models.detection.transform``.

Normalize (``(x − mean)/std`` per channel), resize so that the shorter side is ``min_size`` unless
the longer one would pass ``max_size`` (bilinear; masks nearest), pad into one batch whose sides
are multiples of ``size_divisible`` (an :class:`ImageList`), and map the detections back onto the
original images (``postprocess``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ... import backend, nn
from ...autograd.tensor import Tensor
from ...nn import functional as F
from ...ops.common import const
from ...ops.join import stack
from .image_list import ImageList
from .roi_heads import paste_masks_in_image

__all__ = ["GeneralizedRCNNTransform", "resize_boxes"]


def resize_boxes(boxes: Tensor, original_size: Sequence[int], new_size: Sequence[int]) -> Tensor:
    """Scale xyxy ``boxes`` from an image of ``original_size`` ``(h, w)`` to one of ``new_size``
    (the ratios in float32, as torchvision)."""
    ratio_h = float(np.float32(new_size[0]) / np.float32(original_size[0]))
    ratio_w = float(np.float32(new_size[1]) / np.float32(original_size[1]))
    x1, y1, x2, y2 = boxes.unbind(1)
    return stack((x1 * ratio_w, y1 * ratio_h, x2 * ratio_w, y2 * ratio_h), dim=1)


def _resize_image_and_masks(image: Tensor, self_min_size: float, self_max_size: float,
                            target: dict[str, Any] | None,
                            fixed_size: tuple[int, int] | None) -> tuple[Tensor, dict[str, Any] | None]:
    h, w = image.shape[-2:]
    if fixed_size is not None:
        size: Any = [fixed_size[1], fixed_size[0]]
        scale_factor = None
    else:
        # float32 as torchvision (``torch.min(im_shape).to(float32)``), then used as a Python float
        f32 = np.float32
        scale = min(f32(self_min_size) / f32(min(h, w)), f32(self_max_size) / f32(max(h, w)))
        size, scale_factor = None, float(scale)
    image = F.interpolate(image[None], size=size, scale_factor=scale_factor, mode="bilinear",
                          recompute_scale_factor=True if scale_factor is not None else None, align_corners=False)[0]
    if target is not None and "masks" in target:
        m = target["masks"]
        m = const(m.array[:, None].astype(np.float32))
        m = F.interpolate(m, size=size, scale_factor=scale_factor,
                          recompute_scale_factor=True if scale_factor is not None else None)
        target["masks"] = const(m.array[:, 0].astype(np.uint8))
    return image, target


class GeneralizedRCNNTransform(nn.Module):
    """Normalizes, resizes and batches the images (and their targets) of an R-CNN, and maps its
    detections back (``torchvision.models.detection.transform.GeneralizedRCNNTransform``).

    Args:
        min_size: the shorter side after resizing (a tuple: one is drawn per image in training,
            the last is used in eval).
        max_size: the longest the longer side may become.
        image_mean, image_std: per-channel normalization.
        size_divisible: the padded batch's height and width are multiples of it.
        fixed_size: ``(width, height)`` to resize every image to, instead.

    The resized size is ``⌊n · s⌋`` per side with ``s = min(min_size/short, max_size/long)``;
    boxes are scaled by ``new/old`` per axis.

    Example:
        >>> import lamina
        >>> t = GeneralizedRCNNTransform(32, 64, [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], size_divisible=16)
        >>> il, _ = t([lamina.rand(3, 20, 30)])
        >>> il.image_sizes, tuple(il.tensors.shape)
        ([(32, 48)], (1, 3, 32, 48))
    """

    def __init__(self, min_size: int | Sequence[int], max_size: int, image_mean: Sequence[float],
                 image_std: Sequence[float], size_divisible: int = 32,
                 fixed_size: tuple[int, int] | None = None) -> None:
        super().__init__()
        if not isinstance(min_size, (list, tuple)):
            min_size = (min_size,)
        if len(image_mean) != len(image_std):
            raise ValueError(f"GeneralizedRCNNTransform: image_mean has {len(image_mean)} channels but image_std "
                             f"{len(image_std)}")
        self.min_size = tuple(min_size)
        self.max_size = max_size
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        self.size_divisible = size_divisible
        self.fixed_size = fixed_size

    def forward(self, images: Sequence[Tensor], targets: Sequence[dict[str, Any]] | None = None
                ) -> tuple[ImageList, list[dict[str, Any]] | None]:
        images = list(images)
        targets = [dict(t) for t in targets] if targets is not None else None
        for i, image in enumerate(images):
            if not isinstance(image, Tensor) or image.ndim != 3:
                raise ValueError(f"GeneralizedRCNNTransform: images is expected to be a list of 3d tensors of shape "
                                 f"[C, H, W], got {getattr(image, 'shape', type(image).__name__)}")
            image = self.normalize(image)
            image, t = self.resize(image, targets[i] if targets is not None else None)
            images[i] = image
            if targets is not None and t is not None:
                targets[i] = t
        image_sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        return ImageList(self.batch_images(images, self.size_divisible), image_sizes), targets

    def normalize(self, image: Tensor) -> Tensor:
        if image.dtype.kind != "f":
            raise TypeError(f"GeneralizedRCNNTransform: expected input images to be of floating type (in range "
                            f"[0, 1]), but found type {image.dtype} instead")
        if image.shape[0] != len(self.image_mean):
            raise ValueError(f"GeneralizedRCNNTransform: image has {image.shape[0]} channels but image_mean/std "
                             f"have {len(self.image_mean)}")
        mean = const(np.asarray(self.image_mean, dtype=image.dtype)[:, None, None])
        std = const(np.asarray(self.image_std, dtype=image.dtype)[:, None, None])
        return (image - mean) / std

    def torch_choice(self, k: Sequence[int]) -> int:
        """One of ``k``, uniformly, from lamina's global generator."""
        return k[int(backend.generator().uniform(0.0, float(len(k))))]

    def resize(self, image: Tensor, target: dict[str, Any] | None = None) -> tuple[Tensor, dict[str, Any] | None]:
        h, w = image.shape[-2:]
        size = float(self.torch_choice(self.min_size)) if self.training else float(self.min_size[-1])
        image, target = _resize_image_and_masks(image, size, float(self.max_size), target, self.fixed_size)
        if target is None:
            return image, target
        target["boxes"] = resize_boxes(target["boxes"], (h, w), tuple(image.shape[-2:]))
        return image, target

    def batch_images(self, images: Sequence[Tensor], size_divisible: int = 32) -> Tensor:
        """Zero-pad ``images`` at the bottom and right into one ``(N, C, H, W)`` tensor, ``H`` and ``W``
        the largest sides rounded up to multiples of ``size_divisible``."""
        stride = float(size_divisible)
        H = int(math.ceil(max(int(i.shape[1]) for i in images) / stride) * stride)
        W = int(math.ceil(max(int(i.shape[2]) for i in images) / stride) * stride)
        return stack([F.pad(i, (0, W - i.shape[2], 0, H - i.shape[1])) if i.shape[1:] != (H, W) else i
                      for i in images])

    def postprocess(self, result: list[dict[str, Tensor]], image_shapes: Sequence[tuple[int, int]],
                    original_image_sizes: Sequence[tuple[int, int]]) -> list[dict[str, Tensor]]:
        """Boxes (and masks, pasted into the image) of each detection back in its original image."""
        if self.training:
            return result
        for i, (pred, im_s, o_im_s) in enumerate(zip(result, image_shapes, original_image_sizes)):
            boxes = resize_boxes(pred["boxes"], im_s, o_im_s)
            result[i]["boxes"] = boxes
            if "masks" in pred:
                result[i]["masks"] = paste_masks_in_image(pred["masks"], boxes, o_im_s)
        return result

    def extra_repr(self) -> str:
        return (f"Normalize(mean={self.image_mean}, std={self.image_std}), "
                f"Resize(min_size={self.min_size}, max_size={self.max_size}, mode='bilinear')")
