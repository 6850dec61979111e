"""Exactness against torchvision's architectures (rebuilt with torch.nn in torch_reference.py):
same state_dict keys and shapes, strict loading of torch weights, same logits in eval mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lamina
from lamina import models

from . import torch_reference as ref


def _pair(name: str):
    torch.manual_seed(0)
    lamina.manual_seed(0)
    if name == "resnet18":
        return ref.ResNet(ref.BasicBlock, [2, 2, 2, 2], num_classes=10), models.resnet18(num_classes=10)
    if name == "resnext_tiny":  # the ResNeXt bottleneck (groups, width per group) at reduced depth
        t = ref.ResNet(ref.Bottleneck, [1, 1, 1, 1], num_classes=7, groups=8, width_per_group=4)
        return t, models.ResNet(models.resnet.Bottleneck, [1, 1, 1, 1], num_classes=7, groups=8, width_per_group=4)
    if name == "vgg11_bn":
        return ref.VGG(ref.vgg_features(lamina.models.vgg.cfgs["A"], True), 10), models.vgg11_bn(num_classes=10)
    if name == "densenet121":
        return ref.DenseNet(num_classes=10), models.densenet121(num_classes=10)
    if name == "googlenet":
        return ref.GoogLeNet(num_classes=10), models.googlenet(num_classes=10)
    if name == "mobilenet_v2":
        return ref.MobileNetV2(num_classes=10), models.mobilenet_v2(num_classes=10)
    if name == "alexnet":
        return ref.AlexNet(num_classes=10), models.alexnet(num_classes=10)
    raise KeyError(name)


# the smallest inputs the architectures accept (batch 2, so batch norm could also train)
CASES = [("resnet18", 32), ("resnext_tiny", 32), ("vgg11_bn", 32), ("densenet121", 32), ("googlenet", 32),
         ("mobilenet_v2", 32), ("alexnet", 63)]


@pytest.mark.parametrize("name,size", CASES)
def test_same_state_dict_and_logits(name: str, size: int) -> None:
    tm, lm = _pair(name)
    ref.randomize_bn(tm)
    tsd, lsd = tm.state_dict(), lm.state_dict()
    assert list(lsd) == list(tsd), "state_dict keys (and their order) differ from torchvision's"
    for k in tsd:
        assert tuple(lsd[k].shape) == tuple(tsd[k].shape), k
    assert sum(p.numel() for p in lm.parameters()) == sum(p.numel() for p in tm.parameters())
    result = lm.load_state_dict(tsd, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    tm.eval()
    lm.eval()
    x = np.random.default_rng(1).standard_normal((2, 3, size, size)).astype(np.float32)
    with torch.no_grad():
        expected = tm(torch.from_numpy(x)).numpy()
    with lamina.no_grad():
        got = lm(lamina.tensor(x)).numpy()
    assert got.shape == expected.shape == (2, lm.state_dict()[list(tsd)[-1]].shape[0])
    scale = np.abs(expected).max()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * max(scale, 1.0))


def test_resnet18_training_step_matches_torch() -> None:
    """Training mode, in float64: batch statistics, running-stat updates and every gradient."""
    tm, lm = _pair("resnet18")
    tm.double()
    lm.double()
    lm.load_state_dict(tm.state_dict())
    tm.train()
    lm.train()
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3, 32, 32))
    y = rng.integers(0, 10, 4)
    tl = torch.nn.functional.cross_entropy(tm(torch.from_numpy(x)), torch.from_numpy(y))
    ll = lamina.nn.functional.cross_entropy(lm(lamina.tensor(x)), lamina.tensor(y))
    np.testing.assert_allclose(ll.item(), tl.item(), rtol=1e-10)
    tl.backward()
    ll.backward()
    lp = dict(lm.named_parameters())
    for n, p in tm.named_parameters():
        g = p.grad.numpy()
        np.testing.assert_allclose(lp[n].grad.numpy(), g, rtol=1e-7, atol=1e-9 * np.abs(g).max(), err_msg=n)
    lb = dict(lm.named_buffers())
    for n, b in tm.named_buffers():
        np.testing.assert_allclose(lb[n].numpy(), b.numpy(), rtol=1e-10, atol=1e-12, err_msg=n)


def test_checkpoint_file_round_trip(tmp_path) -> None:
    """A torchvision-style checkpoint file (torch.save of a state_dict) loads strictly through the
    conversion helper; lamina's own file format and the way back to torch keep the logits."""
    from lamina.serialization import from_torch_state_dict, to_torch_state_dict

    tm, _ = _pair("mobilenet_v2")
    ref.randomize_bn(tm)
    torch.save(tm.state_dict(), tmp_path / "mobilenet_v2.pth")
    lm = models.mobilenet_v2(num_classes=10)
    lm.load_state_dict(from_torch_state_dict(torch.load(tmp_path / "mobilenet_v2.pth", weights_only=True)),
                       strict=True)
    lamina.save(lm.state_dict(), str(tmp_path / "m.lamina"))
    lm2 = models.mobilenet_v2(num_classes=10)
    lm2.load_state_dict(lamina.load(str(tmp_path / "m.lamina")), strict=True)
    back = ref.MobileNetV2(num_classes=10)
    back.load_state_dict(to_torch_state_dict(lm2.state_dict()), strict=True)
    x = np.random.default_rng(3).standard_normal((2, 3, 32, 32)).astype(np.float32)
    tm.eval()
    back.eval()
    with torch.no_grad():
        expected = tm(torch.from_numpy(x)).numpy()
        np.testing.assert_array_equal(back(torch.from_numpy(x)).numpy(), expected)
    np.testing.assert_allclose(lm2.eval()(lamina.tensor(x)).detach().numpy(), expected, rtol=1e-4, atol=1e-4)


