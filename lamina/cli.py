"""Floor 6: the ``lamina`` command line.

    lamina train      train a model on a data set and write a run folder with a report
    lamina evaluate   evaluate a run folder or checkpoint on its test data
    lamina predict    classify image files with a trained checkpoint
    lamina summary    per-layer table of a model (shapes, parameters, multiply-adds, memory)
    lamina explain    visualize what a trained CNN learned and why it decides (lamina.vis)
    lamina export     a run's model as an ONNX file
    lamina demo       backpropagation through a small graph, printed
    lamina playground the MLP playground, CNN explainer and conv arithmetic in the browser

A bare ``lamina train`` trains a LeNet-style CNN on the embedded 8×8 digits in well under a
minute on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import sys
import traceback
from typing import Any

from .cli_predict import _border_level, _training_background  # noqa: F401 - names tests use
from .cli_predict import predict as _predict

__all__ = ["main", "build_data", "build_model"]


def build_data(config: dict[str, Any], train: bool) -> Any:
    """The run's data set (see ``lamina.train.run.build_data``)."""
    from .train.run import build_data as _build

    return _build(config, train)


def build_model(config: dict[str, Any]) -> Any:
    from .train.run import build_model as _build

    return _build(config)


def demo() -> int:
    import lamina

    print("lamina demo — backpropagation through a computational graph\n")
    x = lamina.tensor(-2.0, requires_grad=True)
    y = lamina.tensor(5.0, requires_grad=True)
    z = lamina.tensor(-4.0, requires_grad=True)
    f = (x + y) * z
    f.backward()
    print("f(x, y, z) = (x + y) * z  at x=-2, y=5, z=-4")
    print(f"  f = {f.item():g}")
    print(f"  df/dx = z = {x.grad.item():g}   df/dy = z = {y.grad.item():g}   df/dz = x + y = {z.grad.item():g}")
    lamina.manual_seed(0)
    w = lamina.randn(3, dtype=lamina.float64, requires_grad=True)
    b = lamina.tensor(0.1, dtype=lamina.float64, requires_grad=True)
    inp = lamina.tensor([1.0, -2.0, 0.5], dtype=lamina.float64)
    out = ((w * inp).sum() + b).sigmoid()
    out.backward()
    print("\nA sigmoid neuron  s = sigmoid(w·x + b)")
    print(f"  s = {out.item():.6f}")
    print(f"  ds/dw = s(1-s)·x = {[round(v, 6) for v in w.grad.tolist()]}")
    print(f"  ds/db = s(1-s)   = {b.grad.item():.6f}")
    t = lamina.tensor(1.5, dtype=lamina.float64, requires_grad=True)
    (g,) = lamina.autograd.grad(t ** 3, t, create_graph=True)
    (h,) = lamina.autograd.grad(g, t)
    print("\nHigher order: d/dt t³ = 3t² =", g.item(), "  d²/dt² t³ = 6t =", h.item())
    ok = lamina.autograd.gradcheck(lambda a: (a * a).sum().sigmoid(), (w,))
    print("gradcheck of sigmoid(sum(w²)) in float64:", "passed" if ok else "FAILED")
    return 0


def _train_options(args: argparse.Namespace) -> dict[str, Any]:
    """What the user set on the command line (``None``: not set, the run's defaults apply)."""
    keys = ("model", "data", "epochs", "batch_size", "optimizer", "lr", "scheduler", "seed", "data_root",
            "weight_decay", "early_stopping", "grad_clip", "num_workers", "hidden", "activation", "window", "stride")
    options = {key: getattr(args, key) for key in keys}
    if args.augment is not None:
        options["augment"] = args.augment
    if args.model_kwargs:
        try:
            kwargs = json.loads(args.model_kwargs)
        except json.JSONDecodeError as e:
            raise ValueError(f"--model-kwargs must be a JSON object, e.g. '{{\"width\": 16}}': {e}") from None
        if not isinstance(kwargs, dict):
            raise ValueError(f"--model-kwargs must be a JSON object, e.g. '{{\"width\": 16}}', got {args.model_kwargs}")
        options["model_kwargs"] = kwargs
    return options


