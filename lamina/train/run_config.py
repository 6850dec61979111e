"""What a run is before it starts: the data sets the command line knows, their per-data defaults,
and the resolution of a user's options into the complete configuration of a run.

A resolved configuration names everything that rebuilds the run's model: ``model_kwargs`` holds
every constructor argument (``num_classes``, ``in_channels``, ``input_size``; ``in_features``,
``hidden``, ``activation``, ``flatten`` for the ``mlp``), and ``classes`` the class names of the
data, in label order. :func:`resolve_config` checks the model against the data before anything is
written, so that a combination ``lamina train`` cannot train fails at once with one clear line.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from .. import nn

__all__ = ["DATASETS", "SYNTHETIC", "IMAGE_SETS", "SERIES_SETS", "USER_FILE_SETS", "ACTIVATIONS", "DATA_DEFAULTS",
           "default_config", "data_info", "data_classes", "class_difference", "resolve_config", "build_model",
           "model_input_size"]

SYNTHETIC = ("rings", "xor", "spirals", "moons", "blobs")
IMAGE_SETS = ("digits", "shapes", "mnist", "fashion-mnist", "cifar10", "cifar100", "folder")
USER_FILE_SETS = ("mnist", "fashion-mnist", "cifar10", "cifar100", "folder", "csv")
# time series (N, C, L): MNIST-1D generated (and its control with the time steps shuffled), or
# the user's own series (a .csv or .npz file, or a folder with train and test files: see
# lamina.datasets.series)
SERIES_SETS = ("mnist1d", "mnist1d-shuffled", "csv")
DATASETS = IMAGE_SETS + SYNTHETIC + SERIES_SETS

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU, "silu": nn.SiLU,
               "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "selu": nn.SELU, "mish": nn.Mish, "softplus": nn.Softplus}

MLP_DEFAULTS = {"hidden": [64, 64], "activation": "relu"}
# run folders written before the configuration named the MLP's layers were trained with these
_LEGACY_MLP = {"hidden": [32, 32], "activation": "tanh"}

# What ``--data NAME`` trains when the user does not say otherwise: the model (with these
# ``model_kwargs`` while the model is this one) and the training options of the recipe.
_POINTS = {"model": "mlp", "epochs": 100, "lr": 1e-2}
DATA_DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {"model": "lenet_small", "epochs": 15},
    "shapes": {"model": "lenet_small", "epochs": 10, "lr": 3e-3,
               "model_kwargs": {"global_pool": "max", "dropout": 0.0}},
    **{name: {"model": "lenet_small", "epochs": 15} for name in USER_FILE_SETS},
    **{name: dict(_POINTS) for name in SYNTHETIC},
    # the paper's optimizer (Adam, lr 1e-2, batches of 100), a cosine schedule over 40 epochs, and the
    # series augmentations (jitter, scaling, circular time shifts: MNIST-1D's own translation is circular)
    **{name: {"model": "cnn1d", "epochs": 40, "lr": 1e-2, "batch_size": 100, "augment": True}
       for name in ("mnist1d", "mnist1d-shuffled")},
    "csv": {"model": "cnn1d", "epochs": 30, "lr": 3e-3},
}

_TABLE = {"digits": (1, 8), "shapes": (3, 32), "mnist": (1, 28), "fashion-mnist": (1, 28), "cifar10": (3, 32),
          "cifar100": (3, 32), "folder": (3, 32)}


def default_config() -> dict[str, Any]:
    """The embedded default of a bare ``lamina train``: a LeNet-style CNN on the 8×8 digits."""
    return {"model": "lenet_small", "data": "digits", "epochs": 15, "batch_size": 32, "optimizer": "adam",
            "lr": 2e-3, "weight_decay": 0.0, "momentum": 0.9, "scheduler": "cosine", "augment": False, "seed": 0,
            "data_root": None, "model_kwargs": {}, "early_stopping": 0, "grad_clip": None, "num_workers": 0,
            "val_fraction": 0.1, "window": None, "stride": None}


def _check_data_name(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")


def data_info(config: dict[str, Any]) -> dict[str, Any]:
    """Channels (0 for 2-D points), image size and class count of ``config['data']``, without
    loading it (the class count of ``folder`` is ``None`` until :func:`resolve_config` read it)."""
    name = config["data"]
    _check_data_name(name)
    k = len(config["classes"]) if config.get("classes") else None
    if name in SYNTHETIC:
        return {"channels": 0, "size": 2, "num_classes": k or 2}
    if name in SERIES_SETS:
        if name == "csv":
            from .series_data import csv_shape

            c, length = csv_shape(config)
        else:
            c, length = 1, 40
        return {"channels": c, "size": length, "num_classes": k or (10 if name != "csv" else None), "series": True}
    c, s = _TABLE[name]
    if k is None and name != "folder":
        k = len(_builtin_classes(name))
    return {"channels": c, "size": s, "num_classes": k}


def _builtin_classes(name: str) -> list[str]:
    from .. import datasets as D

    table = {"digits": D.Digits, "mnist": D.MNIST, "fashion-mnist": D.FashionMNIST, "cifar10": D.CIFAR10,
             "cifar100": D.CIFAR100}
    if name == "shapes":
        return list(D.SHAPE_CLASSES)
    if name.startswith("mnist1d"):
        return list(D.MNIST1D.classes)
    return [str(c) for c in table[name].classes]


def data_classes(config: dict[str, Any]) -> list[str]:
    """The class names of ``config['data']`` in label order. For ``folder``, the class folders of
    ``data_root/train`` and ``data_root/test``, which must be the same."""
    name, root = config["data"], config.get("data_root")
    _check_data_name(name)
    if name in USER_FILE_SETS and not root:
        raise ValueError(f"data set {name!r} reads your own files: give --data-root (the folder holding them)")
    if name in SYNTHETIC:
        return ["0", "1"]  # the two-class form of each generator (make_spirals, make_blobs: their defaults)
    if name == "csv":
        from .series_data import csv_classes

        return csv_classes(config)
    if name != "folder":
        return _builtin_classes(name)
    from ..datasets.folder import find_classes

    train_dir, test_dir = os.path.join(root, "train"), os.path.join(root, "test")
    train, test = find_classes(train_dir)[0], find_classes(test_dir)[0]
    if train != test:
        raise ValueError(f"data folder: {train_dir} and {test_dir} must hold the same class folders "
                         f"(a label is the index of its folder in sorted order); "
                         f"{class_difference(train, test, 'train', 'test')}")
    return train


def class_difference(a: list[str], b: list[str], name_a: str, name_b: str) -> str:
    """How two class lists differ, in words (the names only in one, or the order)."""
    only_a, only_b = [c for c in a if c not in b], [c for c in b if c not in a]
    parts = [f"only in {name_a}: {', '.join(only_a)}" if only_a else "",
             f"only in {name_b}: {', '.join(only_b)}" if only_b else ""]
    if only_a or only_b:
        return "; ".join(p for p in parts if p)
    return f"same names in another order ({name_a}: {', '.join(a)}; {name_b}: {', '.join(b)})"


def model_input_size(config: dict[str, Any], size: int) -> int:
    """The image side the model takes: 32 for ``lenet5`` (images are resized), else the data's."""
    return 32 if config["model"] == "lenet5" else size


