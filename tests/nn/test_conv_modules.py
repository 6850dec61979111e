"""Conv1d/2d/3d and ConvTranspose1d/2d/3d modules: torch state_dict loads, outputs and gradients
match, torch's initialization, repr, errors; Fold/Unfold."""

import math

import numpy as np
import pytest
import torch

import lamina
import lamina.nn as nn

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")

CASES = [
    ("Conv1d", dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1), (2, 4, 11)),
    ("Conv1d", dict(in_channels=4, out_channels=4, kernel_size=4, padding="same", padding_mode="reflect",
                    groups=2), (2, 4, 9)),
    ("Conv2d", dict(in_channels=3, out_channels=8, kernel_size=(3, 2), dilation=(2, 1), bias=False), (2, 3, 9, 8)),
    ("Conv2d", dict(in_channels=4, out_channels=4, kernel_size=3, padding=1, groups=4,
                    padding_mode="circular"), (2, 4, 6, 6)),
    ("Conv2d", dict(in_channels=4, out_channels=6, kernel_size=3, padding=2, padding_mode="replicate"), (1, 4, 5, 5)),
    ("Conv2d", dict(in_channels=6, out_channels=2, kernel_size=1), (3, 6, 4, 4)),
    ("Conv3d", dict(in_channels=2, out_channels=3, kernel_size=2, stride=(1, 2, 1), padding="valid"), (2, 2, 4, 5, 3)),
    ("ConvTranspose1d", dict(in_channels=4, out_channels=2, kernel_size=3, stride=2, output_padding=1), (2, 4, 5)),
    ("ConvTranspose2d", dict(in_channels=4, out_channels=6, kernel_size=4, stride=2, padding=1, groups=2), (2, 4, 4, 4)),
    ("ConvTranspose2d", dict(in_channels=3, out_channels=2, kernel_size=3, dilation=2, bias=False), (1, 3, 3, 4)),
    ("ConvTranspose3d", dict(in_channels=2, out_channels=2, kernel_size=2, stride=2), (1, 2, 2, 3, 2)),
]


@pytest.mark.parametrize("name,kwargs,shape", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_module_matches_torch(name, kwargs, shape, dtype):
    tm = getattr(torch.nn, name)(**kwargs).to(getattr(torch, dtype))
    lm = getattr(nn, name)(**kwargs, dtype=dtype)
    assert repr(lm) == repr(tm)
    lm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    assert sorted(lm.state_dict()) == sorted(tm.state_dict())
    rng = np.random.default_rng(0)
    xs = rng.standard_normal(shape).astype(dtype)
    x, tx = lamina.tensor(xs, requires_grad=True), torch.tensor(xs, requires_grad=True)
    y, ty = lm(x), tm(tx)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == "float64" else dict(rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), **tol)
    gy = rng.standard_normal(y.shape).astype(dtype)
    y.backward(lamina.tensor(gy))
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), **tol)
    for pname, p in tm.named_parameters():
        np.testing.assert_allclose(getattr(lm, pname).grad.numpy(), p.grad.numpy(), **tol, err_msg=pname)


def test_conv_transpose_module_output_size():
    lm = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1)
    tm = torch.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1).double()
    lm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    lm.double()
    xs = np.random.default_rng(1).standard_normal((1, 3, 5, 5))
    y = lm(lamina.tensor(xs), output_size=(10, 10))
    ty = tm(torch.tensor(xs), output_size=(10, 10))
    assert y.shape == (1, 2, 10, 10)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name,args", [("Conv2d", (16, 32, 3)), ("Conv1d", (6, 12, 5)),
                                       ("ConvTranspose2d", (16, 8, 4)), ("Conv3d", (4, 8, (2, 3, 3)))])
def test_default_initialization_is_torchs(name, args):
    # torch: kaiming_uniform_(a=√5) -> U(±1/√fan_in), fan_in = weight.shape[1]·∏kernel; bias U(±1/√fan_in)
    lamina.manual_seed(0)
    m = getattr(nn, name)(*args, groups=2 if name == "Conv2d" else 1)
    w, b = m.weight.detach().numpy(), m.bias.detach().numpy()
    fan_in = w.shape[1] * math.prod(w.shape[2:])
    bound = 1 / math.sqrt(fan_in)
    assert w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert np.abs(b).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.1 * bound  # the std of U(-a, a) is a/√3
    t = getattr(torch.nn, name)(*args, groups=2 if name == "Conv2d" else 1)
    assert tuple(t.weight.shape) == w.shape


