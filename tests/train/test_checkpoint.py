"""Checkpoints against a model, optimizer or file they do not fit (CheckpointError naming the file),
and SIGTERM during training (handled like Ctrl-C)."""

import os
import signal

import numpy as np
import pytest

import lamina
from lamina import nn, optim
from lamina.train import Callback, Trainer, TrainingInterrupted, load_checkpoint, save_checkpoint
from lamina.train.checkpoint import CheckpointError

from .test_trainer import _params, _setup


def _trained(tmp_path):
    trainer, loader = _setup(tmp_path, "ck")
    trainer.fit(loader, epochs=1)
    return trainer, tmp_path / "ck.lamina"


def test_a_state_of_another_model_is_a_checkpoint_error_naming_the_file(tmp_path):
    _, path = _trained(tmp_path)
    lamina.manual_seed(0)
    other = Trainer(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), nn.CrossEntropyLoss(),
                    optim.SGD([nn.Parameter(lamina.ones(1))], lr=0.1), progress=False)
    with pytest.raises(CheckpointError, match=r"ck.lamina'?: its model state does not fit this Sequential: Error\(s\) "
                                              r"in loading state_dict for Sequential: .*size mismatch") as e:
        other.load_checkpoint(path)
    assert "\n" not in str(e.value) and isinstance(e.value.__cause__, RuntimeError)
    trainer, _ = _setup(tmp_path, "x")
    trainer.optimizer = optim.SGD([trainer.model[0].weight], lr=0.1)  # a group of one parameter, not four
    with pytest.raises(CheckpointError, match="its optimizer state does not fit this SGD: .*parameter group"):
        trainer.load_checkpoint(path)
    trainer, _ = _setup(tmp_path, "y")
    trainer.callbacks.append(Callback())
    with pytest.raises(CheckpointError, match="holds 1 callback states but this trainer has 2 callbacks"):
        trainer.load_checkpoint(path)


@pytest.mark.parametrize("parts,message", [
    ({"model": [1, 2]}, r"'model' part is a list \[1, 2\], expected Mapping"),
    ({"model": {"w": "text"}}, "model state holds 'w': str, expected parameter names mapping to tensors"),
    ({"epoch": "3"}, "'epoch' part is a str '3', expected int"),
    ({"epoch": -1}, r"'epoch' part is an? int -1, expected int \(at least 0\)"),
    ({"step": True}, "'step' part is a bool"),
    ({"config": "{not json"}, "run configuration is not JSON"),
    ({"config": "[1, 2]"}, "run configuration is a list, expected a JSON object"),
    ({"rng": {"bit_generator": "PCG64", "state": 5}}, "random generator state is unusable"),
    ({"partial_epoch": {"seen": 3}}, "'partial_epoch' part is malformed"),
    ({"history": "abc"}, "'history' part is a str"),
])
def test_parts_of_the_wrong_kind_are_refused_on_loading(tmp_path, parts, message):
    path = tmp_path / "parts.lamina"
    save_checkpoint(path, **{"model": {"w": lamina.ones(2)}, "epoch": 1, "step": 1, **parts})
    with pytest.raises(CheckpointError, match=message) as e:
        load_checkpoint(path)
    assert "parts.lamina" in str(e.value)


def test_a_lamina_file_that_is_no_checkpoint(tmp_path):
    lamina.save({"w": lamina.ones(2)}, tmp_path / "w.lamina")
    with pytest.raises(CheckpointError, match="w.lamina' is a lamina file but not a training checkpoint"):
        load_checkpoint(tmp_path / "w.lamina")
    save_checkpoint(tmp_path / "m.lamina", model={"w": lamina.ones(2)})
    trainer, _ = _setup(tmp_path, "z")
    with pytest.raises(CheckpointError, match="m.lamina' has no 'epoch'"):
        trainer.load_checkpoint(tmp_path / "m.lamina")


class _SendSigterm(Callback):
    def on_batch_end(self, trainer, batch, logs):
        if trainer.epoch == 1 and batch == 2:
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_mid_epoch_checkpoints_like_ctrl_c_and_restores_the_handlers(tmp_path):
    full, loader = _setup(tmp_path, "full")
    full.fit(loader, epochs=3)
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda s, f: seen.append(s))
    try:
        trainer, loader = _setup(tmp_path, "term")
        trainer.callbacks.append(_SendSigterm())
        with pytest.raises(TrainingInterrupted) as e:
            trainer.fit(loader, epochs=3)
        assert e.value.signal == signal.SIGTERM and e.value.path == str(tmp_path / "term.lamina")
        handler = signal.getsignal(signal.SIGTERM)
        assert handler is not None and handler.__name__ == "<lambda>"  # the handler from before fit, back
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert seen == []  # training took the signal; the previous handler did not run
    finally:
        signal.signal(signal.SIGTERM, previous)
    ck = load_checkpoint(e.value.path)
    assert ck["epoch"] == 1 and ck["batches_done"] == 3
    resumed, loader = _setup(tmp_path, "term2", seed=5)
    resumed.callbacks.append(Callback())
    resumed.fit(loader, epochs=3, resume=e.value.path)
    for a, b in zip(_params(full.model), _params(resumed.model)):
        np.testing.assert_array_equal(a, b)


def test_handlers_are_only_installed_in_the_main_thread(tmp_path):
    import threading

    before = signal.getsignal(signal.SIGTERM)
    errors = []

    def run():
        try:
            trainer, loader = _setup(tmp_path, "thread")
            trainer.fit(loader, epochs=1)
        except Exception as e:  # noqa: BLE001  (reported to the main thread below)
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert errors == [] and signal.getsignal(signal.SIGTERM) is before
