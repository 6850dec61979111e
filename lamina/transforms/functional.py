"""Functional image transforms (``torchvision.transforms.functional``): geometry.

Each function takes a lamina Tensor ``(…, C, H, W)``, a NumPy array ``(H, W[, C])`` or a PIL image
and returns the same type. Colour functions live in :mod:`lamina.transforms.functional_color` and
are re-exported here.

Resampling follows torch: bilinear is ``F.interpolate(mode='bilinear', align_corners=False)`` (with
``antialias=True`` the triangle filter widened by the downscale factor, as torch/Pillow), nearest
is ``F.interpolate(mode='nearest')``; affine warps use torchvision's inverse matrix and
``grid_sample(align_corners=False)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import Enum
from typing import Any

from .. import backend
from ..ops.resample import antialias_matrix
from ._image import repack, size_of, unpack
from .functional_color import *  # noqa: F403
from .functional_color import __all__ as _color_all

__all__ = ["InterpolationMode", "hflip", "vflip", "crop", "center_crop", "pad", "resize", "resized_crop",
           "affine", "rotate", "resize_matrix", "grid_sample", "inverse_affine_matrix", "get_image_size"]
__all__ += list(_color_all)

xp = backend.xp


class InterpolationMode(Enum):
    """Resampling filters (torchvision's names); lamina implements NEAREST and BILINEAR."""

    NEAREST = "nearest"
    BILINEAR = "bilinear"


def _mode(interpolation: Any, op: str) -> str:
    m = interpolation.value if isinstance(interpolation, Enum) else str(interpolation)
    if m not in ("nearest", "bilinear"):
        raise ValueError(f"{op}: interpolation must be 'nearest' or 'bilinear' (InterpolationMode), got {m!r}")
    return m


def get_image_size(img: Any) -> list[int]:
    """``[width, height]`` of an image, as torchvision's ``get_image_size``."""
    h, w = size_of(img, "get_image_size")
    return [w, h]


def hflip(img: Any) -> Any:
    """Flip left–right (reverse the width axis)."""
    a, info = unpack(img, "hflip")
    return repack(a[..., ::-1], info)


def vflip(img: Any) -> Any:
    """Flip top–bottom (reverse the height axis)."""
    a, info = unpack(img, "vflip")
    return repack(a[..., ::-1, :], info)


def _padding4(padding: Any, op: str) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) from an int, (lr, tb) or (l, t, r, b) as torchvision."""
    if isinstance(padding, (int, xp.integer)):
        p = int(padding)
        return p, p, p, p
    p = [int(v) for v in padding]
    if len(p) == 1:
        return p[0], p[0], p[0], p[0]
    if len(p) == 2:
        return p[0], p[1], p[0], p[1]
    if len(p) == 4:
        return p[0], p[1], p[2], p[3]
    raise ValueError(f"{op}: padding must be an int or a sequence of 1, 2 or 4 ints, got {padding!r}")


_PAD_MODES = {"constant": "constant", "edge": "edge", "reflect": "reflect", "symmetric": "symmetric"}


def _pad(a: Any, left: int, top: int, right: int, bottom: int, fill: Any = 0, mode: str = "constant") -> Any:
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: padding_mode must be one of {sorted(_PAD_MODES)}, got {mode!r}")
    if min(left, top, right, bottom) < 0:  # negative padding crops, as in torchvision
        h, w = a.shape[-2:]
        a = a[..., max(-top, 0):h - max(-bottom, 0), max(-left, 0):w - max(-right, 0)]
        left, top, right, bottom = (max(v, 0) for v in (left, top, right, bottom))
    widths = [(0, 0)] * (a.ndim - 2) + [(top, bottom), (left, right)]
    if mode != "constant":
        return xp.pad(a, widths, mode=_PAD_MODES[mode])
    fill_arr = xp.asarray(fill, dtype=a.dtype).reshape(-1)
    if fill_arr.size == 1:
        return xp.pad(a, widths, mode="constant", constant_values=fill_arr[0])
    if fill_arr.size != a.shape[-3]:
        raise ValueError(f"pad: fill has {fill_arr.size} values but the image has {a.shape[-3]} channels")
    out = xp.pad(a, widths, mode="constant")
    mask = xp.ones(a.shape[-2:], dtype=bool)
    mask = ~xp.pad(mask, widths[-2:], mode="constant", constant_values=False)
    out[..., mask] = fill_arr.reshape(-1, 1)
    return out


def pad(img: Any, padding: Any, fill: Any = 0, padding_mode: str = "constant") -> Any:
    """Pad the borders. ``padding``: int, ``(left/right, top/bottom)`` or ``(left, top, right, bottom)``;
    ``padding_mode``: ``'constant'`` (with ``fill``), ``'edge'``, ``'reflect'`` or ``'symmetric'``."""
    a, info = unpack(img, "pad")
    return repack(_pad(a, *_padding4(padding, "pad"), fill=fill, mode=padding_mode), info)


def _crop(a: Any, top: int, left: int, height: int, width: int) -> Any:
    h, w = a.shape[-2:]
    if top < 0 or left < 0 or top + height > h or left + width > w:  # out of bounds: zero padding
        a = _pad(a, max(-left, 0), max(-top, 0), max(left + width - w, 0), max(top + height - h, 0))
        top, left = max(top, 0), max(left, 0)
    return a[..., top:top + height, left:left + width]


def crop(img: Any, top: int, left: int, height: int, width: int) -> Any:
    """The ``height × width`` window whose top-left pixel is ``(top, left)`` (zero-padded beyond the image)."""
    a, info = unpack(img, "crop")
    return repack(_crop(a, int(top), int(left), int(height), int(width)), info)


def _pair(size: Any, op: str) -> tuple[int, int]:
    if isinstance(size, (int, xp.integer)):
        return int(size), int(size)
    s = [int(v) for v in size]
    if len(s) == 1:
        return s[0], s[0]
    if len(s) != 2:
        raise ValueError(f"{op}: size must be an int or a (height, width) pair, got {size!r}")
    return s[0], s[1]


def center_crop(img: Any, output_size: Any) -> Any:
    """The central ``output_size`` window; the offsets are ``round((H - h) / 2)``, ``round((W - w) / 2)``
    with Python's round (half to even), as torchvision; zero-padded when the window is larger."""
    th, tw = _pair(output_size, "center_crop")
    a, info = unpack(img, "center_crop")
    h, w = a.shape[-2:]
    if th > h or tw > w:
        pl, pt = (tw - w) // 2 if tw > w else 0, (th - h) // 2 if th > h else 0
        pr, pb = (tw - w + 1) // 2 if tw > w else 0, (th - h + 1) // 2 if th > h else 0
        a = _pad(a, pl, pt, pr, pb)
        h, w = a.shape[-2:]
        if th == h and tw == w:
            return repack(a, info)
    top, left = int(round((h - th) / 2.0)), int(round((w - tw) / 2.0))
    return repack(a[..., top:top + th, left:left + tw], info)


