"""Runs of the dense tasks before they start: detection (``--task detect``) and semantic
segmentation (``--task segment``) — their models, data sets, per-model recipes, and the resolution
of a user's options into a run's complete configuration.

A resolved configuration holds ``task``, the model and every constructor argument that rebuilds
it (``model_kwargs``, ``num_classes`` with the background for detectors), the data and where it
lies, ``classes`` (``classes[0] == 'background'``), the image size and set sizes of the synthetic
data, the loss (segmentation) and the fine-tuning options. A classification run has no ``task``
key (its configuration is :mod:`lamina.train.run_config`'s, unchanged).
"""

from __future__ import annotations

import copy
import os
from typing import Any

__all__ = ["TASKS", "TASK_MODELS", "TASK_DATA", "TASK_DEFAULTS", "SEG_LOSSES", "task_of", "resolve_task_config",
           "task_default_config"]

TASKS = ("classify", "detect", "segment")
TASK_MODELS = {"detect": ("yolov1", "fasterrcnn", "maskrcnn"), "segment": ("unet", "fcn8s", "deeplabv3")}
TASK_DATA = {"detect": ("shapes-det", "coco", "voc"), "segment": ("shapes-det", "masks")}
USER_TASK_DATA = ("coco", "voc", "masks")
SEG_LOSSES = ("ce", "dice", "focal", "ce+dice")

# What ``--task T --model M`` trains unless the user says otherwise, sized toward the README's
# targets on the default synthetic set on 2 CPU cores (its table says which they reach). The shapes
# differ only in form (colour and texture are drawn independently of the class), which a small
# network learns from many images, not from many passes over few: 600 images overfit within a few
# epochs, so the recipes take thousands of generated images (free: the set is drawn from its seed)
# for one or two epochs. Over so few epochs a per-epoch cosine schedule hardly anneals; the
# one-cycle schedule (per batch: warm-up, then annealing to ~0) is what lifts YOLO and U-Net in
# the last third of their steps.
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "yolov1": {"epochs": 1, "lr": 3e-3, "batch_size": 8, "image_size": 96, "train_images": 25000, "augment": True,
               "scheduler": "onecycle", "val_fraction": 0.04, "model_kwargs": {}},
    "fasterrcnn": {"epochs": 2, "lr": 2e-3, "batch_size": 8, "image_size": 96, "train_images": 6000,
                   "augment": True, "scheduler": "onecycle", "model_kwargs": {}},
    "maskrcnn": {"epochs": 2, "lr": 2e-3, "batch_size": 8, "image_size": 96, "train_images": 6000,
                 "augment": True, "model_kwargs": {}},
    "unet": {"epochs": 1, "lr": 1e-2, "batch_size": 8, "image_size": 64, "train_images": 20000, "augment": True,
             "scheduler": "onecycle", "loss": "ce+dice", "model_kwargs": {"base_channels": 16, "depth": 3}},
    "fcn8s": {"epochs": 10, "lr": 1e-3, "batch_size": 8, "image_size": 64, "train_images": 400,
              "model_kwargs": {"fc_channels": 64, "dropout": 0.0}},
    "deeplabv3": {"epochs": 10, "lr": 2e-3, "batch_size": 8, "image_size": 64, "train_images": 400,
                  "model_kwargs": {"backbone_layers": [1, 1, 1, 1], "backbone_width": 16, "head_channels": 32,
                                   "atrous_rates": [2, 4, 6]}},
}
_DEFAULT_MODEL = {"detect": "yolov1", "segment": "unet"}


def task_of(config: dict[str, Any]) -> str:
    """The task of a run's configuration (``'classify'`` for one without ``task``)."""
    return str(config.get("task") or "classify")


def task_default_config(task: str) -> dict[str, Any]:
    """The settings every run of ``task`` starts from (before the model's recipe)."""
    return {"task": task, "model": _DEFAULT_MODEL[task], "data": "shapes-det", "data_root": None, "epochs": 10,
            "batch_size": 8, "optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "momentum": 0.9,
            "scheduler": "cosine", "seed": 0, "model_kwargs": {}, "early_stopping": 0, "grad_clip": 10.0,
            "num_workers": 0, "val_fraction": 0.1, "image_size": 96, "train_images": 600, "test_images": 100,
            "max_objects": 3, "augment": False, "loss": "ce", "class_weights": None,
            "backbone_from": None, "freeze": None, "trainable_layers": None, "unfreeze_every": 0,
            "lr_decay": None, "freeze_bn": False}


def _check_names(config: dict[str, Any]) -> None:
    task, model, data = config["task"], config["model"], config["data"]
    if task not in TASK_MODELS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    if model not in TASK_MODELS[task]:
        raise ValueError(f"--task {task} trains the models {', '.join(TASK_MODELS[task])}; got --model {model!r}")
    if data not in TASK_DATA[task]:
        raise ValueError(f"--task {task} reads the data {', '.join(TASK_DATA[task])}; got --data {data!r}")
    if model == "maskrcnn" and data == "voc":
        raise ValueError("--model maskrcnn needs instance masks; VOC XML files hold boxes only: use --data coco "
                         "(polygons or RLE) or shapes-det")
    if data in USER_TASK_DATA and not config.get("data_root"):
        raise ValueError(f"data {data!r} reads your own files: give --data-root (the folder holding them)")
    if config.get("loss") not in SEG_LOSSES:
        raise ValueError(f"unknown loss {config.get('loss')!r}; known: {', '.join(SEG_LOSSES)}")
    for key in ("epochs", "batch_size", "image_size", "train_images", "test_images", "max_objects"):
        v = config.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be a positive integer, got {v!r}")
    if config["image_size"] < 32:
        raise ValueError(f"--image-size must be at least 32 pixels, got {config['image_size']}")