TWINS = {
    "resnet34": lambda: ref.ResNet(ref.BasicBlock, [3, 4, 6, 3]),
    "resnet50": lambda: ref.ResNet(ref.Bottleneck, [3, 4, 6, 3]),
    "resnext50_32x4d": lambda: ref.ResNet(ref.Bottleneck, [3, 4, 6, 3], groups=32, width_per_group=4),
    "wide_resnet50_2": lambda: ref.ResNet(ref.Bottleneck, [3, 4, 6, 3], width_per_group=128),
    "densenet169": lambda: ref.DenseNet(32, (6, 12, 32, 32), 64),
    "densenet161": lambda: ref.DenseNet(48, (6, 12, 36, 24), 96),
    "vgg16_bn": lambda: ref.VGG(ref.vgg_features(lamina.models.vgg.cfgs["D"], True)),
    "mobilenet_v2": lambda: ref.MobileNetV2(width_mult=0.5),
}


@pytest.mark.parametrize("name", sorted(TWINS))
def test_state_dict_keys_and_shapes_of_other_configurations(name: str) -> None:
    """The deeper/wider members load torchvision checkpoints too: same keys, order and shapes."""
    with torch.device("meta"):  # torch twin without allocating or drawing weights
        t = TWINS[name]()
    with models.no_weight_init():
        m = models.get_model(name, **({"width_mult": 0.5} if name == "mobilenet_v2" else {}))
    tsd, lsd = t.state_dict(), m.state_dict()
    assert list(lsd) == list(tsd)
    assert [tuple(v.shape) for v in lsd.values()] == [tuple(v.shape) for v in tsd.values()]


def test_googlenet_training_outputs_match_torch() -> None:
    """Training mode (batch statistics) with the auxiliary classifiers; dropout off for determinism."""
    torch.manual_seed(0)
    tm = ref.GoogLeNet(num_classes=5, dropout=0.0, dropout_aux=0.0).train()
    lm = models.googlenet(num_classes=5, dropout=0.0, dropout_aux=0.0).train()
    lm.load_state_dict(tm.state_dict(), strict=True)
    x = np.random.default_rng(4).standard_normal((2, 3, 64, 64)).astype(np.float32)
    expected = [o.detach().numpy() for o in tm(torch.from_numpy(x))]
    got = lm(lamina.tensor(x))
    assert isinstance(got, models.GoogLeNetOutputs)
    for g, e, what in zip(got, expected, got._fields):
        np.testing.assert_allclose(g.detach().numpy(), e, rtol=1e-4, atol=1e-4 * max(np.abs(e).max(), 1.0),
                                   err_msg=what)
