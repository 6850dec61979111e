"""Sets and cleaning: ``unique``, ``isin``, ``nan_to_num``, and ``cdist`` (pairwise distances).

``unique`` and ``isin`` give indices and masks (no gradient, as torch's). ``nan_to_num`` is a
``where``: the replaced entries get no gradient, the others pass it through. ``cdist`` is the
``vector_norm`` of the pairwise differences, so its gradient at a zero distance is 0, as torch's.
"""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd.tensor import Tensor, register
from .common import check_tensor, const, normalize_dim
from .norms import vector_norm
from .selection import where

__all__ = ["unique", "isin", "nan_to_num", "cdist"]

xp = backend.xp


@register("unique")
def unique(input: Tensor, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False,  # noqa: A002
           dim: int | None = None) -> Any:
    """The distinct elements (``dim=None``, flattened) or distinct slices along ``dim``, sorted.

    Returns the values, and with ``return_inverse`` the index of each input element (slice) in them
    (shaped as the input, or along ``dim``), and with ``return_counts`` how often each occurs.
    The result is sorted also for ``sorted=False`` (torch's CPU order is unspecified there).
    """
    check_tensor(input, "unique")
    a = input.array
    if dim is None:
        vals, inv, counts = xp.unique(a.reshape(-1), return_inverse=True, return_counts=True)
        inv = inv.reshape(a.shape)
    else:
        d = normalize_dim(dim, input.ndim, "unique")
        if a.shape[d] == 0:
            vals, inv, counts = a, xp.zeros(0, dtype=xp.int64), xp.zeros(0, dtype=xp.int64)
        else:
            vals, inv, counts = xp.unique(a, return_inverse=True, return_counts=True, axis=d)
            inv = inv.reshape(-1)
    out = [const(vals)]
    if return_inverse:
        out.append(const(inv.astype(backend.int64)))
    if return_counts:
        out.append(const(counts.astype(backend.int64)))
    return out[0] if len(out) == 1 else tuple(out)


def isin(elements: Any, test_elements: Any, *, assume_unique: bool = False, invert: bool = False) -> Tensor:
    """A bool tensor shaped as ``elements``: whether each is in ``test_elements`` (either may be a number)."""
    if not isinstance(elements, Tensor) and not isinstance(test_elements, Tensor):
        raise TypeError("isin: expected elements or test_elements to be a Tensor")
    e = elements.array if isinstance(elements, Tensor) else xp.asarray(elements)
    t = test_elements.array if isinstance(test_elements, Tensor) else xp.asarray(test_elements)
    return const(xp.isin(e, t, assume_unique=assume_unique, invert=invert))


@register("nan_to_num")
def nan_to_num(input: Tensor, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None) -> Tensor:
    """nan → ``nan``, +inf → ``posinf``, −inf → ``neginf`` (default: the dtype's largest and smallest
    finite values); integer inputs come back unchanged."""
    check_tensor(input, "nan_to_num")
    if input.dtype.kind != "f":
        return input
    a = input.array
    fi = xp.finfo(a.dtype)
    hi = fi.max if posinf is None else posinf
    lo = fi.min if neginf is None else neginf
    fill = xp.where(xp.isnan(a), nan, xp.where(a > 0, hi, lo)).astype(a.dtype)
    return where(const(~xp.isfinite(a)), const(fill), input)


@register("nan_to_num_")
def nan_to_num_(self: Tensor, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None) -> Tensor:
    """In-place :func:`nan_to_num`."""
    from .inplace import apply_inplace

    return apply_inplace(self, "nan_to_num_", lambda src: nan_to_num(src, nan, posinf, neginf),
                         lambda: self.array.__setitem__(Ellipsis, nan_to_num(self.detach(), nan, posinf, neginf).array))


def cdist(x1: Tensor, x2: Tensor, p: float = 2.0, compute_mode: str = "use_mm_for_euclid_dist_if_necessary") -> Tensor:
    """The ``p``-norm distance between each row of ``x1`` ``(*, P, M)`` and each of ``x2`` ``(*, R, M)``:
    ``(*, P, R)``, batch dims broadcast.

    lamina forms the differences directly for every ``compute_mode`` (torch's matrix-product shortcut
    for the Euclidean case is faster for large inputs but loses digits for close points).
    """
    check_tensor(x1, "cdist", "x1")
    check_tensor(x2, "cdist", "x2")
    if x1.ndim < 2 or x2.ndim < 2:
        raise RuntimeError(f"cdist only supports at least 2D tensors, X1 got: {x1.ndim}D, X2 got: {x2.ndim}D")
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"X1 and X2 must have the same number of columns. X1: {x1.shape[-1]} X2: {x2.shape[-1]}")
    if x1.dtype.kind != "f" or x2.dtype.kind != "f":
        raise RuntimeError(f"cdist only supports floating-point dtypes, X1 got: {x1.dtype}, X2 got: {x2.dtype}")
    if p < 0:
        raise RuntimeError(f"cdist only supports non-negative p values, got {p}")
    if compute_mode not in ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist",
                            "donot_use_mm_for_euclid_dist"):
        raise ValueError(f"{compute_mode} is not a valid value for compute_mode")
    diff = x1.unsqueeze(-2) - x2.unsqueeze(-3)
    return vector_norm(diff, p, dim=-1)
