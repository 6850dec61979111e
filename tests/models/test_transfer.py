"""Transfer learning: freezing (bit-identical after training), new heads, discriminative learning
rates, frozen batch norm (by hand and against torch's eval-mode batch norm), feature extraction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lamina
from lamina import models, nn
from lamina.nn import functional as F
from tests.helpers import Input, oracle


def _batch(n: int = 4, size: int = 32, classes: int = 5, seed: int = 0) -> tuple[lamina.Tensor, lamina.Tensor]:
    rng = np.random.default_rng(seed)
    return (lamina.tensor(rng.standard_normal((n, 3, size, size)).astype(np.float32)),
            lamina.tensor(rng.integers(0, classes, n)))


def _snapshot(m: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.numpy().copy() for k, v in m.state_dict().items()}


@pytest.mark.parametrize("optim", ["sgd", "adam"])
def test_frozen_parameters_stay_bit_identical(optim: str) -> None:
    lamina.manual_seed(0)
    m = models.resnet20(num_classes=5)
    frozen = models.freeze(m, ["conv1.*", "bn1.*", "layer1.*", "layer2.*"])
    assert "layer1.0.conv1.weight" in frozen and "fc.weight" not in frozen
    before = _snapshot(m)
    params = models.trainable_parameters(m)
    assert len(params) == sum(1 for n, _ in m.named_parameters() if n not in frozen)
    # weight decay and momentum on every parameter handed over: frozen ones must still not move
    opt = (lamina.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-2) if optim == "sgd"
           else lamina.optim.Adam(m.parameters(), lr=1e-3, weight_decay=1e-2))
    m.eval()  # running statistics fixed too, so every frozen tensor can be compared
    for step in range(3):
        x, y = _batch(seed=step)
        opt.zero_grad()
        F.cross_entropy(m(x), y).backward()
        opt.step()
    after = _snapshot(m)
    assert all(np.isfinite(v).all() for v in after.values())
    for name in frozen:
        assert np.array_equal(after[name], before[name]), name
        assert m.get_parameter(name).grad is None
    assert not np.array_equal(after["fc.weight"], before["fc.weight"])
    assert not np.array_equal(after["layer3.0.conv1.weight"], before["layer3.0.conv1.weight"])
    assert models.unfreeze(m, "layer2.*") == [n for n in frozen if n.startswith("layer2.")]
    assert m.layer2[0].conv1.weight.requires_grad and not m.layer1[0].conv1.weight.requires_grad


def test_freeze_whole_submodule_and_errors() -> None:
    m = models.lenet5()
    names = models.freeze(m.features)
    assert names == ["0.weight", "0.bias", "3.weight", "3.bias", "6.weight", "6.bias"]
    assert [p.requires_grad for p in m.parameters()] == [False] * 6 + [True] * 4
    with pytest.raises(ValueError, match="freeze: pattern 'layer9.*' matches no parameter of LeNet5"):
        models.freeze(m, "layer9.*")


@pytest.mark.parametrize("name,kwargs,shape", [
    ("resnet18", {}, (2, 3, 32, 32)),
    ("densenet", {}, (2, 3, 32, 32)),
    ("mobilenet_v2", {"width_mult": 0.25}, (2, 3, 32, 32)),
    ("googlenet", {}, (2, 3, 32, 32)),
    ("lenet5", {}, (2, 1, 32, 32)),
    ("alexnet", {}, (1, 3, 63, 63)),
])
def test_replace_head(name: str, kwargs: dict, shape: tuple) -> None:
    m = models.DenseNet(8, (2, 2), 16) if name == "densenet" else models.get_model(name, **kwargs)
    old = {k: v.shape for k, v in m.state_dict().items()}
    head = models.replace_head(m, num_classes=3)
    assert isinstance(head, nn.Linear) and head.out_features == 3
    new = {k: v.shape for k, v in m.state_dict().items()}
    assert list(new) == list(old)  # same keys (torchvision's layout), only the head's shapes change
    changed = {k for k in new if new[k] != old[k]}
    assert changed and all(new[k][0] == 3 for k in changed)
    m.eval()
    assert tuple(m(lamina.randn(*shape)).shape) == (shape[0], 3)
    if name == "googlenet":
        assert m.aux1.fc2.out_features == 3 and m.aux2.fc2.out_features == 3
    with pytest.raises(ValueError, match="replace_head: found no linear classifier in Conv2d"):
        models.replace_head(nn.Conv2d(1, 1, 1), 2)


def test_discriminative_learning_rates() -> None:
    m = models.resnet20(num_classes=5)
    models.freeze(m, "conv1.*")
    groups = models.discriminative_lr_groups(m, lr=0.1, decay=2.0, momentum=0.0)
    # bn1, layer1, layer2, layer3, fc (conv1 is frozen and left out)
    assert [g["lr"] for g in groups] == [0.1 / 16, 0.1 / 8, 0.1 / 4, 0.1 / 2, 0.1]
    assert sum(len(g["params"]) for g in groups) == len(models.trainable_parameters(m))
    assert all(g["momentum"] == 0.0 for g in groups)
    # explicit groups: the stem and first stage together, then the rest by stage
    g2 = models.discriminative_lr_groups(m, 1.0, 10.0, groups=[["bn1", "layer1"], "layer2", ["layer3", "fc"]])
    assert [g["lr"] for g in g2] == [0.01, 0.1, 1.0]
    with pytest.raises(ValueError, match="belong to no group"):
        models.discriminative_lr_groups(m, 1.0, groups=["layer1"])
    # the optimizer applies them: plain SGD moves each group by −lr·grad
    opt = lamina.optim.SGD(groups, lr=0.1)
    before = [[p.detach().numpy().copy() for p in g["params"]] for g in groups]
    x, y = _batch(2, 16)
    F.cross_entropy(m.eval()(x), y).backward()
    opt.step()
    for g, b in zip(groups, before):
        for p, p0 in zip(g["params"], b):
            np.testing.assert_allclose(p.detach().numpy(), p0 - g["lr"] * p.grad.numpy(), rtol=1e-6, atol=1e-9)


def test_frozen_batchnorm_by_hand() -> None:
    fb = models.FrozenBatchNorm2d(1, eps=0.0)
    fb.running_mean.array[:] = 1.0
    fb.running_var.array[:] = 4.0
    fb.weight.array[:] = 2.0
    fb.bias.array[:] = 0.5
    # (3 − 1)/√4 · 2 + 0.5 = 2.5 ; (−1 − 1)/2 · 2 + 0.5 = −1.5
    out = fb.train()(lamina.tensor(np.array([[[[3.0, -1.0]]]], dtype=np.float32)))
    np.testing.assert_allclose(out.numpy(), [[[[2.5, -1.5]]]])
    assert list(fb.parameters()) == []


def test_frozen_batchnorm_matches_torch_eval_batchnorm() -> None:
    rng = np.random.default_rng(0)
    stats = [rng.standard_normal(4), rng.uniform(0.5, 2.0, 4), rng.standard_normal(4), rng.standard_normal(4)]

    def lam(x):
        fb = models.FrozenBatchNorm2d(4, eps=1e-5, dtype=lamina.float64).train()  # frozen in training mode too
        for buf, s in zip((fb.running_mean, fb.running_var, fb.weight, fb.bias), stats):
            buf.array[:] = s
        return fb(x)

    def tor(x):
        bn = torch.nn.BatchNorm2d(4).double().eval()
        with torch.no_grad():
            for buf, s in zip((bn.running_mean, bn.running_var, bn.weight, bn.bias), stats):
                buf.copy_(torch.from_numpy(s))
        return bn(x)

    oracle(lam, Input((3, 4, 5, 6)), torch_fn=tor)


def test_freeze_batchnorm_keeps_eval_statistics_in_training() -> None:
    lamina.manual_seed(0)
    m = models.resnet20(num_classes=5)
    x, y = _batch(4, 16)
    for _ in range(2):  # move the running statistics away from (0, 1)
        m(x)
    m.eval()
    expected = m(x).detach().numpy()
    sd = m.state_dict()
    n = models.freeze_batchnorm(m)
    assert n == 19 and not any(isinstance(mod, nn.BatchNorm2d) for mod in m.modules())
    m.train()
    np.testing.assert_allclose(m(x).detach().numpy(), expected, rtol=1e-5, atol=1e-6)
    assert list(m.state_dict()) == list(sd)  # a checkpoint of the original still loads strictly
    m.load_state_dict(sd, strict=True)
    before = m.bn1.running_mean.numpy().copy()
    opt = lamina.optim.SGD(models.trainable_parameters(m), lr=0.1)
    F.cross_entropy(m(x), y).backward()
    opt.step()
    assert np.array_equal(m.bn1.running_mean.numpy(), before)


def test_feature_extractor_values_and_gradients() -> None:
    lamina.manual_seed(0)
    m = models.resnet18(num_classes=4).eval()
    fx = models.create_feature_extractor(m, {"layer1": "low", "layer3.1.bn2": "mid"})
    assert list(fx.state_dict()) == list(m.state_dict())
    x = lamina.randn(1, 3, 32, 32)
    out = fx(x)
    assert list(out) == ["low", "mid"]
    stem = m.maxpool(m.relu(m.bn1(m.conv1(x))))
    low = m.layer1(stem)
    np.testing.assert_allclose(out["low"].detach().numpy(), low.detach().numpy(), rtol=1e-6)
    mid = m.layer3[1].bn2(m.layer3[1].conv2(m.layer3[1].relu(m.layer3[1].bn1(m.layer3[1].conv1(
        m.layer3[0](m.layer2(low)))))))
    np.testing.assert_allclose(out["mid"].detach().numpy(), mid.detach().numpy(), rtol=1e-5, atol=1e-6)
    # the forward stops after the last requested node: layer4 never runs
    calls = []
    h = m.layer4.register_forward_hook(lambda *a: calls.append(1))
    fx(x)
    h.remove()
    assert calls == []
    out["mid"].sum().backward()
    assert m.conv1.weight.grad is not None and m.layer4[0].conv1.weight.grad is None
    assert models.get_graph_node_names(m)[0][:3] == ["conv1", "bn1", "relu"]
    with pytest.raises(ValueError, match="'layer7' is not a submodule of ResNet"):
        models.create_feature_extractor(m, ["layer7"])


def test_feature_extractor_follows_train_mode() -> None:
    m = models.googlenet(num_classes=3)
    fx = models.create_feature_extractor(m, ["aux1.fc2", "inception5b"]).train()
    assert m.training
    out = fx(lamina.randn(2, 3, 32, 32))
    assert tuple(out["aux1.fc2"].shape) == (2, 3) and tuple(out["inception5b"].shape)[:2] == (2, 1024)
    fx.eval()
    assert not m.training and not m.inception3a.training
    with pytest.raises(RuntimeError, match=r"modules \['aux1.fc2'\] were not called"):
        fx(lamina.randn(1, 3, 32, 32))


def test_frozen_batchnorm_gradcheck() -> None:
    from tests.helpers import check_grads

    fb = models.FrozenBatchNorm2d(3, dtype=lamina.float64)
    fb.running_mean.array[:] = [0.1, -0.2, 0.3]
    fb.running_var.array[:] = [0.5, 1.5, 2.0]
    fb.weight.array[:] = [1.5, -0.5, 2.0]
    check_grads(fb, Input((2, 3, 4, 5)))
