"""The model zoo: torchvision's parameter counts, output shapes of every registered model, one
SGD step lowering the loss of each family, the registry, initialization and construction."""

from __future__ import annotations

import numpy as np
import pytest

import lamina
from lamina import models, nn
from lamina.nn import functional as F

# torchvision's published counts (1000 classes) and, for lamina-only models, the papers' ones
PUBLISHED = {
    "alexnet": 61_100_840, "vgg11": 132_863_336, "vgg11_bn": 132_868_840, "vgg13": 133_047_848,
    "vgg13_bn": 133_053_736, "vgg16": 138_357_544, "vgg16_bn": 138_365_992, "vgg19": 143_667_240,
    "vgg19_bn": 143_678_248, "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
    "resnet101": 44_549_160, "resnet152": 60_192_808, "resnext50_32x4d": 25_028_904,
    "wide_resnet50_2": 68_883_240, "wide_resnet101_2": 126_886_696, "densenet121": 7_978_856,
    "densenet161": 28_681_000, "densenet169": 14_149_480, "densenet201": 20_013_928, "mobilenet_v2": 3_504_872,
}


def _count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_matches_torchvision(name: str) -> None:
    with models.no_weight_init():
        m = models.get_model(name)
    assert _count(m) == PUBLISHED[name]


def test_parameter_counts_other_models() -> None:
    with models.no_weight_init():
        assert _count(models.googlenet(aux_logits=False)) == 6_624_904  # torchvision's published count
        # + two auxiliary heads: 1×1 conv (512 or 528 → 128) and its bn, fc 2048→1024, fc 1024→1000
        aux = (512 + 528) * 128 + 2 * (2 * 128 + 2048 * 1024 + 1024 + 1024 * 1000 + 1000)
        assert _count(models.googlenet()) == 6_624_904 + aux == 13_004_888
        assert _count(models.deeplabv3_resnet50(num_classes=21, aux_loss=True)) == 42_004_074
        assert _count(models.deeplabv3_resnet101(num_classes=21, aux_loss=True)) == 60_996_202
        # He et al. Table 6 (0.27 M, 0.46 M, 0.85 M with option-A shortcuts); WRN-28-10 36.5 M
        assert _count(models.resnet20()) == 269_722
        assert _count(models.resnet32()) == 464_154
        assert _count(models.resnet56()) == 853_018
        assert _count(models.wrn28_10()) == 36_479_194
        # MobileNet v1, the paper's 4.2 M
        assert _count(models.mobilenet_v1()) == 4_231_976


def test_resnet20_count_by_hand() -> None:
    """conv 3·16·9 + bn 32; stage s with c maps: 3 blocks of two c×c'×9 convs + 2 bns; fc 64·10+10."""
    stem = 3 * 16 * 9 + 2 * 16
    stage1 = 3 * (2 * (16 * 16 * 9 + 2 * 16))
    stage2 = (16 * 32 * 9 + 32 * 32 * 9 + 4 * 32) + 2 * (2 * (32 * 32 * 9 + 2 * 32))
    stage3 = (32 * 64 * 9 + 64 * 64 * 9 + 4 * 64) + 2 * (2 * (64 * 64 * 9 + 2 * 64))
    assert _count(models.resnet20()) == stem + stage1 + stage2 + stage3 + 64 * 10 + 10


# (name, kwargs, input shape, output shape) for every registered model
SHAPES = {
    "lenet5": ({}, (2, 1, 32, 32), (2, 10)),
    "lenet_small": ({}, (2, 1, 8, 8), (2, 10)),
    "alexnet": ({"num_classes": 7}, (1, 3, 63, 63), (1, 7)),
    "fcn32s": ({"num_classes": 5, "fc_channels": 32}, (1, 3, 64, 32), (1, 5, 64, 32)),
    "fcn8s": ({"num_classes": 5, "fc_channels": 32}, (1, 3, 64, 32), (1, 5, 64, 32)),
    "unet": ({"num_classes": 3, "base_channels": 8}, (1, 1, 48, 40), (1, 3, 48, 40)),
}


