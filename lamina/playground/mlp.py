"""The MLP playground's training session: a lamina network, optimizer and loss built from the
page's settings, trained epoch by epoch, and snapshots of what the page draws.

Everything is lamina: the layers (``nn.Linear``, ``nn.BatchNorm1d``, ``nn.Dropout``, the
activations), the losses (``mse_loss``, ``binary_cross_entropy_with_logits``, ``cross_entropy``),
every optimizer of ``lamina.optim`` (the closure-based ``LBFGS``, ``Newton`` and ``NonlinearCG``
included: each step is given a closure).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from .data import DATASETS, FEATURES, feature_matrix, make_points, split

__all__ = ["ACTIVATIONS", "LOSSES", "OPTIMIZERS", "DEFAULTS", "check_config", "Session"]

ACTIVATIONS = ("relu", "tanh", "sigmoid", "linear", "leaky_relu", "elu", "gelu", "prelu", "swish", "mish",
               "softplus", "selu", "hardswish")
LOSSES = ("mse", "bce", "softmax")
OPTIMIZERS = ("SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Adagrad", "Adadelta", "ASGD", "Rprop",
              "LBFGS", "GradientDescent", "Newton", "NonlinearCG")
DEFAULTS: dict[str, Any] = {
    "dataset": "circle", "n": 400, "noise": 0.1, "classes": 3, "ratio": 0.5, "batch_size": 10,
    "features": ["x1", "x2"], "hidden": [4, 2], "activations": ["tanh", "tanh"], "loss": "softmax",
    "optimizer": "SGD", "lr": 0.03, "regularization": "none", "reg_rate": 0.0, "dropout": 0.0,
    "batchnorm": False, "seed": 0, "csv": None,
}
GRID = 48  # cells per side of the decision-boundary heatmap
NEURON_GRID = 20
MAX_NEURON_MAPS = 32  # per layer: wider layers train in full, their first units are drawn


def _activation(name: str, width: int) -> Any:
    from .. import nn

    table = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "linear": nn.Identity,
             "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "gelu": nn.GELU, "prelu": lambda: nn.PReLU(width),
             "swish": nn.SiLU, "mish": nn.Mish, "softplus": nn.Softplus, "selu": nn.SELU,
             "hardswish": nn.Hardswish}
    return table[name]()


def check_config(raw: dict[str, Any]) -> dict[str, Any]:
    """The page's settings completed with the defaults and checked; a bad one raises ValueError naming it."""
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"playground: unknown settings {', '.join(unknown)}; known: {', '.join(DEFAULTS)}")
    c = {**DEFAULTS, **raw}

    def num(key: str, kind: type, lo: float, hi: float) -> None:
        try:
            v = kind(c[key])
        except (TypeError, ValueError):
            raise ValueError(f"playground: {key} must be a number, got {c[key]!r}") from None
        if not lo <= v <= hi:
            raise ValueError(f"playground: {key} must be in [{lo}, {hi}], got {c[key]!r}")
        c[key] = v

    num("n", int, 10, 5000)
    num("noise", float, 0.0, 2.0)
    num("classes", int, 2, 10)
    num("ratio", float, 0.05, 0.95)
    num("batch_size", int, 1, 5000)
    num("lr", float, 0.0, 10.0)
    num("reg_rate", float, 0.0, 10.0)
    num("dropout", float, 0.0, 0.95)
    num("seed", int, 0, 2**31 - 1)
    if c["dataset"] not in DATASETS:
        raise ValueError(f"playground: unknown data set {c['dataset']!r}; known: {', '.join(DATASETS)}")
    if not isinstance(c["features"], list) or not c["features"] or any(f not in FEATURES for f in c["features"]):
        raise ValueError(f"playground: features must be a non-empty list of {', '.join(FEATURES)}, "
                         f"got {c['features']!r}")
    hidden, acts = c["hidden"], c["activations"]
    if not isinstance(hidden, list) or any(not isinstance(h, int) or isinstance(h, bool) or h < 1 for h in hidden):
        raise ValueError(f"playground: hidden must be a list of positive layer widths, got {hidden!r}")
    if not isinstance(acts, list) or len(acts) != len(hidden) or any(a not in ACTIVATIONS for a in acts):
        raise ValueError(f"playground: activations must name one of {', '.join(ACTIVATIONS)} per hidden layer "
                         f"({len(hidden)}), got {acts!r}")
    for key, known in (("loss", LOSSES), ("optimizer", OPTIMIZERS), ("regularization", ("none", "l1", "l2"))):
        if c[key] not in known:
            raise ValueError(f"playground: unknown {key} {c[key]!r}; known: {', '.join(known)}")
    c["batchnorm"] = bool(c["batchnorm"])
    return c


