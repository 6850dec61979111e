"""Activation functions and layers against torch; gradchecks; stability at the extremes."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import lamina
import lamina.nn.functional as F
from lamina import nn
from tests.helpers import Input, check_grads, oracle


def _both(lf, tf):
    return lambda x: lf(x) if isinstance(x, lamina.Tensor) else tf(x)


# torch's celu and hardsigmoid backward kernels use float32 constants (1/alpha, 1/6), so even
# in float64 their gradients carry a relative error of ~1e-7: compared at rtol 1e-6
TORCH_F32_CONSTANTS = {"celu", "hardsigmoid"}

ACTS = {
    "relu": (F.relu, TF.relu),
    "relu6": (F.relu6, TF.relu6),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    "elu": (lambda x: F.elu(x, 0.7), lambda x: TF.elu(x, 0.7)),
    "selu": (F.selu, TF.selu),
    "celu": (lambda x: F.celu(x, 1.3), lambda x: TF.celu(x, 1.3)),
    "gelu": (F.gelu, TF.gelu),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh")),
    "silu": (F.silu, TF.silu),
    "mish": (F.mish, TF.mish),
    "softplus": (F.softplus, TF.softplus),
    "softplus_beta": (lambda x: F.softplus(x, 2.0, 3.0), lambda x: TF.softplus(x, 2.0, 3.0)),
    "softsign": (F.softsign, TF.softsign),
    "hardtanh": (lambda x: F.hardtanh(x, -0.5, 0.8), lambda x: TF.hardtanh(x, -0.5, 0.8)),
    "hardsigmoid": (F.hardsigmoid, TF.hardsigmoid),
    "hardswish": (F.hardswish, TF.hardswish),
    "sigmoid": (F.sigmoid, torch.sigmoid),
    "tanh": (F.tanh, torch.tanh),
    "logsigmoid": (F.logsigmoid, TF.logsigmoid),
    "softmax": (lambda x: F.softmax(x, -1), lambda x: TF.softmax(x, -1)),
    "log_softmax": (lambda x: F.log_softmax(x, 0), lambda x: TF.log_softmax(x, 0)),
    "softmin": (lambda x: F.softmin(x, 1), lambda x: TF.softmin(x, 1)),
    "erf": (lamina.erf, torch.erf),
}


@pytest.mark.parametrize("name", sorted(ACTS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("seed", range(3))
def test_activation_oracle(name, dtype, seed):
    lf, tf = ACTS[name]
    shape = [(3, 4), (2, 3, 5), (7, 2)][seed]
    scale = np.array(4.0)  # spread values over the interesting range (kinks at ±3, 0, 6 ...)
    rng = np.random.default_rng(seed)
    arr = rng.permutation(np.linspace(-7.3, 7.9, int(np.prod(shape)))).reshape(shape) + rng.uniform(-0.01, 0.01, shape)
    tol = dict(rtol=1e-6) if name in TORCH_F32_CONSTANTS else {}
    oracle(_both(lf, tf), Input(array=arr * scale / 4), dtype=dtype, seed=seed, **tol)


@pytest.mark.parametrize("name", sorted(ACTS))
def test_activation_gradcheck(name):
    lf, _ = ACTS[name]
    arr = np.linspace(-4.1, 4.3, 12).reshape(3, 4) + 0.013  # away from the kinks
    check_grads(lf, Input(array=arr))


def test_activations_at_kinks_follow_torch():
    x = np.array([-6.0, -3.0, -1.0, -0.5, 0.0, 0.8, 1.0, 3.0, 6.0, 7.0])
    for name in ["relu", "relu6", "leaky_relu", "hardtanh", "hardsigmoid", "hardswish", "elu", "celu", "softsign"]:
        lf, tf = ACTS[name]
        oracle(_both(lf, tf), Input(array=x), rtol=1e-6 if name in TORCH_F32_CONSTANTS else None)


def test_extreme_inputs_stay_finite():
    x = np.array([-1e4, -800.0, -50.0, 0.0, 50.0, 800.0, 1e4])
    for name in ["softplus", "logsigmoid", "elu", "selu", "celu", "mish", "silu", "gelu", "sigmoid", "tanh"]:
        lf, tf = ACTS[name]
        for dtype in ("float32", "float64"):
            oracle(_both(lf, tf), Input(array=x), dtype=dtype, rtol=1e-6 if name in TORCH_F32_CONSTANTS else None)
            t = lamina.tensor(x, dtype=dtype, requires_grad=True)
            lf(t).sum().backward()
            assert np.isfinite(t.grad.array).all(), name


def test_prelu_functional_and_module():
    oracle(lambda x, w: F.prelu(x, w) if isinstance(x, lamina.Tensor) else TF.prelu(x, w),
           Input((2, 3, 4), distinct=True), Input((3,)))
    oracle(lambda x, w: F.prelu(x, w) if isinstance(x, lamina.Tensor) else TF.prelu(x, w),
           Input((2, 3), distinct=True), Input((1,)))
    check_grads(F.prelu, Input((2, 3, 4), distinct=True), Input((3,)))
    m = nn.PReLU(3)
    assert m.weight.tolist() == [0.25] * 3
    with pytest.raises(ValueError, match="prelu: weight has 3 slopes but input has 4 channels"):
        m(lamina.ones(2, 4))


MODULES = [
    (nn.ReLU(), torch.nn.ReLU()), (nn.ReLU6(), torch.nn.ReLU6()), (nn.LeakyReLU(0.3), torch.nn.LeakyReLU(0.3)),
    (nn.ELU(0.5), torch.nn.ELU(0.5)), (nn.SELU(), torch.nn.SELU()), (nn.CELU(2.0), torch.nn.CELU(2.0)),
    (nn.GELU(), torch.nn.GELU()), (nn.GELU("tanh"), torch.nn.GELU("tanh")), (nn.SiLU(), torch.nn.SiLU()),
    (nn.Mish(), torch.nn.Mish()), (nn.Softplus(1.5, 10), torch.nn.Softplus(1.5, 10)), (nn.Softsign(), torch.nn.Softsign()),
    (nn.Hardtanh(-2, 2), torch.nn.Hardtanh(-2, 2)), (nn.Hardsigmoid(), torch.nn.Hardsigmoid()),
    (nn.Hardswish(), torch.nn.Hardswish()), (nn.Sigmoid(), torch.nn.Sigmoid()), (nn.Tanh(), torch.nn.Tanh()),
    (nn.LogSigmoid(), torch.nn.LogSigmoid()), (nn.Softmax(1), torch.nn.Softmax(1)),
    (nn.LogSoftmax(-1), torch.nn.LogSoftmax(-1)), (nn.Softmin(0), torch.nn.Softmin(0)),
]


@pytest.mark.parametrize("i", range(len(MODULES)))
def test_activation_modules_match_torch_modules_and_reprs(i):
    lm, tm = MODULES[i]
    assert repr(lm) == repr(tm)
    loose = type(lm).__name__ in ("CELU", "Hardsigmoid")  # see TORCH_F32_CONSTANTS
    oracle(lambda x: lm(x) if isinstance(x, lamina.Tensor) else tm(x), Input((3, 5), distinct=True),
           rtol=1e-6 if loose else None)


def test_prelu_module_learns_its_slope_like_torch():
    lm, tm = nn.PReLU(4, init=0.1).double(), torch.nn.PReLU(4, init=0.1).double()
    assert repr(lm) == repr(tm)
    x = np.random.default_rng(0).standard_normal((5, 4, 3))
    lm(lamina.tensor(x)).sum().backward()
    tm(torch.from_numpy(x)).sum().backward()
    np.testing.assert_allclose(lm.weight.grad.array, tm.weight.grad.numpy(), rtol=1e-12)


def test_swish_with_learnable_beta():
    m = nn.Swish(beta=1.5).double()
    assert [n for n, _ in m.named_parameters()] == ["beta"]
    x = lamina.tensor([-1.0, 0.5, 2.0], dtype=lamina.float64)
    y = m(x)
    s = 1 / (1 + np.exp(-1.5 * x.array))
    np.testing.assert_allclose(y.array, x.array * s)
    y.sum().backward()
    # d/dβ x·σ(βx) = x²·σ(βx)(1 − σ(βx))
    np.testing.assert_allclose(m.beta.grad.item(), (x.array ** 2 * s * (1 - s)).sum(), rtol=1e-12)
    fixed = nn.Swish(beta=1.0, learnable=False)
    assert list(fixed.parameters()) == []
    oracle(lambda t: fixed(t) if isinstance(t, lamina.Tensor) else TF.silu(t), Input((4,)))


def test_hand_computed_relu_and_sigmoid_values():
    x = lamina.tensor([-2.0, 0.0, 3.0], requires_grad=True)
    y = F.relu(x)
    y.sum().backward()
    assert y.tolist() == [0.0, 0.0, 3.0] and x.grad.tolist() == [0.0, 0.0, 1.0]
    assert F.sigmoid(lamina.tensor(0.0)).item() == 0.5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_erf_kernels_agree_with_torch_over_the_whole_range(dtype):
    """The compiled erf (the C library's) and the series/continued-fraction reference both equal
    torch's, from the tails through the switch between the reference's two formulas."""
    from lamina.ops.activation import erf_array, erf_series

    x = np.concatenate([np.linspace(-7, 7, 20001), [0.0, -0.0, 2.5, -2.5, 1e-30, np.inf, -np.inf]]).astype(dtype)
    want = torch.erf(torch.from_numpy(x)).numpy()
    tol = 1e-7 if dtype == np.float32 else 1e-14
    for f in (erf_array, erf_series):
        got = f(x)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=0, atol=tol)
