"""Saliency, SmoothGrad, integrated gradients, Grad-CAM and occlusion, each against a reference
written independently in torch on a twin network with the same weights (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lamina
from lamina import vis

from .conftest import small_cnn, square_images, torch_twin


@pytest.fixture(scope="module")
def twins() -> tuple[lamina.nn.Module, torch.nn.Module]:
    lamina.manual_seed(3)
    m = small_cnn().double()
    return m, torch_twin(m)


def _x(n: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (n, 1, 8, 8))


def _torch_input_grad(tm: torch.nn.Module, x: np.ndarray, target: np.ndarray) -> np.ndarray:
    xt = torch.tensor(x, requires_grad=True)
    out = tm(xt)
    out[torch.arange(len(x)), torch.as_tensor(target)].sum().backward()
    return xt.grad.numpy()


def test_saliency_is_the_input_gradient(twins):
    m, tm = twins
    x = _x()
    pred = tm(torch.tensor(x)).argmax(1).numpy()
    g = _torch_input_grad(tm, x, pred)
    np.testing.assert_allclose(vis.input_gradient(m, x), g, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(vis.saliency(m, x), np.abs(g).max(1), rtol=1e-10, atol=1e-12)
    # an explicit target per sample, and one class for all
    np.testing.assert_allclose(vis.input_gradient(m, x, target=[1, 4, 7]), _torch_input_grad(tm, x, [1, 4, 7]),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(vis.saliency(m, x[0], target=2), np.abs(_torch_input_grad(tm, x[:1], [2])).max(1),
                               rtol=1e-10, atol=1e-12)


def test_saliency_hand_computed_linear_model():
    # logits = W · flatten(x): the gradient of logit t is row t of W, whatever x is.
    net = lamina.nn.Sequential(lamina.nn.Flatten(), lamina.nn.Linear(4, 2, bias=False))
    net[1].weight.data = lamina.tensor([[1.0, -2.0, 0.5, 0.0], [3.0, 1.0, -1.0, 2.0]])
    s = vis.saliency(net, np.ones((1, 1, 2, 2)), target=0)
    np.testing.assert_allclose(s, [[[1.0, 2.0], [0.5, 0.0]]])
    assert net[1].weight.grad is None, "explaining must not write parameter gradients"


def test_model_mode_and_parameters_restored(twins):
    m, _ = twins
    m.train()
    vis.saliency(m, _x(1))
    assert m.training and all(p.requires_grad for p in m.parameters())
    m.eval()


def test_smoothgrad_matches_torch_reference_and_reduces_to_saliency(twins):
    m, tm = twins
    x = _x(2, seed=1)
    np.testing.assert_allclose(vis.smoothgrad(m, x, n_samples=3, noise_level=0.0), vis.saliency(m, x), rtol=1e-10)
    n, level, seed = 4, 0.2, 5
    pred = tm(torch.tensor(x)).argmax(1).numpy()
    rng = np.random.default_rng(seed)
    span = (x.reshape(2, -1).max(1) - x.reshape(2, -1).min(1)).reshape(-1, 1, 1, 1)
    total = sum(_torch_input_grad(tm, x + level * span * rng.standard_normal(x.shape), pred) for _ in range(n))
    np.testing.assert_allclose(vis.smoothgrad(m, x, n_samples=n, noise_level=level, seed=seed),
                               np.abs(total / n).max(1), rtol=1e-9, atol=1e-12)


def test_integrated_gradients_matches_torch_and_completeness(twins):
    m, tm = twins
    x = _x(2, seed=2)
    base = np.full_like(x, 0.25)
    steps = 16
    out = vis.integrated_gradients(m, x, target=[3, 5], baseline=base, steps=steps)
    ref = np.zeros_like(x)
    for i, t in enumerate([3, 5]):
        alphas = np.linspace(0, 1, steps + 1)
        path = base[i] + alphas[:, None, None, None] * (x[i] - base[i])
        g = _torch_input_grad(tm, path, np.full(steps + 1, t))
        w = np.full(steps + 1, 1 / steps)
        w[[0, -1]] = 0.5 / steps
        ref[i] = (x[i] - base[i]) * (g * w[:, None, None, None]).sum(0)
    np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-12)
    # completeness: attributions sum to S(x) − S(x′), up to the quadrature error
    fine = vis.integrated_gradients(m, x, target=[3, 5], baseline=base, steps=128)
    with torch.no_grad():
        diff = (tm(torch.tensor(x)) - tm(torch.tensor(base))).numpy()[[0, 1], [3, 5]]
    np.testing.assert_allclose(fine.reshape(2, -1).sum(1), diff, rtol=0.02, atol=1e-3)


def _torch_grad_cam(tm: torch.nn.Module, layer: torch.nn.Module, x: np.ndarray, target: list[int]) -> np.ndarray:
    box = {}
    h = layer.register_forward_hook(lambda mod, i, o: box.update(a=o))
    out = tm(torch.tensor(x))
    h.remove()
    a = box["a"]
    (g,) = torch.autograd.grad(out[torch.arange(len(x)), torch.tensor(target)].sum(), a)
    cam = torch.relu((g.mean((2, 3), keepdim=True) * a).sum(1, keepdim=True))
    cam = torch.nn.functional.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)
    return cam[:, 0].detach().numpy()


def test_grad_cam_matches_torch_reference(twins):
    m, tm = twins
    x = _x(3, seed=4)
    # default layer: the last convolution's block output after its activation (the ReLU after features.3)
    np.testing.assert_allclose(vis.grad_cam(m, x, target=[0, 1, 2]),
                               _torch_grad_cam(tm, tm.features[4], x, [0, 1, 2]), rtol=1e-9, atol=1e-12)
    # a named conv layer: its raw output
    np.testing.assert_allclose(vis.grad_cam(m, x, target=[0, 1, 2], layer="features.3"),
                               _torch_grad_cam(tm, tm.features[3], x, [0, 1, 2]), rtol=1e-9, atol=1e-12)
    # a named layer (the ReLU after the first conv, full resolution: no upsampling needed)
    np.testing.assert_allclose(vis.grad_cam(m, x, target=4, layer="features.1"),
                               _torch_grad_cam(tm, tm.features[1], x, [4, 4, 4]), rtol=1e-9, atol=1e-12)
    small = vis.grad_cam(m, x, target=4, upsample=False)
    assert small.shape == (3, 4, 4) and (small >= 0).all()


def test_default_layer_is_the_conv_blocks_output_after_bn_and_relu():
    from lamina.vis.attribution import conv_block_layer

    m = lamina.models.lenet_small(width=4)  # conv → BatchNorm → ReLU, three times
    x = np.zeros((1, 1, 8, 8), np.float32)
    assert conv_block_layer(m, x) == "features.9" and conv_block_layer(m, x, first=True) == "features.2"
    f = m.features
    assert [type(f[i]).__name__ for i in (7, 8, 9)] == ["Conv2d", "BatchNorm2d", "ReLU"]
    assert [type(f[i]).__name__ for i in (0, 1, 2)] == ["Conv2d", "BatchNorm2d", "ReLU"]
    # grad_cam hooks that module: its map equals the one computed at features.9 by name
    np.testing.assert_array_equal(vis.grad_cam(m, _x(2).astype(np.float32), target=1),
                                  vis.grad_cam(m, _x(2).astype(np.float32), target=1, layer="features.9"))


class _Residual(lamina.nn.Module):
    """relu(bn(conv(x)) + x): the ReLU is applied to a sum, so the block itself is the output."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = lamina.nn.Conv2d(2, 2, 3, padding=1)
        self.bn = lamina.nn.BatchNorm2d(2)
        self.relu = lamina.nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)) + x)


