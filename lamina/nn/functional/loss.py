"""Loss functions with ``torch.nn.functional``'s names, arguments and reductions.

Every loss is composed from differentiable ops, in a numerically stable form: cross-entropy
goes through ``log_softmax`` (never ``log(softmax)``), BCE-with-logits through ``softplus``,
and BCE clamps its logs at −100 as torch does. All stay finite for logits up to ±1e4.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from ... import backend
from ...autograd.tensor import Tensor
from ...ops.activation import softplus
from ...ops.common import check_tensor, const
from ...ops.reduce import log_softmax
from ...ops.selection import where

__all__ = [
    "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "cross_entropy", "nll_loss", "kl_div", "cosine_embedding_loss",
    "margin_ranking_loss", "hinge_embedding_loss", "multi_margin_loss", "soft_margin_loss",
    "gaussian_nll_loss", "poisson_nll_loss",
]

xp = backend.xp


def _reduce(loss: Tensor, reduction: str, op: str) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"{op}: {reduction!r} is not a valid value for reduction (expected 'none', 'mean' or 'sum')")


def _pair(op: str, input: Any, target: Any) -> tuple[Tensor, Tensor]:
    check_tensor(input, op)
    if not isinstance(target, Tensor):
        target = const(xp.asarray(target, dtype=input.dtype))
    if target.dtype != input.dtype and target.dtype.kind in "fiub":
        target = target.to(input.dtype)
    if target.shape != input.shape:
        warnings.warn(
            f"{op}: using a target size ({tuple(target.shape)}) that is different to the input size "
            f"({tuple(input.shape)}); this will likely lead to incorrect results due to broadcasting",
            stacklevel=3,
        )
    return input, target


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """``(input − target)²``, reduced."""
    input, target = _pair("mse_loss", input, target)
    d = input - target
    return _reduce(d * d, reduction, "mse_loss")


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """``|input − target|``, reduced."""
    input, target = _pair("l1_loss", input, target)
    return _reduce((input - target).abs(), reduction, "l1_loss")


def smooth_l1_loss(input: Tensor, target: Tensor, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """``0.5·d²/beta`` where ``|d| < beta``, else ``|d| − 0.5·beta`` (``beta = 0``: L1)."""
    input, target = _pair("smooth_l1_loss", input, target)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    d = input - target
    if beta == 0:
        return _reduce(d.abs(), reduction, "smooth_l1_loss")
    a = d.abs()
    return _reduce(where(a < beta, d * d * (0.5 / beta), a - 0.5 * beta), reduction, "smooth_l1_loss")


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """``0.5·d²`` where ``|d| ≤ delta``, else ``delta·(|d| − 0.5·delta)``."""
    input, target = _pair("huber_loss", input, target)
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    d = input - target
    a = d.abs()
    return _reduce(where(a <= delta, d * d * 0.5, (a - 0.5 * delta) * delta), reduction, "huber_loss")


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         reduction: str = "mean") -> Tensor:
    """``−w·(t·log x + (1 − t)·log(1 − x))`` for probabilities ``x`` in [0, 1]; each log is clamped
    at −100 as torch does. Prefer ``binary_cross_entropy_with_logits`` (stable on logits)."""
    check_tensor(input, "binary_cross_entropy")
    if not isinstance(target, Tensor) or target.shape != input.shape:
        raise ValueError(
            f"binary_cross_entropy: using a target size ({tuple(getattr(target, 'shape', ()))}) that is "
            f"different to the input size ({tuple(input.shape)}) is not allowed"
        )
    a = input.array
    if a.size and (a.min() < 0 or a.max() > 1 or xp.isnan(a).any()):
        raise ValueError("binary_cross_entropy: all elements of input should be between 0 and 1")
    target = target.to(input.dtype)
    # NOTE: clamp the argument of each log at e^-100 (so the log is at least −100, as torch) rather
    # than the log itself: at a saturated probability (exactly 0 or 1) the gradient stays finite
    tiny = math.exp(-100.0)
    loss = -(target * input.clamp(min=tiny).log() + (1.0 - target) * (1.0 - input).clamp(min=tiny).log())
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     reduction: str = "mean", pos_weight: Tensor | None = None) -> Tensor:
    """Sigmoid + BCE in one stable formula:
    ``(1 − t)·x + (1 + (pos_weight − 1)·t)·softplus(−x)``.

    ``pos_weight`` (broadcast along the last dim, one per class) weighs the positive examples.
    """
    check_tensor(input, "binary_cross_entropy_with_logits")
    if not isinstance(target, Tensor) or target.shape != input.shape:
        raise ValueError(
            f"binary_cross_entropy_with_logits: Target size ({tuple(getattr(target, 'shape', ()))}) must be "
            f"the same as input size ({tuple(input.shape)})"
        )
    target = target.to(input.dtype)
    log_sig_neg = softplus(-input, 1.0, float("inf"))  # −log σ(x) = log(1 + e^(−x)), no overflow
    if pos_weight is not None:
        log_weight = (pos_weight - 1.0) * target + 1.0
        loss = (1.0 - target) * input + log_weight * log_sig_neg
    else:
        loss = (1.0 - target) * input + log_sig_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


def _class_dim_weight(weight: Tensor, ndim: int) -> Tensor:
    return weight.reshape((1, -1) + (1,) * (ndim - 2)) if ndim >= 2 else weight


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """``−w[t]·input[t]`` for log-probabilities ``input`` and class indices ``target``.

    Shape:
        input ``(N, C)``, ``(C,)`` or ``(N, C, d1, …)``; target ``(N)``, ``()`` or ``(N, d1, …)``.
        ``mean`` divides by the summed weights of the non-ignored targets.
    """
    check_tensor(input, "nll_loss")
    if not isinstance(target, Tensor) or target.dtype.kind not in "iu":
        raise TypeError("nll_loss: expected target to be a tensor of int64 class indices")
    single = input.ndim == 1
    if single:
        input, target = input.unsqueeze(0), target.unsqueeze(0)
    if input.ndim < 2:
        raise ValueError(f"nll_loss: expected input of 1 or more dims, got shape {tuple(input.shape)}")
    n, c = input.shape[0], input.shape[1]
    expected = (n,) + tuple(input.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"nll_loss: expected target of shape {expected} for input of shape {tuple(input.shape)}, "
            f"got {tuple(target.shape)}"
        )
    t = target.array.astype(xp.int64)
    ignored = t == ignore_index
    valid = t[~ignored]
    if valid.size and (valid.min() < 0 or valid.max() >= c):
        bad = int(valid[(valid < 0) | (valid >= c)][0])
        raise IndexError(f"nll_loss: Target {bad} is out of bounds for {c} classes")
    safe = xp.where(ignored, 0, t)
    picked = input.gather(1, const(safe[:, None]))
    picked = picked.squeeze(1)
    w = xp.ones(c, dtype=input.dtype) if weight is None else weight.array.astype(input.dtype)
    if weight is not None and weight.shape != (c,):
        raise ValueError(f"nll_loss: weight must have {c} elements (one per class), got {tuple(weight.shape)}")
    wt = xp.where(ignored, 0, w[safe]).astype(input.dtype)
    if weight is not None and weight.requires_grad:
        wt_t = where(const(ignored), 0.0, weight.index_select(0, const(safe.reshape(-1))).reshape(safe.shape))
    else:
        wt_t = const(wt)
    loss = -picked * wt_t
    if reduction == "mean":
        total = float(wt_t.array.sum())
        # NOTE: with every target ignored (or weighted 0) the mean is 0/0: NaN as torch, but with a
        # zero gradient (not NaN) so that one empty batch does not poison the parameters
        out = loss.sum() * (1.0 / total) if total != 0 else loss.sum() * 0.0 + float("nan")
    else:
        out = _reduce(loss, reduction, "nll_loss")
    return out.squeeze(0) if single and reduction == "none" else out


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy on logits, as ``torch.nn.functional.cross_entropy``.

    ``target`` holds class indices (int64, shape ``(N, d1, …)``) or class probabilities (float,
    the shape of ``input``). ``label_smoothing = ε`` mixes the target with the uniform
    distribution: ``(1 − ε)·target + ε/C``. Computed through ``log_softmax``, so logits of any
    magnitude give finite losses and gradients.

    Shape:
        input ``(N, C)``, ``(C,)`` or ``(N, C, d1, …)`` (e.g. per-pixel ``(N, C, H, W)``).

    Example:
        >>> import lamina
        >>> import lamina.nn.functional as F
        >>> logits = lamina.tensor([[2.0, 0.0, 0.0]])
        >>> round(F.cross_entropy(logits, lamina.tensor([0])).item(), 4)
        0.2395
    """
    check_tensor(input, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    class_dim = 0 if input.ndim == 1 else 1
    c = input.shape[class_dim]
    logp = log_softmax(input, class_dim)
    if isinstance(target, Tensor) and target.dtype.kind == "f":
        if target.shape != input.shape:
            raise ValueError(
                f"cross_entropy: probability targets must have the input's shape {tuple(input.shape)}, "
                f"got {tuple(target.shape)}"
            )
        if label_smoothing > 0:
            target = target * (1 - label_smoothing) + label_smoothing / c
        term = logp * target
        if weight is not None:
            term = term * _class_dim_weight(weight, input.ndim)
        per = -term.sum(class_dim)
        if reduction == "mean":
            return per.sum() / (input.numel() // c if input.numel() else float("nan"))
        return _reduce(per, reduction, "cross_entropy")
    nll = nll_loss(logp, target, weight, ignore_index, reduction)
    if label_smoothing == 0:
        return nll
    ignored = const(target.array == ignore_index)
    if weight is not None:
        smooth = -(logp * _class_dim_weight(weight, input.ndim)).sum(class_dim)
    else:
        smooth = -logp.sum(class_dim)
    smooth = where(ignored, 0.0, smooth)
    if reduction == "mean":
        t = target.array[target.array != ignore_index]
        denom = weight.array[t].sum() if weight is not None else t.size
        ret = smooth.sum() * (1.0 / float(denom)) if denom != 0 else smooth.sum() * 0.0 + float("nan")
    else:
        ret = _reduce(smooth, reduction, "cross_entropy")
    return nll * (1 - label_smoothing) + ret * (label_smoothing / c)


def kl_div(input: Tensor, target: Tensor, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """``target·(log target − input)`` for log-probabilities ``input`` (0 where target is 0);
    with ``log_target``, ``exp(target)·(target − input)``. ``reduction='batchmean'`` divides
    the sum by the batch size — the true KL divergence (``'mean'`` divides by every element,
    as torch)."""
    check_tensor(input, "kl_div")
    if log_target:
        loss = target.exp() * (target - input)
    else:
        pos = const(target.array > 0)
        safe = where(pos, target, 1.0)
        loss = where(pos, target * safe.log(), 0.0) - target * input
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction, "kl_div")


def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                          reduction: str = "mean") -> Tensor:
    """``1 − cos(x1, x2)`` for ``y = 1``, ``max(0, cos(x1, x2) − margin)`` for ``y = −1``."""
    dim = 1 if input1.ndim == 2 else 0
    eps = 1e-12
    prod = (input1 * input2).sum(dim)
    denom = (((input1 * input1).sum(dim) + eps) * ((input2 * input2).sum(dim) + eps)).sqrt()
    cos = prod / denom
    t = target.array
    loss = where(const(t == 1), 1.0 - cos, 0.0) + where(const(t == -1), (cos - margin).clamp(min=0.0), 0.0)
    return _reduce(loss, reduction, "cosine_embedding_loss")


def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                        reduction: str = "mean") -> Tensor:
    """``max(0, −y·(x1 − x2) + margin)``."""
    loss = (-target * (input1 - input2) + margin).clamp(min=0.0)
    return _reduce(loss, reduction, "margin_ranking_loss")


