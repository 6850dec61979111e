"""Runs as the command line makes them: a data-set and model registry, an optimizer/scheduler
factory, and ``train_run`` / ``evaluate_run`` that write and read run folders.

A run folder holds ``config.json`` (the resolved configuration), ``metrics.csv``,
``checkpoint.lamina`` (everything needed to resume or evaluate), ``summary.txt``, PNG plots and
``report.html``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from typing import Any

from .. import backend, nn, optim
from ..autograd.grad_mode import no_grad
from .callbacks import Callback, EarlyStopping
from .checkpoint import load_checkpoint, load_part
from .finite import nonfinite_rows
from .metrics import ConfusionMatrix
from .ranks import world, writes_files
from .report import (
    atomic_write_text,
    have_matplotlib,
    plot_confusion_matrix,
    plot_curves,
    plot_filters,
    plot_misclassified,
    write_config,
    write_html_report,
    write_metrics_csv,
)
from .run_config import (
    DATASETS,
    IMAGE_SETS,
    SERIES_SETS,
    SYNTHETIC,
    USER_FILE_SETS,
    build_model,
    class_difference,
    data_info,
    default_config,
    model_input_size,
    resolve_config,
)
from .summary import summary
from .trainer import Trainer

__all__ = ["DATASETS", "IMAGE_SETS", "SYNTHETIC", "build_data", "build_model", "build_optimizer", "build_scheduler",
           "default_config", "resolve_config", "data_info", "check_model_fits", "train_run", "evaluate_run",
           "resolve_checkpoint", "load_run"]

xp = backend.xp

_model_input_size = model_input_size  # the name cli.py imports


# --- data -----------------------------------------------------------------------------------


def _image_transform(config: dict[str, Any], train: bool, size: int, channels: int) -> Any:
    from .. import transforms as T

    steps: list[Any] = []
    target = model_input_size(config, size)
    if target != size:
        steps.append(T.Resize(target))
    if train and config.get("augment"):
        pad = max(1, target // 8)
        steps.append(T.RandomCrop(target, padding=pad))
        if config["data"] not in ("digits", "mnist", "fashion-mnist"):  # flipping a digit changes its meaning
            steps.append(T.RandomHorizontalFlip())
    return T.Compose(steps) if steps else None


def build_data(config: dict[str, Any], train: bool) -> Any:
    """The data set named by ``config['data']`` (train or test part), with the run's transforms.

    Image sets: ``digits`` (embedded), ``shapes`` (generated), and — from ``config['data_root']`` —
    ``mnist``, ``fashion-mnist``, ``cifar10``, ``cifar100`` and ``folder`` (``root/train/<class>/…``,
    ``root/test/<class>/…``). 2-D sets: ``rings``, ``xor``, ``spirals``, ``moons``, ``blobs``.

    Raises:
        ValueError: the data's classes are not the run's ``config['classes']`` (the labels would
            mean other classes than the model's outputs).
    """
    ds = _make_data(config, train)
    expected = config.get("classes")
    found = [str(c) for c in (getattr(ds, "classes", None) or [])]
    if expected is not None and found != list(expected):
        name, root = config["data"], config.get("data_root")
        where = os.path.join(root, "train" if train else "test") if name == "folder" else (root or "")
        raise ValueError(f"data {name!r}{f' in {where}' if where else ''} ({'train' if train else 'test'} part) "
                         f"does not have the classes the run's model was trained on: "
                         f"{class_difference(found, list(expected), 'the data', 'the run')}")
    return ds


def _make_data(config: dict[str, Any], train: bool) -> Any:
    from .. import datasets as D
    from ..utils.data import TensorDataset

    name, root = config["data"], config.get("data_root")
    seed = int(config.get("seed", 0))
    if name in SYNTHETIC:
        maker = {"rings": D.make_rings, "xor": D.make_xor, "spirals": D.make_spirals, "moons": D.make_moons,
                 "blobs": D.make_blobs}[name]
        X, y = maker(800 if train else 400, seed=seed * 2 + (0 if train else 1))
        ds = TensorDataset(X, y)
        ds.classes = [str(c) for c in range(int(y.array.max()) + 1)]
        return ds
    if name in SERIES_SETS:
        from .series_data import build_series_data, series_transform

        return build_series_data(config, train, series_transform(config, train))
    if name in USER_FILE_SETS and not root:
        raise ValueError(f"data set {name!r} reads your own files: give --data-root (the folder holding them)")
    info = data_info(config)
    tf = _image_transform(config, train, info["size"], info["channels"])
    if name == "digits":
        return D.Digits(train=train, transform=tf)
    if name == "shapes":
        return D.Shapes(n=2000 if train else 500, size=32, train=train, seed=seed, transform=tf)
    if name == "mnist":
        return D.MNIST(root, train=train, transform=tf)
    if name == "fashion-mnist":
        return D.FashionMNIST(root, train=train, transform=tf)
    if name == "cifar10":
        return D.CIFAR10(root, train=train, transform=tf)
    if name == "cifar100":
        return D.CIFAR100(root, train=train, transform=tf)
    if name == "folder":
        from .. import transforms as T

        steps = [T.ToTensor(), T.Resize((32, 32))] + ([tf] if tf else [])
        return D.ImageFolder(os.path.join(root, "train" if train else "test"), transform=T.Compose(steps))
    raise ValueError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")


OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "nadam", "radam", "adamax")


def build_optimizer(config: dict[str, Any], params: Any) -> Any:
    name, lr, wd = config["optimizer"].lower(), float(config["lr"]), float(config.get("weight_decay", 0.0))
    table: dict[str, Callable[..., Any]] = {
        "sgd": lambda: optim.SGD(params, lr=lr, momentum=float(config.get("momentum", 0.9)), weight_decay=wd),
        "adam": lambda: optim.Adam(params, lr=lr, weight_decay=wd),
        "adamw": lambda: optim.AdamW(params, lr=lr, weight_decay=wd or 1e-2),
        "rmsprop": lambda: optim.RMSprop(params, lr=lr, weight_decay=wd),
        "adagrad": lambda: optim.Adagrad(params, lr=lr, weight_decay=wd),
        "adadelta": lambda: optim.Adadelta(params, lr=lr, weight_decay=wd),
        "nadam": lambda: optim.NAdam(params, lr=lr, weight_decay=wd),
        "radam": lambda: optim.RAdam(params, lr=lr, weight_decay=wd),
        "adamax": lambda: optim.Adamax(params, lr=lr, weight_decay=wd),
    }
    if name not in table:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")
    return table[name]()


SCHEDULERS = ("none", "step", "cosine", "exponential", "onecycle", "plateau")
# what a resumed run's new scheduler keeps over the checkpoint's state: the lengths built from
# the new --epochs (cosine's T_max, step's step_size, one-cycle's total steps and the phase ends
# taken from them), so that a run resumed to more epochs follows the longer schedule
SCHEDULER_KEEP = ("T_max", "step_size", "total_steps", "_schedule_phases")


def build_scheduler(config: dict[str, Any], optimizer: Any, steps_per_epoch: int) -> tuple[Any, str]:
    from ..optim import lr_scheduler as S

    name, epochs = (config.get("scheduler") or "none").lower(), int(config["epochs"])
    if name == "none":
        return None, "epoch"
    if name == "step":
        return S.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1), "epoch"
    if name == "cosine":
        return S.CosineAnnealingLR(optimizer, T_max=epochs), "epoch"
    if name == "exponential":
        return S.ExponentialLR(optimizer, gamma=0.9), "epoch"
    if name == "onecycle":
        sched = S.OneCycleLR(optimizer, max_lr=float(config["lr"]), epochs=epochs, steps_per_epoch=steps_per_epoch)
        return sched, "step"
    if name == "plateau":
        return S.ReduceLROnPlateau(optimizer, patience=2), "epoch"
    raise ValueError(f"unknown scheduler {name!r}; known: {', '.join(SCHEDULERS)}")


# --- runs ---------------------------------------------------------------------------------


def _loader(config: dict[str, Any], ds: Any, train: bool) -> Any:
    from ..utils.data import DataLoader, DistributedSampler

    rank, size = world()
    if train and size > 1:  # each rank trains on its share; together a batch of batch_size
        batch = int(config["batch_size"])
        if batch % size:
            raise ValueError(f"batch_size {batch} must be divisible by the number of ranks {size} (each rank "
                             "takes batch_size / ranks samples of every batch)")
        return DataLoader(ds, batch_size=batch // size, num_workers=int(config.get("num_workers", 0)),
                          sampler=DistributedSampler(ds, size, rank, seed=int(config.get("seed", 0))))
    return DataLoader(ds, batch_size=int(config["batch_size"]), shuffle=train, seed=int(config.get("seed", 0)),
                      num_workers=int(config.get("num_workers", 0)))


def split_validation(ds: Any, fraction: float, seed: int) -> tuple[Any, Any]:
    """``ds`` split into a training part and a validation part of ``fraction`` (fixed by ``seed``)."""
    from ..utils.data import random_split

    if not 0.0 < fraction < 1.0:
        raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {fraction}")
    n_val = max(1, int(round(len(ds) * fraction)))
    return tuple(random_split(ds, [len(ds) - n_val, n_val], generator=xp.random.default_rng(seed + 7919)))


def resolve_checkpoint(path: str) -> str:
    """A run folder or a checkpoint file → the checkpoint file."""
    if os.path.isdir(path):
        path = os.path.join(path, "checkpoint.lamina")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path!r} (give a run folder or a .lamina checkpoint)")
    return path


def load_run(path: str) -> tuple[dict[str, Any], nn.Module, dict[str, Any]]:
    """(config, model with the checkpoint's weights, raw checkpoint) for a run folder or checkpoint.

    The configuration is resolved (a run folder written before ``model_kwargs`` was complete gets
    the values it was trained with); weights that do not fit the model it describes raise a
    CheckpointError (a ValueError) naming the checkpoint."""
    ck_path = resolve_checkpoint(path)
    ck = load_checkpoint(ck_path)
    config = json.loads(ck["config"]) if isinstance(ck.get("config"), str) else ck.get("config")
    if not isinstance(config, dict):
        raise ValueError(f"{path!r}: this checkpoint has no run configuration (was it written by lamina train?)")
    config = resolve_config({}, config)
    model = build_model(config)
    load_part(model, ck.get("model"), ck_path, "model")
    model.eval()
    return config, model, ck


def _make_trainer(config: dict[str, Any], model: nn.Module, steps_per_epoch: int, checkpoint: str,
                  log: Any, progress: bool | None) -> Trainer:
    opt = build_optimizer(config, model.parameters())
    sched, interval = build_scheduler(config, opt, steps_per_epoch)
    callbacks: list[Callback] = []
    if int(config.get("early_stopping") or 0) > 0:
        callbacks.append(EarlyStopping("val_loss", patience=int(config["early_stopping"]), restore_best_weights=True))
    if config.get("grad_clip"):
        from .callbacks import GradientClipping

        callbacks.append(GradientClipping(max_norm=float(config["grad_clip"])))
    # a resumed run may ask for more epochs: the schedule's horizon follows the new total
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt, scheduler=sched, scheduler_interval=interval,
                      metrics=("accuracy",), callbacks=callbacks, checkpoint_path=checkpoint, progress=progress,
                      log=log, scheduler_keep=SCHEDULER_KEEP)
    return trainer


def check_model_fits(model: nn.Module, config: dict[str, Any]) -> None:
    """Raise a ValueError when ``model`` cannot classify the inputs of ``config['data']``: a
    batch of two blank inputs of the data's shape must give scores of shape ``(2, classes)``.
    Run before anything is written, so a combination that cannot train fails at once."""
    from ..autograd.tensor import Tensor

    info, k, name, data = data_info(config), len(config["classes"]), config["model"], config["data"]
    if info["channels"] == 0:
        shape: tuple[int, ...] = (2, 2)
    elif info.get("series"):
        shape = (2, info["channels"], info["size"])
    else:
        side = model_input_size(config, info["size"])
        shape = (2, info["channels"], side, side)
    was_training = model.training
    model.eval()  # no batch-norm statistics change; dropout off
    try:
        with no_grad():
            out = model(Tensor._wrap(xp.zeros(shape, dtype=backend.get_default_dtype())))
    except ValueError as e:  # the layers' own shape checks say what does not fit
        raise ValueError(f"model {name!r} cannot take the {data} inputs of shape {shape[1:]}: {e}") from None
    finally:
        model.train(was_training)
    got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
    if got != (2, k):
        raise ValueError(f"model {name!r} gives outputs {got} for a batch of 2 {data} inputs; lamina train needs "
                         f"one score per class, (2, {k}): pick a classification model")


def train_run(config: dict[str, Any], run_dir: str, resume: str | None = None, log: Any = print,
              progress: bool | None = None, report: bool = True) -> dict[str, Any]:
    """Train as ``config`` says, writing the run folder ``run_dir``; returns the final test logs.

    ``config`` is resolved first (:func:`resolve_config`); the data and the model are built and
    checked against each other (:func:`check_model_fits`) before ``run_dir`` is created, so a
    run that cannot train leaves no folder behind.

    Inside an MPI process group of several ranks (``lamina train --nproc N``) every rank trains a
    ``DistributedDataParallel`` replica on its ``DistributedSampler`` share, batch_size / N per
    batch, and rank 0 alone writes ``run_dir``; the per-epoch training loss and metrics are rank
    0's share, validation and test metrics those of the whole sets."""
    from ..backend import manual_seed

    config = resolve_config({}, config) if resume else resolve_config(config)
    manual_seed(int(config.get("seed", 0)))
    full_train, test_ds = build_data(config, True), build_data(config, False)
    classes = list(config["classes"])
    model = build_model(config)
    check_model_fits(model, config)
    rank, size = world()
    writer = writes_files()
    if writer:
        os.makedirs(run_dir, exist_ok=True)
    seed = int(config.get("seed", 0))
    train_ds, val_ds = split_validation(full_train, float(config.get("val_fraction", 0.1)), seed)
    train_loader, val_loader = _loader(config, train_ds, True), _loader(config, val_ds, False)
    test_loader = _loader(config, test_ds, False)
    checkpoint = os.path.join(run_dir, "checkpoint.lamina")
    trained = model
    if size > 1:  # rank 0's initial weights everywhere; gradients averaged over the ranks
        from ..nn.parallel import DistributedDataParallel

        trained = DistributedDataParallel(model)
    trainer = _make_trainer(config, trained, len(train_loader), checkpoint, log if writer else None,
                            progress if writer else False)
    trainer.checkpoint_extra = {"config": json.dumps(config)}
    if writer:
        write_config(config, os.path.join(run_dir, "config.json"))
    t0 = time.perf_counter()
    # validation (early stopping, plateau schedules, the curves) on a held-out part of the training
    # data; the test set is only read once, at the end
    steps0 = trainer.step
    history = trainer.fit(train_loader, int(config["epochs"]), val_data=val_loader, resume=resume)
    elapsed = time.perf_counter() - t0
    trainer.save_checkpoint(checkpoint)
    final = evaluate_model(model, test_loader, len(classes))
    final["train_seconds"] = elapsed
    final["rank_step_seconds"] = _rank_step_seconds(elapsed / max(trainer.step - steps0, 1), size)
    if writer:
        write_metrics_csv(history, os.path.join(run_dir, "metrics.csv"))
        if report:
            write_report(run_dir, config, history, model, final, test_ds, classes)
    return final


def _rank_step_seconds(mine: float, size: int) -> list[float]:
    """Every rank's mean time per training step (validation included), rank 0 first."""
    if size == 1:
        return [mine]
    from .. import distributed
    from ..autograd.tensor import Tensor

    t = Tensor._wrap(xp.array([mine], dtype=xp.float64))
    all_t = [Tensor._wrap(xp.zeros(1, dtype=xp.float64)) for _ in range(size)]
    distributed.all_gather(all_t, t)
    return [float(a.array[0]) for a in all_t]


def evaluate_model(model: nn.Module, loader: Any, num_classes: int) -> dict[str, Any]:
    """Loss, accuracy, confusion matrix, per-class precision/recall, up to 16 misclassified
    examples of ``model`` on ``loader``, and how many of its ``samples`` got an output holding
    NaN or inf (``nonfinite_outputs``: the metrics mean nothing unless it is 0)."""
    import lamina.nn.functional as F

    model.eval()
    cm = ConfusionMatrix(num_classes)
    total, seen, wrong, nonfinite = 0.0, 0, [], 0
    with no_grad():
        for x, y in loader:
            out = model(x)
            nonfinite += int(nonfinite_rows(out).sum())
            total += float(F.cross_entropy(out, y, reduction="sum").item())
            seen += y.shape[0]
            cm.update(out, y)
            pred = out.array.argmax(1)
            for i in xp.flatnonzero(pred != y.array):
                if len(wrong) < 16:
                    wrong.append((x.array[i], int(y.array[i]), int(pred[i])))
    m = cm.compute()
    return {"test_loss": total / max(seen, 1), "test_accuracy": float(xp.trace(m) / max(m.sum(), 1)),
            "confusion_matrix": m, "precision": cm.precision(), "recall": cm.recall(), "misclassified": wrong,
            "nonfinite_outputs": nonfinite, "samples": seen}


def evaluate_run(path: str) -> dict[str, Any]:
    """Evaluate a run folder or checkpoint on its test data, whose classes must be the run's
    (:func:`evaluate_model`'s results and the run's ``classes``)."""
    config, model, _ = load_run(path)
    ds = build_data(config, False)
    res = evaluate_model(model, _loader(config, ds, False), len(config["classes"]))
    res["classes"] = list(config["classes"])
    return res


def _series_figures(run_dir: str, model: nn.Module, test_ds: Any, classes: list[str]) -> list[tuple[str, str]]:
    from .report_series import plot_saliency, plot_series_examples, saliency_over_time, series_samples

    x, y = series_samples(test_ds)
    names = classes or [str(i) for i in range(int(y.max()) + 1)]
    plot_series_examples(x, y, os.path.join(run_dir, "series.png"), names)
    one = xp.asarray([list(y).index(c) for c in sorted(set(y.tolist()))])  # one series per class
    plot_saliency(x[one], saliency_over_time(model, x[one], y[one]), y[one], os.path.join(run_dir, "saliency.png"),
                  names)
    return [("Example test series", "series.png"), ("Saliency over time (gradient × input)", "saliency.png")]


def write_report(run_dir: str, config: dict[str, Any], history: list[dict[str, float]], model: nn.Module,
                 final: dict[str, Any], test_ds: Any, classes: list[str]) -> str:
    """The PNG plots and the self-contained HTML report of a run."""
    info = data_info(config)
    images: list[tuple[str, str]] = []
    if have_matplotlib():
        plot_curves(history, os.path.join(run_dir, "loss.png"), "loss")
        images.append(("Loss per epoch", "loss.png"))
        if any("accuracy" in h for h in history):
            plot_curves(history, os.path.join(run_dir, "accuracy.png"), "accuracy")
            images.append(("Accuracy per epoch", "accuracy.png"))
        plot_confusion_matrix(final["confusion_matrix"], os.path.join(run_dir, "confusion_matrix.png"), classes or None)
        images.append(("Confusion matrix on the test set", "confusion_matrix.png"))
        conv = next((m for m in model.modules() if type(m).__name__ == "Conv2d"), None)
        if info.get("series"):
            images += _series_figures(run_dir, model, test_ds, classes)
        elif conv is not None:
            plot_filters(conv.weight.array, os.path.join(run_dir, "filters.png"))
            images.append(("First-layer filters", "filters.png"))
        wrong = final["misclassified"]
        if info["channels"] and not info.get("series"):
            plot_misclassified(xp.stack([w[0] for w in wrong]) if wrong else xp.zeros((0, 1, 2, 2)),
                               [w[1] for w in wrong], [w[2] for w in wrong],
                               os.path.join(run_dir, "misclassified.png"), classes or None)
            images.append(("Misclassified test examples", "misclassified.png"))
    size = model_input_size(config, info["size"])
    in_size = (1, 2) if info["channels"] == 0 else (1, info["channels"], size, size)
    if info.get("series"):
        in_size = (1, info["channels"], info["size"])
    text = str(summary(model, in_size))
    atomic_write_text(os.path.join(run_dir, "summary.txt"), text + "\n")  # replaces a link, never writes through
    names = classes or [str(i) for i in range(len(final["precision"]))]
    table = [["class", "precision", "recall"]] + [
        [n, f"{p:.3f}", f"{r:.3f}"] for n, p, r in zip(names, final["precision"], final["recall"])]
    title = f"lamina run: {config['model']} on {config['data']} — test accuracy {final['test_accuracy']:.2%}"
    if final.get("nonfinite_outputs"):
        title = (f"lamina run: {config['model']} on {config['data']} — the model output is not finite (NaN or inf) "
                 f"for {final['nonfinite_outputs']} of {final['samples']} test images: its metrics mean nothing")
    note = "" if have_matplotlib() else " (install matplotlib — pip install 'lamina[plot]' — for the figures)"
    return write_html_report(
        run_dir, title + note, config, history, images, tables=[("Per-class precision and recall (test)", table)],
        text=[("Model summary", text),
              ("Test set", f"loss {final['test_loss']:.4f}, accuracy {final['test_accuracy']:.4f}, "
                           f"training time {final.get('train_seconds', math.nan):.1f} s"),
              ("Time per training step, by rank", "\n".join(
                  f"rank {r}: {1000 * t:.2f} ms" for r, t in enumerate(final.get("rank_step_seconds", []))))])
