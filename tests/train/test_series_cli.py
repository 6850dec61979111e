"""``lamina train`` on time series: MNIST-1D with each sequence model, the user's CSV, the report's figures."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import lamina
from lamina.cli import main
from lamina.train.report_series import saliency_over_time


@pytest.mark.parametrize("model", ["cnn1d", "tcn", "gru", "lstm"])
def test_mnist1d_trains_each_sequence_model(model, tmp_path, capsys):
    run = tmp_path / model
    kw = '{"hidden_size": 16}' if model in ("gru", "lstm") else '{"channels": 8}'
    rc = main(["train", "--data", "mnist1d", "--model", model, "--epochs", "1", "--model-kwargs", kw,
               "--run-dir", str(run), "--quiet", "--no-report"])
    assert rc == 0
    trained = float(re.search(r"test accuracy ([0-9.]+)", capsys.readouterr().out).group(1))
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == model and config["model_kwargs"]["in_channels"] == 1
    assert main(["evaluate", str(run)]) == 0  # the run folder rebuilds the same model on the same test series
    assert float(re.search(r"test accuracy ([0-9.]+)", capsys.readouterr().out).group(1)) == trained
    if model == "cnn1d":
        assert trained > 0.2  # one epoch learns something on ten classes (the recurrent nets take longer)


def test_mnist1d_report_shows_series_saliency_and_confusion(tmp_path, capsys):
    run = tmp_path / "cnn"
    assert main(["train", "--data", "mnist1d", "--epochs", "1", "--run-dir", str(run), "--quiet"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "cnn1d" and config["model_kwargs"]["input_length"] == 40
    html = (run / "report.html").read_text()
    for png in ("series.png", "saliency.png", "confusion_matrix.png"):
        assert (run / png).read_bytes()[:4] == b"\x89PNG" and f"alt='{png}'" in html
    assert "misclassified.png" not in html  # image grids mean nothing for series
    capsys.readouterr()
    test = lamina.datasets.MNIST1D(train=False)
    np.save(tmp_path / "one.npy", test.data[0, 0])  # (L,)
    np.save(tmp_path / "batch.npy", test.data[:3])  # (N, C, L)
    assert main(["predict", str(run), str(tmp_path / "one.npy"), str(tmp_path / "batch.npy")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and lines[1].startswith(f"{tmp_path / 'batch.npy'}[0]: ")
    assert lines[0].split(": ", 1)[1] == lines[1].split(": ", 1)[1]  # the same series, the same scores
    np.save(tmp_path / "short.npy", test.data[0, 0, :30])
    assert main(["predict", str(run), str(tmp_path / "short.npy")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "shape (1, 1, 30); this run classifies finite series of 1 channel(s) × 40" in err
    assert main(["explain", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "saliency over time" in err


def test_shuffled_variant_is_a_data_set(tmp_path):
    assert main(["train", "--data", "mnist1d-shuffled", "--epochs", "1", "--run-dir", str(tmp_path / "s"),
                 "--quiet", "--no-report"]) == 0


def _wide_csv(path, n=45, steps=24):
    rng = np.random.default_rng(0)
    lines = ["label," + ",".join(f"t{i}" for i in range(steps))]
    for i in range(n):
        c = i % 3
        v = np.sin(np.arange(steps) * 0.25 * (c + 1)) * 3 + 10 + 0.2 * rng.standard_normal(steps)
        lines.append(["rise", "fall", "flat"][c] + "," + ",".join(f"{x:.3f}" for x in v))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_series_train_evaluate(tmp_path, capsys):
    data = _wide_csv(tmp_path / "series.csv")
    run = tmp_path / "run"
    assert main(["train", "--data", "csv", "--data-root", str(data), "--epochs", "2", "--run-dir", str(run),
                 "--quiet", "--no-report"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["classes"] == ["fall", "flat", "rise"] and config["model_kwargs"]["input_length"] == 24
    assert main(["evaluate", str(run)]) == 0
    run2 = tmp_path / "windows"
    assert main(["train", "--data", "csv", "--data-root", str(data), "--window", "12", "--stride", "6",
                 "--model", "gru", "--epochs", "1", "--run-dir", str(run2), "--quiet", "--no-report"]) == 0
    config = json.loads((run2 / "config.json").read_text())
    assert config["window"] == 12 and config["stride"] == 6
    ds = lamina.train.run.build_data(config, True)
    assert tuple(ds[0][0].shape) == (1, 12) and len(ds) == 36 * 3  # 36 training series, 3 windows each


def test_csv_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("label,a,b\n0,1,2\n1,1,oops\n")
    assert main(["train", "--data", "csv", "--data-root", str(bad), "--run-dir", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{bad}, line 3, column 'b': expected a number, got 'oops'" in err
    assert not (tmp_path / "r").exists()
    assert main(["train", "--data", "csv", "--run-dir", str(tmp_path / "r"), "--quiet"]) == 2
    assert "give --data-root" in capsys.readouterr().err
    assert main(["train", "--data", "mnist1d", "--model", "lenet_small", "--run-dir", str(tmp_path / "r"),
                 "--quiet"]) == 2
    assert "cannot take the mnist1d inputs of shape (1, 40)" in capsys.readouterr().err


def test_saliency_is_gradient_times_input():
    m = lamina.nn.Sequential(lamina.nn.Flatten(), lamina.nn.Linear(6, 2))
    x = np.random.default_rng(0).standard_normal((2, 2, 3)).astype(np.float32)
    s = saliency_over_time(m, x, np.array([1, 0]))
    w = m[1].weight.array.reshape(2, 2, 3)
    expected = np.stack([(w[1] * x[0]).sum(0), (w[0] * x[1]).sum(0)])  # a linear score: w ⊙ x, summed over channels
    np.testing.assert_allclose(s, expected, rtol=1e-5, atol=1e-6)
