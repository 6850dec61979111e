"""``MNIST1D``: Greydanus's MNIST-1D (2020), generated locally from the published recipe.

Ten hand-drawn 12-point templates (one per digit) are each padded with zeros at the end (36 to
60 points), stretched to 72 points, scaled, rotated in time (translation with wrap-around),
filled where they are zero with smoothed Gaussian noise, given i.i.d. Gaussian noise and a
linear trend (shear), and linearly resampled to 40 points. The whole set is then centred and
scaled to unit standard deviation. The draws follow the reference generator (the ``mnist1d``
package, ``make_dataset``) step by step with NumPy's legacy ``RandomState(seed)``, so the same
arguments give the same series as the published data set; nothing is downloaded.

``shuffle_seq=True`` gives the paper's control: one fixed random permutation of the 40 time
steps, applied to every series, destroys the temporal structure (a model that does not use the
order, an MLP, is unaffected; a CNN loses most of its edge).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..autograd.tensor import Tensor
from ..utils.data import Dataset

__all__ = ["MNIST1D", "make_mnist1d", "mnist1d_templates", "MNIST1D_DEFAULTS"]

MNIST1D_DEFAULTS: dict[str, Any] = {
    "num_samples": 5000, "train_split": 0.8, "template_len": 12, "padding": (36, 60), "scale_coeff": 0.4,
    "max_translation": 48, "corr_noise_scale": 0.25, "iid_noise_scale": 2e-2, "shear_scale": 0.75,
    "shuffle_seq": False, "final_seq_length": 40, "seed": 42,
}
"""The reference generator's arguments (``mnist1d.data.get_dataset_args``)."""

_DIGITS = np.asarray([
    [5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5],
    [5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5],
    [5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5],
    [5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5],
    [5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5],
    [5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5],
    [5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5],
    [5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5],
    [5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5],
    [5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5],
])


def mnist1d_templates() -> Any:
    """The ten templates ``(10, 12)`` float64: standardized per row, shifted to start at 0, divided by 6."""
    x = _DIGITS - _DIGITS.mean(1, keepdims=True)
    x = x / x.std(1, keepdims=True)
    return (x - x[:, :1]) / 6.0


def _resample(x: Any, n: int) -> Any:
    """Linear interpolation of ``x`` (sampled evenly on [0, 1]) at ``n`` even points."""
    return np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(x)), x)


def _gaussian_smooth(x: Any, sigma: float) -> Any:
    """``scipy.ndimage.gaussian_filter(x, sigma)`` for 1-D ``x``: kernel radius ``int(4 sigma + 0.5)``,
    edges mirrored about the half sample (``d c b a | a b c d``, scipy's ``reflect``)."""
    r = int(4.0 * sigma + 0.5)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    padded = np.pad(x, r, mode="symmetric")
    return np.convolve(padded, k, mode="valid")


def _transform(x: Any, a: dict[str, Any], rs: Any) -> Any:
    low, high = a["padding"]
    n = a["template_len"] + high
    p = low + int(rs.rand() * (high - low + 1))
    x = np.concatenate([x + 1e-8, np.zeros(p)])  # the 1e-8 keeps the template's own zeros apart from the padding
    x = _resample(x, n)
    x = x * (1 + a["scale_coeff"] * (rs.rand() - 0.5))
    k = rs.choice(a["max_translation"])
    x = np.concatenate([x[len(x) - k:], x[:len(x) - k]])
    mask = x != 0
    corr = _gaussian_smooth(a["corr_noise_scale"] * rs.randn(n), 2.0)
    x = mask * x + (1 - mask) * corr
    x = x + a["iid_noise_scale"] * rs.randn(n)
    x = x - a["shear_scale"] * (rs.rand() - 0.5) * np.linspace(-0.5, 0.5, n)
    return _resample(x, a["final_seq_length"])