@pytest.mark.parametrize("name", models.list_models())
def test_output_shape_of_every_model(name: str) -> None:
    kwargs, shape, out_shape = SHAPES.get(name, ({"num_classes": 7}, (1, 3, 32, 32), (1, 7)))
    if name.startswith("deeplabv3"):
        out_shape = (1, 7, 32, 32)
    with models.no_weight_init():
        m = models.get_model(name, **kwargs).eval()
    with lamina.no_grad():
        out = m(lamina.zeros(*shape))
    if isinstance(out, list):  # a detector (torchvision's contract): one dict of detections per image
        assert len(out) == shape[0] and {"boxes", "labels", "scores"} <= set(out[0])
        assert out[0]["boxes"].shape == (out[0]["scores"].shape[0], 4) and out[0]["boxes"].dtype == np.float32
        return
    if isinstance(out, dict):
        out = out["out"]
    assert tuple(out.shape) == out_shape
    assert out.dtype == np.float32


def _small_vgg() -> nn.Module:
    """A narrow VGG with batch norm; its 120 M-weight classifier is swapped for a small one (the
    full head costs seconds per step; test_torch_equivalence checks the real vgg11_bn)."""
    m = models.VGG(models.vgg.make_layers([8, "M", 16, "M", 512], batch_norm=True), num_classes=4)
    m.classifier = nn.Sequential(nn.Linear(512 * 49, 16), nn.ReLU(), nn.Dropout(), nn.Linear(16, 4))
    return m


def _small(name: str) -> tuple[nn.Module, tuple[int, ...]]:
    """One member of each family at a small width (the real configurations where cheap)."""
    R = models.resnet
    build = {
        "lenet5": (lambda: models.lenet5(num_classes=4), (4, 1, 32, 32)),
        "lenet_small": (lambda: models.lenet_small(num_classes=4), (4, 1, 8, 8)),
        "alexnet": (lambda: models.alexnet(num_classes=4), (2, 3, 63, 63)),
        "vgg11_bn": (_small_vgg, (4, 3, 16, 16)),
        "googlenet": (lambda: models.googlenet(num_classes=4), (2, 3, 32, 32)),
        "resnet18": (lambda: models.resnet18(num_classes=4), (4, 3, 32, 32)),
        "resnext": (lambda: R.ResNet(R.Bottleneck, [1, 1, 1, 1], num_classes=4, groups=4, width_per_group=4),
                    (4, 3, 32, 32)),
        "densenet": (lambda: models.DenseNet(8, (2, 2), 16, num_classes=4), (4, 3, 32, 32)),
        "mobilenet_v1": (lambda: models.mobilenet_v1(num_classes=4, width_mult=0.25), (4, 3, 32, 32)),
        "mobilenet_v2": (lambda: models.mobilenet_v2(num_classes=4, width_mult=0.25), (4, 3, 32, 32)),
        "resnet20": (lambda: models.resnet20(num_classes=4), (4, 3, 32, 32)),
        "resnet20_B": (lambda: models.CifarResNet(8, num_classes=4, shortcut="B", width=8), (4, 3, 16, 16)),
        "wrn": (lambda: models.WideResNet(10, 2, num_classes=4, drop_rate=0.3), (4, 3, 16, 16)),
    }
    f, shape = build[name]
    return f(), shape


FAMILIES = ["lenet5", "lenet_small", "alexnet", "vgg11_bn", "googlenet", "resnet18", "resnext", "densenet",
            "mobilenet_v1", "mobilenet_v2", "resnet20", "resnet20_B", "wrn"]


def _loss(m: nn.Module, x: lamina.Tensor, y: lamina.Tensor) -> lamina.Tensor:
    lamina.manual_seed(5)  # the same dropout masks in both evaluations
    out = m(x)
    if isinstance(out, tuple):  # GoogLeNet in training: main + 0.3 × auxiliary losses
        return F.cross_entropy(out[0], y) + 0.3 * (F.cross_entropy(out[1], y) + F.cross_entropy(out[2], y))
    return F.cross_entropy(out, y)


