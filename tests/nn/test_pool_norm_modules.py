"""Pooling, normalization and resampling layers against torch.nn: several training steps of
batch norm (running statistics with momentum given and None), eval mode, state_dict
round-trips with torch, module options and errors."""

import numpy as np
import pytest
import torch

import lamina
import lamina.nn as nn


def _t(a):
    return torch.from_numpy(np.array(a))


def _l(a):
    return lamina.tensor(np.array(a))


def _compare_state(lam, tor, tol=1e-12):
    ls, ts = lam.state_dict(), tor.state_dict()
    assert list(ls) == list(ts)
    for k in ts:
        np.testing.assert_allclose(ls[k].array, ts[k].numpy(), rtol=tol, atol=tol, err_msg=k)


def _run_steps(lam, tor, shape, steps=4, seed=0, train_pattern=(True, True, False, True)):
    rng = np.random.default_rng(seed)
    for step in range(steps):
        training = train_pattern[step % len(train_pattern)]
        lam.train(training)
        tor.train(training)
        a = rng.standard_normal(shape) * 2 + 0.5
        g = rng.standard_normal(shape)
        x, t = _l(a).requires_grad_(), _t(a).requires_grad_()
        y, ty = lam(x), tor(t)
        np.testing.assert_allclose(y.detach().array, ty.detach().numpy(), rtol=1e-10, atol=1e-10)
        y.backward(_l(g))
        ty.backward(_t(g))
        np.testing.assert_allclose(x.grad.array, t.grad.numpy(), rtol=1e-9, atol=1e-10)
        for (name, p), tp in zip(lam.named_parameters(), tor.parameters()):
            np.testing.assert_allclose(p.grad.array, tp.grad.numpy(), rtol=1e-9, atol=1e-10, err_msg=name)
            p.grad, tp.grad = None, None
        _compare_state(lam, tor)


BN = [(nn.BatchNorm1d, torch.nn.BatchNorm1d, (6, 3)), (nn.BatchNorm1d, torch.nn.BatchNorm1d, (4, 3, 5)),
      (nn.BatchNorm2d, torch.nn.BatchNorm2d, (4, 3, 5, 2)), (nn.BatchNorm3d, torch.nn.BatchNorm3d, (2, 3, 2, 3, 2))]


@pytest.mark.parametrize("momentum", [0.1, 0.7, None])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("lcls,tcls,shape", BN, ids=["bn1d_2d", "bn1d_3d", "bn2d", "bn3d"])
def test_batch_norm_steps_match_torch(lcls, tcls, shape, momentum, affine):
    lam = lcls(3, momentum=momentum, affine=affine, eps=1e-3).double()
    tor = tcls(3, momentum=momentum, affine=affine, eps=1e-3).double()
    if affine:
        rng = np.random.default_rng(1)
        w, b = rng.uniform(0.5, 1.5, 3), rng.standard_normal(3)
        lam.load_state_dict({**tor.state_dict(), "weight": w, "bias": b})
        tor.load_state_dict({k: _t(v) for k, v in lam.state_dict().items()} | {"num_batches_tracked": torch.tensor(0)})
    _run_steps(lam, tor, shape)


def test_batch_norm_without_running_stats_uses_batch_stats_in_eval():
    lam, tor = nn.BatchNorm2d(3, track_running_stats=False).double(), torch.nn.BatchNorm2d(3, track_running_stats=False).double()
    assert lam.running_mean is None and lam.num_batches_tracked is None
    assert list(lam.state_dict()) == list(tor.state_dict()) == ["weight", "bias"]
    _run_steps(lam, tor, (3, 3, 2, 2), train_pattern=(False, True))


