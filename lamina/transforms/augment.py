"""Random augmentations: geometric distortion (rotation, affine), colour casting (ColorJitter),
erasing and blur, with torchvision's names, parameters and parameter draws.

Each takes ``generator=`` (a ``numpy.random.Generator``), otherwise drawing from lamina's global
generator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .. import backend
from . import functional as F
from ._image import repack, rng, size_of, unpack
from .transforms import Transform

__all__ = ["RandomRotation", "RandomAffine", "ColorJitter", "RandomErasing", "GaussianBlur"]

xp = backend.xp


def _range(value: Any, name: str, op: str, center: float = 0.0, bound: tuple[float, float] | None = None,
           clip_first: bool = False) -> tuple[float, float] | None:
    """``value`` → an interval: a number ``v`` gives ``[center - v, center + v]``, a pair is kept."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"{op}: if {name} is a single number, it must be non-negative, got {value}")
        lo, hi = center - float(value), center + float(value)
        if clip_first:
            lo = max(lo, 0.0)
    elif isinstance(value, Sequence) and len(value) == 2:
        lo, hi = float(value[0]), float(value[1])
    else:
        raise ValueError(f"{op}: {name} should be a single number or a sequence of length 2, got {value!r}")
    if lo > hi or (bound is not None and not bound[0] <= lo <= hi <= bound[1]):
        raise ValueError(f"{op}: {name} values should be ordered and within {bound}, got {(lo, hi)}")
    return lo, hi


class RandomRotation(Transform):
    """Rotate by an angle drawn uniformly from ``degrees`` (a number ``d``: ``[-d, d]``), counter-clockwise.

    Args:
        degrees: the angle range in degrees.
        interpolation: ``'nearest'`` (default) or ``'bilinear'``.
        expand: enlarge the output to hold the whole rotated image.
        center: the rotation centre ``(x, y)`` in pixels (default the image centre).
        fill: the value of pixels from outside the image.
        generator: a ``numpy.random.Generator``.
    """

    def __init__(self, degrees: Any, interpolation: Any = F.InterpolationMode.NEAREST, expand: bool = False,
                 center: Any = None, fill: Any = 0, generator: Any = None) -> None:
        self.degrees = _range(degrees, "degrees", "RandomRotation")
        F._mode(interpolation, "RandomRotation")
        self.interpolation, self.expand, self.center, self.fill = interpolation, expand, center, fill
        self.generator = generator

    def get_params(self) -> float:
        return float(rng(self.generator).uniform(*self.degrees))

    def __call__(self, img: Any) -> Any:
        return F.rotate(img, self.get_params(), self.interpolation, self.expand, self.center, self.fill)

    def _args(self) -> str:
        return f"degrees={self.degrees}"


