"""Floor 6: ``lamina predict`` — classify the user's images, 2-D points or series with a trained
run (the task runs' predict lives in :mod:`lamina.cli_tasks`)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

__all__ = ["predict"]


def _load_image(path: str, channels: int, size: int) -> Any:
    from .datasets import read_image

    try:
        return read_image(path, channels, (size, size), "lamina predict")
    except ValueError as e:
        raise SystemExit(str(e)) from None


def _border_level(images: Any) -> Any:
    """The mean of each image's outermost ring of pixels ``(N,)``: its background level."""
    import numpy as np

    a = np.asarray(images, dtype=np.float64)
    ring = np.concatenate([a[..., 0, :], a[..., -1, :], a[..., 1:-1, 0], a[..., 1:-1, -1]], axis=-1)
    return ring.reshape(len(a), -1).mean(axis=1)


def _training_background(ds: Any, limit: int = 100) -> float | None:
    """The background level of the data set's images when it is the same for nearly all of them
    (dark, as the digits and MNIST, or light), else None (photos, the shapes' random colors)."""
    import numpy as np

    n = min(len(ds), limit)
    if n == 0:
        return None
    xs = [ds[i][0] for i in range(n)]
    levels = _border_level(np.stack([np.asarray(x.array if hasattr(x, "array") else x) for x in xs]))
    lo, hi = np.percentile(levels, [5, 95])
    if hi < 0.35 or lo > 0.65:
        return float(np.median(levels))
    return None


def predict(args: argparse.Namespace) -> int:
    import numpy as np

    import lamina

    from .cli_tasks import predict_task, task_of_run
    from .train.finite import check_finite
    from .train.run import _model_input_size, data_info, load_run

    if task_of_run(args.checkpoint) != "classify":
        return predict_task(args, args.checkpoint)
    if args.out is not None or args.score_thresh is not None:
        raise ValueError("--out and --score-thresh are options of detection and segmentation runs; this run "
                         "classifies (its predictions are printed)")
    config, model, _ = load_run(args.checkpoint)
    info = data_info(config)
    if info.get("series"):
        from .train.series_data import read_series_inputs

        names, series = read_series_inputs(config, list(args.images))
        return _print_predictions(names, model, series, config["classes"])
    if info["channels"] == 0:
        return _predict_points(args, config, model)
    size = info["size"]
    classes = config["classes"]
    batch = np.stack([_load_image(p, info["channels"], size) for p in args.images])
    if args.invert is None:
        # a dark-on-light picture given to a model trained on light-on-dark digits would be
        # misread without a word: flip the images whose background is on the other side
        try:
            from .train.run import build_data

            bg = _training_background(build_data(config, False))
        except (ValueError, OSError) as e:  # the run's data moved or changed: say so, keep the images
            bg = None
            print(f"lamina predict: cannot read the run's test images to see their background ({e}); the images "
                  "are taken as they are (--invert flips them)", file=sys.stderr)
        if bg is not None:
            levels = _border_level(batch)
            for i, (path, level) in enumerate(zip(args.images, levels)):
                if abs(level - (1 - bg)) < abs(level - bg):
                    batch[i] = 1.0 - batch[i]
                    print(f"lamina predict: {path}: its background ({level:.2f}) is the opposite of the training "
                          f"images' ({bg:.2f}): inverted the grey levels (--no-invert keeps them)", file=sys.stderr)
    elif args.invert:
        batch = 1.0 - batch
    x = lamina.tensor(batch)
    if _model_input_size(config, size) != size:
        x = lamina.nn.functional.interpolate(x, size=_model_input_size(config, size), mode="bilinear",
                                             align_corners=False)
    with lamina.no_grad():
        logits = model(x).array
    check_finite(logits, "lamina predict", samples=list(args.images), model=model, inputs=batch)
    p = lamina.tensor(logits).softmax(1).array
    for path, row in zip(args.images, p):
        k = int(row.argmax())
        name = classes[k] if classes else str(k)
        top = ", ".join(f"{classes[j] if classes else j}: {row[j]:.3f}" for j in np.argsort(-row)[:3])
        print(f"{path}: {name}  (p = {row[k]:.3f}; top 3: {top})")
    return 0


def _read_points(arg: str, what: str) -> list[tuple[str, Any]]:
    """``X,Y`` or a file of points (``.npy`` (N, 2) or (2,), or text: two numbers a line, comma
    or blank between, ``#`` comments) → ``[(label, point (2,))]``."""
    import io

    import numpy as np

    if not os.path.isfile(arg):
        try:
            xy = [float(v) for v in arg.split(",")]
        except ValueError:
            xy = []
        if len(xy) != 2:
            raise ValueError(f"lamina predict: {arg!r} is neither a file nor a point X,Y; {what} classifies 2-D "
                             "points (X,Y, or .npy/.csv/.txt files of (N, 2) points)")
        return [(f"({xy[0]:g}, {xy[1]:g})", np.asarray(xy, dtype=np.float32))]
    try:
        if arg.endswith(".npy"):
            pts = np.load(arg, allow_pickle=False)
        else:
            with open(arg, encoding="utf-8") as f:
                pts = np.loadtxt(io.StringIO(f.read().replace(",", " ")), ndmin=2)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"lamina predict: cannot read points from {arg}: {e}; {what} classifies 2-D points "
                         "(.npy, or text with two numbers a line)") from None
    pts = np.asarray(pts, dtype=np.float32)
    pts = pts[None] if pts.shape == (2,) else pts
    if pts.ndim != 2 or pts.shape[1] != 2 or not np.isfinite(pts).all():
        raise ValueError(f"lamina predict: {arg} holds an array of shape {pts.shape}; {what} needs finite points "
                         "of shape (N, 2)")
    return [(f"{arg}[{i}] ({x:g}, {y:g})", row) for i, (row, (x, y)) in enumerate(zip(pts, pts.tolist()))]


def _print_predictions(names: list[str], model: Any, x: Any, classes: list[str]) -> int:
    import numpy as np

    import lamina

    with lamina.no_grad():
        prob = model(lamina.tensor(x)).softmax(1).array
    for name, row in zip(names, prob):
        k = int(row.argmax())
        top = ", ".join(f"{classes[j]}: {row[j]:.3f}" for j in np.argsort(-row)[:3])
        print(f"{name}: {classes[k]}  (p = {row[k]:.3f}; top {min(3, len(row))}: {top})")
    return 0


def _predict_points(args: argparse.Namespace, config: dict[str, Any], model: Any) -> int:
    """``lamina predict`` for a run on 2-D points: each INPUT is a point or a file of points."""
    import numpy as np

    import lamina

    what = f"this run ({config['model']} on {config['data']})"
    points = [p for arg in args.images for p in _read_points(arg, what)]
    with lamina.no_grad():
        prob = model(lamina.tensor(np.stack([p for _, p in points]))).softmax(1).array
    classes = config["classes"]
    for (label, _), row in zip(points, prob):
        k = int(row.argmax())
        top = ", ".join(f"{classes[j]}: {row[j]:.3f}" for j in np.argsort(-row)[:3])
        print(f"{label}: {classes[k]}  (p = {row[k]:.3f}; top {min(3, len(row))}: {top})")
    return 0