def _new_run_dir(args: argparse.Namespace, config: dict[str, Any]) -> str:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join(args.out, f"{config['model']}-{config['data']}-{stamp}")


def _train(args: argparse.Namespace) -> int:
    from .cli_distributed import is_rank_process, launch_ranks, train_as_rank

    if is_rank_process():  # one of the ranks that --nproc/--hosts started
        return train_as_rank(args, _train_local)
    if args.nproc is None and not args.hosts:
        return _train_local(args)
    return launch_ranks(args)


def _train_local(args: argparse.Namespace) -> int:
    from .train.run import resolve_checkpoint, resolve_config, train_run
    from .train.trainer import TrainingError, TrainingInterrupted

    if args.device and args.device != "cpu":
        from . import backend

        backend.to_device(args.device)
    options = _train_options(args)
    run_dir = args.run_dir
    resume = None
    saved = None
    if args.resume:
        resume = resolve_checkpoint(args.resume)
        from .train.checkpoint import load_checkpoint

        saved = load_checkpoint(resume).get("config")
        run_dir = run_dir or os.path.dirname(os.path.abspath(resume))
    base = json.loads(saved) if saved else None
    if (base or {}).get("task") or (args.task not in (None, "classify")):
        from .cli_tasks import train_task

        if base is not None and args.task not in (None, base["task"]):
            raise ValueError(f"--resume continues a {base['task']} run; it cannot change --task to {args.task}")
        return train_task(args, options, base, resume, run_dir)
    from .cli_tasks import refuse_task_options

    refuse_task_options(args)
    # names and combinations are checked here, the model against the data in train_run: both before
    # the run folder exists, so a run that cannot train leaves none
    config = resolve_config(options, base) if base else resolve_config(options)
    if run_dir is None:
        run_dir = _new_run_dir(args, config)

    def say(*parts: Any) -> None:  # flushed, so progress shows at once when stdout is a pipe or a file
        if not args.quiet:
            print(*parts, flush=True)

    say(f"lamina train: {config['model']} on {config['data']}, {config['epochs']} epochs, "
        f"{config['optimizer']} lr {config['lr']}, batch {config['batch_size']} → {run_dir}")
    try:
        final = train_run(config, run_dir, resume=resume, log=None if args.quiet else say,
                          progress=False if args.quiet else None, report=not args.no_report)
    except TrainingInterrupted as e:
        from .train.ranks import writes_files

        if writes_files():  # on several ranks, rank 0 wrote the checkpoint and says so
            print(f"\ninterrupted: checkpoint saved to {e.path}; continue with: lamina train --resume {run_dir}",
                  file=sys.stderr)
        return 130
    except TrainingError as e:
        print(f"lamina train: {e}", file=sys.stderr)
        return 1
    if final.get("nonfinite_outputs") or not math.isfinite(final["test_loss"]):
        print(f"lamina train: the model output is not finite (NaN or inf) for {final.get('nonfinite_outputs')} of "
              f"{final.get('samples')} test images; no test metrics are given", file=sys.stderr)
        return 1
    # the final metrics are the run's result: printed even with --quiet
    print(f"test accuracy {final['test_accuracy']:.4f}  test loss {final['test_loss']:.4f}  "
          f"({final['train_seconds']:.1f} s)", flush=True)
    say(f"run folder: {run_dir}  (report: {os.path.join(run_dir, 'report.html')})")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .cli_tasks import evaluate_task, task_of_run
    from .train.run import evaluate_run

    if task_of_run(args.run) != "classify":

        return evaluate_task(args.run)

    res = evaluate_run(args.run)
    if res["nonfinite_outputs"] or not math.isfinite(res["test_loss"]):
        from .train.finite import nonfinite_state
        from .train.run import load_run

        bad = nonfinite_state(load_run(args.run)[1])
        cause = f": the model's weights hold NaN or inf ({', '.join(bad[:4])}{' …' if len(bad) > 4 else ''})" \
            if bad else ""
        raise ValueError(f"the model output is not finite (NaN or inf) for {res['nonfinite_outputs']} of "
                         f"{res['samples']} test images{cause}; no test metrics are given")
    print(f"test accuracy {res['test_accuracy']:.4f}  test loss {res['test_loss']:.4f}")
    if args.confusion:
        print(_confusion_table(res["confusion_matrix"], res.get("classes") or []))
    return 0