def make_mnist1d(**kwargs: Any) -> tuple[Any, Any, Any, Any]:
    """Generate MNIST-1D: ``(x_train, y_train, x_test, y_test)`` as float64 ``(N, L)`` and int64 ``(N,)`` arrays.

    Args:
        **kwargs: any of :data:`MNIST1D_DEFAULTS` (``num_samples`` 5000, ``train_split`` 0.8 — 4,000
            train and 1,000 test series —, ``seed`` 42, ``shuffle_seq`` False, the transform's scales …).

    Raises:
        ValueError: an unknown argument, or sizes that give no series.

    Example:
        >>> xtr, ytr, xte, yte = make_mnist1d(num_samples=100)
        >>> xtr.shape, xte.shape, sorted(set(ytr.tolist()))[:3]
        ((80, 40), (20, 40), [0, 1, 2])
    """
    unknown = sorted(set(kwargs) - set(MNIST1D_DEFAULTS))
    if unknown:
        raise ValueError(f"make_mnist1d: unknown arguments {', '.join(unknown)}; known: {', '.join(MNIST1D_DEFAULTS)}")
    a = {**MNIST1D_DEFAULTS, **kwargs}
    if int(a["num_samples"]) < 10 or not 0 < float(a["train_split"]) < 1 or int(a["final_seq_length"]) < 2:
        raise ValueError(f"make_mnist1d: need num_samples >= 10, 0 < train_split < 1, final_seq_length >= 2; got "
                         f"{a['num_samples']}, {a['train_split']}, {a['final_seq_length']}")
    low, high = a["padding"]
    if not 0 <= low <= high or not 0 < int(a["max_translation"]) <= a["template_len"] + high:
        raise ValueError(f"make_mnist1d: padding must be 0 <= low <= high and max_translation in 1..template_len + "
                         f"high, got padding {a['padding']}, max_translation {a['max_translation']}")
    rs = np.random.RandomState(int(a["seed"]))
    templates = mnist1d_templates()
    per_class = int(a["num_samples"]) // len(templates)
    xs = np.stack([_transform(templates[c], a, rs) for c in range(len(templates)) for _ in range(per_class)])
    ys = np.repeat(np.arange(len(templates), dtype=np.int64), per_class)
    order = rs.permutation(len(ys))
    xs, ys = xs[order], ys[order]
    if a["shuffle_seq"]:
        xs = xs[:, rs.permutation(int(a["final_seq_length"]))]
    xs = (xs - xs.mean()) / xs.std()
    split = int(len(ys) * float(a["train_split"]))
    return xs[:split], ys[:split], xs[split:], ys[split:]


_LAST: list[Any] = [None, None]


class MNIST1D(Dataset):
    """MNIST-1D as a data set of ``(series, label)``: ``series`` a float32 Tensor ``(1, 40)``.

    Args:
        train: the training part (4,000 series by default) or the test part (1,000).
        shuffle_seq: the paper's control, one fixed permutation of the time steps.
        seed: the generator seed (42: the published data set).
        transform, target_transform: callables applied to each series / label.
        **kwargs: more arguments of :func:`make_mnist1d` (``num_samples`` …).

    Attributes:
        data: float32 array ``(N, 1, 40)``; targets: int64 ``(N,)``; classes: ``['0', …, '9']``.

    Example:
        >>> ds = MNIST1D(num_samples=100)
        >>> x, y = ds[0]
        >>> tuple(x.shape), len(ds)
        ((1, 40), 80)
    """

    classes = [str(i) for i in range(10)]

    def __init__(self, train: bool = True, shuffle_seq: bool = False, seed: int = 42,
                 transform: Callable[[Any], Any] | None = None, target_transform: Callable[[Any], Any] | None = None,
                 **kwargs: Any) -> None:
        key = tuple(sorted({**kwargs, "shuffle_seq": shuffle_seq, "seed": seed}.items()))
        if _LAST[0] != key:  # the training and test parts of one set come from one generation
            _LAST[:] = [key, make_mnist1d(shuffle_seq=shuffle_seq, seed=seed, **kwargs)]
        xtr, ytr, xte, yte = _LAST[1]
        x, y = (xtr, ytr) if train else (xte, yte)
        self.data = x.astype(np.float32)[:, None, :]
        self.targets = y.copy()
        self.train, self.shuffle_seq = train, shuffle_seq
        self.transform, self.target_transform = transform, target_transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"MNIST1D: index {index} out of range for {n} samples")
        x: Any = Tensor._wrap(self.data[index].copy())
        y: Any = int(self.targets[index])
        if self.transform is not None:
            x = self.transform(x)
        if self.target_transform is not None:
            y = self.target_transform(y)
        return x, y
