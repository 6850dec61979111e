"""``lamina train --nproc 2``: a run on two ranks, a killed rank, and an exact resume (MPI tests
skip where mpi4py is missing); rank-0-only writes checked in-process."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import lamina
from lamina import nn
from lamina.train import Trainer, ranks
from lamina.train.callbacks import ModelCheckpoint
from lamina.train.checkpoint import load_checkpoint

from ..distributed.mpi_run import ROOT, needs_mpi

TRAIN = ["--model", "mlp", "--batch-size", "16", "--no-report", "--quiet"]
EPOCHS = "4"


def _lamina(*args, **kw):
    env = dict(os.environ, PYTHONPATH=ROOT, LAMINA_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "lamina", "train", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT, **kw)


def _rank_pid(run_dir, rank):
    """The pid of rank ``rank`` of the job writing ``run_dir`` (MPICH gives each rank PMI_RANK)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if f"PMI_RANK={rank}".encode() in env and b"-m\0lamina" in cmd and run_dir.encode() in cmd:
            return int(pid)
    return None


def _weights(run_dir):
    return {k: v.array for k, v in load_checkpoint(os.path.join(run_dir, "checkpoint.lamina"))["model"].items()}


def _resume(run_dir):
    resumed = _lamina("--resume", run_dir, "--nproc", "2", "--epochs", EPOCHS, "--quiet", "--no-report")
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert out.count("test accuracy") == 1  # rank 0 alone prints
    return _weights(run_dir)


@pytest.mark.slow
@needs_mpi
def test_a_killed_rank_ends_the_job_with_a_checkpoint_that_resumes_exactly(tmp_path):
    """SIGKILL to rank 1 after epoch 1: the job ends at once, the last epoch's checkpoint resumes; SIGINT to
    mpiexec: every rank stops after the same batch and rank 0's mid-epoch checkpoint resumes. Both resumed
    runs end with the uninterrupted run's weights, bit for bit."""
    ref, cut, stop = str(tmp_path / "ref"), str(tmp_path / "cut"), str(tmp_path / "stop")
    # one job at a time: waiting MPI ranks spin, and six of them on two cores crawl
    reference = _lamina(*TRAIN, "--nproc", "2", "--epochs", EPOCHS, "--run-dir", ref)
    out, err = reference.communicate(timeout=120)
    assert reference.returncode == 0, err
    assert sorted(os.listdir(ref)) == ["checkpoint.lamina", "config.json", "metrics.csv"]
    job = _lamina(*TRAIN, "--nproc", "2", "--epochs", EPOCHS, "--run-dir", cut)
    deadline = time.monotonic() + 60
    while not os.path.exists(os.path.join(cut, "checkpoint.lamina")):  # written by rank 0 after epoch 1
        assert time.monotonic() < deadline and job.poll() is None, "no checkpoint appeared"
        time.sleep(0.02)
    pid = _rank_pid(cut, 1)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    _, err = job.communicate(timeout=60)
    assert time.monotonic() - t0 < 20, "the other rank went on waiting"
    assert job.returncode != 0
    assert f"lamina train --resume {cut}" in err
    done = load_checkpoint(os.path.join(cut, "checkpoint.lamina"))["epoch"]
    assert 1 <= done < int(EPOCHS)
    stopped = _lamina(*TRAIN, "--nproc", "2", "--epochs", EPOCHS, "--run-dir", stop)
    while not os.path.exists(os.path.join(stop, "checkpoint.lamina")):
        assert time.monotonic() < deadline and stopped.poll() is None, "no checkpoint appeared"
        time.sleep(0.02)
    time.sleep(0.2)  # into the next epoch
    with open(f"/proc/{stopped.pid}/task/{stopped.pid}/children") as f:
        (mpiexec,) = [int(p) for p in f.read().split()]
    os.kill(mpiexec, signal.SIGINT)  # what Ctrl-C does; mpiexec hands it to the ranks
    out, err = stopped.communicate(timeout=60)
    assert stopped.returncode == 130, err + out  # mpiexec's own lines are on stdout
    assert err.count("interrupted: checkpoint saved") == 1
    assert 0 < load_checkpoint(os.path.join(stop, "checkpoint.lamina"))["batches_done"]  # mid-epoch
    a = _weights(ref)
    for run in (cut, stop):
        b = _resume(run)
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(b[k], a[k], err_msg=f"{run}: {k}")


def test_only_rank_0_writes_checkpoints_and_model_files(tmp_path, monkeypatch):
    model = nn.Linear(2, 2)
    trainer = Trainer(model, nn.MSELoss(), lamina.optim.SGD(model.parameters(), lr=0.1), progress=False)
    cb = ModelCheckpoint(tmp_path / "best.lamina", save_best_only=False)
    monkeypatch.setattr(ranks, "world", lambda: (1, 2))
    assert trainer.save_checkpoint(tmp_path / "ck.lamina") == str(tmp_path / "ck.lamina")
    cb.on_epoch_end(trainer, 0, {"val_loss": 1.0})
    assert os.listdir(tmp_path) == []
    monkeypatch.setattr(ranks, "world", lambda: (0, 2))
    trainer.save_checkpoint(tmp_path / "ck.lamina")
    cb.on_epoch_end(trainer, 0, {"val_loss": 1.0})
    assert sorted(os.listdir(tmp_path)) == ["best.lamina", "ck.lamina"]


def test_nproc_must_be_positive(capsys):
    from lamina.cli import main

    assert main(["train", "--nproc", "0", "--epochs", "1"]) == 2
    assert "the number of processes should be a positive integer, got 0" in capsys.readouterr().err


def test_batch_size_must_split_over_the_ranks(monkeypatch):
    from lamina.train import run

    monkeypatch.setattr(run, "world", lambda: (0, 3))
    with pytest.raises(ValueError, match="batch_size 16 must be divisible by the number of ranks 3"):
        run._loader({"batch_size": 16}, list(range(10)), True)


def test_nproc_without_mpi4py_says_how_to_install_it(capsys, monkeypatch):
    from lamina.cli import main
    from lamina.distributed import collectives

    monkeypatch.setattr(collectives, "is_mpi_available", lambda: False)
    assert main(["train", "--nproc", "2", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("lamina train: training on several processes needs mpi4py, which is not installed: "
                   "pip install 'lamina[mpi]' (mpi4py and the mpich wheel, which bundles mpiexec)")


def test_a_batch_that_does_not_split_is_refused_before_any_rank_starts(capsys, tmp_path):
    from lamina.cli import main

    assert main(["train", "--nproc", "2", "--model", "mlp", "--batch-size", "15", "--run-dir", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.strip() == ("lamina train: --batch-size 15 must be divisible by the number of "
                                               "ranks 2 (each rank takes batch-size / ranks samples of every batch)")
    assert not (tmp_path / "r").exists()