def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0, reduction: str = "mean") -> Tensor:
    """``x`` for ``y = 1``, ``max(0, margin − x)`` for ``y = −1``."""
    t = target.array
    loss = where(const(t != 1), (margin - input).clamp(min=0.0), 0.0) + where(const(t != -1), input, 0.0)
    return _reduce(loss, reduction, "hinge_embedding_loss")


def multi_margin_loss(input: Tensor, target: Tensor, p: int = 1, margin: float = 1.0,
                      weight: Tensor | None = None, reduction: str = "mean") -> Tensor:
    """Multi-class hinge: ``Σ_{j≠y} max(0, margin − x[y] + x[j])ᵖ / C`` (times ``weight[y]``)."""
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: only p == 1 and p == 2 supported, got {p}")
    single = input.ndim == 1
    if single:
        input, target = input.unsqueeze(0), target.reshape(1)
    c = input.shape[1]
    t = target.array.astype(xp.int64)
    if t.size and (t.min() < 0 or t.max() >= c):
        raise IndexError(f"multi_margin_loss: target out of range for {c} classes")
    xy = input.gather(1, const(t[:, None]))
    z = (input - xy + margin).clamp(min=0.0)
    if p == 2:
        z = z * z
    if weight is not None:
        z = z * weight.index_select(0, const(t)).unsqueeze(1)
    not_y = const((xp.arange(c)[None, :] != t[:, None]).astype(input.dtype))
    loss = (z * not_y).sum(1) / c
    if single and reduction == "none":
        loss = loss.squeeze(0)
    return _reduce(loss, reduction, "multi_margin_loss")


