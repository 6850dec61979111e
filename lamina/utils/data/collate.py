"""Turning a list of samples into a batch: ``default_collate`` and ``default_convert``.

Matches ``torch.utils.data.default_collate``: lamina Tensors and NumPy arrays are stacked into a
new leading dimension, Python floats become a float64 tensor, ints an int64 tensor, bools a bool
tensor; strings stay a list; tuples, lists (both become lists, as in torch), namedtuples and dicts
are collated field by field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ... import backend
from ...autograd.tensor import Tensor
from ...ops.join import stack

__all__ = ["default_collate", "default_convert", "detection_collate"]

xp = backend.xp


def _stack_arrays(arrays: list[Any], what: str) -> Tensor:
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise RuntimeError(f"default_collate: each {what} in a batch must have the same shape, got "
                           f"{sorted(shapes)}; pass a collate_fn that pads or crops")
    if arrays[0].dtype.kind not in "fiub":
        raise TypeError(f"default_collate: cannot batch {what}s of dtype {arrays[0].dtype}")
    return Tensor._wrap(xp.stack(arrays))


def default_collate(batch: Sequence[Any]) -> Any:
    """Stack a list of samples into a batch (see the module docstring for the rules).

    Example:
        >>> import numpy as np
        >>> x, y = default_collate([(np.zeros(3, dtype=np.float32), 1), (np.ones(3, dtype=np.float32), 0)])
        >>> tuple(x.shape), y.tolist(), str(y.dtype)
        ((2, 3), [1, 0], 'int64')
    """
    if len(batch) == 0:
        raise ValueError("default_collate: got an empty batch")
    elem = batch[0]
    if isinstance(elem, Tensor):
        if not all(isinstance(b, Tensor) for b in batch):
            raise TypeError("default_collate: a batch mixes Tensors with other types")
        if any(b.requires_grad for b in batch):
            return stack(list(batch))  # keeps the graph, as torch.stack does
        return _stack_arrays([b.array for b in batch], "tensor")
    if isinstance(elem, xp.ndarray):
        return _stack_arrays([xp.asarray(b) for b in batch], "array")
    if isinstance(elem, xp.generic):
        return _stack_arrays([xp.asarray(b) for b in batch], "NumPy scalar")
    if isinstance(elem, bool):
        return Tensor._wrap(xp.asarray(batch, dtype=backend.bool_))
    if isinstance(elem, float):
        return Tensor._wrap(xp.asarray(batch, dtype=backend.float64))
    if isinstance(elem, int):
        return Tensor._wrap(xp.asarray(batch, dtype=backend.int64))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, Mapping):
        try:
            return type(elem)({k: default_collate([d[k] for d in batch]) for k in elem})
        except TypeError:
            return {k: default_collate([d[k] for d in batch]) for k in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, Sequence):
        n = len(elem)
        if any(len(b) != n for b in batch):
            raise RuntimeError("default_collate: each element in list of batch should be of equal size")
        return [default_collate(list(s)) for s in zip(*batch)]
    raise TypeError(f"default_collate: batch must contain tensors, NumPy arrays, numbers, dicts or lists; "
                    f"found {type(elem).__name__}")


def default_convert(data: Any) -> Any:
    """Convert NumPy arrays (also inside tuples, lists and dicts) to lamina Tensors, without batching.

    Used by the DataLoader when ``batch_size=None``. Matches ``torch.utils.data.default_convert``.

    Example:
        >>> import numpy as np
        >>> type(default_convert(np.zeros(2))).__name__
        'Tensor'
    """
    if isinstance(data, xp.ndarray) and data.dtype.kind in "fiub":
        return Tensor._wrap(data)
    if isinstance(data, Mapping):
        return {k: default_convert(v) for k, v in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, (list, tuple)):
        return type(data)(default_convert(d) for d in data)
    return data


def detection_collate(batch: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """Batch detection samples ``(image, target)`` as ``(list_of_images, list_of_targets)``, unstacked.

    Images may differ in size and targets in their number of objects, so nothing is stacked: this
    is the ``collate_fn`` of torchvision's detection references (``tuple(zip(*batch))``), with lists.
    Pass it as ``DataLoader(ds, batch_size=..., collate_fn=detection_collate)``.

    Example:
        >>> imgs, targets = detection_collate([("a", {"labels": [1]}), ("b", {"labels": []})])
        >>> imgs, [len(t["labels"]) for t in targets]
        (['a', 'b'], [1, 0])
    """
    if len(batch) == 0:
        raise ValueError("detection_collate: got an empty batch")
    images, targets = [], []
    for i, sample in enumerate(batch):
        if not isinstance(sample, (tuple, list)) or len(sample) != 2:
            what = f"a {type(sample).__name__} of length {len(sample)}" if isinstance(sample, (tuple, list)) \
                else f"a {type(sample).__name__}"
            raise TypeError(f"detection_collate: sample {i} must be a pair (image, target), got {what}")
        images.append(sample[0])
        targets.append(sample[1])
    return images, targets
