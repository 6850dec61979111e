"""Data-set statistics as transforms: per-channel standardization and PCA/ZCA whitening.

The lectures' good practices "normalize, decorrelate": :func:`compute_mean_std` measures each
channel's mean and standard deviation over a data set and returns the matching
:class:`~lamina.transforms.Normalize`; :class:`ZCAWhitening` removes the correlations between
input dimensions (covariance → identity).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import backend
from ..autograd.tensor import Tensor
from ._image import is_pil, unpack
from .transforms import Normalize, Transform

__all__ = ["compute_mean_std", "ZCAWhitening"]

xp = backend.xp


def _samples(data: Any, op: str) -> Iterable[Any]:
    """Images from an array/Tensor ``(N, …)`` or from a data set whose samples are images or ``(image, …)``."""
    if isinstance(data, Tensor):
        data = data.array
    if isinstance(data, xp.ndarray):
        yield from data
        return
    try:
        n = len(data)
    except TypeError:
        raise TypeError(f"{op}: expected an array, a Tensor or a data set, got {type(data).__name__}") from None
    for i in range(n):
        s = data[i]
        yield s[0] if isinstance(s, (tuple, list)) else s


def compute_mean_std(dataset: Any, max_samples: int | None = None) -> Normalize:
    """Per-channel mean and (population) standard deviation of the images of ``dataset``, as a ``Normalize``.

    Args:
        dataset: a data set whose samples are images or ``(image, target)`` pairs (images as ``(C, H, W)``
            Tensors, NumPy HWC arrays or PIL images), or an array/Tensor ``(N, C, H, W)``.
        max_samples: use only the first ``max_samples`` images.

    Returns:
        ``Normalize(mean, std)``; the values are also in its ``mean`` and ``std`` attributes.

    Example:
        >>> import numpy as np
        >>> norm = compute_mean_std(np.stack([np.zeros((2, 2, 2)), np.ones((2, 2, 2))]))
        >>> norm.mean, norm.std
        ([0.5, 0.5], [0.5, 0.5])
    """
    count, mean, m2 = 0, None, None
    for k, img in enumerate(_samples(dataset, "compute_mean_std")):
        if max_samples is not None and k >= max_samples:
            break
        if isinstance(img, xp.ndarray) and isinstance(dataset, (xp.ndarray, Tensor)):
            a = img.astype(xp.float64)  # rows of a (N, C, H, W) array are already channels-first
            if a.ndim == 2:
                a = a[None]
        else:
            a, _ = unpack(img, "compute_mean_std")
            a = a.astype(xp.float64)
        a = a.reshape(a.shape[-3], -1)
        n_b, mean_b = a.shape[1], a.mean(axis=1)
        m2_b = ((a - mean_b[:, None]) ** 2).sum(axis=1)
        if mean is None:
            count, mean, m2 = n_b, mean_b, m2_b
            continue
        if mean_b.shape != mean.shape:
            raise ValueError(f"compute_mean_std: image {k} has {mean_b.shape[0]} channels, the first had "
                             f"{mean.shape[0]}")
        delta, total = mean_b - mean, count + n_b  # Chan et al.'s pairwise update: stable for large sets
        mean = mean + delta * n_b / total
        m2 = m2 + m2_b + delta**2 * count * n_b / total
        count = total
    if mean is None:
        raise ValueError("compute_mean_std: the data set is empty")
    std = xp.sqrt(m2 / count)
    if (std == 0).any():
        raise ValueError(f"compute_mean_std: channel(s) {xp.flatnonzero(std == 0).tolist()} are constant (std 0)")
    return Normalize(mean.tolist(), std.tolist())


class ZCAWhitening(Transform):
    """PCA or ZCA whitening fitted on a data set: decorrelated dimensions of unit variance.

    With the covariance ``Σ = U diag(λ) Uᵀ`` of the centred training data (``1/N`` normalization):
    PCA whitening maps ``x ↦ diag(λ + eps)^{-1/2} Uᵀ (x - μ)`` (keeping ``n_components`` leading
    directions); ZCA whitening rotates back, ``x ↦ U diag(λ + eps)^{-1/2} Uᵀ (x - μ)``, which keeps
    the image's shape and stays as close to the input as possible. On the training data the
    whitened covariance is the identity (up to ``eps``).

    Args:
        eps: added to the eigenvalues (regularizes directions of tiny variance).
        method: ``'zca'`` or ``'pca'``.
        n_components: for PCA, how many leading components to keep (default all).

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(500, 3)) @ np.array([[2., 0, 0], [1, 1, 0], [0, 0, .1]])
        >>> w = ZCAWhitening(eps=0.0).fit(x)
        >>> np.allclose(np.cov(w.transform(x).numpy().T, bias=True), np.eye(3))
        True
    """

    def __init__(self, eps: float = 1e-5, method: str = "zca", n_components: int | None = None) -> None:
        if method not in ("zca", "pca"):
            raise ValueError(f"ZCAWhitening: method should be 'zca' or 'pca', got {method!r}")
        if n_components is not None and method != "pca":
            raise ValueError("ZCAWhitening: n_components is only meaningful with method='pca'")
        if eps < 0:
            raise ValueError(f"ZCAWhitening: eps should be non-negative, got {eps}")
        self.eps, self.method, self.n_components = eps, method, n_components
        self.mean: Any = None
        self.matrix: Any = None
        self.sample_shape: tuple[int, ...] | None = None

    def fit(self, data: Any) -> ZCAWhitening:
        """Estimate the mean and whitening matrix from ``data``: an array/Tensor ``(N, …)`` or a data set."""
        if isinstance(data, Tensor):
            data = data.array
        if isinstance(data, xp.ndarray):
            rows = xp.asarray(data, dtype=xp.float64)
        else:
            rows = xp.stack([xp.asarray(s.array if isinstance(s, Tensor) else s, dtype=xp.float64)
                             for s in _samples(data, "ZCAWhitening.fit")])
        if rows.ndim < 2 or rows.shape[0] < 2:
            raise ValueError(f"ZCAWhitening.fit: expected at least 2 samples (N, ...), got shape {rows.shape}")
        self.sample_shape = rows.shape[1:]
        x = rows.reshape(rows.shape[0], -1)
        self.mean = x.mean(axis=0)
        xc = x - self.mean
        cov = xc.T @ xc / x.shape[0]
        lam, u = xp.linalg.eigh(cov)
        lam, u = xp.maximum(lam[::-1], 0.0), u[:, ::-1]  # descending; clip round-off below zero
        if self.eps == 0 and (lam <= 1e-12 * max(lam.max(), 1e-300)).any():
            raise ValueError("ZCAWhitening.fit: the covariance is singular (more dimensions than samples, or constant "
                             "dimensions); use eps > 0 or PCA with fewer n_components")
        scale = 1.0 / xp.sqrt(lam + self.eps)
        k = self.n_components if self.n_components is not None else len(lam)
        if self.method == "pca":
            self.matrix = scale[:k, None] * u[:, :k].T
        else:
            self.matrix = (u * scale) @ u.T
        self.eigenvalues, self.components = lam, u.T
        return self

    def _check(self, x: Any, op: str) -> tuple[Any, bool]:
        if self.matrix is None:
            raise RuntimeError(f"ZCAWhitening.{op}: call fit(data) first")
        a = x.array if isinstance(x, Tensor) else (unpack(x, op)[0] if is_pil(x) else xp.asarray(x))
        single = a.shape == self.sample_shape
        if not single and a.shape[1:] != self.sample_shape:
            raise ValueError(f"ZCAWhitening.{op}: expected a sample of shape {self.sample_shape} or a batch "
                             f"(N, *{self.sample_shape}), got {a.shape}")
        return a, single

    def transform(self, x: Any) -> Tensor:
        """Whiten one sample or a batch ``(N, …)``; returns a float32 Tensor (ZCA: the input's shape;
        PCA: ``(n_components,)`` or ``(N, n_components)``)."""
        a, single = self._check(x, "transform")
        flat = a.reshape(1 if single else a.shape[0], -1).astype(xp.float64)
        out = (flat - self.mean) @ self.matrix.T
        if self.method == "zca":
            out = out.reshape((-1, *self.sample_shape))
        dtype = a.dtype if a.dtype.kind == "f" else backend.float32
        return Tensor._wrap((out[0] if single else out).astype(dtype))

    __call__ = transform

    def inverse_transform(self, z: Any) -> Tensor:
        """Map whitened data back (exact for ZCA and for PCA with all components)."""
        zz = xp.asarray(z.array if isinstance(z, Tensor) else z, dtype=xp.float64)
        single = zz.ndim == (len(self.sample_shape) if self.method == "zca" else 1)
        flat = zz.reshape(1 if single else zz.shape[0], -1)
        x = flat @ xp.linalg.pinv(self.matrix).T + self.mean
        x = x.reshape((-1, *self.sample_shape))
        return Tensor._wrap((x[0] if single else x).astype(backend.float32))
