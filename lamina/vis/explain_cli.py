"""``lamina explain RUN_OR_CHECKPOINT --method METHOD``: pictures of what a trained network
learned and why it decides, written into the run folder and added to its ``report.html``.

``lamina/cli.py`` calls :func:`add_explain_parser` on its subparsers; the parsed arguments'
``func`` is :func:`run_explain`. Every method has defaults that work on the run of a bare
``lamina train`` (a LeNet-style CNN on the 8×8 digits): the image is test image ``--index``
(default 0) unless ``--image`` names a PNG/JPEG or ``.npy`` file; ``--layer`` defaults to the
last convolution block's output after its normalization and activation (the first block's for
``activations``; see :func:`lamina.vis.attribution.conv_block_layer`); ``--target`` to the
predicted class. Every picture's title and caption name the method, the layer and the class.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
from types import SimpleNamespace
from typing import Any

from .. import backend

__all__ = ["METHODS", "add_explain_parser", "run_explain", "explain", "update_report"]

xp = backend.xp

METHODS = ("filters", "activations", "top-patches", "embedding", "saliency", "smoothgrad", "integrated-gradients",
           "gradcam", "occlusion", "deconvnet", "guided-backprop", "maximize", "fgsm", "pgd", "dissect",
           "decision-boundary")
_START, _END = "<!-- lamina-explain:start -->", "<!-- lamina-explain:end -->"
MANIFEST = "explain.json"


def add_explain_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``explain`` subcommand to an argparse ``subparsers`` object; its ``func`` default
    is :func:`run_explain`."""
    p = subparsers.add_parser(
        "explain", help="visualize what a trained CNN learned and why it decides (PNGs + report)",
        description="Write pictures that explain a trained model into its run folder and its report.html.")
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT", help="run folder or .lamina checkpoint")
    p.add_argument("--method", choices=METHODS, default="saliency", help="what to draw (default saliency)")
    p.add_argument("--image", help="an image file (PNG/JPEG via Pillow, or .npy (C, H, W)); default: a test image")
    p.add_argument("--index", type=int, default=0, help="which test image when --image is not given (default 0)")
    p.add_argument("--layer", help="layer name as in model.named_modules(), e.g. features.3 (default: the last "
                                   "conv block's output after its activation)")
    p.add_argument("--unit", type=int, help="channel of --layer (top-patches, deconvnet, guided-backprop, maximize)")
    p.add_argument("--target", type=int, help="class to explain / attack towards (default: the predicted class)")
    p.add_argument("--epsilon", type=float, help="attack budget (fgsm/pgd; default 0.1 L∞, 1.0 L2)")
    p.add_argument("--norm", choices=("inf", "2"), default="inf", help="pgd ball (default inf)")
    p.add_argument("--steps", type=int, help="steps of pgd / maximize / integrated gradients")
    p.add_argument("--k", type=int, default=9, help="top-patches: how many (default 9)")
    p.add_argument("--projection", choices=("pca", "tsne"), default="pca", help="embedding projection")
    p.add_argument("--max-images", dest="max_images", type=int, default=400,
                   help="test images used by top-patches, embedding and dissect (default 400)")
    p.add_argument("--quantile", type=float,
                   help="dissect: per-unit activation quantile used as threshold (default 0.995 for images of "
                        "32 px or more, 0.95 below)")
    p.add_argument("--out", help="file name of the PNG in the run folder (default explain_<method>.png)")
    p.set_defaults(func=run_explain)
    return p


def run_explain(args: argparse.Namespace) -> int:
    """Carry out ``lamina explain`` for parsed ``args``; print what was written; return 0."""
    opts = {k: getattr(args, k, None) for k in ("image", "index", "layer", "unit", "target", "epsilon", "norm",
                                                "steps", "k", "projection", "max_images", "quantile", "out")}
    written, notes = explain(args.run, args.method, **{k: v for k, v in opts.items() if v is not None})
    for path in written:
        print(f"wrote {path}")
    for line in notes:
        print(line)
    return 0


# --- loading ---------------------------------------------------------------------------------
def _load(run: str) -> tuple[str, dict[str, Any], Any]:
    from ..train.run import load_run, resolve_checkpoint
    from ..train.run_config import SERIES_SETS

    ck = resolve_checkpoint(run)
    config, model, _ = load_run(run)
    if config.get("data") in SERIES_SETS:
        raise ValueError(f"explain: its methods read images; this run is on time series ({config['data']}): its "
                         "report.html shows the saliency over time (gradient × input)")
    return os.path.dirname(os.path.abspath(ck)), config, model


