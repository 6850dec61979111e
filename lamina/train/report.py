"""The run folder: resolved config (JSON), metrics per epoch (CSV), plots (PNG, via matplotlib —
the optional ``plot`` extra) and one self-contained HTML report that embeds them.

Every file is written atomically (temporary file in the same folder, then rename).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
from collections.abc import Sequence
from typing import Any

from .. import backend
from ..serialization import atomic_write

__all__ = ["atomic_write_bytes", "atomic_write_text", "write_config", "write_metrics_csv", "plot_curves",
           "plot_confusion_matrix", "plot_filters", "plot_misclassified", "write_html_report", "have_matplotlib",
           "run_file", "file_href", "shown_config"]

xp = backend.xp


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> str:
    """Write ``data`` to ``path`` through a temporary file and an atomic rename."""
    os.makedirs(os.path.dirname(os.path.abspath(os.fspath(path))), exist_ok=True)
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> str:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_config(config: dict[str, Any], path: str | os.PathLike[str]) -> str:
    return atomic_write_text(path, json.dumps(config, indent=2, sort_keys=True, default=str) + "\n")


def write_metrics_csv(history: Sequence[dict[str, float]], path: str | os.PathLike[str]) -> str:
    """One row per epoch, one column per logged quantity."""
    keys: list[str] = []
    for row in history:
        keys += [k for k in row if k not in keys]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    for row in history:
        w.writerow({k: row.get(k, "") for k in keys})
    return atomic_write_text(path, buf.getvalue())


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save_fig(fig: Any, path: str | os.PathLike[str]) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def plot_curves(history: Sequence[dict[str, float]], path: str | os.PathLike[str], key: str = "loss") -> str:
    """``key`` and ``val_key`` per epoch."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    epochs = [int(h["epoch"]) for h in history]
    for k, style in ((key, "-o"), (f"val_{key}", "-s")):
        vals = [h.get(k) for h in history]
        if any(v is not None for v in vals):
            ax.plot(epochs, [float("nan") if v is None else v for v in vals], style, ms=3,
                    label="train" if k == key else "validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel(key)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(key)
    return _save_fig(fig, path)


def plot_confusion_matrix(matrix: Any, path: str | os.PathLike[str], class_names: Sequence[str] | None = None) -> str:
    plt = _pyplot()
    m = xp.asarray(matrix)
    k = m.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    fig, ax = plt.subplots(figsize=(0.45 * k + 2.5, 0.45 * k + 2))
    im = ax.imshow(m, cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(int(m[i, j])), ha="center", va="center", fontsize=7,
                    color="white" if m[i, j] > m.max() / 2 else "black")
    ax.set_xticks(range(k), names, rotation=45 if k > 6 else 0)
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title("confusion matrix (test)")
    return _save_fig(fig, path)


def plot_filters(weight: Any, path: str | os.PathLike[str]) -> str:
    """The first conv layer's filters ``(out, in, kh, kw)``, each scaled to its own range; RGB
    when ``in == 3``, else channel 0 in grey."""
    plt = _pyplot()
    w = xp.asarray(weight)
    n = w.shape[0]
    cols = min(n, 8)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 0.9), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        f = w[i]
        img = xp.moveaxis(f, 0, -1) if f.shape[0] == 3 else f[0]
        lo, hi = img.min(), img.max()
        ax.imshow((img - lo) / (hi - lo + 1e-12), cmap=None if img.ndim == 3 else "gray", interpolation="nearest")
    fig.suptitle("first-layer filters")
    return _save_fig(fig, path)