def _is_segmentation(name: str) -> bool:
    from .. import models

    builder = models._REGISTRY.get(name)
    return builder is not None and builder.__module__.endswith(".segmentation")


def _check_mlp_options(kw: dict[str, Any]) -> None:
    hidden = kw["hidden"]
    if not isinstance(hidden, (list, tuple)) or not all(
            isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hidden):
        raise ValueError(f"mlp: hidden must be a list of positive layer widths (--hidden 64 64), got {hidden!r}")
    if kw["activation"] not in ACTIVATIONS:
        raise ValueError(f"mlp: unknown activation {kw['activation']!r}; known: {', '.join(ACTIVATIONS)}")


def resolve_config(options: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The complete configuration of a run.

    Args:
        options: what the user set (``None`` values count as not set). ``hidden`` and
            ``activation`` (the MLP's layers) go into ``model_kwargs``.
        base: the configuration of the run being resumed (``None`` for a new run). A resumed run
            keeps its model and data; options may change how training goes on (``epochs`` …).

    Returns:
        A new dict: :func:`default_config`, then the defaults of the data (``DATA_DEFAULTS``) for
        what the user did not set, then the user's options, with ``model_kwargs`` completed (every
        argument that rebuilds the model) and ``classes`` (the data's class names). Resolving a
        resolved configuration gives it back unchanged; a configuration written before
        ``model_kwargs`` was complete gets the values it was trained with.

    Raises:
        ValueError: unknown data or model, a model that cannot train on the data (a segmentation
            model, an image model on 2-D points), MLP options for another model, a resumed run
            asked to change its model or data, missing ``data_root``, a ``folder`` whose train
            and test class folders differ.
    """
    opts = {k: v for k, v in options.items() if v is not None}
    user_kw = dict(opts.pop("model_kwargs", None) or {})
    for key in ("hidden", "activation"):
        if key in opts:
            user_kw[key] = opts.pop(key)
    if base is not None:
        config = copy.deepcopy(base)
        _complete_model_kwargs(config, legacy="classes" not in base)
        changed = [f"--{k}" for k in ("model", "data") if k in opts and opts[k] != config[k]]
        changed += [f"--{k}" for k, v in user_kw.items() if config["model_kwargs"].get(k) != v]
        if changed:
            raise ValueError(f"--resume continues the run as it was built ({config['model']} on {config['data']}, "
                             f"model_kwargs {config['model_kwargs']}); it cannot change {', '.join(changed)}: "
                             "start a new run instead")
        config.update(opts)
        return config
    config = default_config()
    data = opts.get("data", config["data"])
    _check_data_name(data)
    recipe = DATA_DEFAULTS[data]
    for key, value in recipe.items():
        if key != "model_kwargs" and key not in opts:
            config[key] = value
    config.update(opts)
    if config["model"] == recipe["model"]:
        user_kw = {**recipe.get("model_kwargs", {}), **user_kw}
    config["model_kwargs"] = user_kw
    _complete_model_kwargs(config, legacy=False)
    return config


def _complete_model_kwargs(config: dict[str, Any], legacy: bool) -> None:
    from .. import models

    name, data = config["model"], config["data"]
    _check_data_name(data)
    if "classes" not in config:
        config["classes"] = data_classes(config)
    info = data_info(config)
    kw = dict(config.get("model_kwargs") or {})
    k = len(config["classes"])
    if name == "mlp":
        kw.setdefault("num_classes", k)
        side = info["size"] if info.get("series") else info["size"] ** 2
        kw.setdefault("in_features", 2 if info["channels"] == 0 else info["channels"] * side)
        for key, value in (_LEGACY_MLP if legacy else MLP_DEFAULTS).items():
            kw.setdefault(key, list(value) if isinstance(value, list) else value)
        if info["channels"]:
            kw.setdefault("flatten", True)
        _check_mlp_options(kw)
    else:
        for key in ("hidden", "activation"):
            if key in kw:
                raise ValueError(f"--{key} sets the layers of --model mlp; model {name!r} has no such option")
        if name not in models.list_models():
            raise ValueError(f"unknown model {name!r}; known: mlp, {', '.join(models.list_models())}")
        if _is_segmentation(name):
            raise ValueError(f"model {name!r} is a segmentation model (it gives a class map per pixel); lamina train "
                             f"trains classifiers of whole images: pick a classification model for {data}")
        if info["channels"] == 0:
            raise ValueError(f"model {name!r} needs images; data {data!r} are 2-D points: use --model mlp")
        kw.setdefault("num_classes", k)
        kw.setdefault("in_channels", info["channels"])
        if name == "lenet_small":
            kw.setdefault("input_size", model_input_size(config, info["size"]))
        if name == "cnn1d":
            kw.setdefault("input_length", info["size"])
    if kw["num_classes"] != k:
        raise ValueError(f"model_kwargs says num_classes={kw['num_classes']} but data {data!r} has {k} classes "
                         f"({', '.join(config['classes'])})")
    config["model_kwargs"] = kw


def _mlp(num_classes: int, in_features: int, hidden: list[int], activation: str, flatten: bool = False) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()] if flatten else []
    sizes = (in_features, *hidden)
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), ACTIVATIONS[activation]()]
    layers.append(nn.Linear(sizes[-1], num_classes))
    return nn.Sequential(*layers)


def build_model(config: dict[str, Any]) -> nn.Module:
    """The model of a run: ``lamina.models.get_model(config['model'], **model_kwargs)``, or for
    ``mlp`` a multi-layer perceptron (``Linear`` layers of widths ``hidden`` with ``activation``
    between them; ``flatten`` first for images). ``config`` is resolved first (see
    :func:`resolve_config`); the model is exactly what ``model_kwargs`` says."""
    from .. import models

    if not isinstance(config.get("classes"), list) or "num_classes" not in (config.get("model_kwargs") or {}):
        config = resolve_config({}, config)
    kw = dict(config["model_kwargs"])
    if config["model"] == "mlp":
        unknown = sorted(set(kw) - {"num_classes", "in_features", "hidden", "activation", "flatten"})
        if unknown:
            raise ValueError(f"mlp: unknown options {', '.join(unknown)} (it takes hidden, activation)")
        return _mlp(**kw)
    try:
        return models.get_model(config["model"], **kw)
    except TypeError as e:  # a constructor argument the model does not have
        raise ValueError(f"model {config['model']!r} cannot be built with {kw}: {e}") from None
