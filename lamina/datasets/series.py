"""Your own time series: CSV or NumPy files → a data set of ``(series (C, L), label)``.

Formats (read by :func:`read_series`):

- **wide CSV**: a header row, one series per row: the label column (``label``) and the values
  of the time steps in the other columns, in order (one channel).
- **long CSV**: a header row with an id column (``id``): one row per time step, rows of one
  series together in time order, the label column (the same on every row of a series) and one
  column per channel.
- **NumPy** ``.npz``: arrays ``x`` ``(N, L)`` or ``(N, C, L)`` and ``y`` ``(N,)`` (numbers or
  strings; read with ``allow_pickle=False``, so nothing in the file runs).

:class:`SeriesDataset` cuts fixed-length windows with a stride (each window keeps its series'
label) and standardizes every channel with the mean and standard deviation of the *training*
windows, which the test part is given. Windows are cut after the split into parts, so no series
lends windows to both.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..autograd.tensor import Tensor
from ..utils.data import Dataset
from . import files
from .files import DatasetFileError

__all__ = ["read_series", "make_windows", "SeriesDataset", "series_split"]


def _label_order(labels: Sequence[str]) -> list[str]:
    uniq = sorted(set(labels))
    try:
        return sorted(uniq, key=float)  # numbers in numeric order: '2' before '10'
    except ValueError:
        return uniq


def _float(value: str, path: str, line: int, column: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise DatasetFileError(f"series: {path}, line {line}, column {column!r}: expected a number, got "
                               f"{value!r}") from None
    if not np.isfinite(v):
        raise DatasetFileError(f"series: {path}, line {line}, column {column!r}: the value {value!r} is not finite")
    return v


def _read_csv(path: str, label_column: str, id_column: str) -> tuple[list[Any], list[str]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetFileError(f"series: cannot read {path}: {e}") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise DatasetFileError(f"series: {path} needs a header row and at least one data row, found {len(rows)} rows")
    header = [h.strip() for h in rows[0]]
    if label_column not in header:
        raise DatasetFileError(f"series: {path} has no label column {label_column!r} in its header "
                               f"({', '.join(header)})")
    li = header.index(label_column)
    ii = header.index(id_column) if id_column in header else None
    value_cols = [j for j in range(len(header)) if j not in (li, ii)]
    if not value_cols:
        raise DatasetFileError(f"series: {path} has no value columns besides {label_column!r}")
    series: list[Any] = []
    labels: list[str] = []
    seen: set[str] = set()
    key = None
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DatasetFileError(f"series: {path}, line {n}: {len(row)} fields, but the header has {len(header)}")
        vals = [_float(row[j], path, n, header[j]) for j in value_cols]
        label = row[li].strip()
        if ii is None:  # wide: the row is one series of one channel
            series.append(np.asarray(vals)[None])
            labels.append(label)
            continue
        if row[ii].strip() != key:
            key = row[ii].strip()
            if key in seen:
                raise DatasetFileError(f"series: {path}, line {n}: the rows of series {key!r} are not together "
                                       "(long format: the rows of one series follow each other in time order)")
            seen.add(key)
            series.append([])
            labels.append(label)
        elif label != labels[-1]:
            raise DatasetFileError(f"series: {path}, line {n}: series {key!r} changes its label from "
                                   f"{labels[-1]!r} to {label!r}")
        series[-1].append(vals)
    if ii is not None:
        series = [np.asarray(v).T for v in series]
    return series, labels


def read_series(path: str, label_column: str = "label", id_column: str = "id") -> tuple[list[Any], list[str]]:
    """The series of a file and their labels (as strings): ``([array (C, L_i)], [label])``.

    Raises:
        DatasetFileError: the file is missing, too large, empty, without the label column, holds a
            value that is not a finite number, a row of another width than the header, a series
            whose rows are apart or whose label changes (long format), or arrays of the wrong shape.
    """
    if not os.path.isfile(path):
        raise DatasetFileError(f"series: no file {path!r} (a .csv or .npz of series)")
    size = os.path.getsize(path)
    if size > files.MAX_DATA_BYTES:
        raise DatasetFileError(f"series: {path} holds {size} bytes, more than MAX_DATA_BYTES ({files.MAX_DATA_BYTES})")
    if path.endswith(".npz"):
        try:
            with np.load(path, allow_pickle=False) as z:
                if "x" not in z or "y" not in z:
                    raise DatasetFileError(f"series: {path} must hold arrays 'x' and 'y', found {', '.join(z.files)}")
                x, y = np.asarray(z["x"]), np.asarray(z["y"])
        except (OSError, ValueError) as e:
            if isinstance(e, DatasetFileError):
                raise
            raise DatasetFileError(f"series: cannot read {path} as a NumPy .npz: {e}") from None
        if x.ndim == 2:
            x = x[:, None]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y) or x.dtype.kind not in "fiu":
            raise DatasetFileError(f"series: {path}: expected x (N, L) or (N, C, L) numbers and y (N,), got x "
                                   f"{x.shape} {x.dtype}, y {y.shape}")
        if not np.isfinite(x).all():
            raise DatasetFileError(f"series: {path}: x holds values that are not finite")
        return [s.astype(np.float64) for s in x], [str(v) for v in y.tolist()]
    series, labels = _read_csv(path, label_column, id_column)
    return series, labels


def make_windows(series: Sequence[Any], labels: Sequence[int], window: int | None, stride: int | None,
                 where: str) -> tuple[Any, Any]:
    """Windows of ``window`` steps every ``stride`` steps of each series (the whole series when
    ``window`` is None, then all must be equally long): ``(x (M, C, window), y (M,))``."""
    if window is None:
        lengths = sorted({s.shape[-1] for s in series})
        if len(lengths) > 1:
            raise DatasetFileError(f"series: {where}: the series have different lengths ({lengths[0]} to "
                                   f"{lengths[-1]} steps); give --window to cut them into equal windows")
        return np.stack(series), np.asarray(labels, dtype=np.int64)
    stride = stride or window
    if window < 1 or stride < 1:
        raise ValueError(f"series: window and stride must be positive, got {window}, {stride}")
    xs, ys = [], []
    for s, y in zip(series, labels):
        for start in range(0, s.shape[-1] - window + 1, stride):
            xs.append(s[:, start:start + window])
            ys.append(y)
    if not xs:
        longest = max(s.shape[-1] for s in series)
        raise DatasetFileError(f"series: {where}: no series is as long as the window ({window} steps; the "
                               f"longest has {longest})")
    return np.stack(xs), np.asarray(ys, dtype=np.int64)


def series_split(n: int, seed: int, test_fraction: float = 0.2) -> tuple[Any, Any]:
    """Indices of the training and test series of one file: a fixed shuffle of ``seed``."""
    order = np.random.default_rng(seed + 104729).permutation(n)
    n_test = max(1, int(round(n * test_fraction))) if n > 1 else 0
    return np.sort(order[n_test:]), np.sort(order[:n_test])


class SeriesDataset(Dataset):
    """Windows of series with integer labels, per-channel standardized, as ``(Tensor (C, L), int)``.

    Args:
        series: arrays ``(C, L_i)``. labels: the class index of each. classes: the class names.
        window, stride: cut windows (see :func:`make_windows`); None: whole series.
        stats: ``(mean, std)`` per channel ``(C,)`` to standardize with; None computes them from
            these windows (the training part's, which the test part is then given).
        transform: applied to each window (e.g. ``lamina.transforms.series`` augmentations).

    Attributes:
        data: float32 ``(M, C, L)``; targets: int64 ``(M,)``; mean, std: the statistics used.
    """

    def __init__(self, series: Sequence[Any], labels: Sequence[int], classes: Sequence[str],
                 window: int | None = None, stride: int | None = None, stats: tuple[Any, Any] | None = None,
                 transform: Callable[[Any], Any] | None = None, where: str = "series") -> None:
        x, y = make_windows(series, labels, window, stride, where)
        if stats is None:
            mean, std = x.mean(axis=(0, 2)), x.std(axis=(0, 2))
            std = np.where(std > 0, std, 1.0)  # a constant channel stays centred, not divided by 0
        else:
            mean, std = (np.asarray(s, dtype=np.float64) for s in stats)
            if mean.shape != (x.shape[1],):
                raise DatasetFileError(f"series: {where} has {x.shape[1]} channels, the training part "
                                       f"{mean.shape[0]}")
        self.mean, self.std = mean, std
        self.data = ((x - mean[:, None]) / std[:, None]).astype(np.float32)
        self.targets = y
        self.classes = list(classes)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"SeriesDataset: index {index} out of range for {n} samples")
        x: Any = Tensor._wrap(self.data[index].copy())
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.targets[index])
