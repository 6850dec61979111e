"""Dense prediction: FCN-32s/8s, U-Net, DeepLab v3 (shapes, the bilinear upsampler by hand and
against torch's interpolate, the ASPP head against a torch.nn twin, one SGD step each)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from torch import nn as tnn

import lamina
from lamina import models, nn
from lamina.models.resnet import Bottleneck, ResNet
from lamina.models.segmentation import DeepLabHead, bilinear_kernel
from lamina.nn import functional as F


def test_bilinear_kernel_by_hand() -> None:
    # k = 4 (stride 2): factor 2, centre 1.5, taps 1 − |i − 1.5|/2 = 1/4, 3/4, 3/4, 1/4
    w = bilinear_kernel(2, 4)
    taps = np.array([0.25, 0.75, 0.75, 0.25])
    np.testing.assert_allclose(w[0, 0], np.outer(taps, taps))
    np.testing.assert_allclose(w[1, 1], np.outer(taps, taps))
    assert np.all(w[0, 1] == 0) and np.all(w[1, 0] == 0)


@pytest.mark.parametrize("stride", [2, 8, 32])
def test_fcn_upsampler_is_bilinear_interpolation(stride: int) -> None:
    """A transposed conv with the bilinear kernel (k = 2s, padding s/2) equals bilinear
    interpolation (align_corners=False) away from the border."""
    k = 2 * stride
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 4))
    up = F.conv_transpose2d(lamina.tensor(x), lamina.tensor(bilinear_kernel(2, k)), stride=stride,
                            padding=stride // 2).numpy()
    expected = TF.interpolate(torch.from_numpy(x), scale_factor=stride, mode="bilinear", align_corners=False).numpy()
    assert up.shape == expected.shape
    b = stride  # the border half-cell differs (zero padding vs edge clamping)
    np.testing.assert_allclose(up[..., b:-b, b:-b], expected[..., b:-b, b:-b], atol=1e-12)


def test_fcn_shapes_and_vgg_trunk() -> None:
    m = models.fcn8s(num_classes=4, fc_channels=16)
    assert tuple(m(lamina.randn(1, 3, 64, 96)).shape) == (1, 4, 64, 96)
    # the trunk is vgg16's features: its weights load directly
    with models.no_weight_init():
        vgg = models.vgg16()
    assert [(k, v.shape) for k, v in vgg.features.state_dict().items()] == \
        [(k, v.shape) for k, v in m.features.state_dict().items()]
    assert np.all(m.score_fr.weight.detach().numpy() == 0)  # class scorers start at zero (the paper)
    m32 = models.fcn32s(num_classes=4, fc_channels=16)
    assert tuple(m32(lamina.randn(1, 3, 32, 64)).shape) == (1, 4, 32, 64)
    with pytest.raises(ValueError, match="FCN: expected input .* multiples of 32"):
        m(lamina.randn(1, 3, 40, 64))


@pytest.mark.parametrize("bilinear", [False, True])
def test_unet_shapes(bilinear: bool) -> None:
    m = models.unet(in_channels=2, num_classes=3, base_channels=4, depth=3, bilinear=bilinear)
    for h, w in [(32, 32), (27, 41)]:  # odd sizes: the upsampled maps are padded to the skip's size
        assert tuple(m(lamina.randn(2, 2, h, w)).shape) == (2, 3, h, w)
    assert m.ups[0].conv[0].in_channels == 32  # skip (16) + upsampled (16)
    with pytest.raises(ValueError, match="UNet: expected input"):
        m(lamina.randn(1, 2, 4, 4))


def _small_deeplab(**kw: object) -> models.DeepLabV3:
    bb = ResNet(Bottleneck, [1, 1, 1, 1], replace_stride_with_dilation=[False, True, True])
    return models.deeplabv3(backbone=bb, num_classes=3, head_channels=8, **kw)


def test_deeplabv3_structure_matches_torchvision() -> None:
    with models.no_weight_init():
        m = models.deeplabv3_resnet50(num_classes=21, aux_loss=True)
    keys = m.state_dict()
    for k in ["backbone.conv1.weight", "backbone.layer4.2.bn3.running_var", "classifier.0.convs.0.0.weight",
              "classifier.0.convs.3.0.weight", "classifier.0.convs.4.1.weight", "classifier.0.project.0.weight",
              "classifier.1.weight", "classifier.4.bias", "aux_classifier.0.weight", "aux_classifier.4.weight"]:
        assert k in keys, k
    assert not any(k.startswith(("backbone.fc", "backbone.avgpool")) for k in keys)
    # output stride 8: layer3 dilated 2, layer4 dilated 4 (its first block keeps the previous rate)
    assert m.backbone.layer3[1].conv2.dilation == (2, 2) and m.backbone.layer3[1].conv2.stride == (1, 1)
    assert m.backbone.layer4[0].conv2.dilation == (2, 2) and m.backbone.layer4[1].conv2.padding == (4, 4)
    assert [c[0].dilation for c in list(m.classifier[0].convs)[1:4]] == [(12, 12), (24, 24), (36, 36)]


class _TorchASPPPooling(tnn.Sequential):
    def forward(self, x):
        size = x.shape[-2:]
        for mod in self:
            x = mod(x)
        return TF.interpolate(x, size=size, mode="bilinear", align_corners=False)


class _TorchASPP(tnn.Module):
    def __init__(self, cin, rates, c):
        super().__init__()
        mods = [tnn.Sequential(tnn.Conv2d(cin, c, 1, bias=False), tnn.BatchNorm2d(c), tnn.ReLU())]
        mods += [tnn.Sequential(tnn.Conv2d(cin, c, 3, padding=r, dilation=r, bias=False), tnn.BatchNorm2d(c),
                                tnn.ReLU()) for r in rates]
        mods.append(_TorchASPPPooling(tnn.AdaptiveAvgPool2d(1), tnn.Conv2d(cin, c, 1, bias=False),
                                      tnn.BatchNorm2d(c), tnn.ReLU()))
        self.convs = tnn.ModuleList(mods)
        self.project = tnn.Sequential(tnn.Conv2d(len(mods) * c, c, 1, bias=False), tnn.BatchNorm2d(c), tnn.ReLU(),
                                      tnn.Dropout(0.5))

    def forward(self, x):
        return self.project(torch.cat([m(x) for m in self.convs], 1))


def test_deeplab_head_matches_torch() -> None:
    torch.manual_seed(0)
    t = tnn.Sequential(_TorchASPP(24, (1, 2, 3), 8), tnn.Conv2d(8, 8, 3, padding=1, bias=False), tnn.BatchNorm2d(8),
                       tnn.ReLU(), tnn.Conv2d(8, 5, 1)).double().eval()
    for mod in t.modules():
        if isinstance(mod, tnn.BatchNorm2d):
            with torch.no_grad():
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
    lm = DeepLabHead(24, 5, (1, 2, 3), channels=8).double().eval()
    lm.load_state_dict(t.state_dict(), strict=True)
    x = np.random.default_rng(0).standard_normal((2, 24, 7, 6))
    with torch.no_grad():
        expected = t(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(lm(lamina.tensor(x)).detach().numpy(), expected, rtol=1e-10, atol=1e-10)


def test_deeplabv3_output() -> None:
    m = _small_deeplab(aux_loss=True).eval()
    out = m(lamina.randn(1, 3, 40, 48))
    assert set(out) == {"out", "aux"}
    assert tuple(out["out"].shape) == tuple(out["aux"].shape) == (1, 3, 40, 48)


@pytest.mark.parametrize("name", ["fcn32s", "fcn8s", "unet", "unet_bilinear", "deeplabv3"])
def test_one_sgd_step_lowers_the_pixel_loss(name: str) -> None:
    lamina.manual_seed(0)
    build = {
        "fcn32s": lambda: models.fcn32s(num_classes=3, fc_channels=16),
        "fcn8s": lambda: models.fcn8s(num_classes=3, fc_channels=16),
        "unet": lambda: models.unet(in_channels=3, num_classes=3, base_channels=4, depth=2),
        "unet_bilinear": lambda: models.unet(in_channels=3, num_classes=3, base_channels=4, depth=2, bilinear=True),
        "deeplabv3": _small_deeplab,
    }
    # float64: FCN's zero-initialized scorers start at exactly log(3) with a tiny first gradient
    m: nn.Module = build[name]().double().train()
    rng = np.random.default_rng(0)
    x = lamina.tensor(rng.standard_normal((2, 3, 32, 32)))
    y = lamina.tensor(rng.integers(0, 3, (2, 32, 32)))

    def loss() -> lamina.Tensor:
        lamina.manual_seed(1)
        out = m(x)
        return F.cross_entropy(out["out"] if isinstance(out, dict) else out, y)

    opt = lamina.optim.SGD(m.parameters(), lr=1e-3)
    before = loss()
    before.backward()
    opt.step()
    assert loss().item() < before.item()


class _TorchDeepLab(tnn.Module):
    """torchvision's DeepLabV3 (backbone = ResNet trunk up to layer4, DeepLabHead, bilinear resize)."""

    def __init__(self, layers, num_classes, rates, channels):
        super().__init__()
        from . import torch_reference as ref

        self.backbone = ref.ResNet(ref.Bottleneck, layers, replace_stride_with_dilation=(False, True, True))
        del self.backbone.fc, self.backbone.avgpool
        self.classifier = tnn.Sequential(_TorchASPP(2048, rates, channels),
                                         tnn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                         tnn.BatchNorm2d(channels), tnn.ReLU(), tnn.Conv2d(channels, num_classes, 1))

    def forward(self, x):
        b = self.backbone
        f = b.layer4(b.layer3(b.layer2(b.layer1(b.maxpool(b.relu(b.bn1(b.conv1(x))))))))
        return TF.interpolate(self.classifier(f), size=x.shape[-2:], mode="bilinear", align_corners=False)


def test_deeplabv3_matches_a_torch_twin() -> None:
    """A dilated ResNet backbone (output stride 8) with the ASPP head, weights copied, eval mode."""
    from . import torch_reference as ref

    torch.manual_seed(0)
    t = _TorchDeepLab([1, 1, 2, 2], 3, (2, 4, 6), 16).eval()
    ref.randomize_bn(t)
    bb = ResNet(Bottleneck, [1, 1, 2, 2], replace_stride_with_dilation=[False, True, True])
    m = models.deeplabv3(backbone=bb, num_classes=3, atrous_rates=(2, 4, 6), head_channels=16).eval()
    assert list(m.state_dict()) == list(t.state_dict())
    m.load_state_dict(t.state_dict(), strict=True)
    x = np.random.default_rng(0).standard_normal((1, 3, 40, 48)).astype(np.float32)
    with torch.no_grad():
        expected = t(torch.from_numpy(x)).numpy()
    got = m(lamina.tensor(x))["out"].detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * max(np.abs(expected).max(), 1.0))
