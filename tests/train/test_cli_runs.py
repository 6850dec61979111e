"""Every run folder ``lamina train`` writes can be evaluated, predicted with and explained; what it
cannot train is refused before anything is written; the data's classes must be the run's."""

import json
import os
import re
import struct

import numpy as np
import pytest

from lamina import nn
from lamina.cli import main
from lamina.train.run import DATASETS, SYNTHETIC, build_data, load_run, resolve_config
from lamina.train.run_config import SERIES_SETS

Image = pytest.importorskip("PIL.Image", reason="Pillow is not installed (pip install 'lamina[image]')")


def write_idx(path, array):
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
                + array.astype(np.uint8).tobytes())


def make_files(root, data, n=24, classes=("cat", "dog"), test_classes=None):
    """Small files of the format ``data`` reads (IDX, CIFAR binary, class folders of PNGs) under ``root``."""
    rng = np.random.default_rng(0)
    os.makedirs(root, exist_ok=True)
    if data in ("mnist", "fashion-mnist"):
        for prefix, m in (("train", n), ("t10k", n // 2)):
            write_idx(os.path.join(root, f"{prefix}-images-idx3-ubyte"), rng.integers(0, 256, (m, 28, 28)))
            write_idx(os.path.join(root, f"{prefix}-labels-idx1-ubyte"), rng.integers(0, 10, m))
    elif data in ("cifar10", "cifar100"):
        hundred = data == "cifar100"
        files = ["train.bin", "test.bin"] if hundred else [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
        for name in files:
            labels = (np.stack([rng.integers(0, 20, n), rng.integers(0, 100, n)], 1) if hundred
                      else rng.integers(0, 10, (n, 1)))
            with open(os.path.join(root, name), "wb") as f:
                f.write(np.concatenate([labels, rng.integers(0, 256, (n, 3072))], 1).astype(np.uint8).tobytes())
    elif data == "csv":  # one series a row: a label, then 16 steps
        path = os.path.join(root, "series.csv")
        rows = ["label," + ",".join(f"t{i}" for i in range(16))]
        rows += [f"{classes[i % 2]}," + ",".join(f"{v:.3f}" for v in rng.standard_normal(16)) for i in range(n)]
        with open(path, "w") as f:
            f.write("\n".join(rows) + "\n")
        return path
    elif data == "folder":
        for part, names in (("train", classes), ("test", test_classes or classes)):
            for c in names:
                os.makedirs(os.path.join(root, part, c))
                for k in range(n // 4):
                    Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(
                        os.path.join(root, part, c, f"{k}.png"))
    return root


# each data set with a model that fits it (the data's default unless a second one is worth it)
MATRIX = [(d, None) for d in DATASETS] + [("digits", "mlp"), ("digits", "resnet20"), ("digits", "lenet5")]


@pytest.mark.parametrize("data,model", MATRIX, ids=[f"{d}-{m or 'default'}" for d, m in MATRIX])
def test_every_run_folder_evaluates_predicts_and_explains(data, model, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--data", data, "--epochs", "1", "--batch-size", "16", "--run-dir", str(run), "--quiet",
            "--no-report"]
    if data in ("mnist", "fashion-mnist", "cifar10", "cifar100", "folder", "csv"):
        args += ["--data-root", make_files(str(tmp_path / "files"), data)]
    if model:
        args += ["--model", model]
    assert main(args) == 0, capsys.readouterr().err
    config = json.loads((run / "config.json").read_text())
    assert config == {**resolve_config({"data": data, "model": model, "epochs": 1, "batch_size": 16,
                                        "data_root": config["data_root"]}), "data_root": config["data_root"]}
    rebuilt = load_run(str(run))[1]  # the config alone rebuilds the model the checkpoint's weights fit
    assert config["model_kwargs"]["num_classes"] == len(config["classes"])
    if config["model"] != "mlp":
        expected = 1 if data in ("digits", "mnist", "fashion-mnist", *SERIES_SETS) else 3
        assert config["model_kwargs"]["in_channels"] == expected
    assert sum(p.numel() for p in rebuilt.parameters()) > 0
    capsys.readouterr()

    assert main(["evaluate", str(run)]) == 0, capsys.readouterr().err
    assert re.search(r"test accuracy [0-9.]+", capsys.readouterr().out)

    if data in SYNTHETIC:
        inputs = ["0.25,-0.5"]
        explain = ["--method", "decision-boundary"]
    else:
        ds = build_data(config, False)
        x = ds[0][0].numpy()
        if data != "folder" and config["model"] != "lenet5":  # folder and lenet5 inputs are resized images
            np.save(tmp_path / "x.npy", x)
            inputs = [str(tmp_path / "x.npy")]
        else:
            grey = x.shape[0] == 1
            pixels = (np.clip(x[0] if grey else x.transpose(1, 2, 0), 0, 1) * 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "x.png")
            inputs = [str(tmp_path / "x.png")]
        explain = ["--method", "saliency"]
    assert main(["predict", str(run), *inputs]) == 0, capsys.readouterr().err
    line = capsys.readouterr().out.strip()
    assert re.match(r"^(.*?): (.+?)  \(p = ", line).group(2) in config["classes"], line
    if data in SERIES_SETS:  # explain's methods read images; the report holds the saliency over time
        assert main(["explain", str(run), *explain]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "saliency over time" in err
        return

    assert main(["explain", str(run), *explain]) == 0, capsys.readouterr().err
    png = run / f"explain_{explain[1]}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if data in SYNTHETIC:  # the image methods refuse 2-D points in one line
        capsys.readouterr()
        assert main(["explain", str(run), "--method", "gradcam"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "decision-boundary" in err


BAD = [
    (["--model", "unet", "--data", "shapes"], "segmentation model"),
    (["--model", "fcn8s", "--data", "shapes"], "segmentation model"),
    (["--model", "deeplabv3", "--data", "shapes"], "segmentation model"),
    (["--model", "lenet_small", "--data", "spirals"], "use --model mlp"),
    (["--model", "alexnet", "--data", "digits"], "cannot take the digits inputs of shape (1, 8, 8)"),
    (["--model", "googlenet", "--data", "digits"], "cannot take the digits inputs"),
    (["--model", "lenet_small", "--hidden", "16"], "--hidden sets the layers of --model mlp"),
    (["--model", "resnet20", "--activation", "gelu"], "--activation sets the layers of --model mlp"),
    (["--model", "mlp", "--hidden", "0"], "hidden must be a list of positive layer widths"),
    (["--model", "mlp", "--model-kwargs", '{"width": 3}'], "unknown options width"),
    (["--model-kwargs", "[1]"], "--model-kwargs must be a JSON object"),
    (["--model-kwargs", '{"num_classes": 3}'], "num_classes=3 but data 'digits' has 10 classes"),
    (["--model", "resnet20", "--model-kwargs", '{"depth": 5}'], "cannot be built with"),
    (["--model", "nonexistent"], "unknown model 'nonexistent'"),
    (["--data", "cifar10"], "give --data-root"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_what_cannot_train_fails_at_once_and_writes_nothing(args, message, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *args, "--epochs", "1", "--run-dir", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err
    assert not run.exists()


def test_resume_keeps_model_and_data(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", "xor", "--epochs", "1", "--run-dir", str(run), "--quiet", "--no-report"]) == 0
    before = (run / "checkpoint.lamina").read_bytes()
    for change in (["--data", "moons"], ["--model", "lenet_small"], ["--hidden", "8"], ["--activation", "tanh"]):
        assert main(["train", "--resume", str(run), "--epochs", "2", "--quiet", *change]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and f"cannot change {change[0]}" in err
    assert (run / "checkpoint.lamina").read_bytes() == before
    assert main(["train", "--resume", str(run), "--epochs", "2", "--quiet", "--no-report"]) == 0


def test_mlp_knobs_reach_the_model(tmp_path):
    run = tmp_path / "mlp"
    assert main(["train", "--data", "moons", "--model", "mlp", "--hidden", "16", "8", "4", "--activation", "gelu",
                 "--epochs", "1", "--run-dir", str(run), "--quiet", "--no-report"]) == 0
    config, model, _ = load_run(str(run))
    assert json.loads((run / "config.json").read_text())["model_kwargs"] == {
        "num_classes": 2, "in_features": 2, "hidden": [16, 8, 4], "activation": "gelu"}
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2, 16), (16, 8), (8, 4), (4, 2)]
    assert sum(isinstance(m, nn.GELU) for m in model.modules()) == 3
    assert not any(isinstance(m, (nn.ReLU, nn.Tanh)) for m in model.modules())
    run = tmp_path / "mlp-digits"  # on images: flattened first; the default layers
    assert main(["train", "--data", "digits", "--model", "mlp", "--epochs", "1", "--run-dir", str(run), "--quiet",
                 "--no-report"]) == 0
    model = load_run(str(run))[1]
    assert isinstance(model[0], nn.Flatten)
    assert [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)] == [
        (64, 64), (64, 64), (64, 10)]
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 2


def test_per_data_defaults():
    # what --data NAME alone trains: the data's model with its options, epochs and lr
    config = resolve_config({"data": "shapes"})
    assert (config["model"], config["epochs"], config["lr"]) == ("lenet_small", 10, 3e-3)
    assert config["model_kwargs"] == {"global_pool": "max", "dropout": 0.0, "num_classes": 4, "in_channels": 3,
                                      "input_size": 32}
    assert config["classes"] == ["circle", "square", "triangle", "cross"]
    assert resolve_config(config) == config  # resolving a resolved configuration changes nothing
    # another model: none of lenet_small's options; what the user sets wins
    config = resolve_config({"data": "shapes", "model": "resnet20", "epochs": 3, "model_kwargs": {"width": 8}})
    assert config["model_kwargs"] == {"width": 8, "num_classes": 4, "in_channels": 3} and config["epochs"] == 3
    assert resolve_config({"data": "shapes", "model_kwargs": {"dropout": 0.5}})["model_kwargs"]["dropout"] == 0.5
    config = resolve_config({"data": "spirals"})
    assert (config["model"], config["epochs"], config["lr"]) == ("mlp", 100, 1e-2)
    assert config["model_kwargs"] == {"num_classes": 2, "in_features": 2, "hidden": [64, 64], "activation": "relu"}
    bare = resolve_config({})  # the quick start's embedded default is unchanged
    assert (bare["model"], bare["data"], bare["epochs"], bare["lr"]) == ("lenet_small", "digits", 15, 2e-3)
    assert bare["model_kwargs"] == {"num_classes": 10, "in_channels": 1, "input_size": 8}


@pytest.mark.slow
def test_default_recipes_reach_the_lectures_accuracy(tmp_path, capsys):
    """``--data spirals`` and ``--data shapes`` with nothing else: ≥ 95 % and ≥ 90 % on the test set."""
    for data, floor in (("spirals", 0.95), ("shapes", 0.90)):
        run = tmp_path / data
        assert main(["train", "--data", data, "--run-dir", str(run), "--quiet", "--no-report"]) == 0
        config = json.loads((run / "config.json").read_text())
        assert config["epochs"] == {"spirals": 100, "shapes": 10}[data]
        capsys.readouterr()
        assert main(["evaluate", str(run)]) == 0
        acc = float(re.search(r"test accuracy ([0-9.]+)", capsys.readouterr().out).group(1))
        assert acc >= floor, (data, acc)


def test_folder_with_different_classes_in_train_and_test(tmp_path, capsys):
    root = make_files(str(tmp_path / "files"), "folder", classes=("cat", "dog", "fox"), test_classes=("cat", "dog",
                                                                                                       "owl"))
    run = tmp_path / "run"
    assert main(["train", "--data", "folder", "--data-root", root, "--epochs", "1", "--run-dir", str(run),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert os.path.join(root, "train") in err and os.path.join(root, "test") in err
    assert "only in train: fox" in err and "only in test: owl" in err
    assert not run.exists()


def test_evaluation_data_that_disagrees_with_the_run_is_refused(tmp_path, capsys):
    root = make_files(str(tmp_path / "files"), "folder", classes=("cat", "dog"))
    run = tmp_path / "run"
    assert main(["train", "--data", "folder", "--data-root", root, "--epochs", "1", "--run-dir", str(run),
                 "--quiet", "--no-report"]) == 0
    os.rename(os.path.join(root, "test", "dog"), os.path.join(root, "test", "emu"))
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "only in the data: emu" in err and "only in the run: dog" in err
    assert main(["explain", str(run)]) == 2  # explain reads the same test data
    assert "only in the data: emu" in capsys.readouterr().err
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(tmp_path / "x.png")
    assert main(["predict", str(run), str(tmp_path / "x.png")]) == 0  # predict needs no data: the names are saved
    assert re.search(r": (cat|dog) ", capsys.readouterr().out)


def test_weights_that_do_not_fit_the_config_are_a_clear_error(tmp_path, capsys):
    from lamina.train import load_checkpoint, save_checkpoint

    run = tmp_path / "run"
    assert main(["train", "--data", "blobs", "--epochs", "1", "--run-dir", str(run), "--quiet", "--no-report"]) == 0
    ck = load_checkpoint(str(run / "checkpoint.lamina"))
    config = json.loads(ck["config"])
    config["model_kwargs"]["hidden"] = [32, 32]
    ck["config"] = json.dumps(config)
    save_checkpoint(str(run / "checkpoint.lamina"), **ck)
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "state does not fit" in err and "size mismatch" in err


def test_run_folders_written_before_the_complete_config_still_load(tmp_path, capsys):
    """A spirals run whose config says ``model_kwargs: {}`` (the old form): rebuilt as it was trained
    (two classes; the MLP's old 32-32 tanh layers)."""
    from lamina.train import load_checkpoint, save_checkpoint
    from lamina.train.run_config import _mlp

    run = tmp_path / "old"
    assert main(["train", "--data", "spirals", "--epochs", "1", "--run-dir", str(run), "--quiet", "--no-report"]) == 0
    old = _mlp(num_classes=2, in_features=2, hidden=[32, 32], activation="tanh")
    ck = load_checkpoint(str(run / "checkpoint.lamina"))
    config = json.loads(ck["config"])
    del config["classes"]
    config["model_kwargs"] = {}
    ck["config"], ck["model"] = json.dumps(config), old.state_dict()
    save_checkpoint(str(run / "checkpoint.lamina"), **ck)
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0, capsys.readouterr().err
    model = load_run(str(run))[1]
    assert sum(isinstance(m, nn.Tanh) for m in model.modules()) == 2
