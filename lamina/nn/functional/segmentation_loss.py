"""Losses of dense (per-pixel) classification beside cross-entropy: the Dice loss (V-Net, Milletari
et al. 2016) and the multi-class focal loss (Lin et al. 2017).

torch.nn.functional has neither; lamina adds them here with torch's conventions (logits in, class
indices ``(N, d1, …)`` as targets, ``ignore_index``, ``reduction``). Both are composed from
differentiable ops (no backward of their own; twice differentiable).
"""

from __future__ import annotations

from typing import Any

from ... import backend
from ...autograd.tensor import Tensor
from ...ops.common import check_tensor, const
from ...ops.reduce import log_softmax, softmax
from ...ops.unary import sigmoid
from .loss import _reduce

__all__ = ["dice_loss", "focal_loss"]

xp = backend.xp


def _class_targets(op: str, input: Tensor, target: Any, ignore_index: int | None) -> tuple[Any, Any]:
    """Checked int64 targets with ignored entries set to class 0, and the mask of the ignored ones."""
    check_tensor(input, op)
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: input must be floating logits, got dtype {input.dtype}")
    if not isinstance(target, Tensor) or target.dtype.kind not in "iu":
        raise TypeError(f"{op}: expected target to be a tensor of int64 class indices")
    if input.ndim < 2:
        raise ValueError(f"{op}: expected input of shape (N, C, d1, …), got {tuple(input.shape)}")
    expected = (input.shape[0],) + tuple(input.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(f"{op}: expected target of shape {expected} for input of shape {tuple(input.shape)}, "
                         f"got {tuple(target.shape)}")
    t = target.array.astype(xp.int64)
    ignored = t == ignore_index if ignore_index is not None else xp.zeros(t.shape, dtype=bool)
    n_classes = max(input.shape[1], 2)  # C = 1 is binary: the targets are 0 and 1
    valid = t[~ignored]
    if valid.size and (valid.min() < 0 or valid.max() >= n_classes):
        bad = int(valid[(valid < 0) | (valid >= n_classes)][0])
        raise IndexError(f"{op}: Target {bad} is out of bounds for {n_classes} classes")
    return xp.where(ignored, 0, t), ignored


def dice_loss(input: Tensor, target: Tensor, smooth: float = 1.0, ignore_index: int | None = -100,
              reduction: str = "mean", batch: bool = False) -> Tensor:
    """``1 − Dice`` per sample and class: ``1 − (2·Σ p·y + smooth) / (Σ p + Σ y + smooth)``, the sums
    over the pixels, with ``p`` the predicted probability and ``y`` the one-hot target.

    Multi-class (``C ≥ 2``): ``p = softmax(input, dim=1)``. Binary (``C = 1``): ``p = sigmoid(input)``
    is the foreground probability and the target holds 0 and 1; only the foreground's Dice counts.
    Pixels whose target is ``ignore_index`` count neither in ``p`` nor in ``y``. ``smooth`` keeps
    a class absent from both target and prediction at a loss near 0 (not 0/0) and smooths the
    gradient of small objects. Unlike cross-entropy, the loss weighs each class by its overlap
    rather than by its pixel count, so small foreground classes are not drowned by the background.

    With ``batch=True`` (MONAI's ``DiceLoss(batch=True)``, segmentation_models_pytorch's default)
    the sums run over the whole batch as well, one Dice per class: a class that appears in few
    images of a batch is then weighed by its pixels in all of them, not by a per-image score that
    is close to 1 wherever the class is absent.

    Args:
        input: logits ``(N, C, d1, …)``.
        target: class indices ``(N, d1, …)`` (int64).
        smooth: added to numerator and denominator.
        ignore_index: the target value to skip (``None``: none); set 255 for VOC-style masks.
        reduction: ``'none'`` (shape ``(N, C)``, or ``(N, 1)`` for binary; ``(1, C)`` with
            ``batch=True``), ``'mean'`` or ``'sum'``.
        batch: one Dice per class over the whole batch instead of one per sample and class.

    Example:
        >>> import lamina
        >>> logits = lamina.tensor([[[[9.0, -9.0]], [[-9.0, 9.0]]]])  # (1, 2, 1, 2): right everywhere
        >>> round(dice_loss(logits, lamina.tensor([[[0, 1]]]), smooth=0.0).item(), 4)
        0.0
    """
    op = "dice_loss"
    safe, ignored = _class_targets(op, input, target, ignore_index)
    n, c = input.shape[0], input.shape[1]
    keep = const((~ignored).astype(input.dtype)).reshape(n, 1, -1)
    if c == 1:
        p = sigmoid(input).reshape(n, 1, -1)
        onehot = safe.reshape(n, 1, -1).astype(input.dtype)
    else:
        p = softmax(input, 1).reshape(n, c, -1)
        onehot = (safe.reshape(n, 1, -1) == xp.arange(c).reshape(1, c, 1)).astype(input.dtype)
    p = p * keep
    y = const(onehot * keep.array)
    if batch:  # (N, C, P) -> (1, C, N·P): the sums below then run over the batch too
        p = p.permute(1, 0, 2).reshape(1, p.shape[1], -1)
        y = y.permute(1, 0, 2).reshape(1, y.shape[1], -1)
    inter = (p * y).sum(2)
    dice = (inter * 2.0 + smooth) / (p.sum(2) + y.sum(2) + smooth)
    return _reduce(1.0 - dice, reduction, op)


def focal_loss(input: Tensor, target: Tensor, alpha: Tensor | None = None, gamma: float = 2.0,
               ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Multi-class focal loss ``−α[t]·(1 − p_t)^γ·log p_t`` with ``log p_t = log_softmax(input)[t]``.

    The factor ``(1 − p_t)^γ`` shrinks the loss of pixels already classified well, so training
    focuses on the hard ones; ``γ = 0`` gives :func:`cross_entropy` (with ``weight = alpha``)
    exactly, ``'mean'`` included: it divides by ``Σ α[t]`` over the non-ignored targets, as torch's
    weighted cross-entropy does. ``log p_t`` comes from ``log_softmax``, so logits of any size stay
    finite. For one logit per class with sigmoids (RetinaNet) use
    :func:`lamina.vision.ops.sigmoid_focal_loss`.

    Args:
        input: logits ``(N, C)`` or ``(N, C, d1, …)``.
        target: class indices ``(N)`` or ``(N, d1, …)`` (int64).
        alpha: per-class weights ``(C,)``, or ``None`` (all 1).
        gamma: the focusing exponent ``≥ 0``.
        ignore_index: the target value to skip.
        reduction: ``'none'`` (the shape of ``target``), ``'mean'`` or ``'sum'``.

    Example:
        >>> import lamina
        >>> logits = lamina.tensor([[0.0, 0.0]])  # p_t = 1/2: (1/2)² · log 2
        >>> round(focal_loss(logits, lamina.tensor([0])).item(), 4)
        0.1733
    """
    op = "focal_loss"
    if gamma < 0:
        raise ValueError(f"{op}: gamma must be >= 0, got {gamma}")
    safe, ignored = _class_targets(op, input, target, ignore_index)
    c = input.shape[1]
    if c < 2:
        raise ValueError(f"{op}: expected at least 2 classes in dim 1, got input of shape {tuple(input.shape)}; "
                         "for binary logits use lamina.vision.ops.sigmoid_focal_loss")
    logp_t = log_softmax(input, 1).gather(1, const(safe[:, None])).squeeze(1)
    # NOTE: (1 − p)^0 is skipped rather than computed: its gradient 0·(1 − p)^−1 is nan where p = 1
    loss = -logp_t if gamma == 0 else -logp_t * (1.0 - logp_t.exp()) ** gamma
    if alpha is not None:
        check_tensor(alpha, op, "alpha")
        if tuple(alpha.shape) != (c,):
            raise ValueError(f"{op}: alpha must have {c} elements (one per class), got {tuple(alpha.shape)}")
        w = alpha.to(input.dtype).index_select(0, const(safe.reshape(-1))).reshape(safe.shape)
    else:
        w = const(xp.ones(safe.shape, dtype=input.dtype))
    w = w * const((~ignored).astype(input.dtype))
    loss = loss * w
    if reduction == "mean":
        total = float(w.array.sum())
        # all ignored: nan as torch's cross-entropy, with a zero (not nan) gradient
        return loss.sum() * (1.0 / total) if total != 0 else loss.sum() * 0.0 + float("nan")
    return _reduce(loss, reduction, op)
