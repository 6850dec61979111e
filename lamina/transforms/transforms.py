"""Transform classes with torchvision's names: composition, conversion, crops, flips, resizing.

Random transforms take ``generator=`` (a ``numpy.random.Generator``) and otherwise draw from
lamina's global generator (``lamina.manual_seed``), so pipelines are reproducible. A batch
``(N, C, H, W)`` gets one draw of the random parameters for all its images, as in torchvision.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from .. import backend
from ..autograd.tensor import Tensor
from . import functional as F
from ._image import is_pil, rng, size_of, unpack

__all__ = ["Transform", "Compose", "ToTensor", "Normalize", "Resize", "CenterCrop", "Pad", "RandomCrop",
           "RandomResizedCrop", "RandomHorizontalFlip", "RandomVerticalFlip", "Lambda", "RandomApply",
           "RandomChoice", "RandomOrder", "Grayscale", "RandomGrayscale"]

xp = backend.xp


class Transform:
    """Base class: a callable on one image (or batch), with a readable ``repr``."""

    def __call__(self, img: Any) -> Any:
        raise NotImplementedError

    def _args(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._args()})"


class Compose(Transform):
    """Apply ``transforms`` one after the other.

    Example:
        >>> import numpy as np
        >>> t = Compose([ToTensor(), Normalize([0.5], [0.5])])
        >>> t(np.full((2, 2), 255, dtype=np.uint8)).tolist()
        [[[1.0, 1.0], [1.0, 1.0]]]
    """

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, img: Any) -> Any:
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"Compose({inner}\n)"


class ToTensor(Transform):
    """A PIL image or NumPy ``(H, W[, C])`` array → a lamina Tensor ``(C, H, W)``.

    uint8 images are scaled from [0, 255] to float32 [0, 1]; float arrays keep their values (as
    torchvision). A lamina Tensor passes through unchanged (lamina's data sets already give
    ``(C, H, W)`` float Tensors).

    Example:
        >>> import numpy as np
        >>> ToTensor()(np.array([[[0, 255, 51]]], dtype=np.uint8)).tolist()
        [[[0.0]], [[1.0]], [[0.20000000298023224]]]
    """

    def __call__(self, pic: Any) -> Tensor:
        if isinstance(pic, Tensor):
            return pic
        if is_pil(pic):
            pic = xp.asarray(pic)
        if not isinstance(pic, xp.ndarray):
            raise TypeError(f"ToTensor: pic should be a PIL image or a NumPy array, got {type(pic).__name__}")
        if pic.ndim not in (2, 3):
            raise ValueError(f"ToTensor: pic should be 2 or 3 dimensional (H, W[, C]), got {pic.ndim} dimensions")
        a = pic[:, :, None] if pic.ndim == 2 else pic
        a = xp.ascontiguousarray(a.transpose(2, 0, 1))
        if a.dtype == xp.uint8:
            return Tensor._wrap(a.astype(backend.float32) / 255.0)
        if a.dtype.kind == "b":
            return Tensor._wrap(a.astype(backend.float32))
        return Tensor._wrap(a)


class Normalize(Transform):
    """``(img - mean[c]) / std[c]`` per channel (a float image).

    Example:
        >>> import lamina
        >>> Normalize([1.0, 2.0], [2.0, 4.0])(lamina.ones(2, 1, 1)).flatten().tolist()
        [0.0, -0.25]
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], inplace: bool = False) -> None:
        self.mean, self.std, self.inplace = [float(m) for m in mean], [float(s) for s in std], inplace

    def __call__(self, img: Any) -> Any:
        return F.normalize(img, self.mean, self.std, self.inplace)

    def _args(self) -> str:
        return f"mean={self.mean}, std={self.std}"


