"""Conv arithmetic: output sizes, parameter counts and receptive fields of conv/pool stacks.

The formulas (per spatial dim, ``n`` the input size, ``k`` kernel, ``s`` stride, ``p``
padding, ``d`` dilation):

- convolution and pooling: ``out = ⌊(n + 2p − d(k − 1) − 1)/s⌋ + 1`` (pooling's ``ceil_mode``
  rounds up instead, and drops a last window that would start in the right padding);
- transposed convolution: ``out = (n − 1)s − 2p + d(k − 1) + output_padding + 1``;
- a conv layer has ``C_out · (C_in/groups) · Πk`` weights plus ``C_out`` biases;
- receptive field of a stack, layer by layer (``k_eff = d(k − 1) + 1``):
  ``jump ← jump·s``, ``size ← size + (k_eff − 1)·jump_before``,
  ``start ← start + ((k_eff − 1)/2 − p)·jump_before``, from ``size = jump = 1``, ``start = 0``
  (``start`` is the input coordinate of the centre of the first output's field, in pixels
  from the centre of the first input pixel).

``strict=True`` turns the lecture's "illegal stride" into an error: when ``s`` does not
divide ``n + 2p − d(k − 1) − 1``, the last input rows are silently dropped — strict mode says
so, naming the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

__all__ = ["conv_output_size", "conv_transpose_output_size", "pool_output_size", "conv_parameter_count",
           "ReceptiveField", "receptive_field", "receptive_fields"]


def _tuple(v: Any) -> tuple[int, ...] | None:
    if isinstance(v, Sequence) and not isinstance(v, str):
        return tuple(int(i) for i in v)
    return None


def _per_dim(fn: Any, size: Any, *args: Any, **kwargs: Any) -> Any:
    """Apply the 1-D ``fn`` per dim when ``size`` or any argument is a tuple."""
    seqs = [_tuple(a) for a in (size, *args)]
    n = max((len(s) for s in seqs if s is not None), default=0)
    if n == 0:
        return fn(size, *args, **kwargs)
    for s in seqs:
        if s is not None and len(s) != n:
            raise ValueError(f"{fn.__name__.lstrip('_')}: per-dim arguments have different lengths: "
                             f"{[a for a in (size, *args)]}")
    cols = [s if s is not None else (a,) * n for s, a in zip(seqs, (size, *args))]
    return tuple(fn(*[c[i] for c in cols], dim=i, **kwargs) for i in range(n))


def _check(op: str, k: int, s: int, p: int, d: int) -> None:
    if k <= 0 or s <= 0 or d <= 0:
        raise ValueError(f"{op}: kernel_size, stride and dilation must be positive, got kernel_size={k}, "
                         f"stride={s}, dilation={d}")
    if p < 0:
        raise ValueError(f"{op}: padding must be non-negative, got {p}")


def _conv(n: int, k: int, s: int, p: int, d: int, dim: int = 0, strict: bool = False, op: str = "conv") -> int:
    _check(op, k, s, p, d)
    span = n + 2 * p - d * (k - 1) - 1
    if span < 0:
        raise ValueError(f"{op}_output_size: the kernel (extent d(k−1)+1 = {d * (k - 1) + 1}) is larger than "
                         f"the padded input (n + 2p = {n} + 2·{p} = {n + 2 * p}) in dim {dim}")
    if strict and span % s:
        raise ValueError(
            f"{op}_output_size: stride {s} does not fit dim {dim}: n + 2p − d(k−1) − 1 = {n} + 2·{p} − "
            f"{d}·({k}−1) − 1 = {span} is not divisible by {s}; the last {span % s} input row(s) would be "
            f"ignored (pad to {n + s - span % s} or use stride dividing {span})"
        )
    return span // s + 1


def conv_output_size(size: Any, kernel_size: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
                     strict: bool = False) -> Any:
    """Output size of a convolution, ``⌊(n + 2p − d(k−1) − 1)/s⌋ + 1`` per dim.

    Args:
        size: input size (int, or a tuple for several dims).
        kernel_size, stride, padding, dilation: ints or per-dim tuples; ``padding`` may be
            ``'valid'`` (0) or ``'same'`` (output = input, stride 1).
        strict: raise ``ValueError`` when the stride does not divide
            ``n + 2p − d(k−1) − 1`` (input rows would be silently dropped).

    Returns:
        An int, or a tuple when any argument is a tuple.

    Example:
        >>> conv_output_size(32, 5)
        28
        >>> conv_output_size((28, 28), 3, stride=2, padding=1)
        (14, 14)
        >>> conv_output_size(32, 3, stride=2, strict=True)
        Traceback (most recent call last):
        ...
        ValueError: conv_output_size: stride 2 does not fit dim 0: n + 2p − d(k−1) − 1 = 32 + 2·0 − 1·(3−1) − 1 = 29 is not divisible by 2; the last 1 input row(s) would be ignored (pad to 33 or use stride dividing 29)
    """  # noqa: E501
    if padding == "valid":
        padding = 0
    if padding == "same":
        if any(s != 1 for s in (_tuple(stride) or (int(stride),))):
            raise ValueError(f"conv_output_size: padding='same' is not supported for strided convolutions "
                             f"(stride={stride})")
        return _tuple(size) or int(size)
    return _per_dim(_conv, size, kernel_size, stride, padding, dilation, strict=strict, op="conv")


def _convt(n: int, k: int, s: int, p: int, op_: int, d: int, dim: int = 0) -> int:
    _check("conv_transpose_output_size", k, s, p, d)
    if not 0 <= op_ < max(s, d):
        raise ValueError(f"conv_transpose_output_size: output_padding must be smaller than either stride or "
                         f"dilation, got output_padding={op_}, stride={s}, dilation={d} (dim {dim})")
    out = (n - 1) * s - 2 * p + d * (k - 1) + op_ + 1
    if out <= 0:
        raise ValueError(f"conv_transpose_output_size: output size {out} is not positive in dim {dim}")
    return out


def conv_transpose_output_size(size: Any, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                               output_padding: Any = 0, dilation: Any = 1) -> Any:
    """Output size of a transposed convolution, ``(n − 1)s − 2p + d(k − 1) + output_padding + 1``.

    Example:
        >>> conv_transpose_output_size(16, 4, stride=2, padding=1)
        32
    """
    return _per_dim(_convt, size, kernel_size, stride, padding, output_padding, dilation)


def _pool(n: int, k: int, s: int, p: int, d: int, dim: int = 0, ceil_mode: bool = False,
          strict: bool = False) -> int:
    if p > k // 2:  # torch's pools reject it (a window could then lie wholly in the padding)
        raise ValueError(f"pool_output_size: padding should be at most half of the kernel size, got padding={p} "
                         f"and kernel_size={k} in dim {dim}")
    if ceil_mode:
        # strict: the stride must fit exactly with ceil_mode too (a partial last window is the
        # same "illegal stride", taken in instead of dropped)
        _conv(n, k, s, p, d, dim, strict, "pool")  # the argument checks, and strict's
        span = n + 2 * p - d * (k - 1) - 1
        out = -(-span // s) + 1
        if (out - 1) * s >= n + p:
            out -= 1
        return out
    return _conv(n, k, s, p, d, dim, strict, "pool")


def pool_output_size(size: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                     ceil_mode: bool = False, strict: bool = False) -> Any:
    """Output size of max/average pooling (torch's rule, ``ceil_mode`` included); ``stride``
    defaults to ``kernel_size``.

    Example:
        >>> pool_output_size(7, 2), pool_output_size(7, 2, ceil_mode=True)
        (3, 4)
    """
    return _per_dim(_pool, size, kernel_size, kernel_size if stride is None else stride, padding, dilation,
                    ceil_mode=ceil_mode, strict=strict)


def conv_parameter_count(in_channels: int, out_channels: int, kernel_size: Any, groups: int = 1,
                         bias: bool = True, dim: int = 2) -> int:
    """Learnable parameters of a conv layer: ``C_out·(C_in/groups)·Πk (+ C_out)``; an int
    ``kernel_size`` stands for ``dim`` spatial dims (default 2, as ``Conv2d``).

    Example:
        >>> conv_parameter_count(3, 64, 3)
        1792
        >>> conv_parameter_count(32, 32, 3, groups=32, bias=False)  # depthwise
        288
    """
    if groups <= 0 or in_channels % groups or out_channels % groups:
        raise ValueError(f"conv_parameter_count: in_channels ({in_channels}) and out_channels ({out_channels}) "
                         f"must be divisible by groups ({groups})")
    k = _tuple(kernel_size) or (int(kernel_size),) * dim
    return out_channels * (in_channels // groups) * math.prod(k) + (out_channels if bias else 0)


class ReceptiveField(NamedTuple):
    """Receptive field of one unit after a layer: ``size`` input pixels wide, neighbouring units
    ``jump`` input pixels apart, the first unit's field centred at input coordinate ``start``."""

    size: int
    jump: int
    start: float


def _layer(spec: Any, dim: int = 0) -> tuple[int, int, int, int]:
    """``(k, s, p, d)`` of a module (kernel_size/stride/padding/dilation attributes), a dict, or
    a tuple ``(k, s[, p[, d]])``, in spatial dim ``dim`` (an int value holds for every dim)."""
    def first(v: Any) -> int:
        t = _tuple(v)
        if not t:
            return int(v)
        if len(t) == 1:
            return t[0]
        if dim >= len(t):
            raise ValueError(f"receptive_field: dim {dim} asked of a layer with {len(t)} spatial dims ({spec!r})")
        return t[dim]
    if isinstance(spec, dict):
        get = spec.get
    elif isinstance(spec, Sequence):
        vals = list(spec) + [0, 1][len(spec) - 2:] if len(spec) < 4 else list(spec)
        return first(vals[0]), first(vals[1]), first(vals[2]), first(vals[3])
    else:
        def get(name: str, default: Any = None) -> Any:
            return getattr(spec, name, default)
    k = get("kernel_size")
    if k is None:
        raise ValueError(f"receptive_field: {spec!r} has no kernel_size")
    s = get("stride", None)
    p = get("padding", 0)
    if isinstance(p, str):
        p = first(get("dilation", 1)) * (first(k) - 1) // 2 if p == "same" else 0  # the conv's left pad
    return first(k), first(k if s is None else s), first(p), first(get("dilation", 1) or 1)


def receptive_fields(layers: Iterable[Any], dim: int = 0) -> list[ReceptiveField]:
    """The receptive field after each layer of a stack, along spatial dim ``dim`` (0: the
    height of a 2-D stack, 1: its width; the arithmetic is per dim).

    Args:
        layers: modules with ``kernel_size``/``stride``/``padding``/``dilation`` (conv and
            pooling layers; others, e.g. ReLU, are skipped), dicts with those keys, or tuples
            ``(kernel, stride[, padding[, dilation]])``.
        dim: which spatial dim of tuple-valued sizes to follow.

    Example:
        >>> [tuple(r) for r in receptive_fields([(3, 1, 1), (2, 2), (3, 1, 1)])]
        [(3, 1, 0.0), (4, 2, 0.5), (8, 2, 0.5)]
    """
    out = []
    size, jump, start = 1, 1, 0.0
    for spec in layers:
        if not isinstance(spec, (dict, Sequence)) and not hasattr(spec, "kernel_size"):
            continue
        k, s, p, d = _layer(spec, dim)
        _check("receptive_field", k, s, p, d)
        k_eff = d * (k - 1) + 1
        start = start + ((k_eff - 1) / 2 - p) * jump
        size = size + (k_eff - 1) * jump
        jump = jump * s
        out.append(ReceptiveField(size, jump, start))
    return out


def receptive_field(layers: Iterable[Any], dim: int = 0) -> ReceptiveField:
    """The receptive field of a unit at the top of a stack, along spatial dim ``dim``; see
    :func:`receptive_fields`.

    Example:
        >>> receptive_field([(5, 1), (2, 2), (5, 1), (2, 2)]).size  # LeNet-5's conv/pool stack
        16
        >>> from lamina import nn
        >>> stack = [nn.Conv2d(1, 1, (3, 5)), nn.Conv2d(1, 1, (3, 5))]
        >>> receptive_field(stack, dim=0).size, receptive_field(stack, dim=1).size
        (5, 9)
    """
    fields = receptive_fields(layers, dim)
    return fields[-1] if fields else ReceptiveField(1, 1, 0.0)
