"""Functional colour transforms, as torchvision's tensor implementations.

Images of any accepted type (see :mod:`lamina.transforms._image`); RGB images have 3 channels.
Results are clamped to the image's range ([0, 1] for float images, 0..255 for uint8).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import backend
from ._image import repack, unpack

__all__ = ["normalize", "to_grayscale", "rgb_to_grayscale", "adjust_brightness", "adjust_contrast",
           "adjust_saturation", "adjust_hue", "gaussian_blur", "erase", "rgb_to_hsv", "hsv_to_rgb",
           "gaussian_kernel1d"]

xp = backend.xp

GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # ITU-R 601-2 luma, the weights torchvision uses


def normalize(img: Any, mean: Sequence[float], std: Sequence[float], inplace: bool = False) -> Any:
    """``(img - mean[c]) / std[c]`` for every channel ``c`` of a float image."""
    a, info = unpack(img, "normalize")
    if info.dtype.kind != "f":
        raise TypeError(f"normalize: expected a float image, got dtype {info.dtype} (apply ToTensor first)")
    m = xp.asarray(mean, dtype=a.dtype).reshape(-1, 1, 1)
    s = xp.asarray(std, dtype=a.dtype).reshape(-1, 1, 1)
    if (s == 0).any():
        raise ValueError(f"normalize: std evaluated to zero after conversion to {a.dtype}, leading to division by zero")
    c = a.shape[-3]
    if m.shape[0] not in (1, c) or s.shape[0] not in (1, c):
        raise ValueError(f"normalize: the image has {c} channels but mean has {m.shape[0]} values and std "
                         f"{s.shape[0]}")
    if inplace and info.kind == "tensor" and a is img.array:
        a -= m
        a /= s
        img._bump_version()
        return img
    return repack((a - m) / s, info)


def _gray(a: Any) -> Any:
    if a.shape[-3] == 1:
        return a
    if a.shape[-3] != 3:
        raise ValueError(f"rgb_to_grayscale: expected 1 or 3 channels, got {a.shape[-3]}")
    r, g, b = a[..., 0:1, :, :], a[..., 1:2, :, :], a[..., 2:3, :, :]
    return GRAY_WEIGHTS[0] * r + GRAY_WEIGHTS[1] * g + GRAY_WEIGHTS[2] * b


def rgb_to_grayscale(img: Any, num_output_channels: int = 1) -> Any:
    """Luma ``0.2989 R + 0.587 G + 0.114 B``, in 1 or 3 (repeated) channels."""
    if num_output_channels not in (1, 3):
        raise ValueError(f"rgb_to_grayscale: num_output_channels should be 1 or 3, got {num_output_channels}")
    a, info = unpack(img, "rgb_to_grayscale")
    g = _gray(a)
    if num_output_channels == 3:
        g = xp.concatenate([g, g, g], axis=-3)
    return repack(g, info)


to_grayscale = rgb_to_grayscale


def _blend(a1: Any, a2: Any, ratio: float, bound: float) -> Any:
    return xp.clip(ratio * a1 + (1.0 - ratio) * a2, 0.0, bound)


def adjust_brightness(img: Any, brightness_factor: float) -> Any:
    """Multiply by ``brightness_factor`` (0: black, 1: unchanged), clamped."""
    if brightness_factor < 0:
        raise ValueError(f"adjust_brightness: brightness_factor ({brightness_factor}) is not non-negative")
    a, info = unpack(img, "adjust_brightness")
    return repack(_blend(a, 0.0, brightness_factor, info.bound), info)


def adjust_contrast(img: Any, contrast_factor: float) -> Any:
    """Blend with the mean grey level of the image (0: flat grey, 1: unchanged)."""
    if contrast_factor < 0:
        raise ValueError(f"adjust_contrast: contrast_factor ({contrast_factor}) is not non-negative")
    a, info = unpack(img, "adjust_contrast")
    mean = _gray(a).mean(axis=(-3, -2, -1), keepdims=True)
    return repack(_blend(a, mean, contrast_factor, info.bound), info)


def adjust_saturation(img: Any, saturation_factor: float) -> Any:
    """Blend with the grayscale image (0: grey, 1: unchanged, 2: doubled saturation)."""
    if saturation_factor < 0:
        raise ValueError(f"adjust_saturation: saturation_factor ({saturation_factor}) is not non-negative")
    a, info = unpack(img, "adjust_saturation")
    if a.shape[-3] == 1:
        return repack(a, info)
    return repack(_blend(a, _gray(a), saturation_factor, info.bound), info)


def rgb_to_hsv(a: Any) -> Any:
    """RGB → HSV on arrays ``(…, 3, H, W)`` in [0, 1] (torchvision's ``_rgb2hsv``); hue in [0, 1)."""
    r, g, b = a[..., 0, :, :], a[..., 1, :, :], a[..., 2, :, :]
    maxc, minc = a.max(axis=-3), a.min(axis=-3)
    eqc = maxc == minc
    cr = maxc - minc
    s = cr / xp.where(eqc, 1.0, maxc)
    div = xp.where(eqc, 1.0, cr)
    rc, gc, bc = (maxc - r) / div, (maxc - g) / div, (maxc - b) / div
    hr = (maxc == r) * (bc - gc)
    hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
    hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    h = xp.fmod((hr + hg + hb) / 6.0 + 1.0, 1.0)
    return xp.stack((h, s, maxc), axis=-3)


def hsv_to_rgb(a: Any) -> Any:
    """HSV → RGB on arrays ``(…, 3, H, W)`` (torchvision's ``_hsv2rgb``)."""
    h, s, v = a[..., 0, :, :], a[..., 1, :, :], a[..., 2, :, :]
    i = xp.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.astype(xp.int64) % 6
    p = xp.clip(v * (1.0 - s), 0.0, 1.0)
    q = xp.clip(v * (1.0 - s * f), 0.0, 1.0)
    t = xp.clip(v * (1.0 - s * (1.0 - f)), 0.0, 1.0)
    # sector i of the colour wheel picks (r, g, b) among (v, q, p, t): torchvision's table, as indices
    pick = xp.array([[0, 1, 2, 2, 3, 0], [3, 0, 0, 1, 2, 2], [2, 2, 3, 0, 0, 1]])
    out = xp.take_along_axis(xp.stack((v, q, p, t)), pick[:, i], axis=0)  # (3, …, H, W)
    return xp.moveaxis(out, 0, -3)


def adjust_hue(img: Any, hue_factor: float) -> Any:
    """Shift the hue by ``hue_factor`` turns (in [-0.5, 0.5]; 1/3 turns red into green)."""
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f"adjust_hue: hue_factor ({hue_factor}) is not in [-0.5, 0.5]")
    a, info = unpack(img, "adjust_hue")
    if a.shape[-3] == 1:
        return repack(a, info)
    if a.shape[-3] != 3:
        raise ValueError(f"adjust_hue: expected 1 or 3 channels, got {a.shape[-3]}")
    hsv = rgb_to_hsv(a / info.bound)
    hsv[..., 0, :, :] = (hsv[..., 0, :, :] + hue_factor) % 1.0
    return repack(hsv_to_rgb(hsv) * info.bound, info)


