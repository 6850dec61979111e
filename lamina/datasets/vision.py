"""``VisionDataset``: the base of lamina's image data sets (``transform`` / ``target_transform``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import backend
from ..autograd.tensor import Tensor
from ..utils.data import Dataset

__all__ = ["VisionDataset"]

xp = backend.xp


class VisionDataset(Dataset):
    """A map-style data set of ``(image, target)`` pairs, as ``torchvision.datasets.VisionDataset``.

    Subclasses fill ``self.data`` (images as a NumPy array) and ``self.targets`` and define
    :meth:`_image` (the untransformed image of sample ``i``); ``__getitem__`` applies
    ``transform`` to the image and ``target_transform`` to the target.

    Args:
        root: the folder the files are read from (``None`` for generated or packaged data).
        transform: a callable applied to each image (e.g. a ``lamina.transforms.Compose``).
        target_transform: a callable applied to each target.
    """

    classes: list[str] = []

    def __init__(self, root: Any = None, transform: Callable[[Any], Any] | None = None,
                 target_transform: Callable[[Any], Any] | None = None) -> None:
        self.root = root
        self.transform, self.target_transform = transform, target_transform

    def _image(self, index: int) -> Any:
        raise NotImplementedError

    def _target(self, index: int) -> Any:
        return int(self.targets[index])

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"{type(self).__name__}: index {index} out of range for {n} samples")
        img, target = self._image(index), self._target(index)
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.classes)}

    def __repr__(self) -> str:
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {len(self)}"]
        if self.root is not None:
            lines.append(f"    Root location: {self.root}")
        if self.transform is not None:
            lines.append(f"    Transform: {self.transform!r}")
        if self.target_transform is not None:
            lines.append(f"    Target transform: {self.target_transform!r}")
        return "\n".join(lines)


def uint8_chw_to_tensor(img: Any) -> Tensor:
    """A ``(C, H, W)`` (or ``(H, W)``) uint8 array as a float32 Tensor ``(C, H, W)`` in [0, 1]."""
    a = xp.asarray(img)
    if a.ndim == 2:
        a = a[None]
    return Tensor._wrap(a.astype(backend.float32) / 255.0)
