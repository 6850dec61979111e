"""Floor 6: ``lamina train | evaluate | predict`` for detection (``--task detect``) and semantic
segmentation (``--task segment``) runs; :mod:`lamina.cli` hands these runs here."""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import sys
from typing import Any

import numpy as np

__all__ = ["TASK_OPTIONS", "add_task_arguments", "refuse_task_options", "task_of_run", "task_epilog", "train_task",
           "evaluate_task", "predict_task", "draw_detections", "draw_segmentation"]

TASK_OPTIONS = ("task", "image_size", "train_images", "test_images", "max_objects", "loss", "class_weights",
                "backbone_from", "freeze", "trainable_layers", "unfreeze_every", "lr_decay")


def add_task_arguments(t: argparse.ArgumentParser) -> None:
    """The options of ``lamina train`` that detection and segmentation runs take."""
    from .train.task_config import SEG_LOSSES, TASKS

    g = t.add_argument_group("detection and segmentation (--task detect|segment)")
    g.add_argument("--task", choices=TASKS, help="classify (default), detect (yolov1, fasterrcnn, maskrcnn) or "
                                                 "segment (unet, fcn8s, deeplabv3)")
    g.add_argument("--image-size", dest="image_size", type=int, help="side of the (square) images in pixels")
    g.add_argument("--train-images", dest="train_images", type=int, help="shapes-det: training images")
    g.add_argument("--test-images", dest="test_images", type=int, help="shapes-det: test images")
    g.add_argument("--max-objects", dest="max_objects", type=int, help="shapes-det: the most shapes per image")
    g.add_argument("--loss", choices=SEG_LOSSES, help="segment: the loss (default ce, ignore_index 255)")
    g.add_argument("--class-weights", dest="class_weights", type=float, nargs="+", metavar="W",
                   help="segment: cross-entropy weight per class, the background first")
    f = t.add_argument_group("fine-tuning")
    f.add_argument("--backbone-from", dest="backbone_from", metavar="RUN",
                   help="start the backbone from the weights of a classification run")
    f.add_argument("--freeze", nargs="+", metavar="PATTERN", help="freeze the parameters matching these globs "
                                                                  "(e.g. 'backbone.0.*')")
    f.add_argument("--trainable-layers", dest="trainable_layers", type=int, metavar="N",
                   help="train only the last N backbone stages (0: a frozen backbone)")
    f.add_argument("--unfreeze-every", dest="unfreeze_every", type=int, metavar="K",
                   help="gradual unfreezing: open one more frozen backbone stage every K epochs")
    f.add_argument("--lr-decay", dest="lr_decay", type=float, metavar="FACTOR",
                   help="discriminative learning rates: each stage nearer the input gets lr / FACTOR")
    f.add_argument("--freeze-bn", dest="freeze_bn", action="store_true",
                   help="batch norm keeps its statistics and affine parameters (FrozenBatchNorm2d)")


def refuse_task_options(args: argparse.Namespace) -> None:
    """A classification run takes none of the detection/segmentation options: say so, not ignore them."""
    given = [f"--{k.replace('_', '-')}" for k in TASK_OPTIONS if k != "task" and getattr(args, k, None) is not None]
    given += ["--freeze-bn"] if args.freeze_bn else []
    from .train.run import DATASETS

    if args.data is not None and args.data not in DATASETS:
        given.append(f"--data {args.data}")
    if given:
        raise ValueError(f"{', '.join(given)}: options of --task detect|segment; a classification run has none "
                         "(add --task detect or --task segment)")


def task_of_run(path: str) -> str:
    """The task of the run folder or checkpoint ``path`` (``'classify'`` for a classification run)."""
    from .train.checkpoint import load_checkpoint
    from .train.run import resolve_checkpoint

    saved = load_checkpoint(resolve_checkpoint(path)).get("config")
    return str(json.loads(saved).get("task") or "classify") if saved else "classify"


def task_epilog() -> list[str]:
    """The lines of ``lamina train --help`` that list the recipes of the task models."""
    from .train.task_config import TASK_DEFAULTS, TASK_MODELS

    lines = ["--task detect|segment: defaults per model (on the synthetic shapes-det set unless --data says "
             "otherwise):"]
    for task, names in TASK_MODELS.items():
        for name in names:
            r = TASK_DEFAULTS[name]
            lines.append(f"  {task} {name:<11} {r['epochs']} epochs, lr {r['lr']:g}, batch {r['batch_size']}, "
                         f"{r['image_size']} px, {r['train_images']} training images")
    return lines + ["  (the first model of each task is its default; --data-root DIR layouts: see "
                    "lamina.train.task_data)"]