def resize_matrix(n_in: int, n_out: int, mode: str = "bilinear", antialias: bool = False) -> Any:
    """The ``(n_out, n_in)`` float64 matrix that resamples one axis (rows sum to one).

    Bilinear: source coordinate ``(i + 0.5) * n_in / n_out - 0.5`` clamped at 0 (``align_corners=False``).
    With ``antialias`` and downsampling (``n_in > n_out``) the triangle filter is widened by the
    scale, as torch's ``antialias=True`` and Pillow. Nearest: source ``floor(i * n_in / n_out)``.

    Example:
        >>> resize_matrix(2, 4).tolist()
        [[1.0, 0.0], [0.75, 0.25], [0.25, 0.75], [0.0, 1.0]]
    """
    scale = n_in / n_out
    m = xp.zeros((n_out, n_in), dtype=xp.float64)
    rows = xp.arange(n_out)
    if mode == "nearest":
        m[rows, xp.minimum(xp.floor(rows * scale).astype(xp.int64), n_in - 1)] = 1.0
        return m
    if antialias and scale > 1.0:  # the bilinear filter widened by the downscale factor, as interpolate's
        return antialias_matrix(n_in, n_out, None, False, False, xp.float64).T.copy()
    src = xp.maximum((rows + 0.5) * scale - 0.5, 0.0)
    i0 = xp.minimum(xp.floor(src).astype(xp.int64), n_in - 1)
    i1 = xp.minimum(i0 + 1, n_in - 1)
    frac = src - i0
    xp.add.at(m, (rows, i0), 1.0 - frac)
    xp.add.at(m, (rows, i1), frac)
    return m


def _resize(a: Any, h: int, w: int, mode: str, antialias: bool) -> Any:
    ih, iw = a.shape[-2:]
    if (ih, iw) == (h, w):
        return a
    if mode == "nearest":
        ry = xp.minimum(xp.floor(xp.arange(h) * (ih / h)).astype(xp.int64), ih - 1)
        rx = xp.minimum(xp.floor(xp.arange(w) * (iw / w)).astype(xp.int64), iw - 1)
        return a[..., ry[:, None], rx[None, :]]
    my = resize_matrix(ih, h, mode, antialias).astype(a.dtype)
    mx = resize_matrix(iw, w, mode, antialias).astype(a.dtype)
    return my @ a @ mx.T