class Resize(Transform):
    """Resize to ``size`` (``(h, w)``, or an int for the smaller edge); see :func:`functional.resize`."""

    def __init__(self, size: Any, interpolation: Any = F.InterpolationMode.BILINEAR, max_size: int | None = None,
                 antialias: bool = True) -> None:
        self.size, self.interpolation, self.max_size, self.antialias = size, interpolation, max_size, antialias
        F._mode(interpolation, "Resize")

    def __call__(self, img: Any) -> Any:
        return F.resize(img, self.size, self.interpolation, self.max_size, self.antialias)

    def _args(self) -> str:
        return f"size={self.size}, interpolation={F._mode(self.interpolation, 'Resize')}, antialias={self.antialias}"


class CenterCrop(Transform):
    """The central ``size`` window (zero-padded if the image is smaller)."""

    def __init__(self, size: Any) -> None:
        self.size = F._pair(size, "CenterCrop")

    def __call__(self, img: Any) -> Any:
        return F.center_crop(img, self.size)

    def _args(self) -> str:
        return f"size={self.size}"


class Pad(Transform):
    """Pad the borders (see :func:`functional.pad`)."""

    def __init__(self, padding: Any, fill: Any = 0, padding_mode: str = "constant") -> None:
        F._padding4(padding, "Pad")
        self.padding, self.fill, self.padding_mode = padding, fill, padding_mode

    def __call__(self, img: Any) -> Any:
        return F.pad(img, self.padding, self.fill, self.padding_mode)


class RandomCrop(Transform):
    """A random ``size`` window, after optional ``padding`` (``padding_mode`` constant/edge/reflect/symmetric);
    ``pad_if_needed`` pads images smaller than ``size``.

    The window's top-left corner is drawn uniformly: ``i ∈ [0, H - h]``, ``j ∈ [0, W - w]``.
    """

    def __init__(self, size: Any, padding: Any = None, pad_if_needed: bool = False, fill: Any = 0,
                 padding_mode: str = "constant", generator: Any = None) -> None:
        self.size = F._pair(size, "RandomCrop")
        self.padding, self.pad_if_needed, self.fill, self.padding_mode = padding, pad_if_needed, fill, padding_mode
        self.generator = generator

    def get_params(self, img: Any) -> tuple[int, int, int, int]:
        h, w = size_of(img, "RandomCrop")
        th, tw = self.size
        if h < th or w < tw:
            raise ValueError(f"RandomCrop: required crop size {(th, tw)} is larger than input image size {(h, w)}")
        if (h, w) == (th, tw):
            return 0, 0, h, w
        g = rng(self.generator)
        return int(g.integers(0, h - th + 1)), int(g.integers(0, w - tw + 1)), th, tw

    def __call__(self, img: Any) -> Any:
        if self.padding is not None:
            img = F.pad(img, self.padding, self.fill, self.padding_mode)
        h, w = size_of(img, "RandomCrop")
        th, tw = self.size
        if self.pad_if_needed and w < tw:
            img = F.pad(img, [tw - w, 0], self.fill, self.padding_mode)
        if self.pad_if_needed and h < th:
            img = F.pad(img, [0, th - h], self.fill, self.padding_mode)
        return F.crop(img, *self.get_params(img))

    def _args(self) -> str:
        return f"size={self.size}, padding={self.padding}"


class RandomResizedCrop(Transform):
    """A random window of random area share (``scale``) and aspect ratio (``ratio``), resized to ``size``
    (torchvision's ``get_params``: ten tries, then a central crop)."""

    def __init__(self, size: Any, scale: tuple[float, float] = (0.08, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3),
                 interpolation: Any = F.InterpolationMode.BILINEAR, antialias: bool = True,
                 generator: Any = None) -> None:
        self.size = F._pair(size, "RandomResizedCrop")
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            raise ValueError(f"RandomResizedCrop: scale and ratio should be of kind (min, max), got {scale}, {ratio}")
        self.scale, self.ratio, self.interpolation, self.antialias = scale, ratio, interpolation, antialias
        self.generator = generator

    def get_params(self, img: Any) -> tuple[int, int, int, int]:
        height, width = size_of(img, "RandomResizedCrop")
        area, g = height * width, rng(self.generator)
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target_area = area * g.uniform(self.scale[0], self.scale[1])
            aspect = math.exp(g.uniform(*log_ratio))
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                return int(g.integers(0, height - h + 1)), int(g.integers(0, width - w + 1)), h, w
        in_ratio = width / height
        if in_ratio < min(self.ratio):
            w, h = width, int(round(width / min(self.ratio)))
        elif in_ratio > max(self.ratio):
            h, w = height, int(round(height * max(self.ratio)))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, img: Any) -> Any:
        i, j, h, w = self.get_params(img)
        return F.resized_crop(img, i, j, h, w, self.size, self.interpolation, self.antialias)


