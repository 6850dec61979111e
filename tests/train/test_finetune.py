"""Fine-tuning in the training loop: gradual unfreezing on the right epochs (with the optimizer then
updating what was unfrozen, whether it held those parameters or not), its resumption, and a
backbone taken from a run folder with its trained weights."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import lamina
from lamina import models, nn, optim
from lamina.nn import functional as F
from lamina.train import Callback, GradualUnfreezing, Trainer, backbone_from_run, save_checkpoint, stage_groups
from lamina.train.run import build_model, resolve_config


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 4 * 4, 3))


def _data(n: int = 8) -> list[tuple[lamina.Tensor, lamina.Tensor]]:
    rng = np.random.default_rng(0)
    return [(lamina.tensor(rng.standard_normal((n, 1, 4, 4)).astype(np.float32)),
             lamina.tensor(rng.integers(0, 3, n)))]


class _Record(Callback):
    """What is trainable at each epoch's start, and each parameter's value at each epoch's end."""

    def __init__(self) -> None:
        self.trainable: list[list[bool]] = []
        self.values: list[dict[str, np.ndarray]] = []

    def on_epoch_begin(self, trainer, epoch):
        self.trainable.append([p.requires_grad for p in trainer.model.parameters()])

    def on_epoch_end(self, trainer, epoch, logs):
        self.values.append({n: p.detach().numpy().copy() for n, p in trainer.model.named_parameters()})


def _moved(rec: _Record, start: dict[str, np.ndarray], epoch: int, name: str) -> bool:
    before = rec.values[epoch - 1][name] if epoch else start[name]
    return not np.array_equal(rec.values[epoch][name], before)


@pytest.mark.parametrize("holds_all", [True, False])
def test_gradual_unfreezing_unfreezes_on_the_right_epochs(holds_all: bool) -> None:
    lamina.manual_seed(0)
    m = _net()
    start = {n: p.detach().numpy().copy() for n, p in m.named_parameters()}
    if holds_all:  # the optimizer holds every parameter from the start
        opt = optim.SGD(models.discriminative_lr_groups(m, lr=0.1, decay=2.0, groups=["0", "2", "5"]), lr=0.1)
    else:  # only the head: unfrozen groups are added to the optimizer
        opt = optim.SGD(m[5].parameters(), lr=0.1)
    cb, rec = GradualUnfreezing([["0"], ["2"]], every=2, lr=0.05, decay=2.0), _Record()
    Trainer(m, F.cross_entropy, opt, callbacks=[cb, rec], metrics=()).fit(_data(), epochs=5)
    # epochs 0-1: only the head; 2-3: + the second conv; 4: everything
    want = {0: (False, False), 1: (False, False), 2: (False, True), 3: (False, True), 4: (True, True)}
    for epoch, (first, second) in want.items():
        assert rec.trainable[epoch] == [first, first, second, second, True, True], epoch
        assert _moved(rec, start, epoch, "0.weight") == first, epoch
        assert _moved(rec, start, epoch, "2.weight") == second, epoch
        assert _moved(rec, start, epoch, "5.weight"), epoch
    assert np.array_equal(rec.values[1]["0.weight"], start["0.weight"])
    assert cb.unfrozen == 2 and cb.state_dict() == {"unfrozen": 2}
    lrs = [g["lr"] for g in opt.param_groups]
    assert lrs == ([0.025, 0.05, 0.1] if holds_all else [0.1, 0.025, 0.0125])
    assert sum(len(g["params"]) for g in opt.param_groups) == 6


def test_added_groups_follow_the_scheduler() -> None:
    m = _net()
    opt = optim.SGD(m[5].parameters(), lr=0.1)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    cb = GradualUnfreezing(["0", "2"], every=1, lr=0.2)
    Trainer(m, F.cross_entropy, opt, scheduler=sched, callbacks=[cb], metrics=()).fit(_data(), epochs=3)
    # groups added at epochs 1 and 2 (base lr 0.2 each, times the factor reached), then stepped with the rest
    assert sched.base_lrs == [0.1, 0.2, 0.2]
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.1 / 8, 0.2 / 8, 0.2 / 8])


def test_gradual_unfreezing_resumes_where_it_was(tmp_path) -> None:
    m = _net()
    opt = optim.SGD(models.discriminative_lr_groups(m, lr=0.1, include_frozen=True), lr=0.1)
    path = os.fspath(tmp_path / "ck.lamina")
    Trainer(m, F.cross_entropy, opt, callbacks=[GradualUnfreezing(["0", "2"], every=2), _Record()], metrics=(),
            checkpoint_path=path).fit(_data(), epochs=3)
    m2 = _net()
    opt2 = optim.SGD(models.discriminative_lr_groups(m2, lr=0.1, include_frozen=True), lr=0.1)
    cb2, rec = GradualUnfreezing(["0", "2"], every=2), _Record()
    Trainer(m2, F.cross_entropy, opt2, callbacks=[cb2, rec], metrics=()).fit(_data(), epochs=5, resume=path)
    assert rec.trainable == [[False, False, True, True, True, True], [True] * 6]  # epochs 3 and 4
    assert cb2.unfrozen == 2


def test_gradual_unfreezing_checks_its_groups() -> None:
    with pytest.raises(ValueError, match="every must be a positive"):
        GradualUnfreezing(["0"], every=0)
    m = _net()
    cb = GradualUnfreezing(["conv9"])
    with pytest.raises(ValueError, match=r"group 0 \['conv9'\] names no parameter"):
        Trainer(m, F.cross_entropy, optim.SGD(m.parameters(), lr=0.1), callbacks=[cb], metrics=()).fit(_data(), 1)


def test_stage_groups_of_a_detector() -> None:
    det = models.detection.yolov1(num_classes=3, backbone=models.classifier_backbone("resnet20"), grid_size=2,
                                  image_size=32)
    groups = stage_groups(det)
    assert groups[0][:3] == ["backbone.conv1", "backbone.bn1", "backbone.relu"] and groups[-1] == ["backbone.layer3"]
    with pytest.raises(ValueError, match="stages"):
        stage_groups(models.detection.yolov1(num_classes=3, grid_size=2, image_size=32))


def _write_run(folder, data: str, perturb: bool = True) -> nn.Module:
    config = resolve_config({"data": data})
    model = build_model(config)
    if perturb:  # weights no fresh model has
        for p in model.parameters():
            p.array[...] = np.random.default_rng(1).standard_normal(p.shape)
    os.makedirs(folder, exist_ok=True)
    save_checkpoint(os.path.join(folder, "checkpoint.lamina"), model=model.state_dict(), config=json.dumps(config),
                    epoch=1, step=1)
    return model


def test_backbone_from_run_has_the_trained_weights(tmp_path) -> None:
    trained = _write_run(tmp_path / "run", "shapes")
    bb = backbone_from_run(os.fspath(tmp_path / "run"), trainable_layers=1)
    state = trained.state_dict()
    for k, v in bb.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), state[k].numpy(), err_msg=k)
    assert bb.out_channels == 64 and bb.training
    assert [p.requires_grad for p in bb.parameters()][-1] and not next(bb.parameters()).requires_grad
    det = models.detection.yolov1(num_classes=5, backbone=bb, grid_size=2, image_size=32)
    assert det.backbone is bb


def test_backbone_from_run_of_an_mlp_is_refused(tmp_path) -> None:
    _write_run(tmp_path / "pts", "moons", perturb=False)
    with pytest.raises(ValueError, match=r"model 'mlp'.*no Conv2d"):
        backbone_from_run(os.fspath(tmp_path / "pts"))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        backbone_from_run(os.fspath(tmp_path / "nothing"))
