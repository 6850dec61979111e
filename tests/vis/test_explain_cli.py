"""``lamina explain``: every method on a run folder made by ``lamina train`` (digits, one
epoch), the report section, a 2-D run, a bare checkpoint, and errors."""

from __future__ import annotations

import argparse
import json
import os
import shutil

import numpy as np
import pytest

from lamina.vis import explain_cli
from lamina.vis.explain_cli import METHODS, add_explain_parser, run_explain

from .test_pictures import png_size


def _train(run_dir: str, **changes) -> str:
    from lamina.train.run import default_config, train_run

    config = default_config()
    config.update({"epochs": 1, **changes})
    train_run(config, run_dir, log=lambda *a, **k: None, progress=False)
    return run_dir


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> str:
    return _train(str(tmp_path_factory.mktemp("run") / "digits"))


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="lamina")
    add_explain_parser(p.add_subparsers(dest="command"))
    return p.parse_args(["explain", *argv])


def test_every_image_method_on_a_bare_train_run(digits_run, capsys):
    before = open(os.path.join(digits_run, "report.html")).read().count("<figure>")
    image_methods = [m for m in METHODS if m != "decision-boundary"]
    for method in image_methods:
        args = _parse([digits_run, "--method", method, "--max-images", "120", "--steps", "8"])
        assert args.func is run_explain
        assert run_explain(args) == 0
        path = os.path.join(digits_run, f"explain_{method}.png")
        w, h = png_size(path)
        assert w > 100 and h > 100 and os.path.getsize(path) > 1000, method
    out = capsys.readouterr().out
    assert "fgsm: prediction" in out and "perturbation L∞ 0.1" in out
    manifest = json.load(open(os.path.join(digits_run, "explain.json")))
    assert [e["file"] for e in manifest if e["method"] != "maximize" or "scores" not in e["file"]] == \
        [f"explain_{m}.png" for m in image_methods]
    report = open(os.path.join(digits_run, "report.html")).read()
    # the training figures stay; each explanation appears once, in one section
    assert report.count("lamina-explain:start") == 1
    assert report.count("<figure>") == before + len(manifest)
    assert report.index("Explanations") < report.index("<h2>Configuration</h2>")


def test_options_and_repeat_runs_replace_entries(digits_run):
    run = digits_run
    explain_cli.explain(run, "guided-backprop", layer="features.0", unit=2, out="gb.png")
    explain_cli.explain(run, "guided-backprop", layer="features.0", unit=3, out="gb.png")
    written, notes = explain_cli.explain(run, "pgd", norm="2", epsilon=1.0, target=3, steps=5, out="pgd2.png")
    assert written[0].endswith("pgd2.png") and "→" in notes[0]
    manifest = json.load(open(os.path.join(run, "explain.json")))
    assert sum(e["file"] == "gb.png" for e in manifest) == 1
    assert "unit 3" in next(e["caption"] for e in manifest if e["file"] == "gb.png")
    report = open(os.path.join(run, "report.html")).read()
    assert report.count("(gb.png)") == 1


def test_image_file_input(digits_run, tmp_path):
    img = np.zeros((1, 8, 8), np.float32)
    img[0, 2:6, 3:5] = 1
    np.save(tmp_path / "one.npy", img)
    written, _ = explain_cli.explain(digits_run, "saliency", image=str(tmp_path / "one.npy"), out="file.png")
    assert png_size(written[0])[0] > 100
    from PIL import Image

    Image.fromarray((np.random.default_rng(0).uniform(0, 255, (20, 20))).astype(np.uint8)).save(tmp_path / "a.png")
    explain_cli.explain(digits_run, "gradcam", image=str(tmp_path / "a.png"), out="file2.png")
    np.save(tmp_path / "bad.npy", np.zeros((3, 8, 8), np.float32))
    with pytest.raises(ValueError, match="the model expects"):
        explain_cli.explain(digits_run, "saliency", image=str(tmp_path / "bad.npy"))


def test_checkpoint_without_report(digits_run, tmp_path):
    folder = tmp_path / "ck"
    folder.mkdir()
    shutil.copy(os.path.join(digits_run, "checkpoint.lamina"), folder / "model.lamina")
    written, _ = explain_cli.explain(str(folder / "model.lamina"), "filters")
    assert os.path.exists(folder / "explain_filters.png")
    assert "lamina-explain:start" in open(folder / "report.html").read()
    assert written[-1] == str(folder / "report.html")


def test_two_d_run_decision_boundary(tmp_path):
    run = _train(str(tmp_path / "moons"), model="mlp", data="moons", epochs=2)
    written, _ = explain_cli.explain(run, "decision-boundary")
    assert png_size(written[0]) == (500, 500)
    with pytest.raises(ValueError, match="needs an image model"):
        explain_cli.explain(run, "saliency")


def test_errors(digits_run, tmp_path):
    with pytest.raises(FileNotFoundError):
        explain_cli.explain(str(tmp_path / "nowhere"), "saliency")
    with pytest.raises(ValueError, match="method must be one of"):
        explain_cli.explain(digits_run, "astrology")
    with pytest.raises(ValueError, match="no layer 'nope'"):
        explain_cli.explain(digits_run, "activations", layer="nope")
    with pytest.raises(SystemExit):
        _parse([digits_run, "--method", "astrology"])


def test_wired_into_lamina_cli(digits_run, capsys):
    from lamina import cli

    assert cli.main(["explain", digits_run, "--method", "occlusion", "--out", "occ.png"]) == 0
    assert "occ.png" in capsys.readouterr().out


def test_shapes_checkpoint_dissection_uses_shape_and_color_concepts(tmp_path):
    import lamina
    from lamina.train.checkpoint import save_checkpoint
    from lamina.train.run import build_model, default_config

    lamina.manual_seed(0)
    config = default_config()
    config["data"] = "shapes"
    save_checkpoint(tmp_path / "checkpoint.lamina", model=build_model(config).state_dict(), config=json.dumps(config))
    written, notes = explain_cli.explain(str(tmp_path), "dissect", max_images=60, quantile=0.9)
    assert png_size(written[0]) == (700, 350)
    names = {"circle", "square", "triangle", "cross", *explain_cli_color_names()}
    assert notes and all(n.startswith("unit ") and n.split(": ")[1].split(" (")[0] in names for n in notes)


def explain_cli_color_names() -> list[str]:
    from lamina.vis import COLOR_NAMES

    return list(COLOR_NAMES)


def test_decision_boundary_on_an_image_run_is_a_clear_error(tmp_path, capsys):
    from lamina.cli import main

    run = tmp_path / "img"
    assert main(["train", "--epochs", "1", "--run-dir", str(run), "--quiet", "--no-report"]) == 0
    assert main(["explain", str(run), "--method", "decision-boundary"]) == 2
    err = capsys.readouterr().err
    assert "draws 2-D classifiers" in err and err.count("explain:") == 1
