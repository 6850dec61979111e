"""Which implementation runs each pass of a convolution: one ordered table per pass, one choice.

A conv is described by a frozen :class:`ConvProblem`: the shapes, the dtype, stride, dilation,
padding, groups, whether it is a transposed conv, and the capabilities detected now (numba in
use, lamina keeping BLAS on one thread, NumPy's OpenBLAS CBLAS ``gemm`` found, the small-GEMM
pieces turned on, the threads lamina's kernels may use from here). Never the memory layout of
an array: the same values laid out NCHW or channels-last take the same implementation and give
the same result.

Each pass — ``"forward"``, ``"input_grad"`` (also the forward of a transposed conv) and
``"weight_grad"`` — has one table of :class:`Impl` tried in order. Each says which problems it
computes correctly (``supports``) and, of those, which it is the fastest choice for at its place
in the table (``prefers``: the tuned thresholds); the first for which both hold runs
(:func:`select`, cached per problem: choosing costs a dictionary look-up). Every
table ends with the NumPy reference, which supports everything. :func:`explain` tells the choice
for a conv, :func:`force` picks implementations within a ``with`` block (tests run each pass on
every implementation that supports a problem and compare it with the reference).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from math import prod
from typing import Any

import numpy as np

from ... import runtime
from . import colgemm_numba, threads
from . import conv_direct as _direct
from . import conv_plan as _plan
from .im2col import use_numba
from .select import Impl, Selector

__all__ = ["ConvProblem", "Impl", "PASSES", "SELECTOR", "problem", "select", "choose", "table", "force", "explain",
           "register", "clear_cache"]

PASSES = ("forward", "input_grad", "weight_grad")


@dataclass(frozen=True)
class ConvProblem:
    """One conv ``x (n, c, *size) ⋆ w (k, c/groups, *ksize) → y (n, k, *out)`` and the capabilities
    the choice depends on. For a transposed conv it is the conv whose input gradient the
    transposed conv computes (``transposed`` says so; :func:`explain` names the passes as the
    transposed conv sees them)."""

    n: int
    c: int
    k: int
    size: tuple[int, ...]
    ksize: tuple[int, ...]
    out: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pad_lo: tuple[int, ...]
    groups: int
    dtype: str
    transposed: bool = False
    numba: bool = False  # lamina's numba kernels in use (im2col.use_numba)
    blas_one_thread: bool = False  # lamina keeps BLAS on one thread and splits products itself
    cblas_gemm: bool = False  # NumPy's OpenBLAS CBLAS gemm found for this dtype (the colgemm kernels call it)
    small_gemm: bool = False  # LAMINA_SMALL_GEMM=1: products cut into OpenBLAS small-kernel pieces
    threads: int = 1  # threads lamina's kernels may use from the calling thread now

    @property
    def nd(self) -> int:
        return len(self.size)

    @property
    def cg(self) -> int:
        """Input channels per group."""
        return self.c // self.groups

    @property
    def itemsize(self) -> int:
        return np.dtype(self.dtype).itemsize

    @property
    def float(self) -> bool:
        return self.dtype in ("float32", "float64")

    def describe(self) -> str:
        t = "transposed " if self.transposed else ""
        return (f"{t}{self.nd}-D conv of ({self.n}, {self.c}, {', '.join(map(str, self.size))}) with a "
                f"({self.k}, {self.cg}, {', '.join(map(str, self.ksize))}) weight, {self.dtype}, stride {self.stride}, "
                f"dilation {self.dilation}, padding {self.pad_lo}, groups {self.groups}, numba "
                f"{'on' if self.numba else 'off'}")


def problem(xshape: Sequence[int], wshape: Sequence[int], dtype: Any, stride: Sequence[int],
            dilation: Sequence[int], pad_lo: Sequence[int], out: Sequence[int], groups: int,
            transposed: bool = False) -> ConvProblem:
    """The :class:`ConvProblem` of a conv of an ``xshape`` input with a ``wshape`` weight into
    spatial size ``out``, with the capabilities detected now."""
    dt = np.dtype(dtype)
    return ConvProblem(int(xshape[0]), int(xshape[1]), int(wshape[0]), tuple(int(v) for v in xshape[2:]),
                       tuple(int(v) for v in wshape[2:]), tuple(int(v) for v in out),
                       tuple(int(v) for v in stride), tuple(int(v) for v in dilation),
                       tuple(int(v) for v in pad_lo), int(groups), dt.name, bool(transposed),
                       use_numba(), runtime.blas_controlled(), colgemm_numba.gemm_address(dt) != 0,
                       threads.SMALL_GEMM, threads.parallel_slots(1 << 30))


# ----------------------------------------------------------------------------- predicates

def pointwise(p: ConvProblem) -> bool:
    """A 1×1 conv with stride 1 and no padding (a plain batched GEMM on the NCHW arrays)."""
    return (all(k == 1 for k in p.ksize) and all(s == 1 for s in p.stride) and not any(p.pad_lo)
            and p.size == p.out)


def direct(p: ConvProblem) -> bool:
    """numba, 1-D or 2-D, float."""
    return p.numba and p.nd in (1, 2) and p.float


def direct_prefers(p: ConvProblem) -> bool:
    """One channel per group, a grouped conv whose window is at most
    :data:`.conv_direct.DIRECT_MAX_WINDOW` long, or a stride-1 conv whose window is at most
    :data:`.conv_direct.FLAT_MAX_WINDOW` long."""
    window = p.cg * prod(p.ksize)
    if p.cg == 1 or (p.groups > 1 and window <= _direct.DIRECT_MAX_WINDOW):
        return True
    return all(s == 1 for s in p.stride) and window <= _direct.FLAT_MAX_WINDOW


def depthwise(p: ConvProblem) -> bool:
    """One input and one output channel per group, more than one group."""
    return p.groups > 1 and p.cg == 1 and p.k == p.groups


def _colgemm_ok(p: ConvProblem) -> bool:
    return p.numba and colgemm_numba.AVAILABLE and 1 <= p.nd <= 3 and p.cblas_gemm


def _fused_piece(p: ConvProblem, length: int, k: int, m: int, width: int, row_work: int) -> int:
    """Rows per colgemm piece (0: none) for ``(rows, k) @ (k, m)`` products of ``width``-wide column
    rows (``row_work`` multiply-adds per row), ``length`` rows per image, as :mod:`.conv_gemm`
    sizes them for the pass through :mod:`.conv_plan`."""
    slots, _, step, piece = _plan.plan(p.n, length * width * p.itemsize, length, k, m, p.groups)
    return _plan.fused_piece(piece, slots, step * length, step * length * row_work, width, p.itemsize)


def colgemm(p: ConvProblem) -> bool:
    """numba, 1–3-D, float, a CBLAS gemm of this dtype in NumPy's OpenBLAS."""
    return _colgemm_ok(p) and p.float


