"""``ImageList``: a batch of images padded to one size, with each image's own size."""

from __future__ import annotations

from typing import Any

from ...autograd.tensor import Tensor

__all__ = ["ImageList"]


class ImageList:
    """Images of different sizes batched into one padded tensor ``(N, C, H, W)``, keeping each
    image's own ``(height, width)`` in ``image_sizes`` (as ``torchvision.models.detection.ImageList``).

    Example:
        >>> import lamina
        >>> il = ImageList(lamina.zeros(2, 3, 64, 80), [(64, 70), (50, 80)])
        >>> il.image_sizes
        [(64, 70), (50, 80)]
    """

    def __init__(self, tensors: Tensor, image_sizes: list[tuple[int, int]]) -> None:
        if not isinstance(tensors, Tensor) or tensors.ndim != 4:
            raise ValueError(f"ImageList: tensors must be a Tensor (N, C, H, W), got "
                             f"{getattr(tensors, 'shape', type(tensors).__name__)}")
        sizes = [(int(h), int(w)) for h, w in image_sizes]
        if len(sizes) != tensors.shape[0]:
            raise ValueError(f"ImageList: {len(sizes)} image sizes for a batch of {tensors.shape[0]}")
        H, W = tensors.shape[-2:]
        for i, (h, w) in enumerate(sizes):
            if not (0 < h <= H and 0 < w <= W):
                raise ValueError(f"ImageList: image {i} has size {(h, w)}, which does not fit the padded "
                                 f"batch of {(H, W)}")
        self.tensors = tensors
        self.image_sizes = sizes

    def to(self, *args: Any, **kwargs: Any) -> ImageList:
        return ImageList(self.tensors.to(*args, **kwargs), self.image_sizes)