def gaussian_kernel1d(kernel_size: int, sigma: float) -> Any:
    """The normalized 1-D Gaussian ``exp(-x² / 2σ²)`` at ``x = -(k-1)/2 … (k-1)/2``.

    Example:
        >>> [round(v, 4) for v in gaussian_kernel1d(3, 1.0).tolist()]
        [0.2741, 0.4519, 0.2741]
    """
    half = (kernel_size - 1) * 0.5
    x = xp.linspace(-half, half, kernel_size)
    pdf = xp.exp(-0.5 * (x / sigma) ** 2)
    return pdf / pdf.sum()


def gaussian_blur(img: Any, kernel_size: Any, sigma: Any = None) -> Any:
    """Blur with a separable Gaussian kernel ``kernel_size = (kx, ky)`` (odd) and ``sigma = (sx, sy)``;
    borders are reflected, as torchvision. Default sigma: ``0.3 * ((k - 1) * 0.5 - 1) + 0.8``."""
    ks = [int(kernel_size)] * 2 if isinstance(kernel_size, (int, xp.integer)) else [int(k) for k in kernel_size]
    if len(ks) == 1:
        ks = ks * 2
    if len(ks) != 2 or any(k <= 0 or k % 2 == 0 for k in ks):
        raise ValueError(f"gaussian_blur: kernel_size should be odd and positive, got {kernel_size!r}")
    if sigma is None:
        sig = [0.3 * ((k - 1) * 0.5 - 1) + 0.8 for k in ks]
    elif isinstance(sigma, (int, float)):
        sig = [float(sigma)] * 2
    else:
        sig = [float(s) for s in sigma] * (2 if len(sigma) == 1 else 1)
    if any(s <= 0 for s in sig):
        raise ValueError(f"gaussian_blur: sigma should have positive values, got {sigma!r}")
    a, info = unpack(img, "gaussian_blur")
    kx, ky = gaussian_kernel1d(ks[0], sig[0]).astype(a.dtype), gaussian_kernel1d(ks[1], sig[1]).astype(a.dtype)
    px, py = ks[0] // 2, ks[1] // 2
    widths = [(0, 0)] * (a.ndim - 2) + [(py, py), (px, px)]
    p = xp.pad(a, widths, mode="reflect")
    h, w = a.shape[-2:]
    rows = sum(kx[j] * p[..., :, j:j + w] for j in range(ks[0]))
    out = sum(ky[i] * rows[..., i:i + h, :] for i in range(ks[1]))
    return repack(out, info)


def erase(img: Any, i: int, j: int, h: int, w: int, v: Any, inplace: bool = False) -> Any:
    """Set the ``h × w`` window at ``(i, j)`` to ``v`` (a number, per-channel values or an array)."""
    a, info = unpack(img, "erase")
    if inplace and info.kind == "tensor" and a is img.array:
        a[..., i:i + h, j:j + w] = v
        img._bump_version()
        return img
    out = a.copy()
    out[..., i:i + h, j:j + w] = v
    return repack(out, info)
