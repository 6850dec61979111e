"""Which implementation runs each pass of max and average pooling: one ordered table per pass.

A pooling call is described by a frozen :class:`PoolProblem`: the input's shape and dtype, the
window geometry (kernel, stride, padding, dilation and the right padding that ceil mode adds:
:class:`.pool.PoolGeom`) and whether lamina's numba kernels are in use. Never the memory layout
of an array: the same values laid out NCHW or channels-last take the same implementation and
give the same result (an implementation may read either layout its own way).

The passes are ``"max_forward"`` (the maxima and their kernel offsets), ``"max_backward"``
(each gradient to the element its window chose), ``"avg_forward"`` and ``"avg_backward"``;
each table ends with the NumPy implementation, which supports every problem.
:func:`explain` (``lamina.ops.pooling.explain_pool``) tells the choice for a pooling call,
:func:`force` (``force_pool``) picks implementations within a ``with`` block, and
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

__all__ = ["PoolProblem", "PASSES", "SELECTOR", "problem", "select", "choose", "table", "force", "register",
           "explain", "clear_cache"]

PASSES = ("max_forward", "max_backward", "avg_forward", "avg_backward")


@dataclass(frozen=True)
class PoolProblem:
    """A pooling call over an input of ``shape`` (``(*, *in_size)``; the backward passes are
    described by the forward's input too) and the capabilities the choice depends on."""

    shape: tuple[int, ...]
    dtype: str
    geom: Any  # a .pool.PoolGeom: kernel, stride, padding, dilation, sizes, the right padding ceil mode adds
    numba: bool = False  # lamina's numba kernels in use (im2col.use_numba)

    @property
    def nd(self) -> int:
        return len(self.geom.kernel)

    def describe(self) -> str:
        g = self.geom
        return (f"{self.nd}-D pooling of {self.shape}, {self.dtype}, kernel {g.kernel}, stride {g.stride}, "
                f"padding {g.padding} (+{g.pad_after} after), dilation {g.dilation}, numba "
                f"{'on' if self.numba else 'off'}")


def problem(shape: tuple[int, ...], dtype: Any, geom: Any) -> PoolProblem:
    """The :class:`PoolProblem` of pooling an input of ``shape`` and ``dtype`` over ``geom``."""
    return PoolProblem(tuple(int(v) for v in shape), np.dtype(dtype).name, geom, use_numba())


def numba_2d(p: PoolProblem) -> bool:
    """numba, a 2-D window over a non-empty 4-D (N, C, H, W) float input."""
    return (p.numba and p.nd == 2 and len(p.shape) == 4 and p.dtype in ("float32", "float64")
            and all(p.shape) and all(p.geom.out_size))


_DOCS = {
    ("max_forward", "numba"): "numba, 2-D window, 4-D float input: one compiled pass over a channels-last "
                              "input for the maxima and their offsets (channels vectorize in its inner loop: "
                              "the activations lamina's convs leave); an NCHW input takes the offset loop, "
                              "whose one `maximum` per offset over whole planes is the faster there — the same "
                              "values and offsets either way (bench: max_pool2d after a conv in the model steps).",
    ("max_forward", "numpy"): "every problem: one `maximum` per kernel offset over strided views of the padded "
                              "input, the offsets found by equality (the reference).",
    ("max_backward", "numba"): "numba, 2-D window, 4-D float gradient: one compiled scatter, over channels-last "
                               "rows or NCHW planes as the offsets lie (bench: max_pool2d 2x2 and 3x3/2 "
                               "forward + backward).",
    ("max_backward", "numpy"): "every problem: one masked strided add per kernel offset (the reference).",
    ("avg_forward", "numpy"): "every problem: box sums one dim at a time, divided by the window counts.",
    ("avg_backward", "numpy"): "every problem: the gradient over the counts, added back one offset at a time.",
}


def _build_tables() -> dict[str, tuple[Impl, ...]]:
    from . import pool as K  # it imports this module: imported on first use

    runs = {("max_forward", "numba"): K._numba_max_forward, ("max_forward", "numpy"): K._numpy_max_forward,
            ("max_backward", "numba"): K._numba_max_scatter, ("max_backward", "numpy"): K._numpy_max_scatter,
            ("avg_forward", "numpy"): K._numpy_avg_forward, ("avg_backward", "numpy"): K._numpy_avg_backward}
    tables: dict[str, tuple[Impl, ...]] = {}
    for (pass_, name), run in runs.items():
        tables[pass_] = tables.get(pass_, ()) + (Impl(name, numba_2d if name == "numba" else always, run,
                                                      _DOCS[pass_, name]),)
    return tables


SELECTOR = Selector("pool_select", PASSES, _build_tables)


def table(pass_: str, array_type: type = np.ndarray) -> tuple[Impl, ...]:
    """The ordered implementations of ``pass_`` (for arrays of ``array_type``)."""
    return SELECTOR.table(pass_, array_type)


def select(pass_: str, p: PoolProblem, array_type: type = np.ndarray) -> Impl:
    """The implementation that runs ``pass_`` of ``p`` (the forced one, else the first of the
    table that supports it)."""
    return SELECTOR.select(pass_, p, array_type)


def choose(pass_: str, a: Any, geom: Any) -> Impl:
    """The implementation that runs ``pass_`` on the array ``a`` (the input of a forward pass,
    the output gradient of a backward pass; the problem is the input's either way): one
    dictionary look-up for ndarrays seen before; the registered table of ``type(a)`` for other
    array types."""
    def make() -> PoolProblem:
        shape = a.shape if pass_.endswith("forward") else a.shape[:a.ndim - len(geom.kernel)] + geom.in_size
        return problem(shape, a.dtype, geom)
    return SELECTOR.choose((pass_, a.shape, a.dtype, geom, use_numba()), pass_, make, type(a))


def register(array_type: type, pass_: str, impl: Impl) -> None:
    """Give arrays of ``array_type`` (not ndarrays) the implementation ``impl`` of ``pass_``; its
    ``run`` gets the pass's arguments (see :mod:`.pool`'s entry points) with arrays of that type."""
    SELECTOR.register(array_type, pass_, impl)


def clear_cache() -> None:
    """Forget the cached choices."""
    SELECTOR.clear_cache()


@contextmanager
def force(max_forward: str | None = None, max_backward: str | None = None, avg_forward: str | None = None,
          avg_backward: str | None = None) -> Iterator[None]:
    """Within the block (this thread or task only), run each named pass on the named
    implementation; a pass left ``None`` is chosen as usual. Raises ValueError for a name not
    in the pass's table, and a pooling call whose problem the forced implementation does not
    support raises ValueError naming both."""
    with SELECTOR.force(max_forward=max_forward, max_backward=max_backward, avg_forward=avg_forward,
                        avg_backward=avg_backward):
        yield


def explain(x: Any, geom: Any) -> dict[str, str]:
    """The implementation each pass would run on now for pooling the array ``x`` over ``geom``,
    as ``{pass: name}`` (``lamina.ops.pooling.explain_pool`` takes torch's arguments)."""
    p, t = problem(x.shape, x.dtype, geom), type(x)
    return {pass_: select(pass_, p, t).name for pass_ in PASSES}
