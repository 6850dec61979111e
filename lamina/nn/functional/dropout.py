"""Dropout: inverted dropout (scaled by 1/(1−p) in training, identity in evaluation), channel
dropout for 1-D/2-D/3-D feature maps, and alpha dropout for SELU networks."""

from __future__ import annotations

import math
import warnings

from ... import backend
from ...autograd.grad_mode import is_grad_enabled
from ...autograd.tensor import Tensor
from ...ops.common import check_tensor, const

__all__ = ["dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"]

xp = backend.xp


def _check_p(p: float, op: str) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")


def _keep_mask(shape: tuple[int, ...], p: float, dtype: object) -> Tensor:
    keep = backend.generator().random(shape) >= p
    return const(keep.astype(dtype))


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1/(1−p)`` (so the
    expected activation is unchanged and evaluation needs no rescaling). Identity when not
    training. Draws from lamina's global generator. ``inplace`` writes the result into
    ``input`` and returns it, as torch."""
    check_tensor(input, "dropout")
    _check_p(p, "dropout")
    if not training or p == 0:
        return input
    return _scale(input, input.shape, p, inplace)


def _writable(input: Tensor, inplace: bool) -> bool:
    """Whether ``inplace`` can write into ``input``: not into a view (a reshape's output, say)
    whose change autograd would have to record, which lamina's in-place ops do not support —
    such an input gets an out-of-place result instead."""
    return inplace and not (input._is_view and input.requires_grad and is_grad_enabled())


def _scale(input: Tensor, mask_shape: tuple[int, ...], p: float, inplace: bool) -> Tensor:
    """``input`` times a keep mask of ``mask_shape`` scaled by 1/(1−p) (zeros where p = 1), into
    ``input`` itself with ``inplace`` (autograd-aware, as torch's in-place dropout)."""
    factor: object = 0.0 if p == 1 else _keep_mask(mask_shape, p, input.dtype) * (1.0 / (1.0 - p))
    return input.mul_(factor) if _writable(input, inplace) else input * factor


def _channel_dropout(input: Tensor, p: float, training: bool, spatial: int, op: str, inplace: bool) -> Tensor:
    check_tensor(input, op)
    _check_p(p, op)
    if input.ndim not in (spatial + 1, spatial + 2):
        raise ValueError(
            f"{op}: expected {spatial + 1}-D or {spatial + 2}-D input ((C, *) or (N, C, *) with {spatial} spatial "
            f"dim(s)), got {input.ndim}-D input of shape {tuple(input.shape)}"
        )
    if spatial == 2 and input.ndim == 3:  # torch 2.13 reads this as batched 1-D, and says so
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout behavior is "
            "desired - input is interpreted as shape (N, C, L), where C is the channel dim. This behavior will "
            "change in a future release to interpret the input as one without a batch dimension, i.e. shape "
            "(C, H, W). To maintain the 1D channel-wise dropout behavior, please switch to using dropout1d instead.",
            UserWarning, stacklevel=3)
        spatial = 1
    if not training or p == 0:
        return input
    return _scale(input, input.shape[: input.ndim - spatial] + (1,) * spatial, p, inplace)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of ``(N, C, L)`` input with probability ``p`` (``inplace``: into
    ``input``)."""
    return _channel_dropout(input, p, training, 1, "dropout1d", inplace)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels (feature maps) of ``(N, C, H, W)`` input with probability ``p`` —
    neighbouring pixels are correlated, so element dropout would barely regularize a conv net.
    A 3-D input is read as ``(N, C, L)``, with torch's warning (torch 2.13's behaviour)."""
    return _channel_dropout(input, p, training, 2, "dropout2d", inplace)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of ``(N, C, D, H, W)`` input with probability ``p``."""
    return _channel_dropout(input, p, training, 3, "dropout3d", inplace)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _alpha(input: Tensor, p: float, training: bool, mask_shape: tuple[int, ...], op: str, inplace: bool) -> Tensor:
    check_tensor(input, op)
    _check_p(p, op)
    if not training or p == 0:
        return input
    alpha_p = -_SELU_ALPHA * _SELU_SCALE  # the value SELU saturates to
    if p == 1:  # everything dropped: zeros, as torch (not the saturation value)
        return input.mul_(0.0) if _writable(input, inplace) else input * 0.0
    # keep mean 0 and variance 1: a·(x·keep + α'·(1 − keep)) + b
    a = 1.0 / math.sqrt((alpha_p ** 2 * p + 1) * (1 - p))
    b = -a * alpha_p * p
    keep = _keep_mask(mask_shape, p, input.dtype)
    if _writable(input, inplace):
        return input.mul_(keep * a).add_((1.0 - keep) * (alpha_p * a) + b)
    return (input * keep + (1.0 - keep) * alpha_p) * a + b


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    """Dropout that keeps SELU's self-normalizing mean and variance (Klambauer et al., 2017):
    dropped units take SELU's negative saturation value, then an affine map restores the moments."""
    return _alpha(input, p, training, input.shape, "alpha_dropout", inplace)


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    """Alpha dropout of whole channels."""
    return _alpha(input, p, training, input.shape[:2] + (1,) * (input.ndim - 2), "feature_alpha_dropout", inplace)