class RandomAffine(Transform):
    """A random affine map: rotation, translation, scale and shear (the lectures' geometric distortion).

    Args:
        degrees: rotation range (a number ``d``: ``[-d, d]``); clockwise, as torchvision's ``RandomAffine``.
        translate: ``(a, b)``: horizontal shift drawn in ``[-a W, a W]``, vertical in ``[-b H, b H]``
            (rounded to whole pixels).
        scale: ``(lo, hi)`` scale range.
        shear: a number ``s`` (x shear in ``[-s, s]``), a pair (x range) or four values (x and y ranges).
        interpolation: ``'nearest'`` (default) or ``'bilinear'``.
        fill: the value of pixels from outside the image.
        center: the centre ``(x, y)`` in pixels (default the image centre).
        generator: a ``numpy.random.Generator``.
    """

    def __init__(self, degrees: Any, translate: Sequence[float] | None = None, scale: Sequence[float] | None = None,
                 shear: Any = None, interpolation: Any = F.InterpolationMode.NEAREST, fill: Any = 0,
                 center: Any = None, generator: Any = None) -> None:
        self.degrees = _range(degrees, "degrees", "RandomAffine")
        if translate is not None and (len(translate) != 2 or not all(0.0 <= t <= 1.0 for t in translate)):
            raise ValueError(f"RandomAffine: translate should be two fractions in [0, 1], got {translate!r}")
        if scale is not None and (len(scale) != 2 or not 0 < scale[0] <= scale[1]):
            raise ValueError(f"RandomAffine: scale should be an ordered pair of positive values, got {scale!r}")
        if shear is None:
            self.shear = None
        elif isinstance(shear, (int, float)) or len(shear) == 2:
            self.shear = list(_range(shear, "shear", "RandomAffine"))  # type: ignore[arg-type]
        elif len(shear) == 4:
            self.shear = [float(s) for s in shear]
        else:
            raise ValueError(f"RandomAffine: shear should be a number or a sequence of 2 or 4 numbers, got {shear!r}")
        F._mode(interpolation, "RandomAffine")
        self.translate, self.scale, self.interpolation = translate, scale, interpolation
        self.fill, self.center, self.generator = fill, center, generator

    def get_params(self, img_size: Sequence[int]) -> tuple[float, tuple[int, int], float, tuple[float, float]]:
        """``(angle, (tx, ty), scale, (shear_x, shear_y))`` for an image of ``img_size = (width, height)``."""
        g = rng(self.generator)
        angle = float(g.uniform(*self.degrees))
        tx = ty = 0
        if self.translate is not None:
            max_dx, max_dy = float(self.translate[0] * img_size[0]), float(self.translate[1] * img_size[1])
            tx, ty = int(round(g.uniform(-max_dx, max_dx))), int(round(g.uniform(-max_dy, max_dy)))
        scale = float(g.uniform(*self.scale)) if self.scale is not None else 1.0
        sx = sy = 0.0
        if self.shear is not None:
            sx = float(g.uniform(self.shear[0], self.shear[1]))
            if len(self.shear) == 4:
                sy = float(g.uniform(self.shear[2], self.shear[3]))
        return angle, (tx, ty), scale, (sx, sy)

    def __call__(self, img: Any) -> Any:
        h, w = size_of(img, "RandomAffine")
        angle, translate, scale, shear = self.get_params((w, h))
        return F.affine(img, angle, translate, scale, shear, self.interpolation, self.fill, self.center)


class ColorJitter(Transform):
    """Random brightness, contrast, saturation and hue changes, applied in a random order (colour casting).

    Args:
        brightness: a number ``b`` draws the factor from ``[max(0, 1 - b), 1 + b]``; a pair is the range.
        contrast: likewise.
        saturation: likewise.
        hue: a number ``h`` in [0, 0.5] draws the shift from ``[-h, h]`` (in turns of the colour wheel).
        generator: a ``numpy.random.Generator``.
    """

    def __init__(self, brightness: Any = 0, contrast: Any = 0, saturation: Any = 0, hue: Any = 0,
                 generator: Any = None) -> None:
        inf = (0.0, float("inf"))
        self.brightness = self._check(brightness, "brightness", 1.0, inf, True)
        self.contrast = self._check(contrast, "contrast", 1.0, inf, True)
        self.saturation = self._check(saturation, "saturation", 1.0, inf, True)
        self.hue = self._check(hue, "hue", 0.0, (-0.5, 0.5), False)
        self.generator = generator

    @staticmethod
    def _check(value: Any, name: str, center: float, bound: tuple[float, float], clip: bool) -> Any:
        r = _range(value, name, "ColorJitter", center, bound, clip)
        return None if r is None or r == (center, center) else r

    def get_params(self) -> tuple[Any, ...]:
        """``(order, brightness, contrast, saturation, hue)`` — a permutation of 0..3 and the factors (None: off)."""
        g = rng(self.generator)
        order = g.permutation(4)
        b = None if self.brightness is None else float(g.uniform(*self.brightness))
        c = None if self.contrast is None else float(g.uniform(*self.contrast))
        s = None if self.saturation is None else float(g.uniform(*self.saturation))
        h = None if self.hue is None else float(g.uniform(*self.hue))
        return order, b, c, s, h

    def __call__(self, img: Any) -> Any:
        order, b, c, s, h = self.get_params()
        for k in order:
            if k == 0 and b is not None:
                img = F.adjust_brightness(img, b)
            elif k == 1 and c is not None:
                img = F.adjust_contrast(img, c)
            elif k == 2 and s is not None:
                img = F.adjust_saturation(img, s)
            elif k == 3 and h is not None:
                img = F.adjust_hue(img, h)
        return img

    def _args(self) -> str:
        return f"brightness={self.brightness}, contrast={self.contrast}, saturation={self.saturation}, hue={self.hue}"