def _output_size(h: int, w: int, size: Any, max_size: int | None, op: str) -> tuple[int, int]:
    if isinstance(size, (int, xp.integer)) or (isinstance(size, Sequence) and len(size) == 1):
        s = int(size if isinstance(size, (int, xp.integer)) else size[0])
        short, long = (h, w) if h <= w else (w, h)
        new_short, new_long = s, int(s * long / short)
        if max_size is not None:
            if max_size <= s:
                raise ValueError(f"{op}: max_size = {max_size} must be strictly greater than the requested size {s}")
            if new_long > max_size:
                new_short, new_long = int(max_size * new_short / new_long), max_size
        return (new_short, new_long) if h <= w else (new_long, new_short)
    if max_size is not None:
        raise ValueError(f"{op}: max_size is only supported when size is a single int, got size={size!r}")
    return _pair(size, op)


def resize(img: Any, size: Any, interpolation: Any = InterpolationMode.BILINEAR, max_size: int | None = None,
           antialias: bool = True) -> Any:
    """Resize to ``size``: ``(h, w)``, or an int matched by the smaller edge (aspect ratio kept, the longer
    edge ``int(size * long / short)``, as torchvision)."""
    mode = _mode(interpolation, "resize")
    a, info = unpack(img, "resize")
    h, w = _output_size(a.shape[-2], a.shape[-1], size, max_size, "resize")
    if h <= 0 or w <= 0:
        raise ValueError(f"resize: output size must be positive, got ({h}, {w})")
    return repack(_resize(a, h, w, mode, antialias), info)


def resized_crop(img: Any, top: int, left: int, height: int, width: int, size: Any,
                 interpolation: Any = InterpolationMode.BILINEAR, antialias: bool = True) -> Any:
    """``crop`` then ``resize`` to ``size``."""
    mode = _mode(interpolation, "resized_crop")
    a, info = unpack(img, "resized_crop")
    h, w = _pair(size, "resized_crop")
    return repack(_resize(_crop(a, top, left, height, width), h, w, mode, antialias), info)


def inverse_affine_matrix(center: Sequence[float], angle: float, translate: Sequence[float], scale: float,
                          shear: Sequence[float]) -> list[float]:
    """torchvision's ``_get_inverse_affine_matrix``: the 2×3 map from output to input coordinates
    (relative to ``center``), for rotation ``angle`` (degrees), translation, scale and shear (degrees)."""
    rot, sx, sy = math.radians(angle), math.radians(shear[0]), math.radians(shear[1])
    cx, cy = center
    tx, ty = translate
    a = math.cos(rot - sy) / math.cos(sy)
    b = -math.cos(rot - sy) * math.tan(sx) / math.cos(sy) - math.sin(rot)
    c = math.sin(rot - sy) / math.cos(sy)
    d = -math.sin(rot - sy) * math.tan(sx) / math.cos(sy) + math.cos(rot)
    m = [d / scale, -b / scale, 0.0, -c / scale, a / scale, 0.0]
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty)
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty)
    m[2] += cx
    m[5] += cy
    return m


def _sample_taps(gx: Any, gy: Any, h: int, w: int, mode: str) -> tuple[Any, Any]:
    """Flat source indices ``(K, P)`` and weights ``(K, P)`` (zero outside the image) for the ``P`` output
    pixels at normalized coordinates ``gx, gy``: ``K = 1`` tap for nearest, 4 for bilinear."""
    ix, iy = (((gx + 1) * w - 1) / 2).ravel(), (((gy + 1) * h - 1) / 2).ravel()
    if mode == "nearest":
        xs, ys = xp.rint(ix)[None], xp.rint(iy)[None]  # half to even, as torch's nearbyint
        wts = xp.ones_like(xs)
    else:
        x0, y0 = xp.floor(ix), xp.floor(iy)
        xs = xp.stack([x0, x0 + 1, x0, x0 + 1])
        ys = xp.stack([y0, y0, y0 + 1, y0 + 1])
        wts = (1 - xp.abs(ix - xs)) * (1 - xp.abs(iy - ys))
    valid = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    idx = xp.where(valid, ys * w + xs, 0).astype(xp.int64)
    return idx, wts * valid


def grid_sample(a: Any, gx: Any, gy: Any, mode: str) -> Any:
    """Sample ``a (…, C, H, W)`` at normalized coordinates ``gx, gy (Ho, Wo)`` in [-1, 1], as
    ``torch.nn.functional.grid_sample(align_corners=False, padding_mode='zeros')``."""
    h, w = a.shape[-2:]
    idx, wts = _sample_taps(gx, gy, h, w, mode)
    return _apply_taps(a, idx, wts, gx.shape)