def _grid(X: np.ndarray, res: int) -> tuple[np.ndarray, list[float]]:
    lo, hi = X.min(0), X.max(0)
    pad = 0.1 * np.maximum(hi - lo, 1e-6)
    lo, hi = lo - pad, hi + pad
    xs, ys = np.linspace(lo[0], hi[0], res), np.linspace(hi[1], lo[1], res)  # row 0 is the top of the picture
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], 1), [float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])]


class Session:
    """One playground: its data, network, optimizer, epoch and history (a lock guards training)."""

    def __init__(self, raw: dict[str, Any], uploads: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> None:
        import lamina

        self.config = c = check_config(raw)
        self.lock = threading.Lock()
        if c["dataset"] == "csv":
            if not uploads or c["csv"] not in uploads:
                raise ValueError("playground: data set 'csv' needs an uploaded CSV (its id is unknown; upload it "
                                 "again)")
            X, y = uploads[c["csv"]]
        else:
            X, y = make_points(c["dataset"], c["n"], c["noise"], c["classes"], c["seed"])
        self.num_classes = int(y.max()) + 1
        if c["loss"] == "bce" and self.num_classes != 2:
            raise ValueError(f"playground: loss 'bce' (binary cross-entropy) needs 2 classes, the data has "
                             f"{self.num_classes}; use 'softmax' or 'mse'")
        self.points = (X, y)
        self.xtr, self.ytr, self.xte, self.yte = split(X, y, c["ratio"], c["seed"])
        self.ftr, self.fte = feature_matrix(self.xtr, c["features"]), feature_matrix(self.xte, c["features"])
        self.grid, self.extent = _grid(X, GRID)
        self.ngrid, _ = _grid(X, NEURON_GRID)
        lamina.manual_seed(c["seed"])
        self.model = self._build()
        self.optimizer = self._optimizer()
        self.rng = np.random.default_rng(c["seed"])
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self.history.append(self._metrics())

    def _build(self) -> Any:
        from .. import nn

        c, blocks, width = self.config, [], len(self.config["features"])
        for h, act in zip(c["hidden"], c["activations"]):
            layers = [nn.Linear(width, h)]
            if c["batchnorm"]:
                layers.append(nn.BatchNorm1d(h))
            layers.append(_activation(act, h))
            if c["dropout"] > 0:
                layers.append(nn.Dropout(c["dropout"]))
            blocks.append(nn.Sequential(*layers))
            width = h
        out = 1 if c["loss"] == "bce" else self.num_classes
        return nn.Sequential(*blocks, nn.Linear(width, out))

    def _optimizer(self) -> Any:
        from .. import optim

        return getattr(optim, self.config["optimizer"])(self.model.parameters(), lr=self.config["lr"])

    def _loss(self, out: Any, y: Any) -> Any:
        from ..nn import functional as F

        kind = self.config["loss"]
        if kind == "bce":
            loss = F.binary_cross_entropy_with_logits(out[:, 0], y.float())
        elif kind == "mse":
            loss = F.mse_loss(out, F.one_hot(y, self.num_classes).float())
        else:
            loss = F.cross_entropy(out, y)
        return loss

    def _penalty(self) -> Any:
        c = self.config
        if c["regularization"] == "none" or c["reg_rate"] == 0:
            return None
        weights = [p for name, p in self.model.named_parameters() if name.endswith("weight") and p.ndim == 2]
        terms = [(w.abs().sum() if c["regularization"] == "l1" else (w * w).sum()) for w in weights]
        total = terms[0]
        for t in terms[1:]:
            total = total + t
        return total * c["reg_rate"]

    def train_epochs(self, epochs: int = 1) -> None:
        """Train ``epochs`` passes over the training points in shuffled mini-batches."""
        import lamina

        with self.lock:
            for _ in range(epochs):
                self.model.train()
                order = self.rng.permutation(len(self.ftr))
                bs = self.config["batch_size"]
                for i in range(0, len(order), bs):
                    idx = order[i:i + bs]
                    if self.config["batchnorm"] and len(idx) < 2:  # batch norm cannot normalize a single point
                        continue
                    xb, yb = lamina.tensor(self.ftr[idx]), lamina.tensor(self.ytr[idx])

                    def closure(xb: Any = xb, yb: Any = yb) -> Any:
                        self.optimizer.zero_grad()
                        loss = self._loss(self.model(xb), yb)
                        penalty = self._penalty()
                        if penalty is not None:
                            loss = loss + penalty
                        loss.backward()
                        return loss

                    self.optimizer.step(closure)
                self.epoch += 1
                self.history.append(self._metrics())

    def _scores(self, f: np.ndarray) -> np.ndarray:
        """Class probabilities (or, for MSE, the outputs clipped to [0, 1]) of the features ``f``."""
        import lamina

        self.model.eval()
        with lamina.no_grad():
            out = self.model(lamina.tensor(f)).numpy().astype(np.float64)
        if self.config["loss"] == "bce":
            p = 1 / (1 + np.exp(-np.clip(out[:, 0], -60, 60)))
            return np.stack([1 - p, p], 1)
        if self.config["loss"] == "mse":
            return np.clip(out, 0, 1)
        e = np.exp(out - out.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    def _loss_value(self, f: np.ndarray, y: np.ndarray) -> float:
        import lamina

        self.model.eval()
        with lamina.no_grad():
            return float(self._loss(self.model(lamina.tensor(f)), lamina.tensor(y)).item())

    def _metrics(self) -> dict[str, float]:
        acc = [float((self._scores(f).argmax(1) == y).mean()) for f, y in ((self.ftr, self.ytr), (self.fte, self.yte))]
        return {"epoch": self.epoch, "train_loss": self._loss_value(self.ftr, self.ytr),
                "test_loss": self._loss_value(self.fte, self.yte), "train_acc": acc[0], "test_acc": acc[1]}

    def confusion(self) -> list[list[int]]:
        """Test-set confusion matrix (rows: true class, columns: predicted class)."""
        pred = self._scores(self.fte).argmax(1)
        k = self.num_classes
        return np.bincount(self.yte * k + pred, minlength=k * k).reshape(k, k).tolist()

    def _neuron_maps(self) -> list[list[list[float]]]:
        """Each hidden unit's output over the small grid, per hidden layer (at most MAX_NEURON_MAPS a layer)."""
        import lamina

        f = lamina.tensor(feature_matrix(self.ngrid, self.config["features"]))
        maps = [[np.round(f.numpy()[:, j], 4).tolist() for j in range(f.shape[1])]]
        self.model.eval()
        with lamina.no_grad():
            h = f
            for block in list(self.model)[:-1]:
                h = block(h)
                a = h.numpy()
                maps.append([np.round(a[:, j], 4).tolist() for j in range(min(a.shape[1], MAX_NEURON_MAPS))])
        return maps

    def _weights(self) -> list[dict[str, Any]]:
        from .. import nn

        out = []
        for m in self.model.modules():
            if isinstance(m, nn.Linear):
                w = m.weight.detach().numpy()[:MAX_NEURON_MAPS, :MAX_NEURON_MAPS]
                out.append({"weight": np.round(w, 4).tolist(), "bias": np.round(m.bias.detach().numpy(), 4).tolist(),
                            "shape": list(m.weight.shape)})
        return out

    def snapshot(self, full: bool = True) -> dict[str, Any]:
        """What the page draws now: metrics, history, boundary, neuron maps, weights, confusion matrix."""
        with self.lock:
            q = self._scores(feature_matrix(self.grid, self.config["features"]))
            cls = q.argmax(1)
            top = np.sort(q, 1)
            conf = np.clip(top[:, -1] - top[:, -2], 0, 1)
            snap = {"epoch": self.epoch, **self.history[-1], "history": self.history if full else self.history[-1:],
                    "boundary": {"res": GRID, "extent": self.extent, "cls": cls.tolist(),
                                 "conf": np.round(conf, 3).tolist()},
                    "neurons": {"res": NEURON_GRID, "maps": self._neuron_maps()},
                    "weights": self._weights(), "confusion": self.confusion(), "num_classes": self.num_classes}
        return snap

    def points_json(self) -> dict[str, Any]:
        r = lambda a: np.round(a, 4).tolist()  # noqa: E731
        return {"train": {"x": r(self.xtr), "y": self.ytr.tolist()}, "test": {"x": r(self.xte), "y": self.yte.tolist()}}