class RandomErasing(Transform):
    """With probability ``p``, erase a random rectangle (area share in ``scale``, aspect ratio in ``ratio``).

    Args:
        p: the probability of erasing.
        scale: the range of the erased area relative to the image.
        ratio: the range of the rectangle's aspect ratio (drawn log-uniformly).
        value: the fill: a number, per-channel values, or ``'random'`` (standard normal noise).
        inplace: modify a Tensor input in place.
        generator: a ``numpy.random.Generator``.
    """

    def __init__(self, p: float = 0.5, scale: tuple[float, float] = (0.02, 0.33),
                 ratio: tuple[float, float] = (0.3, 3.3), value: Any = 0, inplace: bool = False,
                 generator: Any = None) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomErasing: p should be between 0 and 1, got {p}")
        if scale[0] > scale[1] or ratio[0] > ratio[1] or scale[0] < 0 or scale[1] > 1:
            raise ValueError(f"RandomErasing: scale should lie in [0, 1] and scale, ratio be (min, max), got "
                             f"{scale}, {ratio}")
        if isinstance(value, str) and value != "random":
            raise ValueError(f"RandomErasing: value should be a number, a sequence or 'random', got {value!r}")
        self.p, self.scale, self.ratio, self.value, self.inplace = p, scale, ratio, value, inplace
        self.generator = generator

    def get_params(self, shape: Sequence[int], g: Any) -> tuple[int, int, int, int, Any]:
        c, h, w = shape[-3:]
        area = h * w
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            erase_area = area * g.uniform(self.scale[0], self.scale[1])
            aspect = math.exp(g.uniform(*log_ratio))
            eh, ew = int(round(math.sqrt(erase_area * aspect))), int(round(math.sqrt(erase_area / aspect)))
            if not (eh < h and ew < w):
                continue
            if self.value == "random":
                v = g.standard_normal((c, eh, ew))
            else:
                v = xp.asarray(self.value, dtype=xp.float64).reshape(-1, 1, 1)
                if v.shape[0] not in (1, c):
                    raise ValueError(f"RandomErasing: value has {v.shape[0]} entries for an image of {c} channels")
            i, j = int(g.integers(0, h - eh + 1)), int(g.integers(0, w - ew + 1))
            return i, j, eh, ew, v
        return 0, 0, h, w, None  # no fitting rectangle: leave the image unchanged

    def __call__(self, img: Any) -> Any:
        g = rng(self.generator)
        if g.random() >= self.p:
            return img
        a, info = unpack(img, "RandomErasing")
        i, j, h, w, v = self.get_params(a.shape, g)
        if v is None:
            return img
        if self.inplace:
            return F.erase(img, i, j, h, w, v, inplace=True)
        out = a.copy()
        out[..., i:i + h, j:j + w] = v
        return repack(out, info)


class GaussianBlur(Transform):
    """Blur with a Gaussian kernel of ``kernel_size`` and a sigma drawn uniformly from ``sigma``
    (a number: fixed; a pair: the range), the same sigma along both axes, as torchvision."""

    def __init__(self, kernel_size: Any, sigma: Any = (0.1, 2.0), generator: Any = None) -> None:
        ks = [kernel_size] * 2 if isinstance(kernel_size, int) else list(kernel_size)
        if len(ks) != 2 or any(k <= 0 or k % 2 == 0 for k in ks):
            raise ValueError(f"GaussianBlur: kernel size should be a tuple/list of two odd and positive integers, "
                             f"got {kernel_size!r}")
        if isinstance(sigma, (int, float)):
            if sigma <= 0:
                raise ValueError(f"GaussianBlur: if sigma is a single number, it must be positive, got {sigma}")
            sigma = (float(sigma), float(sigma))
        elif len(sigma) != 2 or not 0 < sigma[0] <= sigma[1]:
            raise ValueError(f"GaussianBlur: sigma values should be positive and of the form (min, max), got {sigma}")
        self.kernel_size, self.sigma, self.generator = ks, (float(sigma[0]), float(sigma[1])), generator

    def get_params(self) -> float:
        return float(rng(self.generator).uniform(self.sigma[0], self.sigma[1]))

    def __call__(self, img: Any) -> Any:
        s = self.get_params()
        return F.gaussian_blur(img, self.kernel_size, [s, s])