def plot_misclassified(images: Any, true: Sequence[int], pred: Sequence[int], path: str | os.PathLike[str],
                       class_names: Sequence[str] | None = None) -> str:
    """A grid of misclassified images ``(N, C, H, W)`` titled ``true → predicted``."""
    plt = _pyplot()
    imgs = xp.asarray(images)
    n = len(imgs)
    cols = min(max(n, 1), 8)
    rows = max(1, -(-n // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.35), squeeze=False)
    name = (lambda c: class_names[c]) if class_names is not None else str
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = imgs[i]
        img = xp.moveaxis(img, 0, -1) if img.shape[0] == 3 else img[0]
        lo, hi = img.min(), img.max()
        ax.imshow((img - lo) / (hi - lo + 1e-12), cmap=None if img.ndim == 3 else "gray", interpolation="nearest")
        ax.set_title(f"{name(int(true[i]))}→{name(int(pred[i]))}", fontsize=7, color="crimson")
    fig.suptitle("misclassified test examples (true → predicted)" if n else "no misclassified examples",
                 y=1.0 + 0.12 / rows)
    return _save_fig(fig, path)


def run_file(run_dir: str | os.PathLike[str], name: Any, op: str = "report") -> str:
    """The path of the file ``name`` of the run folder ``run_dir``, for reading it into a report.

    A run folder travels: its files (``explain.json``, …) are not to be trusted to name only
    its own files. ``name`` must be a relative path without ``..`` whose real path (symbolic
    links resolved) lies inside ``run_dir``; anything else raises ``ValueError`` naming ``op``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"{op}: a run-folder file must be named by a non-empty string, got {name!r}")
    parts = name.replace("\\", "/").split("/")
    if os.path.isabs(name) or os.path.splitdrive(name)[0] or ".." in parts:
        raise ValueError(f"{op}: {name!r} is not a relative path inside the run folder {os.fspath(run_dir)!r}; "
                         "only the run folder's own files are read")
    root = os.path.realpath(run_dir)
    full = os.path.realpath(os.path.join(root, name))
    if os.path.commonpath([root, full]) != root:
        raise ValueError(f"{op}: {name!r} leads outside the run folder {os.fspath(run_dir)!r} (a symbolic link to "
                         f"{full!r}); only the run folder's own files are read")
    return full


def file_href(name: str) -> str:
    """``name`` (a relative path checked by :func:`run_file`) as an HTML-escaped link target:
    percent-quoted, so that a file named ``javascript:…`` stays a file."""
    from urllib.parse import quote

    return html.escape(quote(name.replace(os.sep, "/")))


def shown_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` as a report shows it: the chosen optimizer's settings with the values it
    really uses (AdamW's default weight decay, RMSprop's momentum 0), and no setting that only
    other optimizers take (no ``momentum`` for Adam). The full configuration stays in
    ``config.json``."""
    from .. import nn
    from .run import OPTIMIZERS, build_optimizer

    if not isinstance(config.get("optimizer"), str) or config["optimizer"].lower() not in OPTIMIZERS:
        return dict(config)
    probe = [nn.Parameter(xp.zeros(1, dtype=backend.float32))]
    used = build_optimizer(config, probe).defaults
    others = {k for o in OPTIMIZERS for k in build_optimizer({**config, "optimizer": o}, probe).defaults}
    out: dict[str, Any] = {}
    for k, v in config.items():
        if k in used:
            out[k] = used[k]
        elif k not in others:
            out[k] = v
    return out


def write_html_report(run_dir: str | os.PathLike[str], title: str, config: dict[str, Any],
                      history: Sequence[dict[str, float]], images: Sequence[tuple[str, str]],
                      tables: Sequence[tuple[str, list[list[Any]]]] = (), text: Sequence[tuple[str, str]] = (),
                      path: str = "report.html") -> str:
    """A single self-contained HTML page: the PNGs (listed as ``(caption, file name)`` in
    ``run_dir``, each checked by :func:`run_file`) embedded as data URIs and linked by name, the
    metrics table, extra tables and preformatted text sections, and the configuration as
    :func:`shown_config` gives it."""
    run_dir = os.fspath(run_dir)
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>",
             "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;"
             "text-align:right}th{background:#f3f3f3}figure{display:inline-block;margin:8px;vertical-align:top}"
             "figcaption{font-size:13px;text-align:center}pre{background:#f7f7f7;padding:8px;overflow-x:auto;"
             "font-size:12px}</style></head><body>", f"<h1>{esc(title)}</h1>"]
    if history:
        last = history[-1]
        summary = ", ".join(f"{k} = {v:.4g}" for k, v in last.items() if k not in ("epoch", "time"))
        parts.append(f"<p><b>Final epoch {int(last['epoch'])}:</b> {esc(summary)}</p>")
    parts.append("<h2>Figures</h2>")
    for caption, name in images:
        full = run_file(run_dir, name, "write_html_report")
        if not os.path.exists(full):
            continue
        with open(full, "rb") as f:
            data = base64.b64encode(f.read()).decode("ascii")
        parts.append(f"<figure><a href='{file_href(name)}'><img alt='{esc(name)}' "
                     f"src='data:image/png;base64,{data}'></a><figcaption>{esc(caption)} ({esc(name)})</figcaption>"
                     "</figure>")
    if history:
        keys: list[str] = []
        for row in history:
            keys += [k for k in row if k not in keys]
        parts.append("<h2>Metrics per epoch</h2><table><tr>" + "".join(f"<th>{esc(k)}</th>" for k in keys) + "</tr>")
        for row in history:
            parts.append("<tr>" + "".join(f"<td>{row[k]:.4g}</td>" if k in row else "<td></td>" for k in keys)
                         + "</tr>")
        parts.append("</table><p>Also in <a href='metrics.csv'>metrics.csv</a>.</p>")
    for caption, rows in tables:
        parts.append(f"<h2>{esc(caption)}</h2><table>")
        for i, row in enumerate(rows):
            cell = "th" if i == 0 else "td"
            parts.append("<tr>" + "".join(f"<{cell}>{esc(str(c))}</{cell}>" for c in row) + "</tr>")
        parts.append("</table>")
    for caption, body in text:
        parts.append(f"<h2>{esc(caption)}</h2><pre>{esc(body)}</pre>")
    parts.append("<h2>Configuration</h2><pre>" + esc(json.dumps(shown_config(config), indent=2, sort_keys=True,
                                                               default=str))
                 + "</pre><p>Also in <a href='config.json'>config.json</a>.</p></body></html>")
    return atomic_write_text(os.path.join(run_dir, path), "\n".join(parts))
