"""Linear maps: ``linear``, ``bilinear``, ``embedding``, ``one_hot``."""

from __future__ import annotations

from ... import backend
from ...autograd.tensor import Tensor
from ...ops.common import check_tensor, const
from ...ops.indexing import index_select

__all__ = ["linear", "bilinear", "embedding", "one_hot"]

xp = backend.xp


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y = x Wᵀ + b``, as ``torch.nn.functional.linear``.

    Shape:
        input ``(*, in_features)``, weight ``(out_features, in_features)``, bias
        ``(out_features)`` → output ``(*, out_features)``.
    """
    check_tensor(input, "linear")
    if weight.ndim != 2 and weight.ndim != 1:
        raise ValueError(f"linear: weight must be 1-D or 2-D, got shape {tuple(weight.shape)}")
    if input.ndim == 0 or input.shape[-1] != weight.shape[-1]:
        raise ValueError(
            f"linear: input has {input.shape[-1] if input.ndim else 0} features in its last dim but "
            f"weight expects {weight.shape[-1]} (input shape {tuple(input.shape)}, weight shape "
            f"{tuple(weight.shape)})"
        )
    out = input @ weight.t()
    if bias is not None:
        out = out + bias
    return out


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y_k = x1ᵀ A_k x2 + b_k`` for weight ``A`` of shape ``(out, in1, in2)``."""
    if weight.ndim != 3:
        raise ValueError(f"bilinear: weight must be 3-D (out, in1, in2), got {tuple(weight.shape)}")
    if input1.shape[-1] != weight.shape[1] or input2.shape[-1] != weight.shape[2]:
        raise ValueError(
            f"bilinear: inputs have {input1.shape[-1]} and {input2.shape[-1]} features, weight "
            f"expects {weight.shape[1]} and {weight.shape[2]}"
        )
    # (*, 1, 1, in1) @ (out, in1, in2) → (*, out, 1, in2); then · x2
    t = input1.unsqueeze(-2).unsqueeze(-2) @ weight
    out = (t.squeeze(-2) * input2.unsqueeze(-2)).sum(-1)
    if bias is not None:
        out = out + bias
    return out


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None, max_norm: float | None = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of ``weight`` at the integer indices ``input`` (any shape) → ``(*, embedding_dim)``.
    The row at ``padding_idx`` gets no gradient."""
    if input.dtype.kind not in "iu":
        raise TypeError(f"embedding: expected integer indices, got {input.dtype}")
    n = weight.shape[0]
    if input.numel() and (input.array.min() < 0 or input.array.max() >= n):
        raise IndexError(f"embedding: index out of range (indices must be in [0, {n - 1}])")
    if max_norm is not None:
        _renorm_rows(weight, input, max_norm, norm_type)
    w = weight
    if padding_idx is not None:
        if padding_idx < 0:
            padding_idx += n
        mask = xp.ones((n, 1), dtype=weight.dtype)
        mask[padding_idx] = 0
        # NOTE: the padding row keeps its value in the forward pass; only its gradient is cut
        w = weight * const(mask) + (weight * const(1 - mask)).detach()
    if scale_grad_by_freq:
        counts = xp.bincount(input.array.reshape(-1), minlength=n).astype(weight.dtype)
        scale = xp.where(counts > 0, 1.0 / xp.maximum(counts, 1), 1.0).reshape(n, 1).astype(weight.dtype)
        w = w * const(scale) + (w * const(1 - scale)).detach()
    out = index_select(w, 0, const(input.array.reshape(-1)))
    return out.reshape(*input.shape, weight.shape[1])


def _renorm_rows(weight: Tensor, input: Tensor, max_norm: float, norm_type: float) -> None:
    rows = xp.unique(input.array.reshape(-1))
    w = weight.array
    norms = (xp.abs(w[rows]) ** norm_type).sum(1) ** (1.0 / norm_type)
    scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
    w[rows] *= scale[:, None].astype(w.dtype)
    weight._bump_version()


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """Class indices ``(*)`` → int64 one-hot ``(*, num_classes)``."""
    if tensor.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected an integer tensor, got {tensor.dtype}")
    a = tensor.array
    if num_classes < 0:
        num_classes = int(a.max()) + 1 if a.size else 0
    if a.size and (a.min() < 0 or a.max() >= num_classes):
        raise RuntimeError(f"one_hot: class values must be in [0, {num_classes - 1}]")
    return const(xp.eye(num_classes, dtype=backend.int64)[a])
