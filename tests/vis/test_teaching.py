"""``plot_decision_boundary`` with every kind of model it takes (lamina's scikit-learn-style
classifiers, an ``nn.Module``, a plain callable): the regions in the saved picture are the
classes the model predicts there, read back from the PNG's pixels."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest

import lamina
from lamina import nn, vis
from lamina.datasets import make_blobs
from lamina.linear_model import LinearRegression, LogisticRegression, MLPClassifier
from lamina.vis import _common, teaching


def _capture(monkeypatch):
    """Keep the figure that plot_decision_boundary saves, to map data coordinates to pixels."""
    figs = []

    def save(fig, path, fmt=None):
        figs.append(fig)
        return _common.save_figure(fig, path, fmt)

    monkeypatch.setattr(teaching, "save_figure", save)
    return figs


def _drawn_classes(fig, path, probes, k):
    """The class each probe point shows in the PNG: red/blue for two classes (RdBu: red is class 0),
    else the tab10 colour whose direction from white is nearest to the pixel's."""
    img = matplotlib.image.imread(path)[..., :3]
    xy = fig.axes[0].transData.transform(probes) * (_common.DPI / fig.dpi)
    cols, rows = np.round(xy[:, 0]).astype(int), np.round(img.shape[0] - xy[:, 1]).astype(int)
    rgb = img[rows, cols]
    if k == 2:
        return (rgb[:, 2] > rgb[:, 0]).astype(int), xy
    tab = np.array([lamina.vis._common.pyplot().get_cmap("tab10")(c)[:3] for c in range(k)])
    d, t = 1 - rgb, (1 - tab) / np.linalg.norm(1 - tab, axis=1, keepdims=True)
    residual = np.linalg.norm(d[:, None, :] - (d @ t.T)[:, :, None] * t[None], axis=2)
    return residual.argmin(1), xy


def _check_regions(monkeypatch, tmp_path, model, x, y, predict, k):
    """Probe a grid over the plot, away from the data points and where the model is sure, and compare."""
    figs = _capture(monkeypatch)
    path = vis.plot_decision_boundary(model, x, y, tmp_path / "db.png", resolution=60)
    lo, hi = x.min(0) - 0.4, x.max(0) + 0.4
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 25), np.linspace(lo[1], hi[1], 25))
    probes = np.stack([gx.ravel(), gy.ravel()], 1)
    cls, conf = predict(probes)
    drawn, xy = _drawn_classes(figs[0], path, probes, k)
    data_xy = figs[0].axes[0].transData.transform(x) * (_common.DPI / figs[0].dpi)
    far = np.min(np.linalg.norm(xy[:, None] - data_xy[None], axis=2), axis=1) > 8  # off the scatter markers
    keep = far & (conf > 0.8)
    assert keep.sum() > 100 and len(set(cls[keep].tolist())) == k  # every class's region is probed
    assert np.array_equal(drawn[keep], cls[keep]), f"{(drawn[keep] != cls[keep]).sum()} of {keep.sum()} differ"


def _blobs(centers, seed=0):
    x, y = make_blobs(150, centers=centers, std=0.35, seed=seed)
    return x.numpy().astype(np.float64), y.numpy()


@pytest.mark.parametrize("k", [2, 3])
def test_logistic_regression_regions(monkeypatch, tmp_path, k):
    x, y = _blobs(k)
    labels = np.array([3, 7, 9])[y]  # classes_ need not be 0..k-1: the plot maps y through them
    model = LogisticRegression(lr=0.5, max_iter=300).fit(x, labels)

    def predict(p):
        return np.searchsorted(model.classes_, model.predict(p)), model.predict_proba(p).max(1)

    _check_regions(monkeypatch, tmp_path, model, x, labels, predict, k)


def test_mlp_classifier_regions(monkeypatch, tmp_path):
    x, y = _blobs(3, seed=1)
    model = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.05, max_iter=60, random_state=0).fit(x, y)
    _check_regions(monkeypatch, tmp_path, model, x, y, lambda p: (model.predict(p), model.predict_proba(p).max(1)), 3)


def test_module_and_callable_regions(monkeypatch, tmp_path):
    x, y = _blobs(3)
    lin = nn.Linear(2, 3)
    angles = 2 * np.pi * np.arange(3) / 3  # make_blobs' centres lie on a circle: score each by its direction
    lin.weight.array[...] = 4 * np.stack([np.cos(angles), np.sin(angles)], 1)
    lin.bias.array[...] = 0.0

    def predict_module(p):
        z = p @ lin.weight.array.T.astype(np.float64)
        e = np.exp(z - z.max(1, keepdims=True))
        return z.argmax(1), (e / e.sum(1, keepdims=True)).max(1)

    _check_regions(monkeypatch, tmp_path, lin, x, y, predict_module, 3)

    x2, y2 = _blobs(2)

    def logit(t):
        return (t[:, 1] - t[:, 0]) * 3.0  # a plain function of a Tensor: (M,) logits of class 1

    def predict_fn(p):
        s = (p[:, 1] - p[:, 0]) * 3.0
        return (s > 0).astype(int), 1 / (1 + np.exp(-np.abs(s)))

    _check_regions(monkeypatch, tmp_path, logit, x2, (x2[:, 1] > x2[:, 0]).astype(int), predict_fn, 2)


def test_models_it_cannot_draw_are_clear_errors(tmp_path):
    x, y = _blobs(2)
    with pytest.raises(TypeError, match="plot_decision_boundary: model must be .* got LinearRegression"):
        vis.plot_decision_boundary(LinearRegression().fit(x, y), x, y, tmp_path / "r.png")
    model = LogisticRegression(max_iter=50).fit(x, y)
    with pytest.raises(ValueError, match=r"y holds labels the model was not fitted on: \[5\]"):
        vis.plot_decision_boundary(model, x, np.where(y == 1, 5, 0), tmp_path / "u.png")