def _export(args: argparse.Namespace) -> int:
    from .onnx import export_run

    print(f"wrote {export_run(args.run, args.out)}")
    return 0


def _confusion_table(matrix: Any, classes: list[str]) -> str:
    """The confusion matrix as text: one row per true class, one column per predicted class,
    both labelled with the class names."""
    k = len(matrix)
    names = [str(c) for c in classes] if len(classes) == k else [str(i) for i in range(k)]
    corner = "true \\ predicted"
    rows = [[corner, *names]] + [[names[i], *(str(int(v)) for v in matrix[i])] for i in range(k)]
    widths = [max(len(r[j]) for r in rows) for j in range(k + 1)]
    lines = [rows[0][0].ljust(widths[0]) + "  " + "  ".join(c.rjust(w) for c, w in zip(rows[0][1:], widths[1:]))]
    lines += [r[0].ljust(widths[0]) + "  " + "  ".join(c.rjust(w) for c, w in zip(r[1:], widths[1:]))
              for r in rows[1:]]
    return "\n".join(lines)


def _summary(args: argparse.Namespace) -> int:
    from . import models
    from .train.summary import summary

    kwargs = json.loads(args.kwargs) if args.kwargs else {}
    if args.num_classes is not None:
        kwargs["num_classes"] = args.num_classes
    model = models.get_model(args.model, **kwargs)
    print(summary(model, tuple(args.input_size), depth=args.depth))
    return 0


