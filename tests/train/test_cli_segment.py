"""``lamina train --task segment``: a short run per segmentation model, evaluate, predict and the
report on its folder; the losses; the user's mask folders; errors in one line."""

import json
import os
import re

import numpy as np
import pytest

import lamina
from lamina.cli import main

Image = pytest.importorskip("PIL.Image", reason="Pillow is not installed (pip install 'lamina[image]')")

TINY = ["--epochs", "1", "--train-images", "12", "--test-images", "4", "--batch-size", "4", "--image-size", "32",
        "--quiet"]


def train(tmp_path, name, *args):
    run = str(tmp_path / name)
    assert main(["train", "--task", "segment", *args, "--run-dir", run]) == 0
    return run


@pytest.fixture(scope="module")
def unet_run(tmp_path_factory):
    pytest.importorskip("matplotlib")
    return train(tmp_path_factory.mktemp("seg"), "unet", "--model", "unet", *TINY)


def test_unet_run_folder_config_metrics_and_report(unet_run):
    config = json.load(open(os.path.join(unet_run, "config.json")))
    assert config["task"] == "segment" and config["model"] == "unet" and config["loss"] == "ce+dice"
    assert config["model_kwargs"] == {"base_channels": 16, "depth": 3, "num_classes": 5}
    header = open(os.path.join(unet_run, "metrics.csv")).readline().strip().split(",")
    assert {"loss", "miou", "val_loss", "val_miou"} <= set(header)
    html = open(os.path.join(unet_run, "report.html"), encoding="utf-8").read()
    for needle in ("IoU per class (test)", "Test images, ground truth and prediction", "mIoU", "pixel accuracy"):
        assert needle in html
    assert os.path.exists(os.path.join(unet_run, "iou_per_class.png"))


def test_evaluate_prints_iou_per_class_and_agrees_with_the_run(unet_run, capsys):
    capsys.readouterr()
    assert main(["evaluate", unet_run]) == 0
    out = capsys.readouterr().out
    rows = dict(re.findall(r"^(\S+(?: accuracy)?)\s+([-\d.]+)$", out, re.M))
    assert set(rows) >= {"background", "circle", "square", "triangle", "cross", "mIoU", "pixel accuracy"}
    saved = json.load(open(os.path.join(unet_run, "results.json")))
    assert float(rows["mIoU"]) == pytest.approx(saved["miou"], abs=6e-4)
    ious = [float(rows[c]) for c in ("background", "circle", "square", "triangle", "cross") if rows[c] != "-"]
    assert float(rows["mIoU"]) == pytest.approx(np.mean(ious), abs=2e-3)  # the mean of the shown IoUs


def test_predict_overlays_the_class_map_on_the_users_image(unet_run, tmp_path, capsys):
    img = tmp_path / "scene.png"
    Image.fromarray((np.random.default_rng(1).random((45, 60, 3)) * 255).astype(np.uint8)).save(img)
    capsys.readouterr()
    assert main(["predict", unet_run, str(img), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{img}: ")
    assert Image.open(tmp_path / "scene_pred.png").size == (60, 45)


def test_segmentation_overlay_colours_only_the_foreground():
    from lamina.cli_tasks import draw_segmentation

    image = np.zeros((3, 4, 4))
    m = np.zeros((4, 4), np.int64)
    m[1:3, 1:3] = 2
    drawn = np.asarray(draw_segmentation(image, m, 3))
    assert (drawn[0, 0] == 0).all()  # background left as it was (black)
    assert drawn[1, 1].sum() > 0 and (drawn[1, 1] == drawn[2, 2]).all()


@pytest.mark.parametrize("model", ["fcn8s", "deeplabv3"])
def test_fcn8s_and_deeplabv3_train_and_evaluate(tmp_path, model):
    run = train(tmp_path, model, "--model", model, *TINY, "--no-report")
    assert main(["evaluate", run]) == 0


@pytest.mark.parametrize("loss", ["dice", "focal", "ce+dice"])
def test_losses(tmp_path, loss):
    run = train(tmp_path, loss, "--loss", loss, "--train-images", "8", "--test-images", "2", "--epochs", "1",
                "--image-size", "32", "--batch-size", "4", "--quiet", "--no-report")
    assert json.load(open(os.path.join(run, "config.json")))["loss"] == loss


def test_segmentation_loss_ce_ignores_255_and_weighs_classes():
    from lamina.train.task_run import segmentation_loss

    x = lamina.randn(2, 3, 4, 4)
    y = lamina.tensor(np.random.default_rng(0).integers(0, 3, (2, 4, 4)))
    y255 = y.numpy().copy()
    y255[0, 0, 0] = 255
    w = lamina.tensor([1.0, 2.0, 0.5])
    got = segmentation_loss("ce", w)(x, lamina.tensor(y255)).item()
    # by hand: -Σ w[t]·log softmax(x)[t] / Σ w[t] over the pixels not 255
    logp = x.numpy() - np.log(np.exp(x.numpy()).sum(1, keepdims=True))
    keep = y255 != 255
    t = np.where(keep, y255, 0)
    picked = np.take_along_axis(logp, t[:, None], 1)[:, 0]
    wt = w.numpy()[t] * keep
    assert got == pytest.approx(-(wt * picked).sum() / wt.sum(), rel=1e-5)


def make_masks(root, classes=True):
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 3)):
        os.makedirs(root / split / "images")
        os.makedirs(root / split / "masks")
        for i in range(n):
            Image.fromarray((rng.random((40, 36, 3)) * 255).astype(np.uint8)).save(root / split / "images" / f"{i}.png")
            m = np.zeros((40, 36), np.uint8)
            m[5:20, 5:20] = 1
            m[22:35, 10:30] = 2
            m[0, :] = 255
            Image.fromarray(m, "L").save(root / split / "masks" / f"{i}.png")
    if classes:
        (root / "classes.txt").write_text("background\nroad\ncar\n")


def test_mask_folders_train_and_evaluate(tmp_path, capsys):
    root = tmp_path / "data"
    make_masks(root)
    run = train(tmp_path, "run", "--data", "masks", "--data-root", str(root), "--epochs", "1", "--image-size", "32",
                "--batch-size", "3", "--quiet", "--no-report")
    assert json.load(open(os.path.join(run, "config.json")))["classes"] == ["background", "road", "car"]
    capsys.readouterr()
    assert main(["evaluate", run]) == 0
    assert re.search(r"^car\s+[-\d.]+$", capsys.readouterr().out, re.M)


@pytest.mark.parametrize("args,needle", [
    (["--task", "segment", "--model", "yolov1"], "--task segment trains the models unet, fcn8s, deeplabv3"),
    (["--task", "segment", "--data", "masks"], "data 'masks' reads your own files: give --data-root"),
    (["--task", "segment", "--class-weights", "1", "2"], "--class-weights needs one weight per class (5"),
    (["--task", "segment", "--image-size", "16"], "--image-size must be at least 32"),
    (["--loss", "dice"], "--loss: options of --task detect|segment"),
    (["--task", "segment", "--model-kwargs", '{"nope": 1}', "--epochs", "1", "--train-images", "4"],
     "model 'unet' cannot be built with"),
])
def test_errors_are_one_line_and_leave_no_run_folder(tmp_path, capsys, args, needle):
    run = tmp_path / "run"
    assert main(["train", *args, "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not run.exists()
