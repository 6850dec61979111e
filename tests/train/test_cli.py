"""The command line end to end: train → run folder → evaluate → predict → summary; resume; help."""

import csv
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from lamina.cli import main
from lamina.datasets import Digits

REPORT_FILES = ["config.json", "metrics.csv", "checkpoint.lamina", "summary.txt", "report.html", "loss.png",
                "accuracy.png", "confusion_matrix.png", "filters.png", "misclassified.png"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "tiny"
    rc = main(["train", "--epochs", "2", "--batch-size", "64", "--run-dir", str(run), "--quiet", "--seed", "1"])
    assert rc == 0
    return run


def test_train_writes_a_complete_run_folder(tiny_run):
    for name in REPORT_FILES:
        assert (tiny_run / name).stat().st_size > 0, name
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["model"] == "lenet_small" and config["data"] == "digits" and config["epochs"] == 2
    rows = list(csv.DictReader(open(tiny_run / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["1.0", "2.0"] and float(rows[-1]["val_accuracy"]) > 0.8
    html = (tiny_run / "report.html").read_text()
    for png in ["loss.png", "accuracy.png", "confusion_matrix.png", "filters.png", "misclassified.png"]:
        assert f"alt='{png}'" in html and f"href='{png}'" in html
    assert html.count("data:image/png;base64,") == 5  # self-contained: the figures are embedded
    assert "metrics.csv" in html and "config.json" in html and "Total params" in html
    assert (tiny_run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_predict_and_summary(tiny_run, tmp_path, capsys):
    assert main(["evaluate", str(tiny_run)]) == 0
    out = capsys.readouterr().out
    acc = float(re.search(r"test accuracy ([0-9.]+)", out).group(1))
    assert acc > 0.8
    test = Digits(train=False)
    paths = []
    for i in range(3):
        p = tmp_path / f"digit{i}.npy"
        np.save(p, test.data[i])
        paths.append(str(p))
    from PIL import Image

    png = tmp_path / "digit3.png"
    Image.fromarray((test.data[3, 0] * 255).astype(np.uint8)).save(png)
    assert main(["predict", str(tiny_run / "checkpoint.lamina"), *paths, str(png)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and all("p = " in line for line in lines)
    predicted = [line.split(": ")[1].split()[0] for line in lines[:3]]
    assert sum(p == str(t) for p, t in zip(predicted, test.targets[:3])) >= 2
    assert main(["summary", "lenet5", "--input-size", "1", "1", "32", "32"]) == 0
    out = capsys.readouterr().out
    assert "Total params: 61,706" in out and "Conv2d" in out


def test_resume_continues_a_run(tiny_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "cont"
    shutil.copytree(tiny_run, run)
    assert main(["train", "--resume", str(run), "--epochs", "3", "--quiet"]) == 0
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["1.0", "2.0", "3.0"]
    assert rows[0] == list(csv.DictReader(open(tiny_run / "metrics.csv")))[0]


def test_two_dimensional_data_with_an_mlp(tmp_path):
    run = tmp_path / "rings"
    assert main(["train", "--data", "rings", "--model", "mlp", "--epochs", "20", "--lr", "0.01", "--run-dir",
                 str(run), "--quiet"]) == 0
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert float(rows[-1]["val_accuracy"]) > 0.9


def test_errors_are_clear(tmp_path, capsys):
    assert main(["train", "--data", "mnist", "--epochs", "1", "--run-dir", str(tmp_path / "x"), "--quiet"]) == 2
    assert "give --data-root" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "nothing")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["train", "--model", "nonexistent", "--epochs", "1", "--run-dir", str(tmp_path / "y"), "--quiet"]) == 2
    assert "unknown model 'nonexistent'" in capsys.readouterr().err


@pytest.mark.parametrize("cmd", [[], ["train"], ["evaluate"], ["predict"], ["summary"], ["demo"]])
def test_every_command_has_help(cmd):
    r = subprocess.run([sys.executable, "-m", "lamina", *cmd, "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "usage: lamina" in r.stdout


def test_demo_prints_gradients():
    r = subprocess.run([sys.executable, "-m", "lamina", "demo"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "df/dz = x + y = 3" in r.stdout and "gradcheck" in r.stdout


@pytest.mark.slow
def test_bare_lamina_train_reaches_97_percent(tmp_path):
    """The quick start's main job: the embedded default (LeNet-style CNN on the digits)."""
    r = subprocess.run([sys.executable, "-m", "lamina", "train", "--out", str(tmp_path), "--quiet"],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    run = next(p for p in tmp_path.iterdir() if p.is_dir())
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert len(rows) == 15 and os.path.exists(run / "report.html")
    r = subprocess.run([sys.executable, "-m", "lamina", "evaluate", str(run)], capture_output=True, text=True,
                       timeout=600)
    assert float(re.search(r"test accuracy ([0-9.]+)", r.stdout).group(1)) >= 0.97  # on the untouched test set


def test_ctrl_c_on_the_command_line_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    import signal
    import time

    from lamina.train import load_checkpoint

    run = tmp_path / "sigint"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # lines must come through a pipe
    proc = subprocess.Popen([sys.executable, "-m", "lamina", "train", "--epochs", "50", "--run-dir", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 300
    line = ""
    while "epoch 1/50" not in line and time.time() < deadline:  # wait until training is under way
        line = proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "checkpoint saved" in err and "--resume" in err
    ck = load_checkpoint(run / "checkpoint.lamina")
    assert ck["epoch"] >= 1 and "config" in ck
    assert main(["train", "--resume", str(run), "--epochs", str(ck["epoch"] + 1), "--quiet", "--no-report"]) == 0


def test_resume_with_more_epochs_follows_the_new_cosine_schedule(tmp_path):
    import math

    run = tmp_path / "grow"
    assert main(["train", "--epochs", "2", "--run-dir", str(run), "--quiet", "--no-report"]) == 0
    assert main(["train", "--resume", str(run), "--epochs", "5", "--quiet", "--no-report"]) == 0
    lrs = [float(r["lr"]) for r in csv.DictReader(open(run / "metrics.csv"))]
    expected = [0.002 * (1 + math.cos(math.pi * e / 5)) / 2 for e in range(2, 5)]
    np.testing.assert_allclose(lrs[2:], expected, rtol=1e-9)