def test_default_layer_of_residual_blocks_and_errors():
    from lamina.vis.attribution import conv_block_layer

    net = lamina.nn.Sequential(lamina.nn.Conv2d(1, 2, 3, padding=1), lamina.nn.ReLU(), _Residual(),
                               lamina.nn.AdaptiveAvgPool2d(1), lamina.nn.Flatten(), lamina.nn.Linear(2, 3))
    x = np.ones((1, 1, 6, 6), np.float32)
    assert conv_block_layer(net, x) == "2" and conv_block_layer(net, x, first=True) == "1"
    resnet = lamina.models.resnet18(num_classes=3)  # one ReLU module (in place) shared inside each block
    assert conv_block_layer(resnet, np.zeros((1, 3, 32, 32), np.float32)) == "layer4.1"
    assert conv_block_layer(resnet, np.zeros((1, 3, 32, 32), np.float32), first=True) == "relu"
    mlp = lamina.nn.Sequential(lamina.nn.Flatten(), lamina.nn.Linear(4, 2))
    with pytest.raises(ValueError, match="no convolution layer"):
        conv_block_layer(mlp, np.zeros((1, 1, 2, 2), np.float32))


def test_grad_cam_errors(twins):
    m, _ = twins
    with pytest.raises(ValueError, match="no layer 'nope'"):
        vis.grad_cam(m, _x(1), layer="nope")
    with pytest.raises(ValueError, match="feature maps"):
        vis.grad_cam(m, _x(1), layer="classifier.1")
    with pytest.raises(ValueError, match="target classes must lie in 0..9"):
        vis.saliency(m, _x(1), target=10)
    with pytest.raises(ValueError, match="expected an image"):
        vis.saliency(m, np.zeros((8, 8)))


def test_occlusion_peaks_on_the_only_informative_patch(trained_square_cnn):
    x, y, corners = square_images(8, seed=11)
    for i in np.flatnonzero(y == 1)[:3]:
        sens = vis.occlusion(trained_square_cnn, x[i], target=1, size=3, stride=1)[0]
        r, c = corners[i]
        inside = np.zeros((8, 8), bool)
        inside[r:r + 3, c:c + 3] = True
        peak = np.unravel_index(sens.argmax(), sens.shape)
        assert inside[peak], f"image {i}: peak at {peak}, square at {(r, c)}"
        assert sens[inside].mean() > 3 * max(np.abs(sens[~inside]).mean(), 1e-6)


def test_occlusion_hand_computed():
    # one logit depends on the top-left pixel only: p(class 0) = sigmoid(4·x00 − 0); occluding
    # it with 0 gives p = 0.5; the 1×1 occluder with stride 1 changes that pixel alone.
    net = lamina.nn.Sequential(lamina.nn.Flatten(), lamina.nn.Linear(4, 2, bias=False))
    net[1].weight.data = lamina.tensor([[4.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    s = vis.occlusion(net, np.ones((1, 2, 2)), target=0, size=1, stride=1)[0]
    p = 1 / (1 + np.exp(-4.0))
    np.testing.assert_allclose(s, [[p - 0.5, 0.0], [0.0, 0.0]], atol=1e-7)