def test_module_errors_are_clear():
    with pytest.raises(ValueError, match="Conv2d: in_channels must be divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="Conv2d: out_channels must be divisible by groups"):
        nn.Conv2d(4, 3, 3, groups=2)
    with pytest.raises(ValueError, match="Conv1d: padding='same' is not supported for strided"):
        nn.Conv1d(2, 2, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="Conv2d: stride must be positive"):
        nn.Conv2d(2, 2, 3, stride=0)
    with pytest.raises(ValueError, match="ConvTranspose2d: output_padding must be smaller than either stride or dilation"):
        nn.ConvTranspose2d(2, 2, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="ConvTranspose2d: only 'zeros' padding mode"):
        nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv2d(2, 2, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match=r"conv2d: input has 1 channel but weight expects 3 \(weight shape \(10, 3, 5, 5\)\)"):
        nn.Conv2d(3, 10, 5)(lamina.randn(1, 1, 8, 8))


def test_a_layer_that_refuses_its_input_is_named_once():
    """A ValueError from a layer's forward starts with the layer (its class and settings), once
    — the innermost layer, not every container around it; other errors pass unchanged."""
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Sequential(nn.ReLU(), nn.MaxPool2d(5)))
    with pytest.raises(ValueError) as e:
        net(lamina.randn(1, 1, 5, 5))
    msg = str(e.value)
    assert msg.startswith("MaxPool2d(kernel_size=5, stride=5, padding=0, dilation=1, ceil_mode=False): max_pool2d: ")
    assert msg.count("MaxPool2d(") == 1 and "Sequential" not in msg
    with pytest.raises(ValueError, match=r"^Conv2d\(4, 4, kernel_size=\(3, 3\), stride=\(1, 1\), groups=2\): conv2d: "
                                         r"input has 6 channels but weight expects 4"):
        nn.Conv2d(4, 4, 3, groups=2)(lamina.randn(1, 6, 5, 5))
    with pytest.raises(ValueError, match=r"^BatchNorm1d\(3.*\): batch_norm: running_mean should have shape \(5,\)"):
        nn.BatchNorm1d(3)(lamina.randn(4, 5))
    with pytest.raises(TypeError, match=r"^conv2d: "):  # not a ValueError: untouched
        nn.Conv2d(1, 1, 3)(lamina.randn(1, 1, 5, 5).double())

    class Mine(nn.Module):  # a user's own module: its errors stay as raised
        def forward(self, x):
            raise ValueError("mine: bad input")

    with pytest.raises(ValueError, match=r"^mine: bad input$"):
        nn.Sequential(Mine())(lamina.randn(2))


def test_lenet_stack_trains_like_torch():
    # conv -> relu -> conv, one SGD step by hand, parameters equal torch's afterwards
    tnet = torch.nn.Sequential(torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(), torch.nn.Conv2d(6, 16, 5)).double()
    lnet = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.Conv2d(6, 16, 5)).double()
    lnet.load_state_dict({k: v.detach().numpy() for k, v in tnet.state_dict().items()})
    xs = np.random.default_rng(2).standard_normal((4, 1, 12, 12))
    (lnet(lamina.tensor(xs)) ** 2).mean().backward()
    (tnet(torch.tensor(xs)) ** 2).mean().backward()
    for (name, p), tp in zip(lnet.named_parameters(), tnet.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


def test_fold_unfold_modules():
    tu, lu = torch.nn.Unfold((2, 3), dilation=1, padding=1, stride=2), nn.Unfold((2, 3), dilation=1, padding=1, stride=2)
    tf, lf = torch.nn.Fold((5, 6), (2, 3), padding=1, stride=2), nn.Fold((5, 6), (2, 3), padding=1, stride=2)
    assert repr(lu) == repr(tu) and repr(lf) == repr(tf)
    xs = np.random.default_rng(3).standard_normal((2, 3, 5, 6))
    x, tx = lamina.tensor(xs, requires_grad=True), torch.tensor(xs, requires_grad=True)
    y, ty = lf(lu(x) * 2), tf(tu(tx) * 2)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-12)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