def _test_data(config: dict[str, Any], limit: int) -> tuple[Any, Any, list[str]]:
    """Up to ``limit`` test samples as arrays, and the class names."""
    from ..train.run import build_data

    ds = build_data(config, False)
    n = min(len(ds), int(limit))
    xs, ys = [], []
    for i in range(n):
        x, y = ds[i]
        xs.append(xp.asarray(x.array if hasattr(x, "array") else x))
        ys.append(int(y["label"]) if isinstance(y, dict) else int(y))
    classes = [str(c) for c in (getattr(ds, "classes", None) or [])]
    return xp.stack(xs), xp.asarray(ys), classes


def _read_image(path: str, like: Any) -> Any:
    from ..datasets import read_image

    c, h, w = like.shape
    return read_image(path, c, (h, w), "explain")


def _default_layer(model: Any, x: Any, first: bool = False) -> str:
    from .attribution import conv_block_layer

    try:
        return conv_block_layer(model, x, first=first)
    except ValueError:
        raise ValueError("explain: the model has no convolution layer; give --layer") from None


def _conv_name(model: Any) -> str:
    from .. import nn

    return next(n for n, m in model.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)))


def _linear_name(model: Any) -> str:
    from .. import nn

    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    return f"the input of {names[-1]}" if names else "penultimate"


def _label(method: str, layer: str, what: str) -> str:
    """What every explain picture and caption names: the method, the layer and the class(es)."""
    return f"{method} · layer {layer} · {what}"


def _title(label: str, width: int = 34) -> str:
    """``label`` as a picture's title: on two lines (the class part second) when it is long, so
    that the narrow pictures do not clip it."""
    head, _, what = label.rpartition(" · ")
    return label if len(label) <= width else f"{head}\n{what}"


def _out_name(run_dir: str, out: str | None, method: str) -> str:
    from ..train.report import run_file

    name = out or f"explain_{method}.png"
    run_file(run_dir, name, "explain: --out")
    return name


def _scores_name(name: str) -> str:
    root, ext = os.path.splitext(name)
    return f"{root}_scores{ext or '.png'}"


def _check_model(model: Any) -> None:
    from ..train.finite import nonfinite_state

    bad = nonfinite_state(model)
    if bad:
        more = f" and {len(bad) - 4} more" if len(bad) > 4 else ""
        raise ValueError(f"explain: the model's weights hold NaN or inf ({', '.join(bad[:4])}{more}); "
                         "pictures of it would show nothing")


