"""``parameters_to_vector`` and ``vector_to_parameters`` (as ``torch.nn.utils``)."""

from __future__ import annotations

from collections.abc import Iterable

from ...autograd.tensor import Tensor
from ...ops.join import cat

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and concatenated into one vector (differentiable).

    Matches ``torch.nn.utils.parameters_to_vector``.

    Args:
        parameters: an iterable of Tensors.

    Shape:
        Output: :math:`(\\sum_i \\text{numel}(p_i),)`.

    Example:
        >>> import lamina
        >>> lin = lamina.nn.Linear(3, 2)
        >>> lamina.nn.utils.parameters_to_vector(lin.parameters()).shape
        (8,)
    """
    params = list(parameters)
    if not params:
        raise ValueError("parameters_to_vector: expected at least one parameter")
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"parameters_to_vector: expected lamina Tensors, but got {type(p).__name__}")
    return cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of ``vec`` into the parameters (in place, no gradient recorded).

    Matches ``torch.nn.utils.vector_to_parameters``, except that the values are copied into
    each parameter's array instead of making the parameter a view of ``vec``.

    Args:
        vec: a 1-d Tensor with as many elements as all parameters together.
        parameters: an iterable of Tensors.

    Example:
        >>> import lamina
        >>> lin = lamina.nn.Linear(2, 1)
        >>> lamina.nn.utils.vector_to_parameters(lamina.tensor([1.0, 2.0, 3.0]), lin.parameters())
        >>> lin.weight.tolist(), lin.bias.tolist()
        ([[1.0, 2.0]], [3.0])
    """
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected vec to be a lamina Tensor, but got {type(vec).__name__}")
    if vec.ndim != 1:
        raise ValueError(f"vector_to_parameters: expected a 1-d vector, but got shape {tuple(vec.shape)}")
    params = list(parameters)
    total = sum(p.numel() for p in params)
    if total != vec.numel():
        raise ValueError(f"vector_to_parameters: vec has {vec.numel()} elements but the parameters have {total}")
    offset = 0
    for p in params:
        n = p.numel()
        p.array[...] = vec.array[offset:offset + n].reshape(p.shape)
        p._bump_version()
        offset += n
