"""The MLP playground's data: the 2-D data sets, the user's CSV of points, the input features.

Every data set is one of ``lamina.datasets``' generators (``make_rings``, ``make_xor``,
``make_blobs``, ``make_spirals``, ``make_moons``); a CSV upload is parsed as text (numbers only,
never code), checked and size-limited.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["DATASETS", "FEATURES", "MAX_CSV_BYTES", "MAX_CSV_ROWS", "make_points", "parse_csv", "feature_matrix",
           "split"]

DATASETS = ("circle", "xor", "gaussian", "spiral", "moons", "blobs", "csv")
FEATURES = {
    "x1": lambda a, b: a, "x2": lambda a, b: b, "x1^2": lambda a, b: a * a, "x2^2": lambda a, b: b * b,
    "x1*x2": lambda a, b: a * b, "sin(x1)": lambda a, b: np.sin(a), "sin(x2)": lambda a, b: np.sin(b),
}
MAX_CSV_BYTES = 2 * 1024 * 1024
MAX_CSV_ROWS = 20000
MAX_CSV_CLASSES = 20


def make_points(name: str, n: int, noise: float, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(X (n, 2) float64, y (n,) int64)`` of the named data set, from lamina's generators.

    ``noise`` is the generator's Gaussian noise (``std`` of the clusters for ``gaussian`` and
    ``blobs``); ``classes`` counts the spiral arms or the blobs."""
    from .. import datasets

    if name not in DATASETS or name == "csv":
        raise ValueError(f"playground: unknown data set {name!r}; known: {', '.join(DATASETS[:-1])} (or a CSV upload)")
    if name == "circle":
        X, y = datasets.make_rings(n, noise=noise, seed=seed)
    elif name == "xor":
        X, y = datasets.make_xor(n, noise=noise, seed=seed)
    elif name == "gaussian":
        X, y = datasets.make_blobs(n, centers=[[-0.6, -0.6], [0.6, 0.6]], std=noise, seed=seed)
    elif name == "spiral":
        X, y = datasets.make_spirals(n, noise=noise, classes=classes, seed=seed)
    elif name == "moons":
        X, y = datasets.make_moons(n, noise=noise, seed=seed)
    else:
        X, y = datasets.make_blobs(n, centers=classes, std=noise, seed=seed)
    return np.asarray(X.numpy(), dtype=np.float64), np.asarray(y.numpy(), dtype=np.int64)


def parse_csv(data: bytes, name: str = "upload") -> tuple[np.ndarray, np.ndarray]:
    """Points from CSV text: rows ``x1,x2,label`` (a first row of column names is skipped).

    Labels are integers ``0 … k-1`` or any strings (then numbered in sorted order). The file is
    read as text and numbers only: nothing in it is executed."""
    if len(data) > MAX_CSV_BYTES:
        raise ValueError(f"{name}: the CSV has {len(data)} bytes, more than the limit of {MAX_CSV_BYTES}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{name}: expected UTF-8 text (rows x1,x2,label), got undecodable bytes "
                         f"({e.reason})") from None
    rows = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if len(rows) > MAX_CSV_ROWS + 1:
        raise ValueError(f"{name}: {len(rows)} rows, more than the limit of {MAX_CSV_ROWS}")
    points, labels = [], []
    for i, line in enumerate(rows, 1):
        cells = [c.strip().strip('"') for c in line.replace(";", ",").replace("\t", ",").split(",")]
        if len(cells) != 3:
            raise ValueError(f"{name}: line {i}: expected 3 columns x1,x2,label, got {len(cells)}: {line[:60]!r}")
        try:
            a, b = float(cells[0]), float(cells[1])
        except ValueError:
            if i == 1 and not points:  # a header row
                continue
            raise ValueError(f"{name}: line {i}: x1 and x2 must be numbers, got {cells[0]!r}, {cells[1]!r}") from None
        if not (math.isfinite(a) and math.isfinite(b)):
            raise ValueError(f"{name}: line {i}: x1 and x2 must be finite, got {cells[0]!r}, {cells[1]!r}")
        points.append((a, b))
        labels.append(cells[2])
    if len(points) < 4:
        raise ValueError(f"{name}: expected at least 4 points (rows x1,x2,label), got {len(points)}")
    names = sorted(set(labels), key=lambda s: (0, int(s)) if s.lstrip("-").isdigit() else (1, s))
    if len(names) < 2 or len(names) > MAX_CSV_CLASSES:
        raise ValueError(f"{name}: expected 2 to {MAX_CSV_CLASSES} classes in the label column, got {len(names)}")
    index = {s: k for k, s in enumerate(names)}
    return np.asarray(points, dtype=np.float64), np.asarray([index[s] for s in labels], dtype=np.int64)


def feature_matrix(X: np.ndarray, features: list[str]) -> np.ndarray:
    """The network's input: one column per chosen feature of the points ``X`` ``(n, 2)``."""
    unknown = [f for f in features if f not in FEATURES]
    if unknown or not features:
        raise ValueError(f"playground: features must be a non-empty list of {', '.join(FEATURES)}, "
                         f"got {features!r}")
    return np.stack([FEATURES[f](X[:, 0], X[:, 1]) for f in features], 1).astype(np.float32)


def split(X: np.ndarray, y: np.ndarray, ratio: float, seed: int) -> tuple[np.ndarray, ...]:
    """A seeded shuffle into ``ratio`` train and the rest test (each part keeps at least one point)."""
    if not 0 < ratio < 1:
        raise ValueError(f"playground: the train ratio must be between 0 and 1 (exclusive), got {ratio}")
    order = np.random.default_rng(seed).permutation(len(X))
    k = min(max(1, round(ratio * len(X))), len(X) - 1)
    return X[order[:k]], y[order[:k]], X[order[k:]], y[order[k:]]
