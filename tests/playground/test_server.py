"""The playground server's MLP endpoints through a test client (no browser)."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import lamina
from lamina.playground.mlp import ACTIVATIONS, OPTIMIZERS, Session

SMALL = {"n": 60, "hidden": [3], "activations": ["tanh"]}


def new(client, **config):
    r = client.post("/api/mlp/session", json={"config": config})
    assert r.status_code == 200, r.text
    return r.json()


def test_index_and_static_assets_are_local(client):
    page = client.get("/").text
    assert 'data-testid="boundary"' in page
    for asset in ("/static/style.css", "/static/common.js", "/static/mlp.js", "/static/conv.js"):
        r = client.get(asset)
        assert r.status_code == 200 and len(r.text) > 100
    # no asset from another host: every src/href is a local path
    assert "http://" not in page and "https://" not in page
    for name in os.listdir(os.path.join(os.path.dirname(lamina.__file__), "playground", "static")):
        text = open(os.path.join(os.path.dirname(lamina.__file__), "playground", "static", name)).read()
        assert "https://" not in text and "//cdn" not in text, name


def test_session_split_and_snapshot(client):
    r = new(client, dataset="moons", n=80, ratio=0.25, seed=3)
    assert len(r["points"]["train"]["y"]) == 20 and len(r["points"]["test"]["y"]) == 60
    s = r["snapshot"]
    assert s["epoch"] == 0 and len(s["history"]) == 1
    assert len(s["boundary"]["cls"]) == s["boundary"]["res"] ** 2
    # input features (2) then the two hidden layers (4, 2) of the default network
    assert [len(m) for m in s["neurons"]["maps"]] == [2, 4, 2]
    assert [w["shape"] for w in s["weights"]] == [[4, 2], [2, 4], [2, 2]]
    assert np.array(s["confusion"]).sum() == 60


def test_step_trains_and_reset_restarts_identically(client):
    r = new(client, dataset="circle", features=["x1^2", "x2^2"], optimizer="Adam", lr=0.05, n=100)
    start = r["snapshot"]["train_loss"]
    for _ in range(2):
        s = client.post("/api/mlp/step", json={"id": r["id"], "epochs": 10}).json()
    assert s["epoch"] == 20 and len(s["history"]) == 21
    assert s["train_loss"] < 0.5 * start and s["train_acc"] > 0.9
    back = client.post("/api/mlp/reset", json={"id": r["id"]}).json()
    assert back["id"] == r["id"] and back["snapshot"]["epoch"] == 0
    assert back["snapshot"]["train_loss"] == pytest.approx(start, rel=1e-6)
    assert back["snapshot"]["boundary"] == r["snapshot"]["boundary"]


def test_stream_sends_one_snapshot_per_epoch(client):
    r = new(client, **SMALL)
    with client.stream("GET", f"/api/mlp/stream?id={r['id']}&max_events=3") as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        text = "".join(resp.iter_text())
    events = [json.loads(line[len("data: "):]) for line in text.splitlines() if line.startswith("data: ")]
    assert [e["epoch"] for e in events] == [1, 2, 3]
    assert all(len(e["history"]) == 1 for e in events)


@pytest.mark.parametrize("config, words", [
    ({"lr": "fast"}, "lr must be a number"),
    ({"optimizer": "Adamm"}, "unknown optimizer 'Adamm'"),
    ({"hidden": [4, 0], "activations": ["relu", "relu"]}, "hidden must be a list of positive"),
    ({"hidden": [4], "activations": ["relu", "relu"]}, "activations must name one of"),
    ({"features": ["x3"]}, "features must be a non-empty list"),
    ({"dataset": "blobs", "classes": 3, "loss": "bce"}, "needs 2 classes"),
    ({"dataset": "csv", "csv": "nope"}, "needs an uploaded CSV"),
    ({"colour": 1}, "unknown settings colour"),
])
def test_bad_settings_are_a_400_naming_them(client, config, words):
    r = client.post("/api/mlp/session", json={"config": config})
    assert r.status_code == 400 and words in r.json()["error"]


def test_unknown_session_and_bad_bodies(client):
    assert client.post("/api/mlp/step", json={"id": "gone"}).status_code == 404
    assert "invalid JSON" in client.post("/api/mlp/step", content=b"{").json()["error"]
    r = new(client, **SMALL)
    assert "epochs must be" in client.post("/api/mlp/step", json={"id": r["id"], "epochs": 0}).json()["error"]


def test_only_loopback_host_names_are_served():
    from starlette.testclient import TestClient

    from lamina.playground.server import HOST, create_app

    assert HOST == "127.0.0.1"
    c = TestClient(create_app(), base_url="http://127.0.0.1:8765")
    assert c.get("/api/meta").status_code == 200
    assert c.get("/api/meta", headers={"host": "evil.example:8765"}).status_code == 400


def test_csv_upload_trains(client):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 2))
    lines = ["x1,x2,label"] + [f"{a:.4f},{b:.4f},{'in' if a * a + b * b < 1 else 'out'}" for a, b in X]
    up = client.post("/api/mlp/upload", content="\n".join(lines).encode())
    assert up.status_code == 200 and up.json()["n"] == 80 and up.json()["classes"] == 2
    r = new(client, dataset="csv", csv=up.json()["csv"], features=["x1^2", "x2^2"], optimizer="Adam", lr=0.05)
    assert len(r["points"]["train"]["y"]) + len(r["points"]["test"]["y"]) == 80
    s = client.post("/api/mlp/step", json={"id": r["id"], "epochs": 30}).json()
    assert s["train_loss"] < r["snapshot"]["train_loss"] and s["train_acc"] > 0.85


@pytest.mark.parametrize("body, words", [
    (b"1,2,0\n3,x,1\n", "line 2: x1 and x2 must be numbers"),
    (b"1,2\n", "expected 3 columns"),
    (b"1,2,0\n2,3,0\n3,4,0\n4,5,0\n", "expected 2 to 20 classes"),
    (b"1,nan,0\n", "must be finite"),
    (b"\xff\xfe\x00", "expected UTF-8 text"),
    (b"1,2,0\n" * 400_000, "more than the limit"),
])
def test_csv_upload_refuses_bad_files(client, body, words):
    r = client.post("/api/mlp/upload", content=body)
    assert r.status_code == 400 and words in r.json()["error"]


def test_exported_weights_load_into_the_network(client):
    r = new(client, **SMALL)
    s = client.post("/api/mlp/step", json={"id": r["id"], "epochs": 2}).json()
    raw = client.get(f"/api/mlp/export/weights?id={r['id']}").content
    state = lamina.load(io.BytesIO(raw))
    net = Session(SMALL).model
    assert set(state) == set(net.state_dict())
    net.load_state_dict(state)
    # the trained weights, not the fresh ones: equal to what the page shows after the 2 epochs
    np.testing.assert_allclose(net[0][0].weight.detach().numpy(), s["weights"][0]["weight"], atol=1e-4)
    assert not np.allclose(state["0.0.weight"].numpy(), r["snapshot"]["weights"][0]["weight"], atol=1e-4)


def test_exported_code_runs_and_trains(client, tmp_path):
    r = new(client, dataset="xor", loss="bce", regularization="l2", reg_rate=0.001, batchnorm=True, dropout=0.1,
            hidden=[5, 3], activations=["prelu", "swish"], features=["x1", "x2", "x1*x2", "sin(x1)"], n=60)
    code = client.get(f"/api/mlp/export/code?id={r['id']}").text
    assert "nn.PReLU(5)" in code and "nn.SiLU()" in code and "nn.BatchNorm1d(5)" in code
    (tmp_path / "net.py").write_text(code)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    out = subprocess.run([sys.executable, "net.py"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "epoch 1: test accuracy" in out.stdout
    state = lamina.load(str(tmp_path / "playground.lamina"))
    assert tuple(state["0.0.weight"].shape) == (5, 4)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_trains_an_epoch(optimizer):
    s = Session({**SMALL, "optimizer": optimizer, "lr": 0.01, "batch_size": 30})
    before = [p.detach().numpy().copy() for p in s.model.parameters()]
    s.train_epochs(1)
    assert s.epoch == 1 and np.isfinite(s.history[-1]["train_loss"])
    assert any(not np.array_equal(a, p.detach().numpy()) for a, p in zip(before, s.model.parameters()))


def test_every_activation_and_regularizer_builds_and_steps():
    for i, act in enumerate(ACTIVATIONS):
        s = Session({**SMALL, "activations": [act], "regularization": ("l1", "l2")[i % 2], "reg_rate": 0.01})
        s.train_epochs(1)
        assert np.isfinite(s.history[-1]["train_loss"]), act
    assert sum(p.numel() for p in Session({**SMALL, "activations": ["prelu"]}).model.parameters()) == 3 * 2 + 3 + 3 + 2 * 3 + 2


def test_l2_penalty_is_the_squared_weights():
    s = Session({**SMALL, "regularization": "l2", "reg_rate": 0.5})
    w = [p.detach().numpy() for n, p in s.model.named_parameters() if n.endswith("weight")]
    assert s._penalty().item() == pytest.approx(0.5 * sum((a ** 2).sum() for a in w), rel=1e-5)
