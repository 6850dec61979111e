"""``lamina train --task detect``: a short run per detector family, then evaluate, predict and the
report on its folder; the user's COCO and VOC files; resume; fine-tuning; errors in one line."""

import json
import os
import re

import numpy as np
import pytest

from lamina.cli import main
from lamina.train.checkpoint import load_checkpoint

Image = pytest.importorskip("PIL.Image", reason="Pillow is not installed (pip install 'lamina[image]')")

TINY = ["--epochs", "1", "--train-images", "12", "--test-images", "4", "--batch-size", "4", "--image-size", "64",
        "--quiet"]


def train(tmp_path, name, *args):
    run = str(tmp_path / name)
    assert main(["train", "--task", "detect", *args, "--run-dir", run]) == 0
    return run


def write_png(path, h=50, w=70, seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def yolo_run(tmp_path_factory):
    return train(tmp_path_factory.mktemp("det"), "yolo", "--model", "yolov1", *TINY, "--no-report")


def test_yolov1_run_folder_holds_a_complete_config_and_the_loss_parts(yolo_run):
    config = json.load(open(os.path.join(yolo_run, "config.json")))
    assert config["task"] == "detect" and config["model"] == "yolov1" and config["data"] == "shapes-det"
    assert config["classes"] == ["background", "circle", "square", "triangle", "cross"]
    assert config["model_kwargs"] == {"num_classes": 5, "image_size": 64, "grid_size": 4}
    header = open(os.path.join(yolo_run, "metrics.csv")).readline().strip().split(",")
    for key in ("loss", "loss_coord", "loss_conf_obj", "loss_conf_noobj", "loss_class", "val_loss", "val_loss_coord"):
        assert key in header
    rows = open(os.path.join(yolo_run, "metrics.csv")).read().strip().splitlines()[1:]
    row = dict(zip(header, rows[0].split(",")))
    parts = sum(float(row[k]) for k in ("loss_coord", "loss_conf_obj", "loss_conf_noobj", "loss_class"))
    assert float(row["loss"]) == pytest.approx(parts, rel=1e-4)  # the loss trained is the sum of the parts


def test_evaluate_prints_the_coco_summary_and_the_per_class_table(yolo_run, capsys):
    capsys.readouterr()
    assert main(["evaluate", yolo_run]) == 0
    out = capsys.readouterr().out
    assert len(re.findall(r"Average (Precision|Recall) +\((AP|AR)\) @\[ IoU=", out)) == 12
    assert re.search(r"Class\s+Images\s+Instances\s+P\s+R\s+mAP50\s+mAP50-95", out)
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()
            and line.split()[0] in ("circle", "square", "triangle", "cross", "all")}
    assert set(rows) == {"circle", "square", "triangle", "cross", "all"}
    assert rows["all"][1] == "4"  # the 4 test images
    assert int(rows["all"][2]) == sum(int(rows[c][2]) for c in ("circle", "square", "triangle", "cross"))
    saved = json.load(open(os.path.join(yolo_run, "results.json")))
    assert f"mAP@0.5 {saved['box']['map_50']:.4f}" in out  # the same test set, the same model: the same numbers


def test_predict_draws_the_detections_on_the_users_image(yolo_run, tmp_path, capsys):
    img = str(tmp_path / "photo.png")
    write_png(img, 50, 70)
    capsys.readouterr()
    assert main(["predict", yolo_run, img, "--out", str(tmp_path / "out"), "--score-thresh", "0.0"]) == 0
    out = capsys.readouterr().out
    assert "photo.png:" in out and "detections (score ≥ 0)" in out
    drawn = Image.open(tmp_path / "out" / "photo_pred.png")
    assert drawn.size == (70, 50)  # drawn on the user's image at its own size
    boxes = re.findall(r"box \(([-\d.]+), ([-\d.]+), ([-\d.]+), ([-\d.]+)\)", out)
    assert boxes, out
    for x1, y1, x2, y2 in boxes:  # in the user's image's pixels, not the model's 64 × 64
        assert -1 <= float(x1) <= float(x2) <= 71 and -1 <= float(y1) <= float(y2) <= 51
    assert np.asarray(drawn, dtype=float).std() > 0


def test_resume_continues_to_more_epochs(tmp_path):
    run = train(tmp_path, "r", "--model", "yolov1", *TINY, "--no-report")
    assert main(["train", "--resume", run, "--epochs", "2", "--quiet", "--no-report"]) == 0
    rows = open(os.path.join(run, "metrics.csv")).read().strip().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["1.0", "2.0"]
    assert load_checkpoint(os.path.join(run, "checkpoint.lamina"))["epoch"] == 2
    # the data and the model stay as they were built
    assert main(["train", "--resume", run, "--image-size", "96", "--quiet"]) == 2
    assert main(["train", "--resume", run, "--task", "segment", "--quiet"]) == 2