# --- the methods -----------------------------------------------------------------------------
def explain(run: str, method: str, image: str | None = None, index: int = 0, layer: str | None = None,
            unit: int | None = None, target: int | None = None, epsilon: float | None = None, norm: str = "inf",
            steps: int | None = None, k: int = 9, projection: str = "pca", max_images: int = 400,
            quantile: float | None = None, out: str | None = None) -> tuple[list[str], list[str]]:
    """Draw ``method`` for the run (folder or checkpoint) ``run``; returns the paths written and
    lines of text for the user. The PNGs are listed in the run folder's ``explain.json`` and
    shown in an "Explanations" section of its ``report.html``; every picture's title and
    caption name the method, the layer and the class(es) explained. A model whose weights or
    output are not finite is an error."""
    from ..train.finite import check_finite
    from . import plots
    from ._common import as_batch, model_dtype, predict
    from .adversarial import fgsm, pgd
    from .attribution import grad_cam, integrated_gradients, occlusion, saliency, smoothgrad
    from .backprop_rules import deconvnet, guided_backprop
    from .dissect import dissect, shapes_concepts
    from .features import activations, embed_features, first_conv, top_activations
    from .maximize import maximize_activation
    from .teaching import plot_decision_boundary

    if method not in METHODS:
        raise ValueError(f"explain: method must be one of {', '.join(METHODS)}, got {method!r}")
    run_dir, config, model = _load(run)
    _check_model(model)
    _read_manifest(run_dir)  # a manifest naming files outside the run folder stops here, before any drawing
    name = _out_name(run_dir, out, method)
    path = os.path.join(run_dir, name)
    notes: list[str] = []
    need_many = method in ("top-patches", "embedding", "dissect", "decision-boundary")
    xs, ys, classes = _test_data(config, max_images if need_many else index + 1)

    def cname(c: int | None) -> str:
        return classes[c] if c is not None and c < len(classes) else str(c)

    if method == "decision-boundary" and xs.ndim != 2:
        raise ValueError(f"explain: 'decision-boundary' draws 2-D classifiers; this run's data ({config['data']}) "
                         "are images (train on rings, xor, spirals, moons or blobs with --model mlp)")
    if method == "decision-boundary" or xs.ndim == 2:
        if method != "decision-boundary":
            raise ValueError(f"explain: {method!r} needs an image model; this run's data are 2-D points "
                             "(use --method decision-boundary)")
        label = _label(method, "output (class scores)", "all classes")
        plot_decision_boundary(model, xs, ys, path, title=f"{config['model']} on {config['data']}\n{label}")
        return _finish(run_dir, name, f"Decision regions over the test points — {label}", method, notes)
    if not 0 <= index < len(xs) and image is None:
        raise ValueError(f"explain: --index must lie in 0..{len(xs) - 1}")
    x = _read_image(image, xs[0]) if image else xs[min(index, len(xs) - 1)]
    src = os.path.basename(image) if image else f"test image {index}"
    logits = predict(model, as_batch(x, "explain", model_dtype(model)))
    check_finite(logits, "explain", samples=[src], model=model, inputs=x[None])
    pred = int(logits.argmax(1)[0])
    if method == "filters":
        label = _label(method, _conv_name(model), "all classes (filters serve every class)")
        plots.plot_filters(first_conv(model).weight, path, title=_title(label))
        caption = f"First-layer filters — {label}"
    elif method == "activations":
        layer = layer or _default_layer(model, x, first=True)
        label = _label(method, layer, f"predicted class {cname(pred)}")
        plots.plot_activation_maps(activations(model, x, layer), path, title=_title(f"{label} ({src})"))
        caption = f"Activation maps of {layer} for {src} — {label}"
    elif method == "top-patches":
        layer, unit = layer or _default_layer(model, x), unit or 0
        top = top_activations(model, xs, layer, unit, k=k)
        label = _label(method, layer, f"unit {unit}, all classes ({len(xs)} test images)")
        plots.plot_top_patches(top, path, title=_title(f"{label}, top {k}"))
        caption = f"Top-{k} activating test patches of {layer}, unit {unit} (receptive-field crops) — {label}"
    elif method == "embedding":
        pts = embed_features(model, xs, method=projection, layer=layer)
        label = _label(method, layer or _linear_name(model), "all classes, colored by true class")
        plots.plot_embedding(pts, ys, path, classes or None,
                             title=f"{projection.upper()} of {len(xs)} test images\n{label}")
        caption = f"{projection.upper()} projection of the features — {label}"
    elif method == "maximize":
        if layer is None and target is None:
            target = 0
        res = maximize_activation(model, x.shape, target=target if layer is None else None, layer=layer, unit=unit,
                                  steps=steps or 200, lr=0.05, l2=1e-3, jitter=1 if x.shape[-1] >= 16 else 0,
                                  blur_every=10, blur_sigma=0.4)
        what = f"class {cname(target)}" if layer is None else f"{layer} unit {unit}"
        label = _label(method, "output (class scores)", f"class {cname(target)}") if layer is None else \
            _label(method, layer, f"unit {unit}, no class")
        plots.plot_images(res.image, path, titles=[what], cell=2.5, title=_title(label, 30))
        plots.plot_scores(res.scores, os.path.join(run_dir, _scores_name(name)), ylabel="score",
                          title=_title(f"{label}, score per step", 50))
        notes.append(f"{what}: score {res.scores[0]:.3g} → {res.scores[-1]:.3g} in {len(res.scores) - 1} steps")
        caption = f"Image maximizing {what} (gradient ascent with L2 decay, blur) — {label}"
    elif method in ("fgsm", "pgd"):
        eps = epsilon if epsilon is not None else (1.0 if (method == "pgd" and norm == "2") else 0.1)
        if method == "fgsm":
            res = fgsm(model, x, epsilon=eps, target=target)
        else:
            res = pgd(model, x, epsilon=eps, steps=steps or 20, norm=norm, target=target)
        p0, p1 = int(res.pred_before[0]), int(res.pred_after[0])
        towards = f", target class {cname(target)}" if target is not None else ""
        label = _label(method, "input (pixels)", f"class {cname(p0)} → {cname(p1)}{towards}")
        plots.plot_adversarial(res, path, class_names=classes or None, title=_title(f"{label}, ε = {eps:g}", 60))
        notes.append(f"{method}: prediction {cname(p0)} → {cname(p1)} ({'flipped' if res.flipped[0] else 'kept'}); "
                     f"perturbation L∞ {float(res.linf[0]):.4g}, L2 {float(res.l2[0]):.4g}; "
                     f"loss {float(res.loss_before[0]):.4g} → {float(res.loss_after[0]):.4g}")
        caption = f"{method.upper()} adversarial example for {src}: {cname(p0)} → {cname(p1)} — {label}"
    elif method == "dissect":
        layer = layer or _default_layer(model, x)
        concepts = _concepts(config, xs, ys, classes, shapes_concepts)
        q = quantile if quantile is not None else (0.995 if min(xs.shape[-2:]) >= 32 else 0.95)
        res = dissect(model, layer, xs, concepts, quantile=q)
        label = _label(method, layer, f"all classes ({len(xs)} test images)")
        plots.plot_dissection(res, path, title=_title(label, 70))
        notes += [f"unit {u}: {c} (IoU {v:.3f})" for u, c, v in res.detectors] or ["no unit passes IoU 0.04"]
        caption = f"Network dissection of {layer}: best concept IoU per unit — {label}"
    else:
        if method == "gradcam":
            layer = layer or _default_layer(model, x)
        maps, label = _attribution(method, model, x, target, layer, unit, steps, cname,
                                   saliency=saliency, smoothgrad=smoothgrad, integrated_gradients=integrated_gradients,
                                   grad_cam=grad_cam, occlusion=occlusion, deconvnet=deconvnet,
                                   guided_backprop=guided_backprop)
        plots.plot_attributions(x, maps, path, title=_title(label))
        caption = f"{method} for {src} — {label}"
    return _finish(run_dir, name, caption, method, notes)