def soft_margin_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """``log(1 + exp(−y·x))``, computed stably."""
    return _reduce(softplus(-target * input, 1.0, float("inf")), reduction, "soft_margin_loss")


def gaussian_nll_loss(input: Tensor, target: Tensor, var: Any, full: bool = False, eps: float = 1e-6,
                      reduction: str = "mean") -> Tensor:
    """``0.5·(log max(var, eps) + (input − target)²/max(var, eps))`` (+ ``0.5·log 2π`` if full)."""
    import math

    v = var if isinstance(var, Tensor) else const(xp.asarray(var, dtype=input.dtype))
    if v.ndim == input.ndim - 1 and v.shape == input.shape[:-1]:
        v = v.unsqueeze(-1)
    if (v.array < 0).any():
        raise ValueError("gaussian_nll_loss: var has negative entry/entries")
    with_grad_clamp = v.clamp(min=eps)
    v = where(const(v.array < eps), with_grad_clamp.detach(), v)
    loss = 0.5 * (v.log() + (input - target) ** 2 / v)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction, "gaussian_nll_loss")


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True, full: bool = False,
                     eps: float = 1e-8, reduction: str = "mean") -> Tensor:
    """Poisson negative log-likelihood: ``exp(x) − t·x`` (log_input) or ``x − t·log(x + eps)``."""
    import math

    if log_input:
        loss = input.exp() - target * input
    else:
        loss = input - target * (input + eps).log()
    if full:
        t = target.array
        big = xp.where(t > 1, t, 1)  # Stirling's term t·log t − t + ½·log(2πt), only where t > 1
        stirling = xp.where(t > 1, big * xp.log(big) - big + 0.5 * xp.log(2 * math.pi * big), 0)
        loss = loss + const(stirling.astype(input.dtype))
    return _reduce(loss, reduction, "poisson_nll_loss")