@pytest.mark.parametrize("model", ["fasterrcnn", "maskrcnn"])
def test_rcnn_run_report_has_predictions_pr_curves_and_anchor_coverage(tmp_path, model, capsys):
    pytest.importorskip("matplotlib")
    run = train(tmp_path, model, "--model", model, *TINY)
    html = open(os.path.join(run, "report.html"), encoding="utf-8").read()
    for needle in ("Predictions over the ground truth", "Precision-recall curves (boxes)", "AP per class",
                   "Anchor coverage", "COCO summary, boxes", "mAP50-95"):
        assert needle in html
    assert ("COCO summary, masks" in html) == (model == "maskrcnn")
    cov = re.search(r"([\d.]+)% of (\d+) ground-truth boxes \(test\) have an anchor with IoU ≥ 0.7", html)
    assert cov and int(cov.group(2)) > 0
    capsys.readouterr()
    assert main(["evaluate", run]) == 0
    out = capsys.readouterr().out
    assert out.count("COCO summary,") == (2 if model == "maskrcnn" else 1)


def test_anchor_coverage_counts_boxes_an_anchor_reaches():
    """A box equal to an anchor is covered (IoU 1); a box far smaller than every anchor is not."""
    import lamina
    from lamina.models.detection import fasterrcnn_small
    from lamina.train.task_eval import anchor_coverage

    model = fasterrcnn_small(num_classes=2, min_size=64, max_size=64)
    # anchors of size 16 (ratio 1) are centred on the stride-8 grid: (0, 0)-centred one is (-8, -8, 8, 8)
    big = {"boxes": lamina.tensor([[0.0, 0.0, 16.0, 16.0]]), "labels": lamina.tensor([1])}
    tiny = {"boxes": lamina.tensor([[30.0, 30.0, 32.0, 32.0]]), "labels": lamina.tensor([1])}
    cov = anchor_coverage(model, [([lamina.rand(3, 64, 64), lamina.rand(3, 64, 64)], [big, tiny])])
    assert cov["boxes"] == 2 and cov["threshold"] == 0.7
    assert cov["best_iou"][0] == pytest.approx(1.0) and cov["best_iou"][1] < 0.1
    assert cov["coverage"] == 0.5


def make_coco(root, n_train=6, n_test=3):
    for split, n in (("train", n_train), ("test", n_test)):
        os.makedirs(root / split, exist_ok=True)
        images, anns = [], []
        for i in range(n):
            write_png(root / split / f"{i}.png", 40, 48, seed=i)
            images.append({"id": i + 1, "file_name": f"{i}.png", "height": 40, "width": 48})
            anns.append({"id": i + 1, "image_id": i + 1, "category_id": 7 if i % 2 else 3, "iscrowd": 0,
                         "bbox": [5, 6, 20, 18], "area": 360,
                         "segmentation": [[5, 6, 25, 6, 25, 24, 5, 24]]})
        cats = [{"id": 3, "name": "cup"}, {"id": 7, "name": "pen"}]
        with open(root / f"{split}.json", "w") as f:
            json.dump({"images": images, "annotations": anns, "categories": cats}, f)


def make_voc(root, n_train=6, n_test=3):
    os.makedirs(root / "Annotations")
    os.makedirs(root / "JPEGImages")
    os.makedirs(root / "ImageSets" / "Main")
    ids = {"train": [f"a{i}" for i in range(n_train)], "test": [f"b{i}" for i in range(n_test)]}
    for split, names in ids.items():
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(names) + "\n")
        for i, name in enumerate(names):
            Image.fromarray(np.full((40, 48, 3), 60 * (i % 4), np.uint8)).save(root / "JPEGImages" / f"{name}.jpg")
            cls = "dog" if i % 2 else "cat"
            (root / "Annotations" / f"{name}.xml").write_text(
                f"<annotation><filename>{name}.jpg</filename><size><width>48</width><height>40</height>"
                f"<depth>3</depth></size><object><name>{cls}</name><difficult>0</difficult><bndbox><xmin>5</xmin>"
                "<ymin>6</ymin><xmax>25</xmax><ymax>24</ymax></bndbox></object></annotation>")