@pytest.mark.parametrize("name", FAMILIES)
def test_one_sgd_step_lowers_the_loss(name: str) -> None:
    lamina.manual_seed(0)
    m, shape = _small(name)
    m.train()
    rng = np.random.default_rng(0)
    x = lamina.tensor(rng.standard_normal(shape).astype(np.float32))
    y = lamina.tensor(rng.integers(0, 4, shape[0]))
    opt = lamina.optim.SGD(m.parameters(), lr=0.01)
    loss = _loss(m, x, y)
    loss.backward()
    assert all(p.grad is not None for p in m.parameters())
    opt.step()
    after = _loss(m, x, y)
    assert after.item() < loss.item()


def test_googlenet_outputs_in_train_and_eval() -> None:
    m = models.googlenet(num_classes=3)
    out = m(lamina.randn(2, 3, 64, 64))
    assert isinstance(out, models.GoogLeNetOutputs)
    assert [tuple(o.shape) for o in out] == [(2, 3)] * 3
    assert tuple(m.eval()(lamina.randn(2, 3, 64, 64)).shape) == (2, 3)
    m = models.googlenet(num_classes=3, aux_logits=False, transform_input=True)
    assert m.aux1 is None and "aux1.fc2.weight" not in m.state_dict()
    assert tuple(m(lamina.randn(2, 3, 32, 32)).shape) == (2, 3)


def test_registry() -> None:
    names = models.list_models()
    for n in ["lenet5", "lenet_small", "alexnet", "vgg16_bn", "googlenet", "resnet50", "wide_resnet50_2",
              "resnext50_32x4d", "densenet121", "mobilenet_v1", "mobilenet_v2", "resnet20", "resnet32", "resnet56",
              "wrn28_10", "fcn32s", "fcn8s", "unet", "deeplabv3"]:
        assert n in names
    assert names == sorted(names)
    with pytest.raises(ValueError, match="unknown model 'resnet9'"):
        models.get_model("resnet9")
    models.register_model("tiny_test_net", lambda **kw: nn.Linear(2, kw.get("num_classes", 3)))
    assert models.get_model("tiny_test_net", num_classes=5).out_features == 5
    # the lead's API: lenet5 / lenet_small keep their signatures
    assert tuple(models.get_model("lenet_small", num_classes=3, in_channels=1, input_size=16)(
        lamina.randn(1, 1, 16, 16)).shape) == (1, 3)
    # every classifier accepts in_channels (lamina train passes it)
    assert tuple(models.resnet20(in_channels=1)(lamina.randn(2, 1, 8, 8)).shape) == (2, 10)


def test_lenet_small_global_pool() -> None:
    lamina.manual_seed(0)
    m = models.lenet_small(num_classes=4, in_channels=3, input_size=32, global_pool="max", dropout=0.0).eval()
    assert isinstance(m.features[-1], nn.AdaptiveMaxPool2d) and m.classifier[-1].in_features == 64
    assert isinstance(models.lenet_small(global_pool="avg").features[-1], nn.AdaptiveAvgPool2d)
    # a pattern moved by whole pooling cells (4 px: two 2×2 pools) on a blank image gives the same
    # scores, as long as what the last convolution sees of it stays clear of the border
    x = np.zeros((1, 3, 32, 32), dtype=np.float32)
    x[0, :, 8:12, 8:12] = 1.0
    shifted = np.roll(x, (12, 8), axis=(2, 3))
    with lamina.no_grad():
        a, b = m(lamina.tensor(x)).numpy(), m(lamina.tensor(shifted)).numpy()
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    flat = models.lenet_small(num_classes=4, in_channels=3, input_size=32).eval()
    with lamina.no_grad():
        assert not np.allclose(flat(lamina.tensor(x)).numpy(), flat(lamina.tensor(shifted)).numpy())
    assert tuple(models.lenet_small(input_size=10, global_pool="max")(lamina.randn(2, 1, 10, 10)).shape) == (2, 10)
    with pytest.raises(ValueError, match="global_pool must be None, 'max' or 'avg'"):
        models.lenet_small(global_pool="sum")