def _train_epilog() -> str:
    from .train.run_config import DATA_DEFAULTS

    lines = ["defaults per data set (what --data NAME trains unless --model, --epochs, --lr … say otherwise;",
             "the model options in brackets apply while the model is that one):"]
    for name, recipe in DATA_DEFAULTS.items():
        kw = recipe.get("model_kwargs")
        model = recipe["model"] + (" (" + ", ".join(f"{k}={v}" for k, v in kw.items()) + ")" if kw else "")
        extra = f", lr {recipe['lr']:g}" if "lr" in recipe else ""
        extra += f", batch {recipe['batch_size']}" if "batch_size" in recipe else ""
        extra += ", augmented" if recipe.get("augment") else ""
        lines.append(f"  {name:<14} {model}, {recipe['epochs']} epochs{extra}")
    lines += ["",
              "The model must classify the data: segmentation models, image models on 2-D points and models",
              "whose layers do not fit the images are refused before anything is written. --model mlp works on",
              "every data set (images are flattened). config.json records every constructor argument",
              "(model_kwargs) and the class names, so evaluate, predict and explain rebuild the same model.",
              ""]
    from .cli_tasks import task_epilog

    lines += task_epilog()
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    from .cli_tasks import add_task_arguments
    from .train.run import DATASETS, OPTIMIZERS, SCHEDULERS
    from .train.run_config import ACTIVATIONS
    from .train.task_config import TASK_DATA

    task_only = tuple(sorted({d for names in TASK_DATA.values() for d in names} - set(DATASETS)))

    p = argparse.ArgumentParser(prog="lamina", description="lamina: deep learning from first principles on NumPy")
    p.add_argument("--debug", action="store_true",
                   help="on an error, show Python's full traceback, not one line (also: LAMINA_DEBUG=1)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser(
        "train", help="train a model and write a run folder with a report",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a classifier (or with --task a detector or a segmenter) and write a run folder "
                    "(config.json, metrics.csv, checkpoint.lamina, report.html).\nWith no arguments: a LeNet-style "
                    "CNN on the embedded 8×8 digits.",
        epilog=_train_epilog())
    t.add_argument("--model", help="a name from lamina.models.list_models() or 'mlp' (default: the data's, below)")
    t.add_argument("--data", choices=DATASETS + task_only,
                   help="data set (default digits; shapes-det for --task detect|segment; coco, voc, masks: your "
                        "files in --data-root)")
    t.add_argument("--hidden", type=int, nargs="+", metavar="WIDTH",
                   help="--model mlp: widths of the hidden layers (default 64 64)")
    t.add_argument("--activation", choices=sorted(ACTIVATIONS),
                   help="--model mlp: activation between the layers (default relu)")
    t.add_argument("--model-kwargs", dest="model_kwargs", metavar="JSON",
                   help="more constructor arguments of the model, e.g. '{\"width\": 16}' (see lamina summary)")
    t.add_argument("--data-root", dest="data_root",
                   help="folder with your own files (mnist, cifar, folder); for csv: a .csv/.npz file of series")
    t.add_argument("--window", type=int, help="series data: cut windows of this many steps (default: whole series)")
    t.add_argument("--stride", type=int, help="series data: steps between window starts (default: the window)")
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", dest="batch_size", type=int)
    t.add_argument("--optimizer", choices=OPTIMIZERS)
    t.add_argument("--lr", type=float)
    t.add_argument("--weight-decay", dest="weight_decay", type=float)
    t.add_argument("--scheduler", choices=SCHEDULERS)
    t.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random crops (and flips where they keep the label); series: jitter, scaling, time shifts "
                        "(--no-augment: none, where the data's recipe augments)")
    t.add_argument("--early-stopping", dest="early_stopping", type=int, metavar="PATIENCE")
    t.add_argument("--grad-clip", dest="grad_clip", type=float, metavar="MAX_NORM")
    t.add_argument("--num-workers", dest="num_workers", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument("--out", default="runs", help="parent folder of new run folders (default runs/)")
    t.add_argument("--run-dir", dest="run_dir", help="exact run folder to write")
    t.add_argument("--resume",
                   help="run folder or checkpoint to continue (to --epochs in total; its model and data stay)")
    t.add_argument("--device", default="cpu", help="cpu (lamina has no GPU backend)")
    t.add_argument("--no-report", dest="no_report", action="store_true", help="skip plots and HTML report")
    t.add_argument("--quiet", action="store_true", help="print only the final test metrics")
    t.add_argument("--nproc", type=int, metavar="N",
                   help="train on N processes (ranks) through MPI's mpiexec, each on batch-size/N samples of every "
                        "batch (pip install 'lamina[mpi]')")
    t.add_argument("--hosts", metavar="HOST,HOST",
                   help="train on these machines (comma-separated, host:slots allowed; lamina installed alike on "
                        "each); --nproc gives the ranks in all (default: one per host)")
    add_task_arguments(t)
    t.set_defaults(func=_train)

    e = sub.add_parser("evaluate", help="evaluate a run folder or checkpoint on its test data")
    e.add_argument("run", metavar="RUN_OR_CHECKPOINT")
    e.add_argument("--confusion", action="store_true",
                   help="also print the confusion matrix (rows: true class, columns: predicted class)")
    e.set_defaults(func=_evaluate)

    pr = sub.add_parser("predict", help="classify images (or 2-D points) with a trained checkpoint",
                        description="Classify inputs with a trained run. Runs on images take image files; runs on "
                                    "2-D points (rings, xor, spirals, moons, blobs) take points: X,Y on the command "
                                    "line (write -- before the first one when it is negative: predict RUN -- -0.5,1) "
                                    "or .npy / .csv / .txt files of (N, 2) points.")
    pr.add_argument("checkpoint", metavar="CHECKPOINT", help="run folder or checkpoint file")
    pr.add_argument("images", metavar="INPUT", nargs="+",
                    help="image files (PNG/JPEG via Pillow, or .npy arrays); for 2-D runs: points X,Y or files "
                         "of points")
    pr.add_argument("--invert", action=argparse.BooleanOptionalAction, default=None,
                    help="invert the grey levels (dark ink on light paper) or, with --no-invert, keep them "
                         "(default: invert each image whose background is the opposite of the training images')")
    pr.add_argument("--out", metavar="DIR", help="detection/segmentation runs: folder for the drawn images "
                                                 "(default: the run folder's predictions/)")
    pr.add_argument("--score-thresh", dest="score_thresh", type=float,
                    help="detection runs: draw and print the detections scoring at least this (default 0.3)")
    pr.set_defaults(func=_predict)

    s = sub.add_parser("summary", help="per-layer shapes, parameters, multiply-adds and memory of a model")
    s.add_argument("model", metavar="MODEL")
    s.add_argument("--input-size", dest="input_size", type=int, nargs="+", required=True,
                   help="input shape with the batch dim, e.g. 1 1 32 32")
    s.add_argument("--num-classes", dest="num_classes", type=int)
    s.add_argument("--kwargs", help="more constructor arguments as JSON")
    s.add_argument("--depth", type=int, default=3)
    s.set_defaults(func=_summary)

    x = sub.add_parser("export", help="write a trained run's model as an ONNX file (dynamic batch)")
    x.add_argument("run", metavar="RUN_OR_CHECKPOINT")
    x.add_argument("--format", choices=["onnx"], default="onnx")
    x.add_argument("--out", help="file to write (default: model.onnx beside the checkpoint)")
    x.set_defaults(func=_export)

    d = sub.add_parser("demo", help="backpropagation through a small graph, printed")
    d.set_defaults(func=lambda a: demo())

    try:
        from .vis.explain_cli import add_explain_parser
    except ImportError:
        pass
    else:
        add_explain_parser(sub)
    from .playground import add_playground_parser

    add_playground_parser(sub)
    return p


def _user_errors() -> tuple[type[BaseException], ...]:
    """The errors that a user's input causes (a bad option, a missing, damaged or mismatched file):
    one line and exit code 2. Any other exception is a bug in lamina and keeps its traceback."""
    from .datasets.files import DatasetFileError
    from .serialization import SerializationError
    from .train.checkpoint import CheckpointError

    return SerializationError, DatasetFileError, CheckpointError, FileNotFoundError, ValueError


def main(argv: list[str] | None = None) -> int:
    """Run the ``lamina`` command line; returns the exit code.

    A user error (see :func:`_user_errors`) prints one line naming the file and the problem and
    returns 2; with ``--debug`` or the environment variable ``LAMINA_DEBUG=1`` the traceback is
    printed first. Ctrl-C outside training returns 130 (training itself saves a checkpoint first,
    on Ctrl-C and on SIGTERM alike, and also returns 130).

    Run as the process's command (``argv`` None: the ``lamina`` script, ``python -m lamina``),
    it owns the process and turns on lamina's process-wide tuning (:func:`lamina.runtime.tune`);
    called with an ``argv`` from Python, it leaves the calling process as it is.
    """
    if argv is None:
        from . import runtime

        runtime.tune()
    parser = _parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what --nproc hands on to its ranks
    if args.command is None:
        parser.print_help()
        return 0
    debug = args.debug or os.environ.get("LAMINA_DEBUG", "").strip() not in ("", "0")
    try:
        return int(args.func(args) or 0)
    except _user_errors() as e:
        if debug:
            traceback.print_exc()
        # one line, even for a multi-line message or one that carries a DataLoader worker's traceback
        msg = " ".join(str(getattr(e, "original_message", None) or e).split()) or type(e).__name__
        prefix = f"lamina {args.command}: "
        print(msg if msg.startswith((prefix, f"{args.command}: ")) else prefix + msg, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(f"lamina {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