class _RandomFlip(Transform):
    def __init__(self, p: float = 0.5, generator: Any = None) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p should be a probability in [0, 1], got {p}")
        self.p, self.generator = p, generator

    def _args(self) -> str:
        return f"p={self.p}"


class RandomHorizontalFlip(_RandomFlip):
    """Flip left–right with probability ``p``."""

    def __call__(self, img: Any) -> Any:
        return F.hflip(img) if rng(self.generator).random() < self.p else img


class RandomVerticalFlip(_RandomFlip):
    """Flip top–bottom with probability ``p``."""

    def __call__(self, img: Any) -> Any:
        return F.vflip(img) if rng(self.generator).random() < self.p else img


class Lambda(Transform):
    """A user function as a transform."""

    def __init__(self, lambd: Callable[[Any], Any]) -> None:
        if not callable(lambd):
            raise TypeError(f"Lambda: argument should be callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, img: Any) -> Any:
        return self.lambd(img)


class RandomApply(Transform):
    """Apply all of ``transforms`` with probability ``p``."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]], p: float = 0.5, generator: Any = None) -> None:
        self.transforms, self.p, self.generator = list(transforms), p, generator

    def __call__(self, img: Any) -> Any:
        if rng(self.generator).random() >= self.p:
            return img
        for t in self.transforms:
            img = t(img)
        return img


class RandomChoice(Transform):
    """Apply one of ``transforms``, chosen with probabilities ``p`` (default uniform)."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]], p: Sequence[float] | None = None,
                 generator: Any = None) -> None:
        self.transforms, self.generator = list(transforms), generator
        self.p = None if p is None else xp.asarray(p, dtype=xp.float64) / float(sum(p))

    def __call__(self, img: Any) -> Any:
        k = int(rng(self.generator).choice(len(self.transforms), p=self.p))
        return self.transforms[k](img)


class RandomOrder(Transform):
    """Apply ``transforms`` in a random order."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]], generator: Any = None) -> None:
        self.transforms, self.generator = list(transforms), generator

    def __call__(self, img: Any) -> Any:
        for k in rng(self.generator).permutation(len(self.transforms)):
            img = self.transforms[int(k)](img)
        return img


class Grayscale(Transform):
    """Luma ``0.2989 R + 0.587 G + 0.114 B`` in ``num_output_channels`` (1 or 3) channels.

    Example:
        >>> import lamina
        >>> round(Grayscale()(lamina.tensor([[[1.0]], [[0.0]], [[0.0]]])).item(), 4)
        0.2989
    """

    def __init__(self, num_output_channels: int = 1) -> None:
        self.num_output_channels = num_output_channels

    def __call__(self, img: Any) -> Any:
        return F.rgb_to_grayscale(img, self.num_output_channels)


class RandomGrayscale(Transform):
    """Grayscale (keeping the channel count) with probability ``p``."""

    def __init__(self, p: float = 0.1, generator: Any = None) -> None:
        self.p, self.generator = p, generator

    def __call__(self, img: Any) -> Any:
        if rng(self.generator).random() >= self.p:
            return img
        c = 1 if is_pil(img) and img.mode == "L" else unpack(img, "RandomGrayscale")[0].shape[-3]
        return F.rgb_to_grayscale(img, 3 if c == 3 else 1)