def _apply_taps(a: Any, idx: Any, wts: Any, out_hw: tuple[int, ...]) -> Any:
    flat = a.reshape(*a.shape[:-2], -1)
    out = (flat[..., idx] * wts.astype(a.dtype)).sum(axis=-2)  # gather (…, K, P), weigh, sum the taps
    return out.reshape(*a.shape[:-2], *out_hw)


def _affine_output_size(m: Sequence[float], w: int, h: int) -> tuple[int, int]:
    pts = xp.array([[-0.5 * w, -0.5 * h, 1.0], [-0.5 * w, 0.5 * h, 1.0], [0.5 * w, 0.5 * h, 1.0],
                    [0.5 * w, -0.5 * h, 1.0]])
    new = pts @ xp.asarray(m, dtype=xp.float64).reshape(2, 3).T
    tol = 1e-4
    cmax = xp.ceil(xp.trunc(new.max(0) / tol) * tol)
    cmin = xp.floor(xp.trunc(new.min(0) / tol) * tol)
    size = cmax - cmin
    return int(size[0]), int(size[1])


def _warp(a: Any, m: Sequence[float], mode: str, fill: Any, out_size: tuple[int, int] | None = None) -> Any:
    h, w = a.shape[-2:]
    ow, oh = out_size if out_size is not None else (w, h)
    xs = xp.arange(ow) - (ow - 1) * 0.5  # torchvision's base grid: pixel centres relative to the centre
    ys = (xp.arange(oh) - (oh - 1) * 0.5)[:, None]
    gx = (m[0] * xs + m[1] * ys + m[2]) / (0.5 * w)
    gy = (m[3] * xs + m[4] * ys + m[5]) / (0.5 * h)
    idx, wts = _sample_taps(gx, gy, h, w, mode)
    out = _apply_taps(a, idx, wts, (oh, ow))
    if fill is None:
        return out
    # torchvision samples a mask of ones beside the image and blends the fill in where it fell off
    cover = wts.sum(axis=0).reshape(oh, ow).astype(a.dtype)
    f = xp.asarray(fill, dtype=a.dtype).reshape(-1, 1, 1)
    if f.shape[0] not in (1, a.shape[-3]):
        raise ValueError(f"affine: fill has {f.shape[0]} values but the image has {a.shape[-3]} channels")
    if mode == "nearest":
        return xp.where(cover < 0.5, f, out)
    return out * cover + (1.0 - cover) * f


def _center_f(center: Any, h: int, w: int) -> list[float]:
    if center is None:
        return [0.0, 0.0]
    return [float(c) - s * 0.5 for c, s in zip(center, (w, h))]


def affine(img: Any, angle: float, translate: Sequence[float], scale: float, shear: Any,
           interpolation: Any = InterpolationMode.NEAREST, fill: Any = None, center: Any = None) -> Any:
    """Rotate by ``angle`` degrees (clockwise, as torchvision's ``affine``), translate by ``translate``
    pixels ``(dx, dy)``, scale, and shear by ``shear`` degrees (a number: x shear; a pair: (x, y)),
    about ``center`` (default the image centre); pixels from outside take ``fill`` (None: 0)."""
    mode = _mode(interpolation, "affine")
    if scale <= 0:
        raise ValueError(f"affine: scale must be positive, got {scale}")
    sh = [float(shear), 0.0] if isinstance(shear, (int, float)) else [float(s) for s in shear] + [0.0] * (
        2 - len(shear))
    a, info = unpack(img, "affine")
    m = inverse_affine_matrix(_center_f(center, *a.shape[-2:]), angle, [float(t) for t in translate], scale, sh)
    return repack(_warp(a, m, mode, fill), info)


def rotate(img: Any, angle: float, interpolation: Any = InterpolationMode.NEAREST, expand: bool = False,
           center: Any = None, fill: Any = None) -> Any:
    """Rotate by ``angle`` degrees counter-clockwise (torchvision's convention for ``rotate``) about
    ``center``; ``expand`` enlarges the output to hold the whole rotated image."""
    mode = _mode(interpolation, "rotate")
    a, info = unpack(img, "rotate")
    h, w = a.shape[-2:]
    m = inverse_affine_matrix(_center_f(center, h, w), -angle, [0.0, 0.0], 1.0, [0.0, 0.0])
    out_size = _affine_output_size(m, w, h) if expand else None
    return repack(_warp(a, m, mode, fill, out_size), info)