@pytest.mark.parametrize("data,model", [("coco", "maskrcnn"), ("voc", "yolov1")])
def test_users_files_train_and_evaluate(tmp_path, data, model, capsys):
    root = tmp_path / data
    (make_coco if data == "coco" else make_voc)(root)
    run = train(tmp_path, "run", "--model", model, "--data", data, "--data-root", str(root), "--epochs", "1",
                "--batch-size", "3", "--image-size", "64", "--quiet", "--no-report")
    config = json.load(open(os.path.join(run, "config.json")))
    assert config["classes"] == (["background", "cup", "pen"] if data == "coco" else ["background", "cat", "dog"])
    assert config["data_root"] == str(root)
    capsys.readouterr()
    assert main(["evaluate", run]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^all\s+3\s+3\s", out, re.M)  # 3 test images, one object each


def test_backbone_from_a_classification_run_is_loaded_and_frozen(tmp_path):
    from lamina.train.checkpoint import save_checkpoint
    from lamina.train.run import build_model, resolve_config

    # a classification run folder as lamina train writes it (its weights random: trained or not, they must arrive)
    cls_run = str(tmp_path / "cls")
    cls_config = resolve_config({"data": "shapes"})
    save_checkpoint(os.path.join(cls_run, "checkpoint.lamina"), model=build_model(cls_config).state_dict(),
                    config=json.dumps(cls_config), epoch=1, step=1)
    run = train(tmp_path, "ft", "--model", "yolov1", *TINY, "--no-report", "--backbone-from", cls_run,
                "--trainable-layers", "0", "--freeze-bn")
    config = json.load(open(os.path.join(run, "config.json")))
    assert config["backbone_config"]["model"] == "lenet_small" and config["freeze_bn"] is True
    source = load_checkpoint(os.path.join(cls_run, "checkpoint.lamina"))["model"]
    tuned = load_checkpoint(os.path.join(run, "checkpoint.lamina"))["model"]
    convs = [k for k in source if k.endswith("weight") and source[k].ndim == 4]
    assert convs
    for k in convs:  # loaded, then frozen: bit-identical after a training epoch
        assert np.array_equal(tuned[f"backbone.{k}"].numpy(), source[k].numpy())
    head = [k for k in tuned if k.startswith("head.") and k.endswith("weight")]
    assert head
    assert main(["evaluate", run]) == 0  # the run folder rebuilds the same model


def test_gradual_unfreezing_and_discriminative_lrs(tmp_path, capsys):
    from lamina.train.task_config import resolve_task_config
    from lamina.train.task_models import apply_finetuning, backbone_stages, build_task_model, param_groups

    config = resolve_task_config({"task": "detect", "model": "fasterrcnn", "image_size": 64, "lr": 1e-2,
                                  "lr_decay": 10.0, "trainable_layers": 1})
    model = build_task_model(config)
    apply_finetuning(model, config)
    stages = backbone_stages(model)
    assert stages == [["backbone.body.0"], ["backbone.body.1"], ["backbone.body.2"]]
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith(("backbone.body.0.", "backbone.body.1.")) for n in frozen)
    groups = param_groups(model, config)
    assert [g["lr"] for g in groups] == pytest.approx([1e-5, 1e-4, 1e-3, 1e-2])
    capsys.readouterr()
    run = train(tmp_path, "gu", "--model", "fasterrcnn", *TINY[:-1], "--no-report", "--trainable-layers", "1",
                "--unfreeze-every", "1", "--epochs", "3")
    out = capsys.readouterr().out
    assert "epoch 2: unfroze backbone.body.1" in out and "epoch 3: unfroze backbone.body.0" in out
    assert os.path.exists(os.path.join(run, "checkpoint.lamina"))


@pytest.mark.parametrize("args,needle", [
    (["--task", "detect", "--model", "unet"], "--task detect trains the models yolov1, fasterrcnn, maskrcnn"),
    (["--task", "detect", "--data", "coco"], "data 'coco' reads your own files: give --data-root"),
    (["--task", "detect", "--model", "maskrcnn", "--data", "voc", "--data-root", "."], "VOC XML files hold boxes"),
    (["--task", "detect", "--data", "digits"], "--task detect reads the data shapes-det, coco, voc"),
    (["--image-size", "64"], "--image-size: options of --task detect|segment"),
    (["--data", "shapes-det"], "--data shapes-det: options of --task detect|segment"),
    (["--task", "detect", "--backbone-from", "nowhere"], "no checkpoint at 'nowhere"),
    (["--task", "detect", "--data", "coco", "--data-root", "missing-dir"], "is not a folder"),
])
def test_errors_are_one_line_and_leave_no_run_folder(tmp_path, capsys, args, needle):
    run = tmp_path / "run"
    assert main(["train", *args, "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not run.exists()


@pytest.mark.parametrize("size, grid", [(96, 6), (64, 4), (112, 7)])
def test_yolov1_grid_is_the_backbone_map(size, grid):
    """The recipe's grid is one cell per 16 pixels, so the small backbone's stride-16 map is the grid
    (no uneven pooling of a larger map), unless the user sets grid_size."""
    import lamina
    from lamina.train.task_config import resolve_task_config
    from lamina.train.task_models import build_task_model

    config = resolve_task_config({"task": "detect", "model": "yolov1", "image_size": size})
    assert config["model_kwargs"]["grid_size"] == grid
    model = build_task_model(config)
    assert tuple(model.backbone(lamina.rand(1, 3, size, size)).shape[-2:]) == (grid, grid)
    own = resolve_task_config({"task": "detect", "model": "yolov1", "model_kwargs": {"grid_size": 5}})
    assert own["model_kwargs"]["grid_size"] == 5