def _attribution(method: str, model: Any, x: Any, target: int | None, layer: str | None, unit: int | None,
                 steps: int | None, cname: Any, **fns: Any) -> tuple[dict[str, Any], str]:
    from ._common import as_batch, model_dtype, predict

    logits = predict(model, as_batch(x, "explain", model_dtype(model)))
    t = int(logits.argmax(1)[0]) if target is None else int(target)
    what = f"{'predicted ' if target is None else ''}class {cname(t)}"
    where = "input (pixels)"
    if method == "saliency":
        m = fns["saliency"](model, x, t)
    elif method == "smoothgrad":
        m = fns["smoothgrad"](model, x, t, n_samples=steps or 25)
    elif method == "integrated-gradients":
        m = fns["integrated_gradients"](model, x, t, steps=steps or 32)
    elif method == "gradcam":
        m = fns["grad_cam"](model, x, t, layer=layer)
        where = str(layer)
    elif method == "occlusion":
        size = max(2, x.shape[-1] // 4)
        m = fns["occlusion"](model, x, t, size=size, stride=max(1, size // 2))
    else:
        fn = fns["deconvnet" if method == "deconvnet" else "guided_backprop"]
        if layer is not None:
            m = fn(model, x, layer=layer, unit=unit)
            where, what = str(layer), f"unit {unit}, no class"
        else:
            m = fn(model, x, target=t)
            where = "input (pixels)"
    return {what: m[0]}, _label(method, where, what)


def _concepts(config: dict[str, Any], xs: Any, ys: Any, classes: list[str], shapes_concepts: Any) -> dict[str, Any]:
    """Shapes runs: the shape and color masks; other image data: "ink" (bright pixels), "dark"
    and, per class, the bright pixels of that class's images."""
    if config.get("data") == "shapes":
        from ..train.run import build_data

        ds = build_data(config, False)
        n = len(xs)  # the masks and colors of the images used
        return shapes_concepts(SimpleNamespace(masks=ds.masks[:n], colors=ds.colors[:n], classes=ds.classes))
    grey = xs.mean(1)
    ink = grey > 0.5
    out = {"ink": ink, "dark": ~ink}
    for c in xp.unique(ys):
        name = classes[int(c)] if int(c) < len(classes) else str(int(c))
        out[f"ink of class {name}"] = ink & (ys == c)[:, None, None]
    return {k: v for k, v in out.items() if v.any()}


# --- the report ------------------------------------------------------------------------------
def _finish(run_dir: str, name: str, caption: str, method: str, notes: list[str]) -> tuple[list[str], list[str]]:
    entries = _read_manifest(run_dir)
    names = [name] + ([_scores_name(name)] if method == "maximize" else [])
    for rel in names:
        entries = [e for e in entries if e["file"] != rel]
        entries.append({"file": rel, "caption": caption if rel == name else caption + " — score per step",
                        "method": method, "notes": notes if rel == name else []})
    from ..train.report import atomic_write_text

    atomic_write_text(os.path.join(run_dir, MANIFEST), json.dumps(entries, indent=2) + "\n")
    report = update_report(run_dir)
    return [os.path.join(run_dir, n) for n in names] + [report], notes


def _read_manifest(run_dir: str) -> list[dict[str, Any]]:
    """The entries of ``explain.json``; each must name a file of the run folder by a relative
    path (a run folder someone sends must not make its report embed files from elsewhere)."""
    from ..train.report import run_file

    p = os.path.join(run_dir, MANIFEST)
    if not os.path.lexists(p):
        return []
    with open(run_file(run_dir, MANIFEST, "explain"), encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"explain: {p} is not valid JSON ({e}); remove it to start a new one") from None
    if not isinstance(data, list):
        raise ValueError(f"explain: {p} is not a list of figures")
    for i, e in enumerate(data):
        if not isinstance(e, dict) or not isinstance(e.get("file"), str):
            raise ValueError(f"explain: {p}: entry {i} is not a figure {{'file': …, 'caption': …}}: {e!r}")
        try:
            run_file(run_dir, e["file"], f"explain: {p}, entry {i}")
        except ValueError as err:
            raise ValueError(f"{err}: remove that entry") from None
        if not isinstance(e.get("caption", ""), str) or not all(isinstance(n, str) for n in e.get("notes", [])):
            raise ValueError(f"explain: {p}: entry {i} needs a text caption and a list of text notes")
    return data


def update_report(run_dir: str) -> str:
    """Put the figures listed in ``explain.json`` into ``report.html`` as an "Explanations"
    section (replacing an earlier one); without a report, write one holding just them. Only
    files inside the run folder, named by relative paths, are read (see ``run_file``)."""
    import base64

    from ..train.report import atomic_write_text, file_href, run_file, write_html_report

    entries = [e for e in _read_manifest(run_dir) if os.path.exists(run_file(run_dir, e["file"], "explain"))]
    report = os.path.join(run_dir, "report.html")
    esc = html.escape
    parts = [_START, "<h2>Explanations</h2><p>Written by <code>lamina explain</code>.</p>"]
    for e in entries:
        with open(run_file(run_dir, e["file"], "explain"), "rb") as f:
            data = base64.b64encode(f.read()).decode("ascii")
        notes = "".join(f"<br><small>{esc(n)}</small>" for n in e.get("notes", []))
        parts.append(f"<figure><a href='{file_href(e['file'])}'><img alt='{esc(e['file'])}' "
                     f"src='data:image/png;base64,{data}'></a><figcaption>{esc(e.get('caption', ''))} "
                     f"({esc(e['file'])}){notes}</figcaption></figure>")
    parts.append(_END)
    section = "\n".join(parts)
    if not os.path.lexists(report):
        config_path = os.path.join(run_dir, "config.json")
        config = {}
        if os.path.lexists(config_path):
            with open(run_file(run_dir, "config.json", "explain"), encoding="utf-8") as f:
                config = json.load(f)
        write_html_report(run_dir, "lamina explain", config, [], [])
    with open(run_file(run_dir, "report.html", "explain"), encoding="utf-8") as f:
        text = f.read()
    text = re.sub(re.escape(_START) + ".*?" + re.escape(_END), "", text, flags=re.S)
    anchor = text.find("<h2>Configuration</h2>")
    if anchor < 0:
        anchor = text.rfind("</body>")
    text = text[:anchor] + section + "\n" + text[anchor:] if anchor >= 0 else text + section
    return atomic_write_text(report, text)
