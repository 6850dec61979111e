"""The training loop: exact resume (between epochs and mid-epoch after Ctrl-C), NaN stops,
callbacks, metrics and checkpoints."""

import os
import signal

import numpy as np
import pytest

import lamina
import lamina.nn.functional as F
from lamina import nn, optim
from lamina.train import (
    SWA,
    Callback,
    ConfusionMatrix,
    Curriculum,
    EarlyStopping,
    GradientClipping,
    ModelCheckpoint,
    TopKAccuracy,
    Trainer,
    TrainingError,
    TrainingInterrupted,
    load_checkpoint,
)
from lamina.train.metrics import Accuracy, MeanAbsoluteError, MeanSquaredError
from lamina.utils.data import DataLoader, TensorDataset


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1).astype(np.int64)
    return TensorDataset(lamina.tensor(X), lamina.tensor(y))


def _setup(tmp_path, name, seed=0):
    """Model with dropout (uses the global RNG), shuffled loader, momentum SGD and a schedule."""
    lamina.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    loader = DataLoader(_data(), batch_size=16, shuffle=True, seed=123)
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt, scheduler=sched, progress=False,
                      checkpoint_path=tmp_path / f"{name}.lamina")
    return trainer, loader


def _params(model):
    return [p.array.copy() for p in model.parameters()]


def test_resume_after_an_epoch_reproduces_the_uninterrupted_run(tmp_path):
    full, loader = _setup(tmp_path, "full")
    h_full = full.fit(loader, epochs=4)
    part, loader = _setup(tmp_path, "part")
    part.fit(loader, epochs=1)  # "killed" after epoch 1: only its checkpoint survives
    resumed, loader = _setup(tmp_path, "resumed", seed=99)  # different init: all of it must come from the file
    h_res = resumed.fit(loader, epochs=4, resume=tmp_path / "part.lamina")
    assert [h["loss"] for h in h_res] == [h["loss"] for h in h_full]
    assert [h["lr"] for h in h_res] == [h["lr"] for h in h_full]
    for a, b in zip(_params(full.model), _params(resumed.model)):
        np.testing.assert_array_equal(a, b)


class _SendSigint(Callback):
    def __init__(self, epoch, batch):
        self.epoch, self.batch = epoch, batch

    def on_batch_end(self, trainer, batch, logs):
        if trainer.epoch == self.epoch and batch == self.batch:
            os.kill(os.getpid(), signal.SIGINT)


def test_sigint_mid_epoch_saves_a_loadable_checkpoint_and_resume_is_exact(tmp_path):
    full, loader = _setup(tmp_path, "full")
    h_full = full.fit(loader, epochs=3)
    trainer, loader = _setup(tmp_path, "int")
    trainer.callbacks.append(_SendSigint(epoch=1, batch=2))
    with pytest.raises(TrainingInterrupted) as e:
        trainer.fit(loader, epochs=3)
    ck = load_checkpoint(e.value.path)
    assert ck["epoch"] == 1 and ck["batches_done"] == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    resumed, loader = _setup(tmp_path, "int2", seed=5)
    resumed.callbacks.append(Callback())  # the same number of callbacks as the interrupted trainer
    h_res = resumed.fit(loader, epochs=3, resume=e.value.path)
    np.testing.assert_allclose([h["loss"] for h in h_res][1:], [h["loss"] for h in h_full][1:], rtol=1e-6)
    for a, b in zip(_params(full.model), _params(resumed.model)):
        np.testing.assert_array_equal(a, b)


def test_nan_loss_stops_with_the_step_and_last_checkpoint(tmp_path):
    trainer, loader = _setup(tmp_path, "nan")
    calls = {"n": 0}

    def loss_fn(out, y):
        calls["n"] += 1
        loss = F.cross_entropy(out, y)
        return loss * float("nan") if calls["n"] == 8 else loss

    trainer.loss_fn = loss_fn
    with pytest.raises(TrainingError, match=r"loss is nan at epoch 2, batch 2 \(step 8\); last good checkpoint: .*nan.lamina"):
        trainer.fit(loader, epochs=3)


def test_checkpoints_are_atomic_and_complete(tmp_path):
    trainer, loader = _setup(tmp_path, "ck")
    trainer.fit(loader, epochs=2)
    ck = load_checkpoint(tmp_path / "ck.lamina")
    assert set(ck) >= {"model", "optimizer", "epoch", "step", "history", "rng", "loader", "callbacks"}
    assert ck["epoch"] == 2 and ck["step"] == 12 and len(ck["history"]) == 2
    assert [f for f in os.listdir(tmp_path) if f.startswith(".lamina-")] == []
    with pytest.raises(ValueError, match="not a training checkpoint"):
        lamina.save({"x": 1}, tmp_path / "other.lamina")
        load_checkpoint(tmp_path / "other.lamina")


def test_early_stopping_and_restore_best_weights(tmp_path):
    trainer, loader = _setup(tmp_path, "es")
    es = EarlyStopping(monitor="loss", patience=2, min_delta=10.0, restore_best_weights=True)  # nothing improves by 10
    trainer.callbacks.append(es)
    best = {}

    class Snap(Callback):
        def on_epoch_end(self, t, epoch, logs):
            if epoch == 0:
                best.update({k: v.array.copy() for k, v in t.model.state_dict().items()})

    trainer.callbacks.append(Snap())
    history = trainer.fit(loader, epochs=10)
    assert len(history) == 3 and es.stopped_epoch == 2
    for k, v in trainer.model.state_dict().items():
        np.testing.assert_array_equal(v.array, best[k])