def train_task(args: argparse.Namespace, options: dict[str, Any], saved: dict[str, Any] | None,
               resume: str | None, run_dir: str | None) -> int:
    """``lamina train --task detect|segment`` (or ``--resume`` of such a run)."""
    from .train.task_config import resolve_task_config
    from .train.task_run import headline, train_task_run
    from .train.trainer import TrainingError, TrainingInterrupted

    opts = {k: v for k, v in options.items() if k not in ("hidden", "activation")}
    for key in TASK_OPTIONS:
        opts[key] = getattr(args, key, None)
    opts["freeze_bn"] = True if args.freeze_bn else None
    for key in ("hidden", "activation"):
        if options.get(key) is not None:
            raise ValueError(f"--{key} sets the layers of --model mlp (classification); --task "
                             f"{opts['task'] or saved and saved.get('task')} has no such option")
    config = resolve_task_config(opts, saved)
    if run_dir is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = os.path.join(args.out, f"{config['model']}-{config['data']}-{stamp}")

    def say(*parts: Any) -> None:
        if not args.quiet:
            print(*parts, flush=True)

    say(f"lamina train: {config['task']} with {config['model']} on {config['data']} ({config['image_size']} px), "
        f"{config['epochs']} epochs, {config['optimizer']} lr {config['lr']}, batch {config['batch_size']} → {run_dir}")
    try:
        res = train_task_run(config, run_dir, resume=resume, log=None if args.quiet else say,
                             progress=False if args.quiet else None, report=not args.no_report)
    except TrainingInterrupted as e:
        print(f"\ninterrupted: checkpoint saved to {e.path}; continue with: lamina train --resume {run_dir}",
              file=sys.stderr)
        return 130
    except TrainingError as e:
        print(f"lamina train: {e}", file=sys.stderr)
        return 1
    print(f"{headline(config, res)}  ({res['train_seconds']:.1f} s)", flush=True)
    say(f"run folder: {run_dir}  (report: {os.path.join(run_dir, 'report.html')})")
    return 0


def evaluate_task(path: str) -> int:
    """``lamina evaluate RUN`` of a detection run (the COCO summary and the per-class table) or a
    segmentation run (pixel accuracy, IoU per class, mIoU)."""
    from .train.task_eval import detection_table, format_table, segmentation_table
    from .train.task_run import evaluate_task_run, headline

    config, res = evaluate_task_run(path)
    classes = list(config["classes"])
    if config["task"] == "segment":
        print(format_table(segmentation_table(classes, res)))
        return 0
    for kind, what in (("box", "boxes"), ("segm", "masks")):
        if kind in res:
            print(f"COCO summary, {what}:")
            print(res[f"{kind}_summary"])
            print()
            print(format_table(detection_table(classes, res, kind)))
            print()
    print(headline(config, res))
    return 0


def _image_size(path: str) -> tuple[int, int]:
    """``(H, W)`` of an image file from its header (or a ``.npy`` array's shape)."""
    if path.endswith(".npy"):
        from .datasets import read_image

        a = read_image(path, 3, (1, 1), "lamina predict")
        return int(a.shape[-2]), int(a.shape[-1])
    try:
        from PIL import Image
    except ImportError as e:
        raise ValueError(f"lamina predict: {e} (pip install 'lamina[image]')") from None
    try:
        with Image.open(path) as img:
            w, h = img.size
    except (OSError, EOFError) as e:
        raise ValueError(f"lamina predict: cannot read image {path!r}: {e}") from None
    return h, w


def _to_pil(a: np.ndarray) -> Any:
    from PIL import Image

    a = np.asarray(a, dtype=np.float64)
    a = np.moveaxis(a, 0, -1) if a.ndim == 3 else a
    a = np.repeat(a[..., :1], 3, -1) if a.shape[-1] != 3 else a
    return Image.fromarray((np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8), "RGB")


def draw_detections(image: np.ndarray, det: dict[str, np.ndarray], classes: list[str]) -> Any:
    """``image`` ``(3, H, W)`` in [0, 1] as a Pillow image with ``det``'s boxes, class names and
    scores drawn (and its ``masks`` ``(M, 1, H, W)`` as translucent overlays)."""
    from PIL import ImageDraw

    from .train.task_report import palette

    colors = (palette(len(classes)) * 255).astype(int)
    base = np.asarray(image, dtype=np.float64).copy()
    for m, c in zip(det.get("masks", []), det["labels"]):
        on = np.asarray(m)[0] > 0.5
        col = colors[int(c) % len(colors)] / 255.0
        base[:, on] = 0.55 * base[:, on] + 0.45 * col[:, None]
    pil = _to_pil(base)
    draw = ImageDraw.Draw(pil)
    for (x1, y1, x2, y2), c, s in zip(det["boxes"], det["labels"], det["scores"]):
        col = tuple(int(v) for v in colors[int(c) % len(colors)])
        draw.rectangle([float(x1), float(y1), float(x2), float(y2)], outline=col, width=2)
        label = f"{classes[int(c)] if int(c) < len(classes) else int(c)} {s:.2f}"
        tx, ty = float(x1), max(float(y1) - 11, 0.0)
        box = draw.textbbox((tx, ty), label)
        draw.rectangle(box, fill=col)
        draw.text((tx, ty), label, fill=(255, 255, 255))
    return pil


