"""The report of a detection or segmentation run: loss curves, predictions drawn over the ground
truth on test images, precision-recall curves and AP per class, the anchor coverage of an
anchor-based detector; IoU per class and predicted maps for a segmenter; all in ``report.html``."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .report import _pyplot, _save_fig, have_matplotlib, plot_curves, write_html_report
from .task_eval import anchor_coverage, detection_table, segmentation_table

__all__ = ["write_task_report", "palette"]


def palette(k: int) -> np.ndarray:
    """``(k, 3)`` distinct colours in [0, 1], index 0 (the background) black."""
    rng = np.random.default_rng(3)
    base = np.array([[0.9, 0.1, 0.1], [0.1, 0.6, 0.95], [0.1, 0.8, 0.2], [0.95, 0.7, 0.0], [0.7, 0.2, 0.9],
                     [0.0, 0.8, 0.8], [0.95, 0.4, 0.7], [0.5, 0.5, 0.0]])
    extra = rng.uniform(0.2, 1.0, (max(0, k - 1 - len(base)), 3))
    return np.concatenate([np.zeros((1, 3)), base, extra])[:k]


def _hwc(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img, dtype=np.float64)
    a = np.moveaxis(a, 0, -1) if a.ndim == 3 else a
    return np.clip(a if a.shape[-1] == 3 else np.repeat(a[..., :1], 3, -1), 0, 1)


def plot_detections(examples: list[Any], classes: list[str], path: str, score_thresh: float = 0.3) -> str:
    """Test images with the ground truth (white, dashed) and the detections above
    ``score_thresh`` (coloured by class, labelled with the score; masks as translucent overlays)."""
    plt = _pyplot()
    n = max(len(examples), 1)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2.6, rows * 2.6), squeeze=False)
    colors = palette(len(classes))
    for ax in axes.flat:
        ax.axis("off")
    for ax, (img, target, det) in zip(axes.flat, examples):
        shown = _hwc(img)
        keep = det["scores"] >= score_thresh
        if "masks" in det:
            for m, c in zip(det["masks"][keep], det["labels"][keep]):
                on = m[0] > 0.5
                shown[on] = 0.55 * shown[on] + 0.45 * colors[int(c) % len(colors)]
        ax.imshow(shown, interpolation="nearest")
        for (x1, y1, x2, y2) in target["boxes"].reshape(-1, 4):
            ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="white", ls="--", lw=1))
        for (x1, y1, x2, y2), c, s in zip(det["boxes"][keep], det["labels"][keep], det["scores"][keep]):
            col = colors[int(c) % len(colors)]
            ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=col, lw=1.5))
            ax.text(x1, y1, f"{classes[int(c)] if int(c) < len(classes) else int(c)} {s:.2f}", fontsize=6,
                    color="white", va="bottom", bbox={"fc": col, "ec": "none", "pad": 0.5})
    fig.suptitle(f"test images: ground truth (dashed) and detections (score ≥ {score_thresh:g})", fontsize=9)
    return _save_fig(fig, path)


def plot_pr_curves(pr: dict[str, Any], classes: list[str], path: str, title: str) -> str:
    """Precision-recall curves per class (COCO's enveloped precision at its recall levels)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 3.6))
    colors = palette(len(classes))
    recall = np.asarray(pr["recall"])
    for c, prec in zip(pr["classes"], np.asarray(pr["precision"]).reshape(len(pr["classes"]), -1)):
        c = int(c)
        if (prec >= 0).any():
            ax.plot(recall, np.where(prec >= 0, prec, np.nan), color=colors[c % len(colors)],
                    label=classes[c] if c < len(classes) else str(c))
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title)
    return _save_fig(fig, path)


