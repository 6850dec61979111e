"""``lamina explain``: every method on a run folder made by ``lamina train`` (digits, one
epoch), the report section, a 2-D run, a bare checkpoint, and errors."""

from __future__ import annotations

import argparse
import html
import json
import os
import re
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


@pytest.fixture
def picture_texts(monkeypatch) -> dict[str, str]:
    """Every text drawn in each picture written by ``lamina explain`` (titles, labels), by file name."""
    from matplotlib.text import Text

    from lamina.vis import plots, teaching

    texts: dict[str, str] = {}
    for module in (plots, teaching):
        def saving(fig, path, fmt=None, _save=module.save_figure):
            texts[os.path.basename(path)] = " ".join(t.get_text() for t in fig.findobj(Text))
            return _save(fig, path, fmt)
        monkeypatch.setattr(module, "save_figure", saving)
    return texts


def _names_layer_class_method(text: str, method: str) -> bool:
    return method in text and re.search(r"layer \S", text) is not None and "class" in text


def test_every_image_method_on_a_bare_train_run(digits_run, capsys, picture_texts):
    before = open(os.path.join(digits_run, "report.html")).read().count("<figure>")
    image_methods = [m for m in METHODS if m != "decision-boundary"]
    for method in image_methods:
        args = _parse([digits_run, "--method", method, "--max-images", "120", "--steps", "8"])
        assert args.func is run_explain
        assert run_explain(args) == 0
        path = os.path.join(digits_run, f"explain_{method}.png")
        w, h = png_size(path)
        assert w > 100 and h > 100 and os.path.getsize(path) > 1000, method
        # the picture itself names the method, the layer and the class(es)
        assert _names_layer_class_method(picture_texts[f"explain_{method}.png"], method), method
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
    # every caption, in explain.json and in the report, names the method, the layer and the class(es)
    for e in manifest:
        assert _names_layer_class_method(e["caption"], e["method"]), e
        assert html.escape(e["caption"]) in report
    by_method = {e["method"]: e["caption"] for e in manifest}
    assert "layer features.9" in by_method["gradcam"]  # the last conv block's ReLU, after conv and BN
    assert "layer features.2" in by_method["activations"] and "layer features.0" in by_method["filters"]
    assert "layer features.9" in by_method["top-patches"] and "layer features.9" in by_method["dissect"]


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


def test_two_d_run_decision_boundary(tmp_path, picture_texts):
    run = _train(str(tmp_path / "moons"), model="mlp", data="moons", epochs=2)
    written, _ = explain_cli.explain(run, "decision-boundary")
    assert png_size(written[0]) == (500, 500)
    assert _names_layer_class_method(picture_texts["explain_decision-boundary.png"], "decision-boundary")
    (entry,) = json.load(open(os.path.join(run, "explain.json")))
    assert _names_layer_class_method(entry["caption"], "decision-boundary")
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


def test_gradcam_default_on_a_trained_shapes_model_is_never_blank(tmp_path):
    """The shapes model (conv → BN → ReLU blocks) trained one epoch: at the raw last conv, the
    map of about one test image in six was blank; at the block's ReLU output, none is."""
    from lamina import vis
    from lamina.train.run import load_run

    run = _train(str(tmp_path / "shapes"), data="shapes")
    config, model, _ = load_run(run)
    xs, _, _ = explain_cli._test_data(config, 60)
    # the expected layer, read off the model: the ReLU that follows the last conv and its BN
    kinds = [type(m).__name__ for m in model.features]
    last_conv = max(i for i, k in enumerate(kinds) if k == "Conv2d")
    assert kinds[last_conv + 1:last_conv + 3] == ["BatchNorm2d", "ReLU"]
    layer = f"features.{last_conv + 2}"
    assert vis.attribution.conv_block_layer(model, xs[:1]) == layer
    cam = vis.grad_cam(model, xs)
    assert cam.shape == (60, 32, 32)
    assert (cam.reshape(60, -1).max(1) > 0).all(), "a blank Grad-CAM map at the default layer"
    explain_cli.explain(run, "gradcam")
    (entry,) = json.load(open(os.path.join(run, "explain.json")))
    assert f"layer {layer}" in entry["caption"] and "gradcam" in entry["caption"] and "class " in entry["caption"]