def draw_segmentation(image: np.ndarray, classes_map: np.ndarray, k: int, alpha: float = 0.45) -> Any:
    """``image`` ``(3, H, W)`` with the class map ``(H, W)`` blended over it (background left clear)."""
    from .train.task_report import palette

    colors = palette(k)
    base = np.asarray(image, dtype=np.float64).copy()
    m = np.asarray(classes_map)
    on = (m > 0) & (m < k)
    base[:, on] = (1 - alpha) * base[:, on] + alpha * colors[m[on]].T
    return _to_pil(base)


def _resize_map(m: np.ndarray, h: int, w: int) -> np.ndarray:
    """Nearest-neighbour resize of a class map to ``(h, w)``."""
    rows = np.minimum((np.arange(h) + 0.5) * m.shape[0] / h, m.shape[0] - 1).astype(int)
    cols = np.minimum((np.arange(w) + 0.5) * m.shape[1] / w, m.shape[1] - 1).astype(int)
    return m[rows][:, cols]


def predict_task(args: argparse.Namespace, path: str) -> int:
    """``lamina predict RUN IMAGE…`` of a detection or segmentation run: each image with its
    detections (or class map) drawn, written to ``--out`` (default: the run folder's
    ``predictions/``), and the detections printed."""
    import lamina
    from lamina.autograd.grad_mode import no_grad

    from .datasets import read_image
    from .train.checkpoint import load_checkpoint
    from .train.report import atomic_write_bytes
    from .train.run import resolve_checkpoint
    from .train.task_eval import segmentation_output
    from .train.task_run import load_task_run

    ck_path = resolve_checkpoint(path)
    config, model = load_task_run(ck_path, load_checkpoint(ck_path))
    classes, size = list(config["classes"]), int(config["image_size"])
    thresh = float(args.score_thresh if args.score_thresh is not None else 0.3)
    out_dir = args.out or os.path.join(os.path.dirname(os.path.abspath(ck_path)), "predictions")
    os.makedirs(out_dir, exist_ok=True)
    for image_path in args.images:
        h, w = _image_size(image_path)
        full = read_image(image_path, 3, (h, w), "lamina predict")
        small = read_image(image_path, 3, (size, size), "lamina predict")
        with no_grad():
            if config["task"] == "segment":
                out = segmentation_output(model(lamina.tensor(small[None])))
                pred = _resize_map(np.asarray(out.array).argmax(1)[0], h, w)
                drawn = draw_segmentation(full, pred, len(classes))
                share = ", ".join(f"{classes[c]} {np.mean(pred == c):.1%}" for c in range(1, len(classes))
                                  if np.any(pred == c))
                print(f"{image_path}: {share or 'background only'}")
            else:
                det = {k: np.asarray(v.array) for k, v in model([lamina.tensor(small)])[0].items()}
                keep = det["scores"] >= thresh
                det = {k: v[keep] for k, v in det.items()}
                sy, sx = h / size, w / size
                det["boxes"] = det["boxes"] * np.array([sx, sy, sx, sy], dtype=np.float32)
                if "masks" in det:
                    det["masks"] = np.stack([_resize_map(m[0], h, w)[None] for m in det["masks"]]) \
                        if len(det["masks"]) else np.zeros((0, 1, h, w))
                drawn = draw_detections(full, det, classes)
                print(f"{image_path}: {len(det['labels'])} detections (score ≥ {thresh:g})")
                for b, c, s in zip(det["boxes"], det["labels"], det["scores"]):
                    print(f"  {classes[int(c)]:<12} {s:.3f}  box ({b[0]:.1f}, {b[1]:.1f}, {b[2]:.1f}, {b[3]:.1f})")
        target = os.path.join(out_dir, os.path.splitext(os.path.basename(image_path))[0] + "_pred.png")
        buf = io.BytesIO()
        drawn.save(buf, format="PNG")
        atomic_write_bytes(target, buf.getvalue())
        print(f"  drawn: {target}")
    return 0
