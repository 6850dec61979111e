"""The CNN explainer's endpoints on a tiny trained run (a test client, no browser)."""

import io
import json
import math

import numpy as np
import pytest

import lamina
from lamina import vis
from lamina.train.run import build_data, load_run


def post(client, path, **body):
    r = client.post(path, json={"run": "tiny", **body})
    assert r.status_code == 200, r.text
    return r.json()


def test_runs_lists_image_classifier_runs_only(cnn_client, runs_dir):
    (runs_dir / "broken").mkdir()
    (runs_dir / "broken" / "checkpoint.lamina").write_bytes(b"junk")
    (runs_dir / "broken" / "config.json").write_text("{not json")
    (runs_dir / "points").mkdir()
    (runs_dir / "points" / "checkpoint.lamina").write_bytes(b"junk")
    (runs_dir / "points" / "config.json").write_text(json.dumps({"data": "moons", "model": "mlp"}))
    runs = cnn_client.get("/api/cnn/runs").json()["runs"]
    assert runs == [{"name": "tiny", "model": "lenet_small", "data": "digits"}]


def test_forward_gives_every_layer_and_the_prediction(cnn_client, runs_dir):
    f = post(cnn_client, "/api/cnn/forward", index=5)
    config, model, _ = load_run(str(runs_dir / "tiny"))
    leaves = [n for n, m in model.named_modules() if n and not list(m.children())]
    assert [layer["name"] for layer in f["layers"]] == leaves
    x = np.array(f["input"], dtype=np.float32)
    assert x.shape == (1, 8, 8)
    conv = vis.activations(model, x, "features.0")[0]
    np.testing.assert_allclose(f["layers"][0]["maps"], conv, atol=1e-3)
    with lamina.no_grad():
        logits = model(lamina.tensor(x[None])).numpy()[0]
    assert f["pred"] == int(logits.argmax()) and math.isclose(sum(f["probs"]), 1, rel_tol=1e-3)
    image, label = build_data(config, train=False)[5]
    assert f["label"] == int(label)
    np.testing.assert_allclose(x, image.numpy(), atol=1e-3)


def test_conv_unit_arithmetic_matches_the_layers(cnn_client):
    f = post(cnn_client, "/api/cnn/forward", index=3)
    maps = {layer["name"]: np.array(layer["maps"]) for layer in f["layers"] if "maps" in layer}
    u = post(cnn_client, "/api/cnn/unit", index=3, layer="features.0", channel=1, y=0, x=3)
    patch, kernel = np.array(u["patch"]), np.array(u["kernel"])
    assert patch.shape == kernel.shape == (1, 3, 3)
    assert u["rows"] == [-1, 0, 1] and u["cols"] == [2, 3, 4]
    assert np.all(patch[:, 0] == 0)  # the padding row
    np.testing.assert_allclose(patch[0, 1:], np.array(f["input"])[0, 0:2, 2:5], atol=1e-3)
    assert u["sum"] == pytest.approx((patch * kernel).sum() + u["bias"], abs=1e-3)  # the numbers sent are rounded
    assert u["sum"] == pytest.approx(maps["features.0"][1, 0, 3], abs=1e-3)  # lamina's conv2d gave the same
    bn, relu = u["then"]
    assert bn["type"] == "BatchNorm2d" and relu["type"] == "ReLU"
    expect = (u["sum"] - bn["mean"]) / math.sqrt(bn["var"] + bn["eps"]) * bn["gamma"] + bn["beta"]
    assert bn["value"] == pytest.approx(expect, abs=1e-4) and bn["value"] == pytest.approx(maps["features.1"][1, 0, 3],
                                                                                          abs=1e-3)
    assert relu["value"] == pytest.approx(max(bn["value"], 0.0), abs=1e-6)


