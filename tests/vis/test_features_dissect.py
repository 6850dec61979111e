"""Activations, top-activating patches, receptive fields, PCA/t-SNE embeddings and network
dissection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lamina
from lamina import nn, vis

from .conftest import small_cnn, torch_twin


@pytest.fixture(scope="module")
def twins():
    lamina.manual_seed(7)
    m = small_cnn().double()
    return m, torch_twin(m)


def test_activations_and_penultimate_features_match_torch(twins):
    m, tm = twins
    x = np.random.default_rng(0).uniform(0, 1, (5, 1, 8, 8))
    with torch.no_grad():
        ref = tm.features[:2](torch.tensor(x)).numpy()
        pen = tm.classifier[:3](tm.features(torch.tensor(x))).numpy()
    np.testing.assert_allclose(vis.activations(m, x, "features.1", batch_size=2), ref, rtol=1e-12)
    np.testing.assert_allclose(vis.penultimate_features(m, x, batch_size=3), pen, rtol=1e-12)
    assert vis.first_conv(m) is m.features[0]
    with pytest.raises(ValueError, match="no layer 'features.9'"):
        vis.activations(m, x, "features.9")


def test_receptive_field_of_layers(twins):
    m, _ = twins
    assert vis.layer_receptive_field(m, "features.0") == (3, 1, 0.0)
    assert vis.layer_receptive_field(m, "features.2") == (4, 2, 0.5)
    assert vis.layer_receptive_field(m, "features.3") == (8, 2, 0.5)


def test_top_activations_brute_force_and_patches(twins):
    m, tm = twins
    x = np.random.default_rng(1).uniform(0, 1, (30, 1, 8, 8))
    with torch.no_grad():
        a = tm.features[:2](torch.tensor(x))[:, 4].reshape(30, -1).numpy()
    order = np.argsort(-a.max(1), kind="stable")[:5]
    top = vis.top_activations(m, x, "features.1", unit=4, k=5)
    np.testing.assert_array_equal(top.indices, order)
    np.testing.assert_allclose(top.values, a.max(1)[order], rtol=1e-12)
    np.testing.assert_array_equal(top.images, x[order])
    for i, (r, c), p, box in zip(top.indices, top.positions, top.patches, top.boxes):
        assert r * 8 + c == a[i].argmax()
        assert box == (max(r - 1, 0), max(c - 1, 0), min(r + 2, 8), min(c + 2, 8))
        # a first-layer unit at (r, c) sees rows r−1..r+1 and columns c−1..c+1, clipped to the image
        np.testing.assert_array_equal(p, x[i, :, max(r - 1, 0):r + 2, max(c - 1, 0):c + 2])
    with pytest.raises(ValueError, match="unit must lie in 0..5"):
        vis.top_activations(m, x, "features.1", unit=6)


def test_top_activation_patch_hand_computed():
    # one 2×2 averaging conv with stride 2: the unit at (1, 0) sees rows 2–3, columns 0–1
    conv = nn.Conv2d(1, 1, 2, stride=2, bias=False)
    conv.weight.data = lamina.full((1, 1, 2, 2), 0.25)
    net = nn.Sequential(conv)
    x = np.zeros((2, 1, 4, 4), dtype=np.float32)
    x[1, 0, 2:4, 0:2] = [[1, 2], [3, 4]]
    top = vis.top_activations(net, x, "0", unit=0, k=1)
    assert top.indices.tolist() == [1] and top.positions == [(1, 0)] and top.values.tolist() == [2.5]
    assert top.boxes == [(2, 0, 4, 2)]
    np.testing.assert_array_equal(top.patches[0], [[[1, 2], [3, 4]]])


def test_pca_hand_computed_and_against_torch():
    # points on the line y = 2x: all the variance lies on the first component, (1, 2)/√5
    t = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    p = vis.pca(np.stack([t, 2 * t], 1))
    np.testing.assert_allclose(p[:, 0], t * np.sqrt(5), atol=1e-12)
    np.testing.assert_allclose(p[:, 1], 0, atol=1e-12)
    f = np.random.default_rng(2).standard_normal((40, 6)) * np.array([5, 3, 1, 0.5, 0.2, 0.1])
    ours = vis.pca(f, dim=3)
    fc = torch.tensor(f) - torch.tensor(f).mean(0)
    ref = (fc @ torch.linalg.svd(fc, full_matrices=False).Vh[:3].T).numpy()
    np.testing.assert_allclose(np.abs(ours), np.abs(ref), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.var(0), np.sort(ours.var(0))[::-1])


def test_tsne_keeps_clusters_apart():
    rng = np.random.default_rng(3)
    centers = rng.standard_normal((3, 10)) * 6
    labels = np.repeat(np.arange(3), 20)
    f = centers[labels] + rng.standard_normal((60, 10))
    y = vis.tsne(f, perplexity=10, steps=250)
    d = ((y[:, None] - y[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nn5 = np.argsort(d, 1)[:, :5]
    assert (labels[nn5] == labels[:, None]).mean() > 0.95


def test_embed_features_shapes(twins):
    m, _ = twins
    x = np.random.default_rng(4).uniform(0, 1, (12, 1, 8, 8))
    assert vis.embed_features(m, x).shape == (12, 2)
    assert vis.embed_features(m, x, method="tsne", steps=30, perplexity=3).shape == (12, 2)
    assert vis.embed_features(m, x, layer="features.5").shape == (12, 2)
    with pytest.raises(ValueError, match="method must be"):
        vis.embed_features(m, x, method="umap")


def _square_scenes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.2, (n, 1, 16, 16)).astype(np.float32)
    masks = np.zeros((n, 16, 16), bool)
    for i in range(n):
        r, c = rng.integers(0, 12, 2)
        x[i, 0, r:r + 4, c:c + 4] = 1.0
        masks[i, r:r + 4, c:c + 4] = True
    return x, masks


def test_dissection_recovers_a_planted_unit():
    # unit 0: a 3×3 box filter — it fires on the bright square; unit 1: a horizontal edge
    # detector; unit 2: switched off (zero weights).
    conv = nn.Conv2d(1, 3, 3, padding=1)
    w = np.zeros((3, 1, 3, 3), np.float32)
    w[0] = 1 / 9
    w[1, 0] = [[1, 1, 1], [0, 0, 0], [-1, -1, -1]]
    conv.weight.data = lamina.tensor(w)
    conv.bias.data = lamina.tensor([-0.5, 0.0, 0.0])
    net = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2))
    x, masks = _square_scenes(40, seed=5)
    left = np.zeros_like(masks)
    left[:, :, :8] = True
    res = vis.dissect(net, "2", x, {"square": masks, "left half": left}, quantile=1 - masks.mean(), iou_threshold=0.3)
    assert res.concepts == ["square", "left half"] and res.iou.shape == (3, 2)
    assert res.detectors[0][:2] == (0, "square") and res.detectors[0][2] > 0.5
    assert [d[0] for d in res.detectors] == [0]
    assert res.iou[2].max() == 0  # a dead unit detects nothing
    assert res.table()[0] == ["unit", "concept", "IoU"]


def test_dissection_on_shapes_colors():
    from lamina.datasets.shapes import Shapes

    ds = Shapes(n=40, size=16, seed=0)
    concepts = vis.shapes_concepts(ds)
    assert {"circle", "square", "triangle", "cross"} <= set(concepts)
    # a 1×1 conv unit computing "red minus the other channels" detects the concept "red"
    conv = nn.Conv2d(3, 2, 1)
    conv.weight.data = lamina.tensor(np.array([[1.0, -1.0, -1.0], [0.0, 0.0, 0.0]], np.float32).reshape(2, 3, 1, 1))
    conv.bias.data = lamina.tensor([0.0, 0.0])
    frac = concepts["red"].mean()
    res = vis.dissect(nn.Sequential(conv), "0", ds.data, concepts, quantile=1 - frac, iou_threshold=0.3)
    assert res.detectors and res.detectors[0][:2] == (0, "red"), res.detectors


def test_dissection_errors():
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1))
    x = np.zeros((2, 1, 8, 8))
    with pytest.raises(ValueError, match="masks must have shape"):
        vis.dissect(net, "0", x, {"c": np.zeros((2, 4, 4))})
    with pytest.raises(ValueError, match="at least one concept"):
        vis.dissect(net, "0", x, {})