def test_gradient_clipping_callback_bounds_the_norm(tmp_path):
    trainer, loader = _setup(tmp_path, "clip")
    norms = []

    class Watch(Callback):
        def on_after_backward(self, t):
            g = np.sqrt(sum(float((p.grad.array ** 2).sum()) for p in t.model.parameters() if p.grad is not None))
            norms.append(g)

    trainer.callbacks += [GradientClipping(max_norm=0.05), Watch()]
    trainer.fit(loader, epochs=1)
    assert max(norms) <= 0.05 * (1 + 1e-5) and trainer.last_grad_norm > 0.05


def test_curriculum_orders_the_samples(tmp_path):
    ds = _data(32)
    seen = []
    cur = Curriculum(lambda epoch, t: list(range(31, -1, -1)) if epoch == 0 else list(range(16)))
    model = nn.Linear(4, 3)

    def loss_fn(out, y):
        seen.append(y.tolist())
        return F.cross_entropy(out, y)

    loader = DataLoader(ds, batch_size=8, sampler=cur.sampler)
    Trainer(model, loss_fn, optim.SGD(model.parameters(), lr=0.1), callbacks=[cur], progress=False).fit(loader, 2)
    assert seen[0] == ds.tensors[1].array[[31, 30, 29, 28, 27, 26, 25, 24]].tolist()
    assert len(seen) == 4 + 2  # 32 samples in epoch 1, then the first 16


def test_swa_callback_averages_the_weights_of_each_epoch(tmp_path):
    trainer, loader = _setup(tmp_path, "swa")
    snaps = []

    class Snap(Callback):
        def on_epoch_end(self, t, epoch, logs):
            if epoch >= 1:
                snaps.append(_params(t.model))

    trainer.callbacks = [Snap(), SWA(swa_start=1, swa_lr=0.05)]
    trainer.fit(loader, epochs=4)
    for i, p in enumerate(_params(trainer.model)):
        np.testing.assert_allclose(p, np.mean([s[i] for s in snaps], axis=0), rtol=1e-5, atol=1e-7)


def test_model_checkpoint_keeps_the_best(tmp_path):
    trainer, loader = _setup(tmp_path, "mc")
    trainer.callbacks.append(ModelCheckpoint(tmp_path / "best.lamina", monitor="accuracy"))
    trainer.fit(loader, epochs=2, val_data=loader)
    sd = lamina.load(tmp_path / "best.lamina")
    assert list(sd) == list(trainer.model.state_dict())


def test_metrics_by_hand():
    out = lamina.tensor([[2.0, 1.0, 0.0], [0.1, 0.5, 0.4], [0.0, 0.2, 3.0], [1.0, 0.0, 0.5]])
    y = lamina.tensor([0, 2, 2, 1])
    acc, top2, cm = Accuracy(), TopKAccuracy(2), ConfusionMatrix(3)
    for m in (acc, top2, cm):
        m.update(out, y)
    assert acc.compute() == 0.5  # rows 0 and 2 right
    assert top2.compute() == 0.75  # row 3: class 1 has the lowest score
    np.testing.assert_array_equal(cm.compute(), [[1, 0, 0], [1, 0, 0], [0, 1, 1]])
    np.testing.assert_allclose(cm.precision(), [0.5, 0.0, 1.0])
    np.testing.assert_allclose(cm.recall(), [1.0, 0.0, 0.5])
    mse, mae = MeanSquaredError(), MeanAbsoluteError()
    for m in (mse, mae):
        m.update(lamina.tensor([1.0, 2.0]), lamina.tensor([0.0, 4.0]))
    assert mse.compute() == 2.5 and mae.compute() == 1.5


def test_history_is_data_and_evaluate_predict(tmp_path):
    trainer, loader = _setup(tmp_path, "h")
    history = trainer.fit(loader, epochs=2, val_data=loader)
    assert [h["epoch"] for h in history] == [1.0, 2.0]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "samples_per_s"} <= set(history[0])
    ev = trainer.evaluate(loader)
    assert ev["loss"] == pytest.approx(history[-1]["val_loss"])
    assert trainer.predict(loader).shape == (96, 3)


def test_auxiliary_classifier_outputs_are_trained_with_weight_0_3():
    from collections import namedtuple

    Outputs = namedtuple("Outputs", ["logits", "aux_logits2", "aux_logits1"])

    class AuxNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.main, self.a1, self.a2 = nn.Linear(4, 3), nn.Linear(4, 3), nn.Linear(4, 3)

        def forward(self, x):
            return Outputs(self.main(x), self.a2(x), self.a1(x)) if self.training else self.main(x)

    lamina.manual_seed(0)
    model = AuxNet()
    x, y = lamina.randn(8, 4), lamina.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.0), progress=False)
    h = trainer.fit([(x, y)], epochs=1)
    expected = (F.cross_entropy(model.main(x), y) + 0.3 * (F.cross_entropy(model.a1(x), y)
                                                            + F.cross_entropy(model.a2(x), y))).item()
    assert h[0]["loss"] == pytest.approx(expected, rel=1e-6)
    assert trainer.evaluate([(x, y)])["loss"] == pytest.approx(F.cross_entropy(model.main(x), y).item(), rel=1e-6)
