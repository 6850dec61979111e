"""Resampling with ``torch.nn.functional``'s names and signatures: ``interpolate``
(``upsample``, ``upsample_nearest``, ``upsample_bilinear``), ``pixel_shuffle`` and
``pixel_unshuffle`` (implemented in ``lamina.ops.resample``), ``grid_sample`` and ``affine_grid``
(``lamina.ops.grid_sample``)."""

from __future__ import annotations

from typing import Any

from ...autograd.tensor import Tensor
from ...ops.grid_sample import affine_grid, grid_sample
from ...ops.resample import interpolate, pixel_shuffle, pixel_unshuffle

__all__ = ["interpolate", "upsample", "upsample_nearest", "upsample_bilinear", "pixel_shuffle",
           "pixel_unshuffle", "grid_sample", "affine_grid"]


def upsample(input: Tensor, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
             align_corners: bool | None = None) -> Tensor:
    """The deprecated torch alias of :func:`interpolate`."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size: Any = None, scale_factor: Any = None) -> Tensor:
    """``interpolate(..., mode='nearest')`` (torch's deprecated alias)."""
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size: Any = None, scale_factor: Any = None) -> Tensor:
    """``interpolate(..., mode='bilinear', align_corners=True)`` (torch's deprecated alias)."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)
