"""The report figures of a run on time series: example series per class, and a saliency over time.

The saliency of a series is gradient × input of the score of its true class, per time step
(summed over channels): where in time the model's evidence lies. On MNIST-1D a CNN's saliency
sits on the digit's template, wherever the translation put it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import nn
from ..autograd.tensor import Tensor
from .report import _pyplot, _save_fig

__all__ = ["saliency_over_time", "plot_series_examples", "plot_saliency", "series_samples"]


def series_samples(ds: Any, per_class: int = 2, limit: int = 2000) -> tuple[Any, Any]:
    """Up to ``per_class`` series of each class among the first ``limit`` samples of ``ds``: ``(x, y)``."""
    xs, ys, count = [], [], {}
    for i in range(min(len(ds), limit)):
        x, y = ds[i]
        if count.get(y, 0) < per_class:
            count[y] = count.get(y, 0) + 1
            xs.append(np.asarray(x.array if isinstance(x, Tensor) else x))
            ys.append(int(y))
    order = np.argsort(ys, kind="stable")
    return np.stack(xs)[order], np.asarray(ys)[order]


def saliency_over_time(model: nn.Module, x: Any, target: Any) -> Any:
    """Gradient × input of each series' ``target`` score, summed over channels: ``(N, L)``."""
    model.eval()
    xt = Tensor._wrap(np.asarray(x, dtype=np.float32).copy()).requires_grad_(True)
    out = model(xt)
    picked = (out * Tensor._wrap(np.eye(out.shape[1], dtype=out.array.dtype)[np.asarray(target)])).sum()
    picked.backward()
    return (xt.grad.array * xt.array).sum(axis=1)


def plot_series_examples(x: Any, y: Sequence[int], path: str | os.PathLike[str], class_names: Sequence[str]) -> str:
    """Example series, one panel per class (channel 0 where there are several)."""
    plt = _pyplot()
    classes = sorted(set(int(v) for v in y))
    cols = min(len(classes), 5)
    rows = -(-len(classes) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2.2, rows * 1.6), squeeze=False, sharey=True)
    for ax in axes.flat:
        ax.axis("off")
    for ax, c in zip(axes.flat, classes):
        ax.axis("on")
        for s in x[np.asarray(y) == c]:
            ax.plot(s[0], lw=1)
        ax.set_title(class_names[c], fontsize=8)
        ax.tick_params(labelsize=6)
    fig.suptitle("example test series per class")
    return _save_fig(fig, path)


def plot_saliency(x: Any, saliency: Any, y: Sequence[int], path: str | os.PathLike[str],
                  class_names: Sequence[str]) -> str:
    """Each series (channel 0) over its saliency (gradient × input of its true class) in time."""
    plt = _pyplot()
    n = min(len(x), 10)
    cols = min(n, 5)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2.2, rows * 1.7), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, ax in enumerate(axes.flat[:n]):
        ax.axis("on")
        s, g = x[i][0], saliency[i]
        t = np.arange(len(s))
        lim = float(np.abs(g).max()) or 1.0
        ax.bar(t, g / lim * float(np.abs(s).max() or 1.0), color=np.where(g >= 0, "tab:red", "tab:blue"),
               alpha=0.45, width=1.0)
        ax.plot(t, s, color="black", lw=1)
        ax.set_title(f"class {class_names[int(y[i])]}", fontsize=8)
        ax.tick_params(labelsize=6)
    fig.suptitle("saliency over time (gradient × input of the true class; red for, blue against)")
    return _save_fig(fig, path)
