"""Spatial transformers: ``affine_grid`` and ``grid_sample`` (2-D; bilinear and nearest; padding
``zeros``/``border``/``reflection``; both ``align_corners``), composed from differentiable ops.

``grid_sample`` maps each normalized grid coordinate in [−1, 1] to a pixel coordinate (torch's
``grid_sampler_compute_source_index``: unnormalize, then clip or reflect for the padding mode),
gathers the four neighbouring pixels and blends them with the bilinear weights. The weights are
differentiable functions of the coordinates and the gather's adjoint is a scatter-add, so the
gradients w.r.t. the input and the grid are torch's (clipping passes no gradient at or beyond the
border, reflection flips its sign). ``nearest`` rounds half to even (``nearbyint``) and gives
the grid a zero gradient, as torch.
"""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd.tensor import Tensor
from .common import check_tensor, const
from .indexing import gather
from .linalg import matmul
from .selection import where

__all__ = ["affine_grid", "grid_sample"]

xp = backend.xp


def _base_coords(n: int, align_corners: bool, dtype: Any) -> Any:
    if n <= 1:
        return xp.zeros(max(n, 1), dtype=dtype)[:n]
    c = xp.linspace(-1.0, 1.0, n)
    return (c if align_corners else c * (n - 1) / n).astype(dtype)


def affine_grid(theta: Tensor, size: Any, align_corners: bool | None = None) -> Tensor:
    """The sampling grid of an affine map: ``theta`` ``(N, 2, 3)`` for a 4-D ``size`` ``(N, C, H, W)``
    gives ``(N, H, W, 2)``; ``(N, 3, 4)`` for 5-D ``(N, C, D, H, W)`` gives ``(N, D, H, W, 3)``.
    Each output point is ``theta @ [x, y, (z,) 1]`` at the normalized coordinates of the output pixel.
    """
    check_tensor(theta, "affine_grid", "theta")
    align = bool(align_corners)
    size = tuple(int(s) for s in size)
    if theta.dtype.kind != "f":
        raise ValueError(f"Expected theta to have floating point type, but got {theta.dtype}")
    if len(size) == 4:
        if theta.ndim != 3 or tuple(theta.shape[-2:]) != (2, 3):
            raise ValueError(f"Expected a batch of 2D affine matrices of shape Nx2x3 for size {size}. Got "
                             f"{tuple(theta.shape)}.")
        spatial = size[2:]
    elif len(size) == 5:
        if theta.ndim != 3 or tuple(theta.shape[-2:]) != (3, 4):
            raise ValueError(f"Expected a batch of 3D affine matrices of shape Nx3x4 for size {size}. Got "
                             f"{tuple(theta.shape)}.")
        spatial = size[2:]
    else:
        raise NotImplementedError(f"affine_grid only supports 4D and 5D sizes, for 2D and 3D affine transforms, "
                                  f"respectively. Got size {size}.")
    if theta.shape[0] != size[0]:
        raise ValueError(f"Expected theta batch {theta.shape[0]} to match size batch {size[0]}")
    if min(spatial) <= 0:
        raise ValueError(f"Expected non-zero, positive output size. Got {size}")
    axes = [_base_coords(n, align, theta.dtype) for n in spatial]  # (D,) H, W
    mesh = xp.meshgrid(*axes, indexing="ij")
    coords = list(reversed(mesh))  # x varies along W, then y along H, then z along D
    base = xp.stack(coords + [xp.ones_like(mesh[0])], axis=-1).reshape(-1, len(spatial) + 1)
    grid = matmul(const(base), theta.mT)  # (N, P, k)
    return grid.reshape(size[0], *spatial, len(spatial))


def _clip(coord: Tensor, size: int) -> Tensor:
    """Clamp to [0, size − 1] with torch's gradient: none at or beyond either end."""
    c = coord.array
    inside = const((c > 0) & (c < size - 1))
    return where(inside, coord, const(xp.clip(c, 0, size - 1).astype(c.dtype)))


def _reflect(coord: Tensor, twice_low: int, twice_high: int) -> Tensor:
    """torch's ``reflect_coordinates``: fold the coordinate back into [low, high] (the gradient
    flips sign on each odd fold)."""
    if twice_low == twice_high:
        return coord * 0.0
    lo, span = twice_low / 2, (twice_high - twice_low) / 2
    d = (coord - lo).abs()
    flips = xp.floor(d.array / span)
    extra = d - const((flips * span).astype(d.dtype))
    return where(const(flips % 2 == 0), extra + lo, (span + lo) - extra)