def plot_per_class(names: list[str], values: list[list[float]], labels: list[str], path: str, title: str) -> str:
    """Grouped bars: one group per class, one bar per series."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(3.5, 0.8 * len(names) + 1.5), 3.2))
    x = np.arange(len(names))
    w = 0.8 / max(len(values), 1)
    for i, (vals, lab) in enumerate(zip(values, labels)):
        ax.bar(x + (i - (len(values) - 1) / 2) * w, vals, w, label=lab)
    ax.set_xticks(x, names, rotation=30 if len(names) > 5 else 0)
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3, axis="y")
    if len(values) > 1:
        ax.legend(fontsize=7)
    ax.set_title(title)
    return _save_fig(fig, path)


def plot_segmentation(examples: list[Any], classes: list[str], path: str) -> str:
    """Rows of image, ground truth and prediction (class maps in the palette; ignored pixels grey)."""
    plt = _pyplot()
    colors = palette(len(classes))
    n = max(len(examples), 1)
    fig, axes = plt.subplots(n, 3, figsize=(6.6, 2.2 * n), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for row, (img, gt, pred) in zip(axes, examples):
        gt_rgb = colors[np.where(gt == 255, 0, np.minimum(gt, len(classes) - 1))]
        gt_rgb[gt == 255] = 0.5
        for ax, shown, title in zip(row, (_hwc(img), gt_rgb, colors[np.minimum(pred, len(classes) - 1)]),
                                    ("image", "ground truth", "prediction")):
            ax.imshow(shown, interpolation="nearest")
            ax.set_title(title, fontsize=8)
    return _save_fig(fig, path)


def plot_anchor_coverage(cov: dict[str, Any], path: str) -> str:
    """The histogram of each ground-truth box's best anchor IoU, with the foreground threshold."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    ax.hist(cov["best_iou"], bins=20, range=(0, 1), color="#4a90d9")
    ax.axvline(cov["threshold"], color="crimson", ls="--", label=f"foreground IoU {cov['threshold']:g}")
    ax.set_xlabel("IoU of the best anchor")
    ax.set_ylabel("ground-truth boxes")
    ax.legend(fontsize=7)
    ax.set_title(f"anchor coverage {cov['coverage']:.1%} of {cov['boxes']} boxes")
    return _save_fig(fig, path)


def write_task_report(run_dir: str, config: dict[str, Any], history: list[dict[str, float]], model: Any,
                      res: dict[str, Any], test_ds: Any) -> str:
    """The PNG figures and ``report.html`` of a detection or segmentation run."""
    from .task_data import task_loader
    from .task_run import headline

    classes = list(config["classes"])
    images: list[tuple[str, str]] = []
    tables: list[tuple[str, list[list[Any]]]] = []
    text: list[tuple[str, str]] = []
    plots = have_matplotlib()
    if plots and history:
        plot_curves(history, os.path.join(run_dir, "loss.png"), "loss")
        images.append(("Loss per epoch", "loss.png"))
    if config["task"] == "segment":
        tables.append(("IoU per class (test)", segmentation_table(classes, res)))
        if plots:
            plot_segmentation(res["examples"], classes, os.path.join(run_dir, "predictions.png"))
            images.append(("Test images, ground truth and prediction", "predictions.png"))
            iou = [v if v == v else 0.0 for v in res["iou_per_class"]]  # nan: the class never occurred
            plot_per_class(classes, [iou], ["IoU"], os.path.join(run_dir, "iou_per_class.png"),
                           "IoU per class (test)")
            images.append(("IoU per class", "iou_per_class.png"))
    else:
        kinds = ["box"] + (["segm"] if "segm" in res else [])
        for kind in kinds:
            what = "boxes" if kind == "box" else "masks"
            tables.append((f"Per-class results, {what} (test; P and R of the detections scoring ≥ 0.5 at IoU 0.5)",
                           detection_table(classes, res, kind)))
            text.append((f"COCO summary, {what} (test)", res[f"{kind}_summary"]))
        cov = anchor_coverage(model, task_loader(config, test_ds, False))
        if cov is not None:
            text.append(("Anchor coverage", f"{cov['coverage']:.1%} of {cov['boxes']} ground-truth boxes (test) have "
                                            f"an anchor with IoU ≥ {cov['threshold']:g} (the RPN's foreground "
                                            "threshold)"))
        if plots:
            plot_detections(res["examples"], classes, os.path.join(run_dir, "predictions.png"))
            images.append(("Predictions over the ground truth", "predictions.png"))
            for kind in kinds:
                what = "boxes" if kind == "box" else "masks"
                plot_pr_curves(res[f"{kind}_pr"], classes, os.path.join(run_dir, f"pr_curves_{kind}.png"),
                               f"precision-recall at IoU 0.5, {what} (test)")
                images.append((f"Precision-recall curves ({what})", f"pr_curves_{kind}.png"))
            rows = detection_table(classes, res)[1:-1]
            plot_per_class([r[0] for r in rows], [[float(r[5]) for r in rows], [float(r[6]) for r in rows]],
                           ["AP@0.5", "AP@[.5:.95]"], os.path.join(run_dir, "ap_per_class.png"), "AP per class (test)")
            images.append(("AP per class", "ap_per_class.png"))
            if cov is not None and cov["boxes"]:
                plot_anchor_coverage(cov, os.path.join(run_dir, "anchor_coverage.png"))
                images.append(("Anchor coverage", "anchor_coverage.png"))
    text.append(("Training time", f"{res.get('train_seconds', float('nan')):.1f} s"))
    title = f"lamina run: {config['model']} on {config['data']} — {headline(config, res)}"
    note = "" if plots else " (install matplotlib — pip install 'lamina[plot]' — for the figures)"
    return write_html_report(run_dir, title + note, config, history, images, tables=tables, text=text)