def _backbone_config(config: dict[str, Any]) -> None:
    """The configuration of the classification run ``--backbone-from`` names (what rebuilds its
    model; its weights are read when training starts), checked to take the run's RGB images."""
    import json

    from .checkpoint import load_checkpoint
    from .run import resolve_checkpoint
    from .run_config import resolve_config

    run = config["backbone_from"]
    if config["task"] != "detect":
        raise ValueError("--backbone-from: the segmentation models build their own encoders (U-Net, FCN's VGG, "
                         "DeepLab's ResNet); a classifier's backbone is taken by --task detect models")
    saved = load_checkpoint(resolve_checkpoint(run)).get("config")
    base = json.loads(saved) if saved else None
    if not isinstance(base, dict) or base.get("task"):
        raise ValueError(f"--backbone-from {run}: not a classification run (its checkpoint has "
                         f"{'a ' + str(base['task']) + ' run' if isinstance(base, dict) else 'no run configuration'})")
    base = resolve_config({}, base)
    if base["model_kwargs"].get("in_channels") != 3:
        raise ValueError(f"--backbone-from {run}: its model ({base['model']} on {base['data']}) takes "
                         f"{base['model_kwargs'].get('in_channels', '2-D points as')} input channels; "
                         f"{config['data']} images have 3 (train the classifier on RGB images, e.g. --data shapes)")
    config["backbone_config"] = base
    config["backbone_from"] = os.path.abspath(run)


def _complete(config: dict[str, Any]) -> None:
    from .task_data import task_classes

    if config.get("backbone_from") and not config.get("backbone_config"):
        _backbone_config(config)
    if "classes" not in config or config["classes"] is None:
        config["classes"] = task_classes(config)
    k = len(config["classes"])
    kw = dict(config.get("model_kwargs") or {})
    size = int(config["image_size"])
    if config["model"] == "yolov1":
        kw.setdefault("image_size", size)
        # one cell per 16 pixels: the small backbone's stride-16 map is then the grid itself (a grid
        # of 7 on 96 px pooled a 12×12 map unevenly)
        kw.setdefault("grid_size", max(1, int(kw["image_size"]) // 16))
    elif config["model"] in ("fasterrcnn", "maskrcnn"):  # the model's own resize keeps the run's size
        kw.setdefault("min_size", size)
        kw.setdefault("max_size", size)
    kw.setdefault("num_classes", k)  # detectors and segmenters alike count the background
    if kw["num_classes"] != k:
        raise ValueError(f"model_kwargs says num_classes={kw['num_classes']} but data {config['data']!r} has {k} "
                         f"classes with the background ({', '.join(config['classes'])})")
    w = config.get("class_weights")
    if w is not None and (not isinstance(w, list) or len(w) != k):
        raise ValueError(f"--class-weights needs one weight per class ({k}: {', '.join(config['classes'])}), "
                         f"got {w!r}")
    config["model_kwargs"] = kw


def resolve_task_config(options: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The complete configuration of a detection or segmentation run.

    Args:
        options: what the user set (``None`` values count as not set); ``task`` must be
            ``'detect'`` or ``'segment'`` for a new run.
        base: the configuration of the run being resumed; it keeps its task, model and data.

    Raises:
        ValueError: an unknown task, model, data or loss; a model of another task; a resumed run
            asked to change its task, model or data; missing ``data_root``.
    """
    opts = {k: v for k, v in options.items() if v is not None}
    user_kw = dict(opts.pop("model_kwargs", None) or {})
    if base is not None:
        config = copy.deepcopy(base)
        # what the model and the data were built from stays; how training goes on may change
        fixed = ("task", "model", "data", "data_root", "image_size", "train_images", "test_images", "max_objects",
                 "backbone_from", "freeze_bn", "seed")
        changed = [f"--{k.replace('_', '-')}" for k in fixed if k in opts and opts[k] != config.get(k)]
        changed += [f"--model-kwargs {k}" for k, v in user_kw.items() if config["model_kwargs"].get(k) != v]
        if changed:
            raise ValueError(f"--resume continues the run as it was built ({config['model']} on {config['data']}); "
                             f"it cannot change {', '.join(changed)}: start a new run instead")
        config.update(opts)
        _check_names(config)
        _complete(config)
        return config
    task = opts.get("task", "detect")
    if task not in TASK_MODELS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    config = task_default_config(task)
    model = opts.get("model", config["model"])
    if model in TASK_DEFAULTS:
        for key, value in TASK_DEFAULTS[model].items():
            if key != "model_kwargs" and key not in opts:
                config[key] = value
        user_kw = {**TASK_DEFAULTS[model]["model_kwargs"], **user_kw}
    config.update(opts)
    config["model_kwargs"] = user_kw
    if config["data"] in USER_TASK_DATA and config.get("data_root"):
        config["data_root"] = os.path.abspath(config["data_root"])
    _check_names(config)
    _complete(config)
    return config
