"""The image types transforms accept, and the float ``(…, C, H, W)`` arrays they compute on.

- lamina Tensors ``(C, H, W)`` or ``(N, C, H, W)`` (float, or uint8 with values 0..255);
- NumPy arrays ``(H, W, C)`` or ``(H, W)`` (channels last, as images are stored; uint8 or float);
- PIL images, when Pillow is installed.

Every transform returns the type it was given. Integer images are computed on in floating point
with their value range 0..255 kept, then rounded and clipped back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import backend
from ..autograd.tensor import Tensor

__all__ = ["unpack", "repack", "is_pil", "ImageInfo"]

xp = backend.xp


def is_pil(img: Any) -> bool:
    mod = type(img).__module__
    return mod.startswith("PIL.") and hasattr(img, "getbands")


@dataclass
class ImageInfo:
    kind: str  # "tensor", "numpy" or "pil"
    dtype: Any
    ndim: int
    mode: str | None = None

    @property
    def bound(self) -> float:
        """The largest pixel value: 255 for integer images, 1 for float ones."""
        return 1.0 if self.dtype.kind == "f" else 255.0


def unpack(img: Any, op: str) -> tuple[Any, ImageInfo]:
    """``img`` as a float array ``(…, C, H, W)`` (a view where possible) and what is needed to rebuild it."""
    if isinstance(img, Tensor):
        a = img.array
        if a.ndim < 2:
            raise ValueError(f"{op}: expected a tensor image (C, H, W) or a batch (..., C, H, W), got shape {a.shape}")
        info = ImageInfo("tensor", a.dtype, a.ndim)
        if a.ndim == 2:
            a = a[None]
    elif isinstance(img, xp.ndarray):
        if img.ndim not in (2, 3):
            raise ValueError(f"{op}: expected a NumPy image (H, W) or (H, W, C), got shape {img.shape}")
        info = ImageInfo("numpy", img.dtype, img.ndim)
        a = img[None] if img.ndim == 2 else img.transpose(2, 0, 1)
    elif is_pil(img):
        mode = img.mode
        arr = xp.asarray(img)
        info = ImageInfo("pil", arr.dtype, arr.ndim, mode)
        a = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    else:
        raise TypeError(f"{op}: expected a lamina Tensor, a NumPy array or a PIL image, got {type(img).__name__}")
    if a.dtype.kind == "b":
        raise TypeError(f"{op}: boolean images are not supported")
    if a.dtype.kind != "f":
        a = a.astype(backend.float32)
    return a, info


def repack(a: Any, info: ImageInfo) -> Any:
    """The array ``a`` (…, C, H, W) back in the type and dtype ``info`` describes."""
    if info.dtype.kind != "f":
        a = xp.clip(xp.rint(a), 0, 255)
    a = a.astype(info.dtype, copy=False)
    if info.kind == "tensor":
        if info.ndim == 2 and a.shape[0] == 1:
            a = a[0]
        return Tensor._wrap(xp.ascontiguousarray(a))
    hwc = a.transpose(1, 2, 0)
    if info.kind == "numpy":
        return xp.ascontiguousarray(hwc[..., 0] if info.ndim == 2 and hwc.shape[-1] == 1 else hwc)
    from PIL import Image

    if hwc.shape[-1] == 1:
        return Image.fromarray(xp.ascontiguousarray(hwc[..., 0]).astype(xp.uint8), mode="L")
    out = Image.fromarray(xp.ascontiguousarray(hwc).astype(xp.uint8))
    return out.convert(info.mode) if info.mode not in (None, out.mode) and hwc.shape[-1] == len(info.mode) else out


def size_of(img: Any, op: str) -> tuple[int, int]:
    """``(height, width)`` of an image of any accepted type."""
    if is_pil(img):
        return img.size[1], img.size[0]
    if isinstance(img, xp.ndarray):
        return int(img.shape[0]), int(img.shape[1])
    if isinstance(img, Tensor):
        return int(img.shape[-2]), int(img.shape[-1])
    raise TypeError(f"{op}: expected a lamina Tensor, a NumPy array or a PIL image, got {type(img).__name__}")


def rng(generator: Any) -> Any:
    """The generator a random transform draws from: its own, or lamina's global one."""
    return generator if generator is not None else backend.generator()
