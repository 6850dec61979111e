"""What the command line must not do silently: misread a dark-on-light picture, print metrics or
classes computed from NaN, hide the final metrics under ``--quiet``, print an unlabelled
confusion matrix, or show in the report settings the chosen optimizer does not use."""

import json
import re

import numpy as np
import pytest
from PIL import Image

from lamina.cli import main
from lamina.datasets import Digits


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A one-epoch digits run, trained into a folder whose summary.txt links to a file outside it."""
    base = tmp_path_factory.mktemp("checks")
    folder = base / "digits"
    folder.mkdir()
    (base / "outside.txt").write_text("not to be overwritten")
    (folder / "summary.txt").symlink_to(base / "outside.txt")
    assert main(["train", "--epochs", "1", "--batch-size", "64", "--run-dir", str(folder), "--quiet"]) == 0
    return folder


def test_the_run_folder_is_written_without_following_links(run):
    assert (run.parent / "outside.txt").read_text() == "not to be overwritten"
    assert not (run / "summary.txt").is_symlink() and "Total params" in (run / "summary.txt").read_text()


def _png(path, grey):
    Image.fromarray((grey * 255).round().astype(np.uint8)).save(path)
    return str(path)


def _predicted(out):
    return [line.split(": ")[1].split()[0] for line in out.strip().splitlines()]


def test_quiet_train_still_prints_the_final_metrics(tmp_path, capsys):
    assert main(["train", "--epochs", "1", "--run-dir", str(tmp_path / "q"), "--quiet", "--no-report"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and re.fullmatch(r"test accuracy 0\.\d{4}  test loss \d+\.\d{4}  \(.*s\)", out[0])


def test_predict_inverts_dark_on_light_images_and_says_so(run, tmp_path, capsys):
    test = Digits(train=False)
    light = [_png(tmp_path / f"d{i}.png", test.data[i, 0]) for i in range(4)]
    dark = [_png(tmp_path / f"paper{i}.png", 1.0 - test.data[i, 0]) for i in range(4)]  # dark ink on paper
    assert main(["predict", str(run), *light]) == 0
    reference = capsys.readouterr()
    assert reference.err == ""  # light-on-dark digits are taken as they are
    assert main(["predict", str(run), *dark]) == 0
    auto = capsys.readouterr()
    assert _predicted(auto.out) == _predicted(reference.out)  # exactly the same pixels after the flip
    assert auto.err.count("inverted") == 4 and "paper0.png" in auto.err and "--no-invert" in auto.err
    # explicit flags win, and nothing is guessed
    assert main(["predict", str(run), "--no-invert", *dark]) == 0
    kept = capsys.readouterr()
    assert kept.err == "" and _predicted(kept.out) != _predicted(reference.out)
    assert main(["predict", str(run), "--invert", *dark]) == 0
    forced = capsys.readouterr()
    assert forced.err == "" and _predicted(forced.out) == _predicted(reference.out)
    assert main(["predict", str(run), "--invert", *light]) == 0
    assert _predicted(capsys.readouterr().out) == _predicted(kept.out)


def test_training_background_is_only_known_for_data_with_a_fixed_background():
    from lamina.cli import _border_level, _training_background
    from lamina.datasets import Shapes

    assert _training_background(Digits(train=False)) < 0.3
    assert _training_background(Shapes(n=100, size=32, train=False, seed=0)) is None  # random colors
    ring = np.zeros((1, 1, 4, 4))
    ring[0, 0, 1:3, 1:3] = 1.0  # the 12 border pixels are 0, the 4 inner ones 1
    assert _border_level(ring).tolist() == [0.0] and _border_level(1 - ring).tolist() == [1.0]


def _nan_copy(run, dest):
    from lamina.train.checkpoint import load_checkpoint, save_checkpoint

    ck = load_checkpoint(run / "checkpoint.lamina")
    state = dict(ck["model"])
    w = np.array(state["features.0.weight"].array if hasattr(state["features.0.weight"], "array")
                 else state["features.0.weight"])
    w[0, 0, 0, 0] = np.nan
    state["features.0.weight"] = w
    dest.mkdir()
    save_checkpoint(dest / "checkpoint.lamina", model=state, config=ck["config"])
    return dest


def test_nan_weights_or_inputs_are_errors_not_predictions(run, tmp_path, capsys):
    bad = _nan_copy(run, tmp_path / "nan")
    img = tmp_path / "one.npy"
    np.save(img, Digits(train=False).data[0])
    assert main(["predict", str(bad), str(img)]) != 0
    out, err = capsys.readouterr()
    assert "p = nan" not in out and out == ""
    assert "not finite" in err and "features.0.weight" in err and err.count("\n") == 1
    assert main(["evaluate", str(bad)]) != 0
    out, err = capsys.readouterr()
    n = len(Digits(train=False))
    assert out == "" and "not finite" in err and f"{n} of {n} test images" in err and "features.0.weight" in err
    assert main(["explain", str(bad), "--method", "filters"]) != 0
    assert "NaN" in capsys.readouterr().err
    # the report of such a run says so instead of showing an accuracy
    from lamina.train.run import _loader, build_data, evaluate_model, load_run, write_report

    config, model, _ = load_run(str(bad))
    test = build_data(config, False)
    final = evaluate_model(model, _loader(config, test, False), 10)
    assert final["nonfinite_outputs"] == final["samples"] == n
    (tmp_path / "report").mkdir()
    write_report(str(tmp_path / "report"), config, [{"epoch": 1.0, "loss": 1.0}], model, final, test, [])
    title = (tmp_path / "report" / "report.html").read_text().split("<title>")[1].split("</title>")[0]
    assert "not finite" in title and "test accuracy" not in title
    # a good model, a NaN pixel
    nan_img = tmp_path / "nan.npy"
    x = Digits(train=False).data[0].copy()
    x[0, 3, 3] = np.nan
    np.save(nan_img, x)
    assert main(["predict", str(run), str(img), str(nan_img)]) != 0
    out, err = capsys.readouterr()
    assert out == "" and "not finite" in err and "nan.npy" in err and "the input holds NaN" in err
    assert main(["explain", str(run), "--method", "saliency", "--image", str(nan_img)]) != 0
    assert "the input holds NaN" in capsys.readouterr().err


def test_train_does_not_print_metrics_of_a_nonfinite_model(tmp_path, capsys, monkeypatch):
    from lamina.train import run as run_module

    def diverged(config, run_dir, **kwargs):
        return {"test_accuracy": 0.1, "test_loss": float("nan"), "train_seconds": 1.0, "nonfinite_outputs": 360,
                "samples": 360}

    monkeypatch.setattr(run_module, "train_run", diverged)
    assert main(["train", "--epochs", "1", "--run-dir", str(tmp_path / "x"), "--quiet"]) == 1
    out, err = capsys.readouterr()
    assert "test accuracy" not in out and "not finite" in err and "360 of 360" in err


def test_evaluate_confusion_is_labelled_with_class_names(run, tmp_path, capsys):
    assert main(["evaluate", str(run), "--confusion"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[1].split() == ["true", "\\", "predicted", *[str(d) for d in range(10)]]
    rows = [line.split() for line in lines[2:]]
    assert [r[0] for r in rows] == [str(d) for d in range(10)]
    counts = np.array([[int(v) for v in r[1:]] for r in rows])
    assert counts.shape == (10, 10) and counts.sum() == len(Digits(train=False))
    assert counts.sum(1).tolist() == np.bincount(Digits(train=False).targets, minlength=10).tolist()
    # a data set with named classes: an untrained shapes checkpoint
    import lamina
    from lamina.train.checkpoint import save_checkpoint
    from lamina.train.run import build_model, default_config

    lamina.manual_seed(0)
    config = {**default_config(), "data": "shapes", "model_kwargs": {"width": 4}}
    save_checkpoint(tmp_path / "checkpoint.lamina", model=build_model(config).state_dict(), config=json.dumps(config))
    assert main(["evaluate", str(tmp_path), "--confusion"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    names = lines[1].split()[3:]
    assert names == ["circle", "square", "triangle", "cross"]
    assert [line.split()[0] for line in lines[2:]] == names


def test_report_config_shows_only_the_chosen_optimizers_settings(run):
    config = json.loads((run / "config.json").read_text())
    assert config["optimizer"] == "adam" and "momentum" in config  # config.json keeps everything
    import html

    report = html.unescape((run / "report.html").read_text())
    shown = report[report.index("<h2>Configuration</h2>"):]
    assert '"optimizer": "adam"' in shown and '"lr": 0.002' in shown and "momentum" not in shown
