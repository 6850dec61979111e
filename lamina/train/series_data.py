"""The time-series data of ``lamina train``: MNIST-1D and the user's ``--data csv --data-root FILE``.

``--data-root`` is one file (``.csv`` or ``.npz``: see :mod:`lamina.datasets.series`), whose
series are split into a training part (80 %) and a test part (20 %) by a fixed shuffle of the
run's seed, or a folder holding ``train.csv`` and ``test.csv`` (or ``train.npz`` and
``test.npz``). ``window`` and ``stride`` in the configuration cut fixed-length windows; every
channel is standardized with the training windows' mean and standard deviation.
"""

from __future__ import annotations

import os
from typing import Any

from ..datasets.files import DatasetFileError
from ..datasets.series import SeriesDataset, _label_order, read_series, series_split

__all__ = ["csv_parts", "csv_classes", "csv_shape", "build_series_data", "series_transform"]

_CACHE: dict[tuple[str, float, int], Any] = {}


def _files(root: str) -> tuple[str, str | None]:
    if os.path.isdir(root):
        for ext in (".csv", ".npz"):
            train, test = os.path.join(root, "train" + ext), os.path.join(root, "test" + ext)
            if os.path.isfile(train) and os.path.isfile(test):
                return train, test
        raise DatasetFileError(f"series: the folder {root} holds neither train.csv and test.csv nor train.npz and "
                               "test.npz (or give one .csv / .npz file as --data-root)")
    return root, None


def _read(path: str) -> tuple[list[Any], list[str]]:
    key = (os.path.abspath(path), os.path.getmtime(path) if os.path.exists(path) else 0.0,
           os.path.getsize(path) if os.path.exists(path) else 0)
    if key not in _CACHE:
        _CACHE.clear()  # one file at a time: the run's
        _CACHE[key] = read_series(path)
    return _CACHE[key]


def csv_parts(config: dict[str, Any]) -> tuple[tuple[list[Any], list[str]], tuple[list[Any], list[str]], str]:
    """``((train series, labels), (test series, labels), where)`` of ``config['data_root']``."""
    root = config.get("data_root")
    if not root:
        raise ValueError("data set 'csv' reads your own series: give --data-root (a .csv or .npz file, or a folder "
                         "with train.csv and test.csv)")
    train_path, test_path = _files(root)
    if test_path is not None:
        return _read(train_path), _read(test_path), root
    series, labels = _read(train_path)
    if len(series) < 2:
        raise DatasetFileError(f"series: {train_path} holds {len(series)} series; a train/test split needs 2 or more")
    tr, te = series_split(len(series), int(config.get("seed", 0)))
    return ([series[i] for i in tr], [labels[i] for i in tr]), ([series[i] for i in te], [labels[i] for i in te]), \
        train_path


def csv_classes(config: dict[str, Any]) -> list[str]:
    """The class names: the labels of the training and test series, numbers in numeric order."""
    (_, ytr), (_, yte), _ = csv_parts(config)
    return _label_order(list(ytr) + list(yte))


def csv_shape(config: dict[str, Any]) -> tuple[int, int]:
    """``(channels, steps)`` of the series the model gets (the window's length where one is set)."""
    (xtr, _), _, where = csv_parts(config)
    channels = sorted({s.shape[0] for s in xtr})
    if len(channels) > 1:
        raise DatasetFileError(f"series: {where}: the series have different channel counts ({channels})")
    window = config.get("window")
    if window:
        return channels[0], int(window)
    lengths = sorted({s.shape[-1] for s in xtr})
    if len(lengths) > 1:
        raise DatasetFileError(f"series: {where}: the series have different lengths ({lengths[0]} to {lengths[-1]} "
                               "steps); give --window to cut them into equal windows")
    return channels[0], lengths[0]


def build_series_data(config: dict[str, Any], train: bool, transform: Any = None) -> Any:
    """The training or test part of a series data set of the run (MNIST-1D, or the user's file)."""
    name = config["data"]
    if name.startswith("mnist1d"):
        from ..datasets.mnist1d import MNIST1D

        return MNIST1D(train=train, shuffle_seq=name == "mnist1d-shuffled", transform=transform)
    (xtr, ytr), (xte, yte), where = csv_parts(config)
    classes = list(config.get("classes") or csv_classes(config))
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(ytr + yte) - set(index))
    if unknown:
        raise ValueError(f"data 'csv' in {where} has labels the run was not trained on: {', '.join(unknown)}")
    window, stride = config.get("window"), config.get("stride")
    train_ds = SeriesDataset(xtr, [index[y] for y in ytr], classes, window, stride, where=f"{where} (train)",
                             transform=transform if train else None)
    if train:
        return train_ds
    return SeriesDataset(xte, [index[y] for y in yte], classes, window, stride, stats=(train_ds.mean, train_ds.std),
                         where=f"{where} (test)")


def series_transform(config: dict[str, Any], train: bool) -> Any:
    """``--augment`` on series: jitter, per-channel scaling and a small circular time shift."""
    if not (train and config.get("augment")):
        return None
    from ..transforms import series as TS

    return TS.Compose([TS.Jitter(0.03), TS.Scaling(0.1), TS.TimeShift(2)])


def read_series_inputs(config: dict[str, Any], paths: list[str]) -> tuple[list[str], Any]:
    """The series that ``lamina predict`` classifies for a run on series, standardized as its data:
    ``.npy`` files of one series ``(L,)`` / ``(C, L)`` or a batch ``(N, C, L)``, or ``.csv`` / ``.npz``
    files in the training format (their labels are ignored). Returns ``(names, x (M, C, L))``.

    Raises:
        DatasetFileError: a file that cannot be read or holds series of another shape than the run's.
    """
    import numpy as np

    from .run_config import data_info

    info = data_info(config)
    want = (info["channels"], info["size"])
    names, xs = [], []
    for path in paths:
        if path.endswith(".npy"):
            try:
                a = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as e:
                raise DatasetFileError(f"lamina predict: cannot read {path} as a NumPy array: {e}") from None
            a = a[None, None] if a.ndim == 1 else a[None] if a.ndim == 2 else a
        else:
            series, _ = read_series(path)
            a = np.stack(series) if len({s.shape for s in series}) == 1 else None
            if a is None:
                raise DatasetFileError(f"lamina predict: {path} holds series of different lengths")
        if a.ndim != 3 or tuple(a.shape[1:]) != want or a.dtype.kind not in "fiu" or not np.isfinite(a).all():
            raise DatasetFileError(f"lamina predict: {path} holds an array of shape {a.shape}; this run classifies "
                                   f"finite series of {want[0]} channel(s) × {want[1]} steps ((L,), (C, L) or "
                                   "(N, C, L))")
        names += [path] if len(a) == 1 else [f"{path}[{i}]" for i in range(len(a))]
        xs.append(a.astype(np.float64))
    x = np.concatenate(xs)
    if config["data"] == "csv":  # the raw values of the user's file: standardize as the training windows
        stats = build_series_data(config, True)
        x = (x - stats.mean[:, None]) / stats.std[:, None]
    return names, x.astype(np.float32)