def _source(coord: Tensor, size: int, padding: str, align: bool) -> Tensor:
    x = ((coord + 1.0) / 2.0) * (size - 1) if align else ((coord + 1.0) * size - 1.0) / 2.0
    if padding == "border":
        x = _clip(x, size)
    elif padding == "reflection":
        x = _reflect(x, 0, 2 * (size - 1)) if align else _reflect(x, -1, 2 * size - 1)
        x = _clip(x, size)
    return x


def _gather2d(flat: Tensor, ix: Any, iy: Any, w: int, h: int) -> tuple[Tensor, Any]:
    """The pixels at integer ``(iy, ix)`` (N, P) of ``flat`` (N, C, H·W); zero (and masked) outside."""
    valid = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    lin = xp.where(valid, iy * w + ix, 0).astype(xp.int64)
    n, c = flat.shape[:2]
    index = const(xp.broadcast_to(lin[:, None, :], (n, c, lin.shape[1])))
    return gather(flat, 2, index), valid


def grid_sample(input: Tensor, grid: Tensor, mode: str = "bilinear", padding_mode: str = "zeros",
                align_corners: bool | None = None) -> Tensor:
    """``input`` ``(N, C, H, W)`` sampled at ``grid`` ``(N, Ho, Wo, 2)`` (``x, y`` in [−1, 1]):
    ``(N, C, Ho, Wo)``. Matches ``torch.nn.functional.grid_sample`` for 4-D input, ``mode``
    ``'bilinear'``/``'nearest'``; lamina has no ``'bicubic'`` and no 5-D (volumetric) form.
    """
    check_tensor(input, "grid_sample")
    check_tensor(grid, "grid_sample", "grid")
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or 'bicubic', "
                         f"but got: '{mode}'")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or "
                         f"'reflection', but got: '{padding_mode}'")
    if input.ndim == 5:
        raise NotImplementedError("grid_sample: lamina implements the 4-D (image) form only, not 5-D volumes")
    if mode == "bicubic":
        raise NotImplementedError("grid_sample: mode='bicubic' is not implemented by lamina (use 'bilinear')")
    if input.ndim != 4 or grid.ndim != 4 or grid.shape[-1] != 2:
        raise RuntimeError(f"grid_sampler(): expected 4D input and grid with same number of dimensions and last dim "
                           f"2, but got input with sizes {tuple(input.shape)} and grid with sizes {tuple(grid.shape)}")
    if input.shape[0] != grid.shape[0]:
        raise RuntimeError(f"grid_sampler(): expected grid and input to have same batch size, but got input with "
                           f"sizes {tuple(input.shape)} and grid with sizes {tuple(grid.shape)}")
    if input.dtype != grid.dtype:
        raise RuntimeError(f"grid_sampler(): expected input and grid to have the same dtype, but input has "
                           f"{input.dtype} and grid has {grid.dtype}")
    n, c, h, w = input.shape
    ho, wo = grid.shape[1:3]
    align = bool(align_corners)
    g = grid.reshape(n, ho * wo, 2)
    ix = _source(g[..., 0], w, padding_mode, align)
    iy = _source(g[..., 1], h, padding_mode, align)
    flat = input.reshape(n, c, h * w)
    if mode == "nearest":
        jx, jy = xp.rint(ix.array).astype(xp.int64), xp.rint(iy.array).astype(xp.int64)
        vals, valid = _gather2d(flat, jx, jy, w, h)
        out = where(const(valid[:, None, :]), vals, 0.0)
        # the grid enters with a zero gradient, as torch's (it has one, of zeros)
        out = where(const(xp.zeros((1, 1, 1), dtype=bool)), (ix + iy).unsqueeze(1), out)
        return out.reshape(n, c, ho, wo)
    x0, y0 = xp.floor(ix.array), xp.floor(iy.array)
    wx1 = ix - const(x0.astype(ix.dtype))
    wy1 = iy - const(y0.astype(iy.dtype))
    wx0, wy0 = 1.0 - wx1, 1.0 - wy1
    x0, y0 = x0.astype(xp.int64), y0.astype(xp.int64)
    out = None
    for dx, dy, wgt in ((0, 0, wx0 * wy0), (1, 0, wx1 * wy0), (0, 1, wx0 * wy1), (1, 1, wx1 * wy1)):
        vals, valid = _gather2d(flat, x0 + dx, y0 + dy, w, h)
        term = where(const(valid[:, None, :]), vals * wgt.unsqueeze(1), 0.0)
        out = term if out is None else out + term
    return out.reshape(n, c, ho, wo)