def test_initialization_follows_torchvision() -> None:
    lamina.manual_seed(0)
    m = models.resnet50()
    w = m.layer3[0].conv2.weight.detach().numpy()  # kaiming_normal_, fan_out, relu: std √(2/(256·9))
    assert abs(w.std() - np.sqrt(2 / (256 * 9))) < 0.02 * np.sqrt(2 / (256 * 9))
    assert np.all(m.bn1.weight.detach().numpy() == 1) and np.all(m.bn1.bias.detach().numpy() == 0)
    fc = m.fc.weight.detach().numpy()  # torch's default: U(±1/√2048)
    assert np.abs(fc).max() <= 1 / np.sqrt(2048) and np.abs(fc).max() > 0.95 / np.sqrt(2048)
    z = models.resnet18(zero_init_residual=True)
    assert np.all(z.layer1[0].bn2.weight.detach().numpy() == 0) and np.all(z.layer1[0].bn1.weight.detach().numpy() == 1)
    v = models.VGG(models.vgg.make_layers([64, "M"]), num_classes=10)  # VGG: linear N(0, 0.01²), biases 0
    assert abs(v.classifier[-1].weight.detach().numpy().std() - 0.01) < 5e-4
    assert np.all(v.classifier[0].bias.detach().numpy() == 0) and np.all(v.features[0].bias.detach().numpy() == 0)
    d = models.densenet121(num_classes=10)
    assert np.all(d.classifier.bias.detach().numpy() == 0)
    assert m.fc.weight.dtype == np.float32


def test_errors_name_the_model() -> None:
    with pytest.raises(ValueError, match="CifarResNet: depth must be 6n"):
        models.CifarResNet(21)
    with pytest.raises(ValueError, match="WideResNet: depth"):
        models.WideResNet(27)
    with pytest.raises(ValueError, match="BasicBlock: only supports groups=1"):
        models.ResNet(models.resnet.BasicBlock, [1, 1, 1, 1], groups=2)
    with pytest.raises(ValueError, match="replace_stride_with_dilation"):
        models.resnet50(replace_stride_with_dilation=[True])
    with pytest.raises(ValueError, match="LeNet5: expected input"):
        models.lenet5()(lamina.randn(1, 1, 28, 28))


def test_option_a_shortcut_matches_torch_and_gradchecks() -> None:
    """He et al.'s parameter-free shortcut: subsample by 2, zero-pad the new channels."""
    import torch

    from lamina.models.cifar import _ShortcutA
    from tests.helpers import check_grads, oracle

    s = _ShortcutA(4)
    oracle(s, (2, 8, 6, 5), torch_fn=lambda x: torch.nn.functional.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 4, 4)))
    check_grads(s, (2, 3, 4, 5))
    out = s(lamina.ones(1, 1, 2, 2)).numpy()  # by hand: one input channel between four zero channels each side
    assert out.shape == (1, 9, 1, 1) and out.ravel().tolist() == [0, 0, 0, 0, 1, 0, 0, 0, 0]


def test_no_weight_init_gives_zeros_and_leaves_layers_alone_afterwards() -> None:
    with models.no_weight_init():
        m = models.lenet5()  # a model that does not go through init_model
        r = models.resnet18()
    assert all(not np.any(p.detach().numpy()) for p in m.parameters())
    assert not np.any(r.fc.weight.detach().numpy()) and np.all(r.bn1.weight.detach().numpy() == 1)
    fresh = nn.Linear(50, 40)  # outside the context the layers initialize themselves again
    w = fresh.weight.detach().numpy()
    assert np.abs(w).max() <= 1 / np.sqrt(50) and np.abs(w).max() > 0.9 / np.sqrt(50)
