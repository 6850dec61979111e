"""Gradient clipping: ``clip_grad_norm_`` and ``clip_grad_value_`` (as ``torch.nn.utils``)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ... import backend
from ...autograd.tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]

xp = backend.xp


def _grads(parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def _vector_norm(a: Any, p: float) -> Any:
    a = xp.abs(a)
    if p == math.inf:
        return a.max() if a.size else xp.zeros((), a.dtype)
    if p == -math.inf:
        return a.min() if a.size else xp.full((), math.inf, a.dtype)
    if p == 0:
        return xp.asarray(xp.count_nonzero(a), dtype=a.dtype)
    if p == 1:
        return a.sum()
    if p == 2:
        return xp.sqrt((a * a).sum())
    return (a**p).sum() ** (1.0 / p)


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    r"""Scale the gradients in place so that their joint norm is at most ``max_norm``.

    The joint norm is the ``norm_type``-norm of the vector of all gradients concatenated; when
    it exceeds ``max_norm`` every gradient is multiplied by
    :math:`\text{max\_norm} / (\text{total\_norm} + 10^{-6})`. Matches
    ``torch.nn.utils.clip_grad_norm_``.

    Args:
        parameters: a Tensor or an iterable of Tensors whose ``.grad`` is clipped.
        max_norm: the largest allowed norm.
        norm_type: the p of the p-norm (``float('inf')`` for the max norm; default 2).
        error_if_nonfinite: raise if the total norm is nan or inf (default False).
        foreach: accepted for torch compatibility.

    Returns:
        The total norm of the gradients before clipping (a 0-d Tensor).

    Example:
        >>> import lamina
        >>> w = lamina.nn.Parameter(lamina.zeros(2))
        >>> w.grad = lamina.tensor([3.0, 4.0])
        >>> lamina.nn.utils.clip_grad_norm_([w], max_norm=1.0).item()
        5.0
        >>> [round(v, 4) for v in w.grad.tolist()]
        [0.6, 0.8]
    """
    grads = _grads(parameters)
    p = float(norm_type)
    if not grads:
        return Tensor._wrap(xp.zeros((), dtype=backend.get_default_dtype()))
    norms = xp.stack([xp.asarray(_vector_norm(g.array, p), dtype=g.dtype) for g in grads])
    total = xp.asarray(_vector_norm(norms, p))
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"clip_grad_norm_: The total norm of order {p} for gradients from `parameters` is non-finite, so it "
            "cannot be clipped. To disable this error and scale the gradients by the non-finite norm anyway, set "
            "`error_if_nonfinite=False`"
        )
    coef = xp.minimum(max_norm / (total + 1e-6), 1.0)  # in the gradients' dtype, as torch
    for g in grads:
        g.array *= coef.astype(g.dtype)
        g._bump_version()
    return Tensor._wrap(total)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float, foreach: bool | None = None) -> None:
    """Clamp every gradient in place to ``[-clip_value, clip_value]``.

    Matches ``torch.nn.utils.clip_grad_value_``.

    Args:
        parameters: a Tensor or an iterable of Tensors whose ``.grad`` is clipped.
        clip_value: the bound.
        foreach: accepted for torch compatibility.

    Example:
        >>> import lamina
        >>> w = lamina.nn.Parameter(lamina.zeros(3))
        >>> w.grad = lamina.tensor([-2.0, 0.5, 3.0])
        >>> lamina.nn.utils.clip_grad_value_(w, 1.0)
        >>> w.grad.tolist()
        [-1.0, 0.5, 1.0]
    """
    v = float(clip_value)
    for g in _grads(parameters):
        xp.clip(g.array, -v, v, out=g.array)
        g._bump_version()
