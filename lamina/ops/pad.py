"""``pad``: constant, reflect, replicate and circular padding (``torch.nn.functional.pad``).

Constant padding is a primitive whose backward crops. The other modes are built from
``index_select`` along each padded dim with an index map (for reflect on a row of 4:
``[2, 1, 0, 1, 2, 3, 2, 1]``…), so their backward is the scatter-add that index_select already
has: a border pixel that was copied three times receives three gradients.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import backend
from ..autograd.function import Context, Function
from ..autograd.tensor import Tensor
from .common import check_tensor, const
from .indexing import getitem, index_select

__all__ = ["pad", "pad_index"]

xp = backend.xp


class ConstantPad(Function):
    @staticmethod
    def forward(ctx: Context, x: Any, widths: tuple[tuple[int, int], ...], value: float) -> Any:
        ctx.widths = widths
        pos = [(max(a, 0), max(b, 0)) for a, b in widths]
        y = xp.pad(x, pos, mode="constant", constant_values=value) if any(a or b for a, b in pos) else x
        crop = tuple(slice(-min(a, 0), y.shape[i] + min(b, 0)) for i, (a, b) in enumerate(widths))
        return backend.get_array_module(y).ascontiguousarray(y[crop])

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        # the adjoint of padding by (a, b) is padding by (−a, −b): negative widths crop
        return ConstantPad.apply(gy, widths=tuple((-a, -b) for a, b in ctx.widths), value=0.0)


def pad_index(n: int, before: int, after: int, mode: str) -> Any:
    """Source index, in ``0 … n−1``, of each position of a dim of size ``n`` padded by
    ``(before, after)`` in ``mode`` (``'reflect'``, ``'replicate'`` or ``'circular'``)."""
    p = xp.arange(-before, n + after)
    if mode == "replicate":
        return xp.clip(p, 0, n - 1)
    if mode == "circular":
        return p % n
    if n == 1:
        return xp.zeros_like(p)
    period = 2 * (n - 1)
    q = p % period
    return xp.where(q < n, q, period - q)


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad the last ``len(pad) // 2`` dims of ``input``.

    ``pad`` lists (left, right) widths starting from the last dim, as torch:
    ``(left, right, top, bottom, …)``. Negative widths crop (constant mode).

    Args:
        input: the tensor.
        pad: the widths; an even number of ints, at most ``2 * input.ndim``.
        mode: ``'constant'``, ``'reflect'`` (mirror without repeating the edge),
            ``'replicate'`` (repeat the edge) or ``'circular'`` (wrap around).
        value: the fill value for constant mode (default 0).

    Shape:
        ``(*, d_k)`` → ``(*, d_k + before_k + after_k)`` for each padded dim.

    Example:
        >>> import lamina
        >>> lamina.nn.functional.pad(lamina.tensor([1., 2., 3.]), (2, 1), mode='reflect').tolist()
        [3.0, 2.0, 1.0, 2.0, 3.0, 2.0]

    Unlike torch, reflect/replicate/circular accept any number of padded dims on any rank.
    """
    check_tensor(input, "pad")
    pad = [int(p) for p in pad]
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(
            f"pad: padding length must be even and at most 2 * input.ndim ({2 * input.ndim}), "
            f"got {len(pad)}"
        )
    k = len(pad) // 2
    widths = [(0, 0)] * (input.ndim - k) + [(pad[2 * i], pad[2 * i + 1]) for i in reversed(range(k))]
    if mode == "constant":
        for d, (a, b) in enumerate(widths):
            if input.shape[d] + a + b < 0:
                raise ValueError(f"pad: the padded size of dim {d} would be negative")
        v = 0.0 if value is None else value
        if input.dtype.kind != "f":
            return const(ConstantPad.forward(Context(()), input.array, tuple(widths), v))
        return ConstantPad.apply(input, widths=tuple(widths), value=v)
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(
            f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}"
        )
    if value not in (None, 0, 0.0):
        raise ValueError(f"pad: padding mode '{mode}' doesn't take in value argument")
    out = input
    for d, (a, b) in enumerate(widths):
        if a == 0 and b == 0:
            continue
        n = input.shape[d]
        if a < 0 or b < 0:
            out = getitem(out, (slice(None),) * d + (slice(-min(a, 0), n + min(b, 0)),))
            n = out.shape[d]
            a, b = max(a, 0), max(b, 0)
            if a == 0 and b == 0:
                continue
        if mode == "reflect" and (a >= n or b >= n):
            raise ValueError(
                f"pad: padding size should be less than the corresponding input dimension, but got: "
                f"padding ({a}, {b}) at dimension {d} of input {tuple(input.shape)}"
            )
        if mode == "circular" and (a > n or b > n):
            raise ValueError(
                f"pad: padding value causes wrapping around more than once: ({a}, {b}) at dim {d} "
                f"of size {n}"
            )
        if n == 0:
            raise ValueError(f"pad: cannot pad an empty dim {d} in mode '{mode}'")
        out = index_select(out, d, const(pad_index(n, a, b, mode)))
    return out