def test_pool_and_softmax_units(cnn_client):
    f = post(cnn_client, "/api/cnn/forward", index=0)
    maps = {layer["name"]: np.array(layer["maps"]) for layer in f["layers"] if "maps" in layer}
    u = post(cnn_client, "/api/cnn/unit", index=0, layer="features.6", channel=2, y=1, x=3)
    assert u["kind"] == "maxpool" and u["rows"] == [2, 4] and u["cols"] == [6, 8]
    np.testing.assert_allclose(u["window"], maps["features.5"][2, 2:4, 6:8], atol=1e-3)
    assert u["value"] == pytest.approx(maps["features.6"][2, 1, 3], abs=1e-3)
    s = post(cnn_client, "/api/cnn/unit", index=0, layer="classifier.2", channel=0, y=0, x=0)
    assert s["kind"] == "softmax"
    np.testing.assert_allclose(s["probs"], f["probs"], atol=1e-3)
    z = np.array(s["logits"])
    np.testing.assert_allclose(s["probs"], np.exp(z - z.max()) / np.exp(z - z.max()).sum(), atol=1e-3)


def test_explain_gradients_grad_cam_saliency(cnn_client, runs_dir):
    r = post(cnn_client, "/api/cnn/explain", index=2, target=4)
    assert r["target"] == 4
    grads = {g["name"]: g for g in r["gradients"]}
    # ∂ logit_4 / ∂ logits is the 4th unit vector; through the last Linear it is that row of its weight
    assert grads["classifier.2"]["values"] == [1.0 if i == 4 else 0.0 for i in range(10)]
    _, model, _ = load_run(str(runs_dir / "tiny"))
    np.testing.assert_allclose(grads["classifier.1"]["values"], model.classifier[2].weight.detach().numpy()[4], atol=1e-4)
    x = np.array(post(cnn_client, "/api/cnn/forward", index=2)["input"], dtype=np.float32)
    np.testing.assert_allclose(r["grad_cam"], vis.grad_cam(model, x, 4)[0], atol=1e-3)
    np.testing.assert_allclose(r["saliency"], vis.saliency(model, x, 4)[0], atol=1e-4)
    assert np.array(r["saliency"]).shape == (8, 8)


def test_uploaded_image(cnn_client):
    from PIL import Image

    img = Image.new("L", (32, 32), 0)
    img.paste(255, (12, 4, 20, 28))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    up = cnn_client.post("/api/cnn/upload", content=buf.getvalue())
    assert up.status_code == 200
    f = post(cnn_client, "/api/cnn/forward", upload=up.json()["image"])
    assert f["label"] is None and np.array(f["input"]).shape == (1, 8, 8)
    assert np.array(f["input"])[0, 2:6, 3:5].min() > 0.8 and np.array(f["input"])[0, :, 0].max() < 0.1


@pytest.mark.parametrize("body, status, words", [
    ({"run": "../tiny"}, 400, "named by its folder's name"),
    ({"run": "/etc"}, 400, "named by its folder's name"),
    ({"run": "missing"}, 404, "no run folder 'missing'"),
    ({"run": "tiny", "index": 10**6}, 400, "test image index must be"),
    ({"run": "tiny", "upload": "nope"}, 404, "unknown image upload"),
])
def test_bad_requests(cnn_client, body, status, words):
    r = cnn_client.post("/api/cnn/forward", json=body)
    assert r.status_code == status and words in r.json()["error"]


def test_bad_units_and_uploads(cnn_client):
    r = cnn_client.post("/api/cnn/unit", json={"run": "tiny", "layer": "features.0", "channel": 9, "y": 0, "x": 0})
    assert r.status_code == 400 and "outside features.0's output" in r.json()["error"]
    r = cnn_client.post("/api/cnn/unit", json={"run": "tiny", "layer": "nope"})
    assert r.status_code == 400 and "unknown layer 'nope'" in r.json()["error"]
    r = cnn_client.post("/api/cnn/upload", content=b"not an image")
    assert r.status_code == 400 and "cannot read image" in r.json()["error"]
    r = cnn_client.post("/api/cnn/upload", content=b"0" * (5 * 1024 * 1024))
    assert r.status_code == 400 and "more than the limit" in r.json()["error"]
