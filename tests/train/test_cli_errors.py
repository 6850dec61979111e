"""User errors on the command line: one line naming the file and the problem, exit code 2, no
traceback (``--debug`` or ``LAMINA_DEBUG=1`` shows it); SIGTERM during training is handled like Ctrl-C."""

import io
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import warnings
import zipfile

import numpy as np
import pytest

import lamina
from lamina.cli import main
from lamina.train import load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "ok"
    assert main(["train", "--epochs", "1", "--batch-size", "64", "--run-dir", str(run), "--quiet", "--no-report"]) == 0
    return run


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "digit.npy"
    np.save(path, np.zeros((8, 8), np.float32))
    return str(path)


def _members(path):
    with zipfile.ZipFile(path) as z:
        return [(n, z.read(n)) for n in z.namelist()]


def _rezip(path, members):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names, on purpose
        with zipfile.ZipFile(path, "w") as z:
            for name, data in members:
                z.writestr(name, data)


def _npy(arr, allow_pickle=False):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def _truncate(ck, keep):
    ck.write_bytes(ck.read_bytes()[:keep])


def _dup(ck):
    m = _members(ck)
    _rezip(ck, m + [m[0]])


def _tree_is_a_list(ck):
    _rezip(ck, [(n, _npy(np.frombuffer(b'{"format": "lamina", "version": 1, "tree": [1]}', np.uint8))
                 if n == "__lamina__.npy" else d) for n, d in _members(ck)])


def _object_array(ck):
    _rezip(ck, [(n, _npy(np.array([1, None], dtype=object), allow_pickle=True) if n == "a0.npy" else d)
                for n, d in _members(ck)])


def _huge_shape(ck):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (1 << 40,)})
    _rezip(ck, [(n, buf.getvalue() + bytes(16) if n == "a0.npy" else d) for n, d in _members(ck)])


def _resave(ck, **change):
    parts = load_checkpoint(ck)
    parts.update(change)
    save_checkpoint(ck, **{k: v for k, v in parts.items() if k != "format"})


def _other_shape(ck):
    model = load_checkpoint(ck)["model"]
    key = next(iter(model))
    model[key] = lamina.zeros(*[s + 1 for s in model[key].shape])
    _resave(ck, model=model)


def _missing_key(ck):
    model = load_checkpoint(ck)["model"]
    model.pop(next(iter(model)))
    _resave(ck, model=model)


DAMAGE = {
    "truncated to half": lambda ck: _truncate(ck, ck.stat().st_size // 2),
    "truncated to 100 bytes": lambda ck: _truncate(ck, 100),
    "empty": lambda ck: _truncate(ck, 0),
    "duplicate member names": _dup,
    "wrong JSON structure": _tree_is_a_list,
    "object array": _object_array,
    "header declares a huge array": _huge_shape,
    "model state of another shape": _other_shape,
    "model state missing a key": _missing_key,
    "model state a list": lambda ck: _resave(ck, model=[1, 2]),
    "config not JSON": lambda ck: _resave(ck, config="{oops"),
    "not a checkpoint": lambda ck: lamina.save({"w": lamina.ones(2)}, ck),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
@pytest.mark.parametrize("command", ["evaluate", "predict", "train"])
def test_a_damaged_checkpoint_gives_one_line_and_exit_code_2(run, image, tmp_path, capsys, case, command):
    bad = tmp_path / "bad"
    shutil.copytree(run, bad)
    DAMAGE[case](bad / "checkpoint.lamina")
    argv = {"evaluate": [command, str(bad)], "predict": [command, str(bad), image],
            "train": [command, "--resume", str(bad), "--epochs", "2", "--quiet", "--no-report"]}[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"lamina {command}: "), err
    assert str(bad / "checkpoint.lamina") in err and "Traceback" not in err


def _python_lamina(*args, env=None):
    return subprocess.run([sys.executable, "-m", "lamina", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_debug_shows_the_traceback(run, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(run, bad)
    _other_shape(bad / "checkpoint.lamina")
    r = _python_lamina("evaluate", str(bad), env={"LAMINA_DEBUG": "0"})
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "its model state does not fit this" in r.stderr and "size mismatch" in r.stderr
    for args, env in ((["--debug", "evaluate", str(bad)], None), (["evaluate", str(bad)], {"LAMINA_DEBUG": "1"})):
        r = _python_lamina(*args, env=env)
        assert r.returncode == 2 and "Traceback (most recent call last)" in r.stderr
        assert "CheckpointError" in r.stderr and "RuntimeError: Error(s) in loading state_dict" in r.stderr
        assert r.stderr.strip().splitlines()[-1].startswith("lamina evaluate: ")


def test_a_damaged_data_file_gives_one_line(tmp_path, capsys):
    from tests.datasets.test_files import make_mnist

    folder, _, _ = make_mnist(str(tmp_path), gz=True)
    path = os.path.join(folder, "train-images-idx3-ubyte.gz")
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    assert main(["train", "--data", "mnist", "--data-root", str(tmp_path), "--epochs", "1", "--quiet",
                 "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and path in err and "corrupt or truncated gzip" in err


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("workers", ["0", "1"])
def test_an_image_bomb_in_a_folder_data_set_gives_one_line(tmp_path, capsys, workers):
    import zlib

    Image = pytest.importorskip("PIL.Image")
    root = tmp_path / "data"
    for part in ("train", "test"):
        for c in ("a", "b"):
            os.makedirs(root / part / c)
            for k in range(3):
                Image.fromarray(np.full((4, 4, 3), 40 * k, np.uint8)).save(root / part / c / f"{k}.png")
    bomb = root / "train" / "a" / "1.png"  # its header now declares 20000 × 20000 pixels
    data = bytearray(bomb.read_bytes())
    i = data.index(b"IHDR")
    data[i + 4:i + 12] = struct.pack(">II", 20_000, 20_000)
    data[i + 17:i + 21] = struct.pack(">I", zlib.crc32(bytes(data[i:i + 17])))
    bomb.write_bytes(bytes(data))
    assert main(["train", "--data", "folder", "--data-root", str(root), "--epochs", "1", "--batch-size", "2",
                 "--num-workers", workers, "--quiet", "--no-report", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bomb) in err and "refused image" in err and "Traceback" not in err


def test_sigterm_on_the_command_line_saves_a_checkpoint_and_exits_like_ctrl_c(tmp_path):
    run = tmp_path / "sigterm"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.Popen([sys.executable, "-m", "lamina", "train", "--epochs", "50", "--run-dir", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 300
    line = ""
    while "epoch 1/50" not in line and time.time() < deadline:  # wait until training is under way
        line = proc.stdout.readline()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err  # as Ctrl-C: the same message and exit code
    assert "checkpoint saved" in err and "--resume" in err and "Traceback" not in err
    ck = load_checkpoint(run / "checkpoint.lamina")
    assert ck["epoch"] >= 1 and "config" in ck
    assert not [p for p in os.listdir(run) if p.endswith(".lamina-tmp")]
    assert main(["train", "--resume", str(run), "--epochs", str(ck["epoch"] + 1), "--quiet", "--no-report"]) == 0