def test_batch_norm_reset_and_load_torch_state():
    tor = torch.nn.BatchNorm2d(4)
    tor.train()
    for _ in range(3):
        tor(torch.randn(5, 4, 3, 3) * 3 + 2)
    lam = nn.BatchNorm2d(4)
    lam.load_state_dict(tor.state_dict())
    _compare_state(lam, tor, tol=0)
    assert int(lam.num_batches_tracked) == 3
    lam.eval()
    tor.eval()
    x = np.random.default_rng(0).standard_normal((2, 4, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(lam(_l(x)).array, tor(_t(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    lam.reset_running_stats()
    assert lam.running_mean.tolist() == [0.0] * 4 and lam.running_var.tolist() == [1.0] * 4
    assert int(lam.num_batches_tracked) == 0
    lam.weight.array[:] = 3.0
    lam.reset_parameters()
    assert lam.weight.tolist() == [1.0] * 4 and lam.bias.tolist() == [0.0] * 4
    assert repr(lam) == repr(tor)


def test_batch_norm_input_rank_errors():
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected 4D input, got 3D input"):
        nn.BatchNorm2d(3)(lamina.randn(2, 3, 4))
    with pytest.raises(ValueError, match=r"BatchNorm1d: expected 2D or 3D input"):
        nn.BatchNorm1d(3)(lamina.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"running_mean should have shape \(4,\) for an input with 4 channels"):
        nn.BatchNorm2d(3)(lamina.randn(2, 4, 2, 2))


@pytest.mark.parametrize("track", [False, True])
@pytest.mark.parametrize("lcls,tcls,shape", [(nn.InstanceNorm1d, torch.nn.InstanceNorm1d, (3, 2, 5)),
                                             (nn.InstanceNorm2d, torch.nn.InstanceNorm2d, (2, 2, 3, 4)),
                                             (nn.InstanceNorm3d, torch.nn.InstanceNorm3d, (2, 2, 2, 3, 2))])
def test_instance_norm_steps_match_torch(lcls, tcls, shape, track):
    lam = lcls(2, affine=True, track_running_stats=track).double()
    tor = tcls(2, affine=True, track_running_stats=track).double()
    _run_steps(lam, tor, shape, train_pattern=(True, False, True))
    x = np.random.default_rng(3).standard_normal(shape[1:])  # unbatched input
    np.testing.assert_allclose(lam(_l(x)).array, tor(_t(x)).detach().numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("bias", [True, False])
def test_layer_norm_and_group_norm_modules(bias):
    rng = np.random.default_rng(0)
    lam, tor = nn.LayerNorm((3, 4), eps=1e-4, bias=bias).double(), torch.nn.LayerNorm((3, 4), eps=1e-4, bias=bias).double()
    lam.load_state_dict({k: v.numpy() + rng.standard_normal(tuple(v.shape)) for k, v in tor.state_dict().items()})
    tor.load_state_dict({k: _t(v.array) for k, v in lam.state_dict().items()})
    _run_steps(lam, tor, (2, 5, 3, 4))
    lam, tor = nn.GroupNorm(2, 6).double(), torch.nn.GroupNorm(2, 6).double()
    _run_steps(lam, tor, (3, 6, 2, 2))
    assert repr(nn.GroupNorm(2, 6)) == repr(torch.nn.GroupNorm(2, 6))
    with pytest.raises(ValueError, match=r"GroupNorm: num_channels \(5\) must be divisible by num_groups \(2\)"):
        nn.GroupNorm(2, 5)


MODULE_PAIRS = [
    ("MaxPool1d", (3,), dict(stride=2, padding=1, ceil_mode=True), (2, 3, 9)),
    ("MaxPool2d", (3,), dict(stride=2, dilation=2), (2, 3, 9, 8)),
    ("MaxPool3d", (2,), {}, (1, 2, 4, 5, 4)),
    ("AvgPool1d", (3,), dict(stride=2, padding=1, count_include_pad=False), (2, 3, 9)),
    ("AvgPool2d", (3,), dict(stride=2, padding=1, ceil_mode=True, divisor_override=4), (2, 3, 8, 7)),
    ("AvgPool3d", (2,), dict(stride=1), (1, 2, 3, 4, 3)),
    ("LPPool1d", (2, 3), dict(stride=2), (2, 3, 9)),
    ("LPPool2d", (3, 2), {}, (1, 2, 6, 5)),
    ("LPPool3d", (1, 2), {}, (1, 2, 4, 4, 4)),
    ("AdaptiveAvgPool1d", (4,), {}, (2, 3, 9)),
    ("AdaptiveAvgPool2d", ((3, 5),), {}, (2, 3, 7, 8)),
    ("AdaptiveAvgPool3d", (2,), {}, (1, 2, 3, 5, 4)),
    ("AdaptiveMaxPool1d", (4,), {}, (2, 3, 9)),
    ("AdaptiveMaxPool2d", ((3, 5),), {}, (2, 3, 7, 8)),
    ("AdaptiveMaxPool3d", (2,), {}, (1, 2, 3, 5, 4)),
    ("LocalResponseNorm", (3,), dict(alpha=0.1, k=2.0), (2, 5, 3, 3)),
    ("Upsample", (), dict(scale_factor=2, mode="bilinear"), (1, 2, 3, 4)),
    ("Upsample", (), dict(size=(5, 4, 3), mode="trilinear", align_corners=True), (1, 2, 3, 4, 2)),
    ("Upsample", (), dict(scale_factor=3), (1, 2, 5)),
    ("UpsamplingNearest2d", (), dict(size=(5, 7)), (1, 2, 3, 4)),
    ("UpsamplingBilinear2d", (), dict(scale_factor=2), (1, 2, 3, 4)),
    ("PixelShuffle", (2,), {}, (1, 8, 3, 2)),
    ("PixelUnshuffle", (2,), {}, (1, 2, 4, 6)),
]


@pytest.mark.parametrize("name,args,kwargs,shape", MODULE_PAIRS, ids=[f"{m[0]}{i}" for i, m in enumerate(MODULE_PAIRS)])
def test_modules_match_torch(name, args, kwargs, shape):
    lam, tor = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    rng = np.random.default_rng(0)
    n = int(np.prod(shape))
    a = ((rng.permutation(n) - n / 2) * 0.1).reshape(shape)  # distinct values: no ties
    if name.startswith("LPPool"):
        a = np.abs(a) + 0.5
    g = rng.standard_normal(tor(_t(a)).shape)
    x, t = _l(a).requires_grad_(), _t(a).requires_grad_()
    y, ty = lam(x), tor(t)
    np.testing.assert_allclose(y.detach().array, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    y.backward(_l(g))
    ty.backward(_t(g))
    np.testing.assert_allclose(x.grad.array, t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_pool_with_indices_and_unpool_modules():
    a = np.random.default_rng(1).permutation(2 * 3 * 6 * 7).reshape(2, 3, 6, 7).astype(np.float64)
    lp, tp = nn.MaxPool2d(2, return_indices=True), torch.nn.MaxPool2d(2, return_indices=True)
    (y, i), (ty, ti) = lp(_l(a)), tp(_t(a))
    assert i.tolist() == ti.tolist()
    lu, tu = nn.MaxUnpool2d(2), torch.nn.MaxUnpool2d(2)
    np.testing.assert_array_equal(lu(y, i, output_size=(6, 7)).array, tu(ty, ti, output_size=(6, 7)).numpy())
    for d in (1, 3):
        shape = (1, 2) + (4,) * d
        a = np.random.default_rng(d).permutation(int(np.prod(shape))).reshape(shape).astype(np.float64)
        lp, tp = getattr(nn, f"MaxPool{d}d")(2, return_indices=True), getattr(torch.nn, f"MaxPool{d}d")(2, return_indices=True)
        lu, tu = getattr(nn, f"MaxUnpool{d}d")(2), getattr(torch.nn, f"MaxUnpool{d}d")(2)
        np.testing.assert_array_equal(lu(*lp(_l(a))).array, tu(*tp(_t(a))).numpy())


def test_reprs_match_torch():
    for name, args, kwargs in [("MaxPool2d", (3, 2), {}), ("AvgPool2d", (2,), {}), ("LPPool2d", (2, 3), {}),
                               ("MaxUnpool2d", (2,), {}), ("AdaptiveAvgPool2d", ((1, 1),), {}),
                               ("AdaptiveMaxPool2d", (3,), {}), ("LocalResponseNorm", (5,), {}),
                               ("PixelShuffle", (2,), {}), ("BatchNorm1d", (4,), dict(momentum=None)),
                               ("LayerNorm", (8,), {}), ("InstanceNorm2d", (3,), {}),
                               ("BatchNorm2d", (3,), dict(bias=False)), ("GroupNorm", (2, 4), dict(bias=False))]:
        assert repr(getattr(nn, name)(*args, **kwargs)) == repr(getattr(torch.nn, name)(*args, **kwargs)), name


def test_global_avg_pool_and_local_contrast_norm_modules():
    x = lamina.randn(2, 3, 5, 4)
    np.testing.assert_allclose(nn.GlobalAvgPool2d()(x).array, x.array.mean((2, 3), keepdims=True), rtol=1e-6)
    assert nn.GlobalAvgPool2d(flatten=True)(x).shape == (2, 3)
    lcn = nn.LocalContrastNorm(5, sigma=1.0)
    assert lcn(x).shape == x.shape and lcn(x[0]).shape == x.shape[1:]
    assert list(lcn.parameters()) == []
    # the classic block: conv-free stand-in ReLU → pool → normalize
    block = nn.Sequential(nn.MaxPool2d(2), nn.LocalContrastNorm(3, sigma=0.8))
    assert block(lamina.randn(1, 2, 8, 8)).shape == (1, 2, 4, 4)
