"""``Digits``: the real 8×8 handwritten digits that scikit-learn ships (UCI, CC BY 4.0), vendored.

1,797 images of the digits 0–9 written by 43 people, each an 8×8 grid of counts 0..16
(see ``data/digits_README.rst``). Nothing is downloaded: the file is package data.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from importlib import resources
from typing import Any

from .. import backend
from ..autograd.tensor import Tensor
from .vision import VisionDataset

__all__ = ["Digits", "load_digits"]

xp = backend.xp

_CACHE: dict[str, Any] = {}


def load_digits() -> tuple[Any, Any]:
    """All 1,797 digits as NumPy arrays: pixels ``(1797, 64)`` int64 in 0..16 and labels ``(1797,)`` int64.

    Example:
        >>> x, y = load_digits()
        >>> x.shape, y.shape, int(x.max()), sorted(set(y.tolist())) == list(range(10))
        ((1797, 64), (1797,), 16, True)
    """
    if "xy" not in _CACHE:
        path = resources.files("lamina.datasets").joinpath("data/digits.csv.gz")
        try:
            with path.open("rb") as raw, gzip.open(raw, "rt") as f:
                table = xp.loadtxt(f, delimiter=",", dtype=xp.int64)
        except (OSError, ValueError, EOFError) as e:
            raise RuntimeError(f"Digits: cannot read the packaged file {path}: {e}") from None
        if table.ndim != 2 or table.shape[1] != 65:
            raise RuntimeError(f"Digits: {path} should hold rows of 64 pixels and a label, got shape {table.shape}")
        x, y = table[:, :64], table[:, 64]
        if x.min() < 0 or x.max() > 16 or y.min() < 0 or y.max() > 9:
            raise RuntimeError(f"Digits: {path} holds pixel values outside 0..16 or labels outside 0..9")
        x.setflags(write=False)
        y.setflags(write=False)
        _CACHE["xy"] = (x, y)
    return _CACHE["xy"]


def stratified_split(labels: Any, test_fraction: float, seed: int) -> tuple[Any, Any]:
    """Train and test indices (each sorted) holding ``round(test_fraction * count)`` of every class in test."""
    rng = xp.random.default_rng(seed)
    test = []
    for c in xp.unique(labels):
        idx = xp.flatnonzero(labels == c)
        k = int(round(test_fraction * len(idx)))
        test.append(rng.permutation(idx)[:k])
    test_idx = xp.sort(xp.concatenate(test))
    train_mask = xp.ones(len(labels), dtype=bool)
    train_mask[test_idx] = False
    return xp.flatnonzero(train_mask), test_idx


class Digits(VisionDataset):
    """The 8×8 handwritten digits as an image classification data set.

    Samples are ``(image, label)``: ``image`` a float32 Tensor of shape ``(1, 8, 8)`` holding the
    original counts 0..16 divided by 16, so values lie in [0, 1] (before ``transform``); ``label`` an
    int 0..9. The train/test split is stratified (each class keeps the same share in both parts)
    and fixed by ``split_seed``: the default gives 1,438 training and 359 test images.

    Args:
        train: the training part (True) or the test part.
        transform: applied to the image Tensor.
        target_transform: applied to the int label.
        split_seed: the seed of the fixed split.
        test_fraction: the share of each class held out for testing (0 < fraction < 1).

    Attributes:
        data: the images as a float32 NumPy array ``(N, 1, 8, 8)`` in [0, 1].
        targets: the labels as an int64 NumPy array ``(N,)``.
        classes: ``['0', …, '9']``.

    Example:
        >>> train, test = Digits(train=True), Digits(train=False)
        >>> len(train), len(test)
        (1438, 359)
        >>> img, label = train[0]
        >>> tuple(img.shape), str(img.dtype), 0.0 <= float(img.min()) <= float(img.max()) <= 1.0
        ((1, 8, 8), 'float32', True)
    """

    classes = [str(d) for d in range(10)]

    def __init__(self, train: bool = True, transform: Callable[[Any], Any] | None = None,
                 target_transform: Callable[[Any], Any] | None = None, split_seed: int = 0,
                 test_fraction: float = 0.2) -> None:
        super().__init__(None, transform, target_transform)
        if not 0.0 < float(test_fraction) < 1.0:
            raise ValueError(f"Digits: test_fraction must lie strictly between 0 and 1, got {test_fraction}")
        x, y = load_digits()
        train_idx, test_idx = stratified_split(y, float(test_fraction), split_seed)
        idx = train_idx if train else test_idx
        self.train, self.indices = train, idx
        self.data = (x[idx].astype(backend.float32) / 16.0).reshape(-1, 1, 8, 8)
        self.targets = y[idx].copy()

    def _image(self, index: int) -> Tensor:
        return Tensor._wrap(self.data[index].copy())
