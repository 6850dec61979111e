"""The MLP playground's network as lamina Python code, and its weights as a lamina file."""

from __future__ import annotations

import io

from .mlp import Session

__all__ = ["python_code", "weights_bytes"]

_ACT = {"relu": "nn.ReLU()", "tanh": "nn.Tanh()", "sigmoid": "nn.Sigmoid()", "linear": "nn.Identity()",
        "leaky_relu": "nn.LeakyReLU()", "elu": "nn.ELU()", "gelu": "nn.GELU()", "prelu": "nn.PReLU({w})",
        "swish": "nn.SiLU()", "mish": "nn.Mish()", "softplus": "nn.Softplus()", "selu": "nn.SELU()",
        "hardswish": "nn.Hardswish()"}
_DATA = {"circle": "datasets.make_rings({n}, noise={noise}, seed={seed})",
         "xor": "datasets.make_xor({n}, noise={noise}, seed={seed})",
         "gaussian": "datasets.make_blobs({n}, centers=[[-0.6, -0.6], [0.6, 0.6]], std={noise}, seed={seed})",
         "spiral": "datasets.make_spirals({n}, noise={noise}, classes={classes}, seed={seed})",
         "moons": "datasets.make_moons({n}, noise={noise}, seed={seed})",
         "blobs": "datasets.make_blobs({n}, centers={classes}, std={noise}, seed={seed})"}
_FEAT = {"x1": "a", "x2": "b", "x1^2": "a * a", "x2^2": "b * b", "x1*x2": "a * b", "sin(x1)": "a.sin()",
         "sin(x2)": "b.sin()"}
_LOSS = {"bce": "F.binary_cross_entropy_with_logits(out[:, 0], yb.float())",
         "mse": "F.mse_loss(out, F.one_hot(yb, num_classes).float())",
         "softmax": "F.cross_entropy(out, yb)"}


def python_code(session: Session) -> str:
    """A self-contained lamina script that builds and trains the playground's network as set."""
    c = session.config
    lines = ["# The lamina playground's network, as lamina code.", "import lamina",
             "from lamina import datasets, nn, optim", "from lamina.nn import functional as F", "",
             f"lamina.manual_seed({c['seed']})"]
    if c["dataset"] == "csv":
        lines += ["import numpy as np", "# your CSV upload: rows x1,x2,label (integer labels 0..k-1)",
                  "points = np.loadtxt('points.csv', delimiter=',', ndmin=2)",
                  "X, y = lamina.tensor(points[:, :2]).float(), lamina.tensor(points[:, 2]).long()"]
    else:
        lines.append("X, y = " + _DATA[c["dataset"]].format(**c))
    lines += [f"num_classes = {session.num_classes}", "",
              "def features(X):", "    a, b = X[:, 0], X[:, 1]",
              f"    return lamina.stack([{', '.join(_FEAT[f] for f in c['features'])}], 1)", "",
              f"n_train = {len(session.ftr)}  # train ratio {c['ratio']}",
              "order = lamina.randperm(len(X))", "X, y = features(X[order]), y[order]",
              "X_train, y_train, X_test, y_test = X[:n_train], y[:n_train], X[n_train:], y[n_train:]", "",
              "model = nn.Sequential("]
    width = len(c["features"])
    for h, act in zip(c["hidden"], c["activations"]):
        parts = [f"nn.Linear({width}, {h})"] + ([f"nn.BatchNorm1d({h})"] if c["batchnorm"] else [])
        parts.append(_ACT[act].format(w=h))
        parts += [f"nn.Dropout({c['dropout']})"] if c["dropout"] > 0 else []
        lines.append(f"    nn.Sequential({', '.join(parts)}),")
        width = h
    lines.append(f"    nn.Linear({width}, {1 if c['loss'] == 'bce' else session.num_classes}),")
    lines += [")", f"optimizer = optim.{c['optimizer']}(model.parameters(), lr={c['lr']})", "",
              "def loss_of(out, yb):", f"    loss = {_LOSS[c['loss']]}"]
    if c["regularization"] != "none" and c["reg_rate"] > 0:
        term = "w.abs().sum()" if c["regularization"] == "l1" else "(w * w).sum()"
        lines += ["    weights = [p for name, p in model.named_parameters()",
                  "               if name.endswith('weight') and p.ndim == 2]",
                  f"    return loss + {c['reg_rate']} * sum({term} for w in weights)"]
    else:
        lines.append("    return loss")
    lines += ["", f"for epoch in range({max(session.epoch, 1)}):", "    model.train()",
              "    perm = lamina.randperm(n_train)", f"    for i in range(0, n_train, {c['batch_size']}):",
              f"        idx = perm[i:i + {c['batch_size']}]", "        xb, yb = X_train[idx], y_train[idx]", "",
              "        def closure():", "            optimizer.zero_grad()",
              "            loss = loss_of(model(xb), yb)",
              "            loss.backward()", "            return loss", "", "        optimizer.step(closure)",
              "    model.eval()", "    with lamina.no_grad():",
              "        test_acc = (model(X_test).argmax(1) == y_test).float().mean().item()"
              if c["loss"] != "bce" else
              "        test_acc = ((model(X_test)[:, 0] > 0).long() == y_test).float().mean().item()",
              "    print(f'epoch {epoch + 1}: test accuracy {test_acc:.3f}')", "",
              "lamina.save(model.state_dict(), 'playground.lamina')", ""]
    return "\n".join(lines)


def weights_bytes(session: Session) -> bytes:
    """The network's ``state_dict`` in lamina's file format (``lamina.load`` reads it; no pickle)."""
    from .. import serialization

    buf = io.BytesIO()
    with session.lock:
        serialization.save(session.model.state_dict(), buf)
    return buf.getvalue()


