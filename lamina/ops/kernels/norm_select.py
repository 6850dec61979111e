"""Which implementation runs each pass of training-mode batch norm: one ordered table per pass.

A batch norm is described by a frozen :class:`NormProblem`: the input's shape and dtype, the
axes it reduces over (every axis but the channels) and whether lamina's numba kernels are in
use. Never the memory layout: the same values laid out NCHW or channels-last take the same
implementation (which reads either layout its own way) and give the same result.

The passes are ``"batch_norm_forward"`` (statistics and the affine map) and
``"batch_norm_backward"`` (the three gradients); each table ends with the NumPy implementation,
which supports every problem. :func:`explain` (``lamina.ops.normalization.explain_norm``) tells
the choice, :func:`force` (``force_norm``) picks implementations within a ``with`` block, and
:func:`register` gives another array type its own implementations (see :mod:`.select`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from .im2col import use_numba
from .select import Impl, Selector, always

__all__ = ["NormProblem", "PASSES", "SELECTOR", "problem", "select", "choose", "table", "force", "register",
           "explain", "clear_cache"]

PASSES = ("batch_norm_forward", "batch_norm_backward")


@dataclass(frozen=True)
class NormProblem:
    """A batch norm of an input of ``shape`` reduced over ``axes``, and the capabilities the
    choice depends on."""

    shape: tuple[int, ...]
    dtype: str
    axes: tuple[int, ...]
    numba: bool = False  # lamina's numba kernels in use (im2col.use_numba)

    def describe(self) -> str:
        return (f"batch norm of {self.shape}, {self.dtype}, over axes {self.axes}, numba "
                f"{'on' if self.numba else 'off'}")


def problem(shape: tuple[int, ...], dtype: Any) -> NormProblem:
    """The :class:`NormProblem` of a batch norm of an input of ``shape`` and ``dtype`` (reduced over
    every axis but 1)."""
    shape = tuple(int(v) for v in shape)
    return NormProblem(shape, np.dtype(dtype).name, (0,) + tuple(range(2, len(shape))), use_numba())


def numba_float(p: NormProblem) -> bool:
    """numba, a non-empty float32/float64 input of 2 or more dims."""
    return p.numba and p.dtype in ("float32", "float64") and len(p.shape) >= 2 and all(p.shape)


_DOCS = {
    ("batch_norm_forward", "numba"):
        "numba, non-empty float input: float64 statistics in one compiled pass over the NCHW planes or the "
        "channels-last rows (another memory order is copied to NCHW first), the affine map in a second; the "
        "NumPy path where the statistics would overflow or cancel (bench: batch_norm2d train).",
    ("batch_norm_forward", "numpy"):
        "every problem: two-pass statistics with the guards at the dtype's extremes, one pass for y (the "
        "reference).",
    ("batch_norm_backward", "numba"):
        "numba, non-empty float input: both sums in one compiled pass over gy and x, gx in a second; the NumPy "
        "path where the forward took it (bench: batch_norm2d train forward + backward).",
    ("batch_norm_backward", "numpy"): "every problem: Σ gy, Σ gy·(x − mean) and gx elementwise (the reference).",
}


def _build_tables() -> dict[str, tuple[Impl, ...]]:
    from . import norm as K  # it imports this module: imported on first use

    return {
        "batch_norm_forward": (
            Impl("numba", numba_float, K._numba_bn_forward, _DOCS["batch_norm_forward", "numba"]),
            Impl("numpy", always, K._numpy_bn_forward, _DOCS["batch_norm_forward", "numpy"])),
        "batch_norm_backward": (
            Impl("numba", numba_float, K._numba_bn_backward, _DOCS["batch_norm_backward", "numba"]),
            Impl("numpy", always, K._numpy_bn_backward, _DOCS["batch_norm_backward", "numpy"])),
    }


SELECTOR = Selector("norm_select", PASSES, _build_tables)


def table(pass_: str, array_type: type = np.ndarray) -> tuple[Impl, ...]:
    """The ordered implementations of ``pass_`` (for arrays of ``array_type``)."""
    return SELECTOR.table(pass_, array_type)


def select(pass_: str, p: NormProblem, array_type: type = np.ndarray) -> Impl:
    """The implementation that runs ``pass_`` of ``p`` (the forced one, else the first of the
    table that supports it)."""
    return SELECTOR.select(pass_, p, array_type)


def choose(pass_: str, x: Any) -> Impl:
    """The implementation that runs ``pass_`` for the batch norm of the array ``x``: one dictionary
    look-up for ndarrays seen before; the registered table of ``type(x)`` for other array types."""
    return SELECTOR.choose((pass_, x.shape, x.dtype, use_numba()), pass_, lambda: problem(x.shape, x.dtype),
                           type(x))


def register(array_type: type, pass_: str, impl: Impl) -> None:
    """Give arrays of ``array_type`` (not ndarrays) the implementation ``impl`` of ``pass_``; its
    ``run`` gets the pass's arguments (see :mod:`.norm`'s entry points) with arrays of that type."""
    SELECTOR.register(array_type, pass_, impl)


def clear_cache() -> None:
    """Forget the cached choices."""
    SELECTOR.clear_cache()


@contextmanager
def force(batch_norm_forward: str | None = None, batch_norm_backward: str | None = None) -> Iterator[None]:
    """Within the block (this thread or task only), run each named pass on the named
    implementation; a pass left ``None`` is chosen as usual. Raises ValueError for a name not
    in the pass's table, and a batch norm whose problem the forced implementation does not
    support raises ValueError naming both."""
    with SELECTOR.force(batch_norm_forward=batch_norm_forward, batch_norm_backward=batch_norm_backward):
        yield


def explain(input: Any) -> dict[str, str]:
    """The implementation each batch-norm pass would run on now for ``input`` (a tensor or array
    ``(N, C, *)``: only its shape, dtype and type count), as ``{pass: name}``."""
    x = getattr(input, "array", input)
    if x.ndim < 2:
        raise ValueError(f"explain_norm: expected an input of shape (N, C, *), got {tuple(x.shape)}")
    p, t = problem(x.shape, x.dtype), type(x)
    return {pass_: select(pass_, p, t).name for pass_ in PASSES}
