"""Pictures of ``lamina.vis`` results, written as PNG files (matplotlib, imported lazily).

Every figure has a fixed size in inches and is saved at :data:`~lamina.vis._common.DPI`
(100) without a tight bounding box, so a picture's pixel size is known in advance: grids of
``rows × cols`` panels of ``cell`` inches are ``cols·cell·100`` by ``(rows·cell + 0.5)·100``
pixels (the 0.5 inch holds the title). Each function returns the path it wrote.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from .. import backend
from ._common import grid_shape, image_hwc, normalize01, pyplot, save_figure

__all__ = ["grid_figure", "plot_filters", "plot_activation_maps", "plot_top_patches", "plot_embedding",
           "plot_attributions", "plot_adversarial", "plot_images", "plot_scores", "plot_dissection"]

xp = backend.xp
_Path = str | os.PathLike[str]


def grid_figure(n: int, cols: int | None = None, cell: float = 1.2, title: str = "") -> tuple[Any, Any]:
    """A figure of ``n`` panels (axes switched off), ``cols`` per row; see the module docstring
    for its size."""
    plt = pyplot()
    rows, cols = grid_shape(n, cols)
    fig = plt.figure(figsize=(cols * cell, rows * cell + 0.5))
    top = 1 - 0.5 / (rows * cell + 0.5)
    axes = fig.subplots(rows, cols, squeeze=False, gridspec_kw=dict(left=0.02, right=0.98, bottom=0.02, top=top * 0.97,
                                                                      wspace=0.08, hspace=0.3))
    for ax in axes.flat:
        ax.axis("off")
    if title:
        fig.suptitle(title, y=0.995, va="top", fontsize=10)
    return fig, axes


def _show(ax: Any, img: Any, title: str = "", cmap: str | None = None, **kw: Any) -> None:
    arr, default_cmap = image_hwc(img)
    ax.imshow(arr, cmap=cmap or default_cmap, interpolation="nearest", **kw)
    if title:
        ax.set_title(title, fontsize=7)


def plot_filters(weight: Any, path: _Path, cols: int = 8, cell: float = 1.0, title: str = "first-layer filters") -> str:
    """The filters ``(out, in, kh, kw)`` of a conv layer, one panel each, every filter scaled to
    [0, 1] over all of its channels together (so RGB filters keep their colors); grey
    (channel 0) unless ``in == 3``. Pass ``conv.weight`` or its array."""
    w = xp.asarray(getattr(getattr(weight, "detach", lambda: weight)(), "array", weight))
    if w.ndim != 4:
        raise ValueError(f"plot_filters: expected a conv weight (out, in, kh, kw), got shape {w.shape}")
    fig, axes = grid_figure(len(w), cols, cell, title)
    for ax, f in zip(axes.flat, w):
        f = normalize01(f)
        ax.imshow(xp.moveaxis(f, 0, -1) if f.shape[0] == 3 else f[0], cmap=None if f.shape[0] == 3 else "gray",
                  vmin=0, vmax=1, interpolation="nearest")
    return save_figure(fig, path)


def plot_activation_maps(act: Any, path: _Path, cols: int = 8, cell: float = 1.0, max_maps: int = 64,
                         title: str = "activation maps") -> str:
    """The feature maps of one input, ``(C, h, w)`` or ``(1, C, h, w)``: one panel per channel
    (the first ``max_maps``), all on one color scale so strong and dead units stand out."""
    a = xp.asarray(act)
    a = a[0] if a.ndim == 4 else a
    if a.ndim != 3:
        raise ValueError(f"plot_activation_maps: expected (C, h, w) maps, got shape {a.shape}")
    a = a[:max_maps]
    lo, hi = float(a.min()), float(a.max())
    fig, axes = grid_figure(len(a), cols, cell, title)
    for i, (ax, m) in enumerate(zip(axes.flat, a)):
        ax.imshow(m, cmap="viridis", vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest")
        ax.set_title(str(i), fontsize=6)
    return save_figure(fig, path)


def plot_top_patches(top: Any, path: _Path, cell: float = 1.2, title: str = "top activating patches",
                     show_images: bool = True) -> str:
    """The result of :func:`~lamina.vis.top_activations`, strongest first: with ``show_images``
    a row of the whole images with the unit's receptive field outlined, and below it the row of
    patches cropped to it (titled with image index and activation); ``k`` columns (≤ 10)."""
    from matplotlib.patches import Rectangle

    n = len(top.patches)
    cols = n if n <= 10 else 8
    rows_per = -(-n // cols)
    fig, axes = grid_figure(cols * rows_per * (2 if show_images else 1), cols, cell, title)
    panels = list(axes.flat)
    if show_images:
        for ax, img, (r0, c0, r1, c1) in zip(panels, top.images, top.boxes):
            _show(ax, img)
            ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0, r1 - r0, fill=False, ec="red", lw=1.5))
        panels = panels[cols * rows_per:]
    for ax, p, v, i in zip(panels, top.patches, top.values, top.indices):
        _show(ax, p, f"#{int(i)}: {float(v):.2g}")
    return save_figure(fig, path)


def plot_images(images: Any, path: _Path, titles: Sequence[str] | None = None, cols: int | None = None,
                cell: float = 1.2, title: str = "") -> str:
    """A grid of images ``(N, C, H, W)`` (each scaled to [0, 1]) with optional titles."""
    imgs = [xp.asarray(i) for i in images]
    fig, axes = grid_figure(len(imgs), cols, cell, title)
    for k, (ax, img) in enumerate(zip(axes.flat, imgs)):
        _show(ax, img, titles[k] if titles else "")
    return save_figure(fig, path)


def plot_embedding(points: Any, labels: Any, path: _Path, class_names: Sequence[str] | None = None,
                   title: str = "penultimate-layer features") -> str:
    """A 2-D scatter of ``points`` ``(N, 2)`` colored by class (a 6 × 5 inch figure)."""
    plt = pyplot()
    pts, lab = xp.asarray(points), xp.asarray(labels).reshape(-1)
    fig = plt.figure(figsize=(6, 5))
    ax = fig.add_axes((0.08, 0.08, 0.72, 0.84))
    cmap = plt.get_cmap("tab10" if len(xp.unique(lab)) <= 10 else "tab20")
    for c in xp.unique(lab):
        sel = lab == c
        name = class_names[int(c)] if class_names is not None else str(int(c))
        ax.scatter(pts[sel, 0], pts[sel, 1], s=8, color=cmap(int(c) % cmap.N), label=name)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7, markerscale=2)
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path)


def plot_attributions(image: Any, maps: Mapping[str, Any], path: _Path, cell: float = 2.0,
                      title: str = "attributions") -> str:
    """The image, then each attribution map ``(H, W)`` (or ``(C, H, W)``: absolute values summed
    over channels) as a heat map over the faded image; one row of ``1 + len(maps)`` panels."""
    img = xp.asarray(image)
    img = img[0] if img.ndim == 4 else img
    fig, axes = grid_figure(1 + len(maps), 1 + len(maps), cell, title)
    _show(axes.flat[0], img, "input")
    base, cmap = image_hwc(img)
    for ax, (name, m) in zip(list(axes.flat)[1:], maps.items()):
        m = xp.asarray(m)
        m = m[0] if m.ndim == 4 else m
        m = xp.abs(m).sum(0) if m.ndim == 3 else m
        ax.imshow(base, cmap=cmap, alpha=0.35, interpolation="nearest")
        ax.imshow(m, cmap="inferno" if m.min() >= 0 else "RdBu_r", alpha=0.75, interpolation="nearest",
                  **({} if m.min() >= 0 else dict(vmin=-abs(m).max(), vmax=abs(m).max())))
        ax.set_title(name, fontsize=8)
    return save_figure(fig, path)


def plot_adversarial(result: Any, path: _Path, index: int = 0, class_names: Sequence[str] | None = None,
                     cell: float = 2.0, title: str = "adversarial example") -> str:
    """Clean image, perturbation (amplified to the full range) and adversarial image of one
    sample of an :class:`~lamina.vis.AdversarialResult`, with predictions and ‖δ‖."""
    name = (lambda c: class_names[int(c)]) if class_names is not None else (lambda c: str(int(c)))
    r, i = result, index
    fig, axes = grid_figure(3, 3, cell, title)
    _show(axes[0, 0], r.x[i], f"clean: {name(r.pred_before[i])}")
    _show(axes[0, 1], r.x_adv[i] - r.x[i], f"δ: L∞ {float(r.linf[i]):.3g}, L2 {float(r.l2[i]):.3g}", cmap="RdBu_r")
    _show(axes[0, 2], r.x_adv[i], f"adversarial: {name(r.pred_after[i])}")
    return save_figure(fig, path)


def plot_scores(scores: Sequence[float], path: _Path, ylabel: str = "score", title: str = "") -> str:
    """A line plot of a sequence (e.g. the target logit per ascent step), 5 × 3.4 inches."""
    plt = pyplot()
    fig = plt.figure(figsize=(5, 3.4))
    ax = fig.add_axes((0.14, 0.14, 0.8, 0.74))
    ax.plot(range(len(scores)), list(scores), "-", lw=1.5)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path)


def plot_dissection(dissection: Any, path: _Path, iou_threshold: float = 0.04,
                    title: str = "network dissection") -> str:
    """Each unit's best concept IoU as a bar (labelled with the concept) and the detector
    threshold as a line; 7 × 3.5 inches."""
    plt = pyplot()
    iou = xp.asarray(dissection.iou)
    best, which = iou.max(1), iou.argmax(1)
    fig = plt.figure(figsize=(7, 3.5))
    ax = fig.add_axes((0.1, 0.2, 0.86, 0.68))
    ax.bar(range(len(best)), best, color=["tab:orange" if b >= iou_threshold else "tab:gray" for b in best])
    ax.axhline(iou_threshold, color="k", ls="--", lw=1)
    ax.set_xticks(range(len(best)), [f"{u}:{dissection.concepts[j]}" for u, j in enumerate(which)], rotation=90,
                  fontsize=6)
    ax.set_ylabel("best IoU")
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path)
