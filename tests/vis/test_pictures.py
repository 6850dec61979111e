"""Every picture function writes a non-empty image of the size its docstring promises; the
computational-graph figure's numbers; the conv-arithmetic geometry against torch's shapes."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

import lamina
from lamina import nn, vis

from .conftest import small_cnn


def png_size(path: str) -> tuple[int, int]:
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def net():
    lamina.manual_seed(0)
    return small_cnn()


def test_grid_pictures(tmp_path, net):
    x = np.random.default_rng(0).uniform(0, 1, (6, 1, 8, 8)).astype(np.float32)
    cases = [
        (vis.plot_filters(net.features[0].weight, tmp_path / "f.png"), (600, 150)),  # 6 filters, 1-inch cells
        (vis.plot_filters(net.features[3].weight, tmp_path / "f2.png", cols=4), (400, 350)),  # 12 → 3 rows
        (vis.plot_activation_maps(vis.activations(net, x[:1], "features.4"), tmp_path / "a.png"), (800, 250)),
        # whole images with the receptive field outlined above the patches: 2 rows of 5
        (vis.plot_top_patches(vis.top_activations(net, x, "features.1", 0, k=5), tmp_path / "t.png"), (600, 290)),
        (vis.plot_top_patches(vis.top_activations(net, x, "features.1", 0, k=5), tmp_path / "t1.png",
                              show_images=False), (600, 170)),
        (vis.plot_images(x[:4], tmp_path / "i.png", titles=list("abcd")), (480, 170)),
        (vis.plot_attributions(x[0], {"saliency": vis.saliency(net, x[:1])[0],
                                      "IG": vis.integrated_gradients(net, x[:1], steps=4)[0]},
                               tmp_path / "at.png"), (600, 250)),
        (vis.plot_adversarial(vis.fgsm(net, x[:2], epsilon=0.05), tmp_path / "adv.png", index=1), (600, 250)),
    ]
    for path, size in cases:
        assert png_size(path) == size, path


def test_single_figure_pictures(tmp_path, net):
    x = np.random.default_rng(1).uniform(0, 1, (10, 1, 8, 8)).astype(np.float32)
    emb = vis.embed_features(net, x)
    conv = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1))
    d = vis.dissect(conv, "0", x, {"top": np.arange(8)[None, :, None].repeat(10, 0).repeat(8, 2) < 3})
    pts, labels = lamina.datasets.make_spirals(60, classes=3, seed=0)
    mlp3 = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3))
    mlp1 = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    cases = [
        (vis.plot_embedding(emb, np.arange(10) % 3, tmp_path / "e.png", class_names=["a", "b", "c"]), (600, 500)),
        (vis.plot_scores([0.0, 1.0, 1.5], tmp_path / "s.png", ylabel="logit"), (500, 340)),
        (vis.plot_dissection(d, tmp_path / "d.png"), (700, 350)),
        (vis.plot_decision_boundary(mlp3, pts, labels, tmp_path / "db3.png", resolution=40), (500, 500)),
        (vis.plot_decision_boundary(mlp1, pts, labels % 2, tmp_path / "db1.png", resolution=40), (500, 500)),
        (vis.plot_decision_boundary(lambda t: t.sum(1), pts, labels % 2, tmp_path / "dbf.png", resolution=20),
         (500, 500)),
        # (x + y)·z: 3 levels, 3 inputs on the widest → (1.9·3 + 1.2) × (1.3·3 + 0.8) inches
        (vis.plot_computational_graph(lambda x, y, z: (x + y) * z, {"x": -2, "y": 5, "z": -4}, tmp_path / "g.png"),
         (690, 470)),
    ]
    for path, size in cases:
        assert png_size(path) == size, path
    svg = vis.plot_computational_graph(lambda w, b: (w * 3.0 + b).sigmoid(), {"w": 0.5, "b": -1}, tmp_path / "g.svg")
    text = open(svg).read()
    assert text.startswith("<?xml") and "<svg" in text


def test_computational_graph_numbers_hand_computed():
    # the lecture's example: f = (x + y)·z at x = −2, y = 5, z = −4: q = x + y = 3, f = −12,
    # ∂f/∂q = z = −4, ∂f/∂x = ∂f/∂y = −4, ∂f/∂z = q = 3
    g = vis.trace(lambda x, y, z: (x + y) * z, {"x": -2.0, "y": 5.0, "z": -4.0})
    by_label = {n["label"]: n for n in g["nodes"].values()}
    assert {k: (v["value"], v["grad"]) for k, v in by_label.items()} == {
        "x": (-2.0, -4.0), "y": (5.0, -4.0), "z": (-4.0, 3.0), "Add": (3.0, -4.0), "Mul": (-12.0, 1.0)}
    assert len(g["edges"]) == 4 and g["nodes"][g["output"]]["label"] == "Mul"


def test_computational_graph_gradients_match_torch():
    def f(lib, w, x, b):
        return lib.tanh(w * x + b) * w

    g = vis.trace(lambda w, x, b: f(lamina, w, x, b), {"w": 0.7, "x": -1.3, "b": 0.2})
    leaves = {n["label"]: n["grad"] for n in g["nodes"].values() if n["kind"] == "input"}
    tw, tx, tb = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (0.7, -1.3, 0.2))
    f(torch, tw, tx, tb).backward()
    np.testing.assert_allclose([leaves["w"], leaves["x"], leaves["b"]],
                               [tw.grad.item(), tx.grad.item(), tb.grad.item()], rtol=1e-12)
    # intermediate tensors that are not scalars, and ops with positional options (shapes)
    def h(lib, fn, x):
        return fn.softmax(x.reshape(1, 1).expand(1, 3) * lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64), dim=1)[0, 2]

    g = vis.trace(lambda x: h(lamina, lamina.nn.functional, x), {"x": 0.5})
    tx = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    h(torch, torch.nn.functional, tx).backward()
    (gx,) = [n["grad"] for n in g["nodes"].values() if n["kind"] == "input"]
    np.testing.assert_allclose(gx, tx.grad.item(), rtol=1e-12)
    with pytest.raises(ValueError, match="scalar"):
        vis.trace(lambda a: a * lamina.ones(3, dtype=lamina.float64), {"a": 1.0})


@pytest.mark.parametrize("seed", range(4))
def test_conv_arithmetic_geometry_matches_torch_shapes(seed):
    rng = np.random.default_rng(seed)
    for _ in range(25):
        i, k, s, d = int(rng.integers(2, 8)), int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 3))
        transposed = bool(rng.integers(0, 2))
        span = d * (k - 1)
        p = int(rng.integers(0, span + 1)) if transposed else int(rng.integers(0, 3))
        op = int(rng.integers(0, max(s, d))) if transposed else 0
        if not transposed and i + 2 * p < span + 1:
            continue
        x = torch.zeros(1, 1, i, i)
        w = torch.zeros(1, 1, k, k)
        if transposed and (i - 1) * s - 2 * p + span + op + 1 < 1:
            with pytest.raises(ValueError, match="does not fit"):
                vis.conv_arithmetic_geometry(i, k, s, p, d, transposed, op)
            continue
        if transposed:
            out = torch.nn.functional.conv_transpose2d(x, w, stride=s, padding=p, output_padding=op, dilation=d)
        else:
            out = torch.nn.functional.conv2d(x, w, stride=s, padding=p, dilation=d)
        geo = vis.conv_arithmetic_geometry(i, k, s, p, d, transposed, op)
        assert geo["output"] == tuple(out.shape[2:]), (i, k, s, p, d, transposed, op)
        assert geo["is_input"].sum() == i * i


def test_conv_arithmetic_hand_computed_and_gif(tmp_path):
    # transposed 2×2 input, 3×3 kernel, stride 2, no padding: zeros inserted → 3×3, padded by
    # 2 on each side → a 7×7 grid with the inputs at (2,2), (2,4), (4,2), (4,4); output 5×5
    geo = vis.conv_arithmetic_geometry(2, 3, stride=2, transposed=True)
    assert geo["grid"] == (7, 7) and geo["output"] == (5, 5)
    assert [tuple(v) for v in np.argwhere(geo["is_input"])] == [(2, 2), (2, 4), (4, 2), (4, 4)]
    frames = vis.conv_arithmetic_frames(5, 3, stride=2, padding=1, cell=10)
    assert len(frames) == 9 and frames[0].shape == ((7 + 2) * 10 + 1, (7 + 3 + 3) * 10 + 1, 3)
    assert frames[0].dtype == np.uint8 and not np.array_equal(frames[0], frames[1])
    path = vis.conv_arithmetic_gif(tmp_path / "c.gif", (4, 5), (3, 2), stride=(1, 2), padding=(1, 0), dilation=(2, 1))
    from PIL import Image

    with Image.open(path) as im:
        oh, ow = vis.conv_arithmetic_geometry((4, 5), (3, 2), (1, 2), (1, 0), (2, 1))["output"]
        assert im.format == "GIF" and im.n_frames == oh * ow
    with pytest.raises(ValueError, match="padding <= dilation"):
        vis.conv_arithmetic_geometry(3, 3, padding=3, transposed=True)
    with pytest.raises(ValueError, match="does not fit"):
        vis.conv_arithmetic_geometry(2, 5)


def test_trace_records_only_its_own_thread_and_patches_nothing() -> None:
    """Graphs traced in two threads while a third computes hold only their own ops, and
    ``Function.apply`` is never replaced (a patch shared by threads could be left in place)."""
    import sys
    import threading

    from lamina.autograd import Function
    from lamina.vis.graph import trace

    apply_before = Function.__dict__["apply"]
    stop = threading.Event()
    labels: list[list[str]] = []

    def busy() -> None:
        a = lamina.ones(3)
        while not stop.is_set():
            a = (a * 1.0).exp().log()

    def tracing() -> None:
        for _ in range(100):
            g = trace(lambda x, y, z: (x + y) * z, {"x": -2.0, "y": 5.0, "z": -4.0})
            labels.append(sorted(n["label"] for n in g["nodes"].values()))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    ts = [threading.Thread(target=busy)] + [threading.Thread(target=tracing) for _ in range(2)]
    try:
        for t in ts:
            t.start()
        for t in ts[1:]:
            t.join()
    finally:
        stop.set()
        ts[0].join()
        sys.setswitchinterval(interval)
    assert len(labels) == 200 and all(lab == ["Add", "Mul", "x", "y", "z"] for lab in labels)
    assert Function.__dict__["apply"] is apply_before
