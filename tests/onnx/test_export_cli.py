"""``lamina export RUN --format onnx``."""


import lamina
from lamina.cli import main
from lamina.train.run import load_run

from ._helpers import onnx, rel_err, session


def test_export_a_trained_run(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--batch-size", "64", "--run-dir", str(run), "--quiet", "--no-report",
                 "--seed", "1"]) == 0
    out = tmp_path / "digits.onnx"
    assert main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)
    _, model, _ = load_run(str(run))
    x = lamina.rand(5, 1, 8, 8)
    with lamina.no_grad():
        ref = model(x).numpy()
    got = session(out.read_bytes()).run(None, {"input": x.numpy()})[0]
    assert rel_err(ref, got) < 1e-4
    assert main(["export", str(run)]) == 0  # default: model.onnx beside the checkpoint
    assert (run / "model.onnx").is_file()


def test_export_of_a_missing_run_is_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lamina export: ") and err.count("\n") == 1 and "nope" in err