def colgemm_prefers(pass_: str) -> Callable[[ConvProblem], bool]:
    """Whether the selector takes the colgemm kernels for the pass: pieces to make (BLAS kept on
    one thread or small-GEMM pieces, and no single product better split over the threads)."""
    def prefers(p: ConvProblem) -> bool:
        width = p.c * prod(p.ksize)
        length = prod(p.out)
        if pass_ == "forward":  # (the per-row work of one group's product, as conv_gemm's forward counts it)
            return _fused_piece(p, length, width // p.groups, p.k, width, width // p.groups * p.k // p.groups) > 0
        if pass_ == "input_grad":
            return _fused_piece(p, length, p.k, width, width, width * p.k // p.groups) > 0
        return _fused_piece(p, length, width, p.k, width, width * p.k // p.groups) > 0
    return prefers


def always(p: ConvProblem) -> bool:
    """Every problem."""
    return True


# ----------------------------------------------------------------------------- tables and choice

# what each implementation supports and where it earns its place (the bench_conv case)
_DOCS = {
    "pointwise": "1×1 convs with stride 1 and no padding: one batched GEMM on the NCHW arrays, no column "
                 "matrix and no transpose (bench: conv2d 1x1 256->64).",
    "direct": "numba, 1-/2-D, float: one channel per group (depthwise, 1-channel images), grouped convs with "
              "windows of ≤ 64 multiply-adds, stride-1 convs with windows ≤ 32 (a first layer): compiled tap "
              "loops on NCHW planes (bench: LeNet c1, depthwise 3x3).",
    "depthwise": "one channel in and out per group (depthwise), any dims and dtype: ∏k multiply-adds over "
                 "the padded channels-last copy (compiled where numba runs); where the direct kernels do "
                 "not (3-D, numba off).",
    "colgemm": "numba, 1–3-D, float, a CBLAS gemm in NumPy's OpenBLAS: the columns built and multiplied a "
               "piece at a time in compiled loops, no column matrix; taken where BLAS is kept on one thread "
               "(or small-GEMM pieces). Earns its place on the input gradient (col2im fused: 1.31x im2col's "
               "speed on bench LeNet c3) and the weight gradient (1.16x on conv2d 3x3); its forward gains "
               "7-11 % (3x3, c3), under the 15 % a kernel needs: a candidate for removal (bench/ablate_conv.py).",
    "im2col": "every conv: channels-last im2col, one GEMM per chunk of images (per group), col2im for the "
              "input gradient; the path without numba.",
    "reference": "every conv: NumPy einsum per kernel tap on NCHW (the yardstick tests compare with).",
}
_NAMES = ("pointwise", "direct", "depthwise", "colgemm", "im2col", "reference")


def _build_tables() -> dict[str, tuple[Impl, ...]]:
    """``{pass: (Impl, …)}`` in :data:`_NAMES`' order; the runs are :mod:`.conv_gemm`'s."""
    from . import conv_gemm as G  # noqa: N812 - it imports this module: imported on first use

    runs = {
        "forward": (G._pointwise_forward, G._direct_forward, G._depthwise_forward,
                    G._colgemm_forward, G._im2col_forward, G._reference_forward),
        "input_grad": (G._pointwise_input_grad, G._direct_input_grad,
                       G._depthwise_input_grad, G._colgemm_input_grad, G._im2col_input_grad,
                       G._reference_input_grad),
        "weight_grad": (G._pointwise_weight_grad, G._direct_weight_grad,
                        G._depthwise_weight_grad, G._colgemm_weight_grad, G._im2col_weight_grad,
                        G._reference_weight_grad),
    }
    tables = {}
    for pass_, fns in runs.items():
        supports = (pointwise, direct, depthwise, colgemm, always, always)
        prefers = (always, direct_prefers, always, colgemm_prefers(pass_), always, always)
        tables[pass_] = tuple(Impl(nm, sup, fn, _DOCS[nm], pre)
                              for nm, sup, fn, pre in zip(_NAMES, supports, fns, prefers))
    return tables


SELECTOR = Selector("conv_select", PASSES, _build_tables)


def table(pass_: str, array_type: type = np.ndarray) -> tuple[Impl, ...]:
    """The ordered implementations of ``pass_`` (for arrays of ``array_type``)."""
    return SELECTOR.table(pass_, array_type)


def select(pass_: str, p: ConvProblem, array_type: type = np.ndarray) -> Impl:
    """The implementation that runs ``pass_`` of ``p``: the one :func:`force` asked for, else the
    first of the pass's table that supports ``p``. Raises ValueError where a forced
    implementation does not support ``p``."""
    return SELECTOR.select(pass_, p, array_type)


def register(array_type: type, pass_: str, impl: Impl) -> None:
    """Give arrays of ``array_type`` (not ndarrays) the implementation ``impl`` of ``pass_``: its
    ``run`` gets the arguments the NumPy implementations of the pass get (see
    :mod:`.conv_gemm`), with arrays of that type."""
    SELECTOR.register(array_type, pass_, impl)


def clear_cache() -> None:
    """Forget the cached choices (after changing a tuned constant, as tests do)."""
    SELECTOR.clear_cache()
    _FAST.clear()


# (pass, shapes, dtype, settings, capabilities) -> (problem, impl): what the kernels' entry points
# look up on every call, so that a conv seen before costs one dictionary look-up
_FAST: dict[tuple[Any, ...], tuple[ConvProblem, Impl]] = {}
_FAST_MAX = 4096


def choose(pass_: str, xshape: tuple[int, ...], wshape: tuple[int, ...], dtype: Any, stride: Sequence[int],
           dilation: Sequence[int], pad_lo: Sequence[int], out: Sequence[int],
           groups: int, array_type: type = np.ndarray) -> tuple[ConvProblem, Impl]:
    """``(problem, select(pass_, problem, array_type))`` for :func:`problem`'s arguments, cached
    for ndarrays on them and on the capabilities detected now (the same choice as building the
    problem every time)."""
    if array_type is not np.ndarray:
        p = problem(xshape, wshape, dtype, stride, dilation, pad_lo, out, groups)
        return p, select(pass_, p, array_type)
    forced = SELECTOR.forcing()
    try:
        key = (pass_, xshape, wshape, dtype, tuple(stride), tuple(dilation), tuple(pad_lo), tuple(out), groups,
               use_numba(), runtime.blas_controlled(), threads.SMALL_GEMM, threads.parallel_slots(1 << 30))
        hit = None if forced else _FAST.get(key)
    except TypeError:  # an unhashable setting: build the problem
        key, hit = None, None
    if hit is not None:
        return hit
    p = problem(xshape, wshape, dtype, stride, dilation, pad_lo, out, groups)
    impl = select(pass_, p)
    if key is not None and not forced:
        if len(_FAST) >= _FAST_MAX:
            _FAST.clear()
        _FAST[key] = (p, impl)
    return p, impl


@contextmanager
def force(forward: str | None = None, input_grad: str | None = None,
          weight_grad: str | None = None) -> Iterator[None]:
    """Within the block (this thread or task only), run each named pass on the named
    implementation; a pass left ``None`` is chosen as usual. Raises ValueError for a name not
    in the pass's table; a conv whose problem the forced implementation does not support raises
    ValueError naming both."""
    with SELECTOR.force(forward=forward, input_grad=input_grad, weight_grad=weight_grad):
        yield


def _tuple(value: Any, nd: int, name: str) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),) * nd
    if isinstance(value, (tuple, list)) and len(value) == nd and all(isinstance(v, (int, np.integer)) for v in value):
        return tuple(int(v) for v in value)
    raise ValueError(f"explain_conv: {name} must be an int or a tuple of {nd} ints, got {value!r}")


def explain(input: Any, weight: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1,
            transposed: bool = False, output_padding: Any = 0) -> dict[str, str]:
    """The implementation each pass of a conv would run on now, as ``{pass: name}``.

    ``input`` and ``weight`` are tensors or arrays (only their shapes, dtype and array type count) with the
    meaning of ``torch.nn.functional.conv{1,2,3}d`` (``transposed=False``) or
    ``conv_transpose{1,2,3}d`` (``transposed=True``: ``weight (C_in, C_out/groups, *k)``, and
    ``"forward"`` is the transposed conv's forward); ``padding`` as ints.
    """
    x, w = getattr(input, "array", input), getattr(weight, "array", weight)
    t = type(x)
    nd = w.ndim - 2
    if nd < 1 or x.ndim != nd + 2:
        raise ValueError(f"explain_conv: expected a batched {nd + 2}-D input for a {w.ndim}-D weight, got shape "
                         f"{tuple(x.shape)}")
    s, d = _tuple(stride, nd, "stride"), _tuple(dilation, nd, "dilation")
    pad, op = _tuple(padding, nd, "padding"), _tuple(output_padding, nd, "output_padding")
    k = w.shape[2:]
    if transposed:  # the conv whose input gradient this is: (N, C_out, *size) -> (N, C_in, *S)
        size = tuple((i - 1) * st - 2 * p + dl * (kk - 1) + o + 1
                     for i, st, p, dl, kk, o in zip(x.shape[2:], s, pad, d, k, op))
        prob = problem((x.shape[0], w.shape[1] * groups, *size), w.shape, x.dtype, s, d, pad, x.shape[2:], groups,
                       transposed=True)
        return {"forward": select("input_grad", prob, t).name, "input_grad": select("forward", prob, t).name,
                "weight_grad": select("weight_grad", prob, t).name}
    out = tuple((i + 2 * p - dl * (kk - 1) - 1) // st + 1 for i, st, p, dl, kk in zip(x.shape[2:], s, pad, d, k))
    prob = problem(x.shape, w.shape, x.dtype, s, d, pad, out, groups)
    return {pass_: select(pass_, prob, t).name for pass_ in PASSES}
