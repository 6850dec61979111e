"""Augmentations of time series ``(C, L)`` (or batches ``(N, C, L)``), seeded like the image transforms.

``Jitter`` (additive Gaussian noise), ``Scaling`` (one random factor per channel), ``TimeShift``
(a random circular shift in time) and ``WindowSlice`` (a random window of the series stretched
back to its length) — the augmentations of Um et al. (2017) and Le Guennec et al. (2016). Each
takes lamina Tensors or NumPy arrays and returns the type it was given; random draws come from
``generator=`` or lamina's global generator. Plain array code: no autograd.

Example:
    >>> import lamina
    >>> from lamina.transforms import series as TS
    >>> _ = lamina.manual_seed(0)
    >>> aug = TS.Compose([TS.Jitter(0.03), TS.Scaling(0.1), TS.TimeShift(4), TS.WindowSlice(0.9)])
    >>> tuple(aug(lamina.randn(2, 40)).shape)
    (2, 40)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd.tensor import Tensor
from ._image import rng
from .transforms import Compose, Transform

__all__ = ["Compose", "Jitter", "Scaling", "TimeShift", "WindowSlice"]


def _unpack(x: Any, op: str) -> tuple[Any, bool]:
    is_tensor = isinstance(x, Tensor)
    a = np.asarray(x.array if is_tensor else x)
    if a.ndim not in (2, 3) or a.dtype.kind != "f":
        raise ValueError(f"{op}: expected a float series (C, L) or a batch (N, C, L), got shape {a.shape} "
                         f"dtype {a.dtype}")
    return a, is_tensor


def _pack(a: Any, is_tensor: bool, like: Any) -> Any:
    a = a.astype(like.dtype, copy=False)
    return Tensor._wrap(a) if is_tensor else a


def _non_negative(value: float, what: str, op: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{op}: {what} must be a non-negative number, got {value!r}")
    return float(value)


class Jitter(Transform):
    """Add Gaussian noise of standard deviation ``sigma`` to every value."""

    def __init__(self, sigma: float = 0.03, generator: Any = None) -> None:
        self.sigma, self.generator = _non_negative(sigma, "sigma", "Jitter"), generator

    def __call__(self, x: Any) -> Any:
        a, t = _unpack(x, "Jitter")
        return _pack(a + rng(self.generator).normal(0.0, self.sigma, a.shape), t, a)

    def __repr__(self) -> str:
        return f"Jitter(sigma={self.sigma})"


class Scaling(Transform):
    """Multiply each channel by its own factor drawn from ``N(1, sigma²)``."""

    def __init__(self, sigma: float = 0.1, generator: Any = None) -> None:
        self.sigma, self.generator = _non_negative(sigma, "sigma", "Scaling"), generator

    def __call__(self, x: Any) -> Any:
        a, t = _unpack(x, "Scaling")
        factor = rng(self.generator).normal(1.0, self.sigma, a.shape[:-1] + (1,))
        return _pack(a * factor, t, a)

    def __repr__(self) -> str:
        return f"Scaling(sigma={self.sigma})"


class TimeShift(Transform):
    """Shift the series by a random whole number of steps in ``[-max_shift, max_shift]``, circularly
    (what leaves one end comes back at the other, so the length and the values are kept)."""

    def __init__(self, max_shift: int = 4, generator: Any = None) -> None:
        if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
            raise ValueError(f"TimeShift: max_shift must be a non-negative integer, got {max_shift!r}")
        self.max_shift, self.generator = max_shift, generator

    def __call__(self, x: Any) -> Any:
        a, t = _unpack(x, "TimeShift")
        k = int(rng(self.generator).integers(-self.max_shift, self.max_shift + 1))
        return _pack(np.roll(a, k, axis=-1), t, a)

    def __repr__(self) -> str:
        return f"TimeShift(max_shift={self.max_shift})"


class WindowSlice(Transform):
    """Take a random window of ``ratio`` of the series' length and stretch it back to the full
    length by linear interpolation (Le Guennec et al. 2016)."""

    def __init__(self, ratio: float = 0.9, generator: Any = None) -> None:
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
            raise ValueError(f"WindowSlice: ratio must lie in (0, 1], got {ratio!r}")
        self.ratio, self.generator = float(ratio), generator

    def __call__(self, x: Any) -> Any:
        a, t = _unpack(x, "WindowSlice")
        n = a.shape[-1]
        w = max(2, int(round(self.ratio * n)))
        if w >= n:
            return _pack(a.copy(), t, a)
        start = int(rng(self.generator).integers(0, n - w + 1))
        pos = np.linspace(start, start + w - 1, n)  # where each output step reads the input
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, n - 1)
        frac = pos - lo
        return _pack(a[..., lo] * (1 - frac) + a[..., hi] * frac, t, a)

    def __repr__(self) -> str:
        return f"WindowSlice(ratio={self.ratio})"
