"""Linear, Bilinear, Embedding and dropout layers against torch; init distributions."""

import math

import numpy as np
import pytest
import torch

import lamina
import lamina.nn.functional as F
from lamina import nn
from lamina.nn import init
from tests.helpers import Input, check_grads, oracle


def _copy(lm, tm):
    lm.load_state_dict(tm.state_dict())
    return lm


@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4), (4,)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(shape, bias):
    tm = torch.nn.Linear(4, 3, bias=bias).double()
    lm = _copy(nn.Linear(4, 3, bias=bias).double(), tm)
    assert repr(lm) == repr(tm)
    oracle(lambda x: lm(x) if isinstance(x, lamina.Tensor) else tm(x), Input(shape))
    x = np.random.default_rng(0).standard_normal(shape)
    lm(lamina.tensor(x)).sum().backward()
    tm(torch.tensor(x)).sum().backward()
    np.testing.assert_allclose(lm.weight.grad.array, tm.weight.grad.numpy(), rtol=1e-12)
    if bias:
        np.testing.assert_allclose(lm.bias.grad.array, tm.bias.grad.numpy(), rtol=1e-12)


def test_functional_linear_bilinear_gradcheck_and_oracle():
    check_grads(F.linear, Input((3, 4)), Input((2, 4)), Input((2,)))
    oracle(lambda a, b, w, c: (F if isinstance(a, lamina.Tensor) else torch.nn.functional).bilinear(a, b, w, c),
           Input((5, 3)), Input((5, 4)), Input((2, 3, 4)), Input((2,)))
    check_grads(F.bilinear, Input((2, 3)), Input((2, 4)), Input((2, 3, 4)), Input((2,)))
    tm = torch.nn.Bilinear(3, 4, 2).double()
    lm = _copy(nn.Bilinear(3, 4, 2).double(), tm)
    assert repr(lm) == repr(tm)
    with pytest.raises(ValueError, match="linear: input has 5 features in its last dim but weight expects 4"):
        nn.Linear(4, 2)(lamina.ones(3, 5))


def test_embedding_matches_torch_including_padding_idx():
    tm = torch.nn.Embedding(6, 3, padding_idx=2).double()
    lm = _copy(nn.Embedding(6, 3, padding_idx=2).double(), tm)
    assert repr(lm) == repr(tm)
    idx = np.array([[0, 2, 5], [2, 2, 1]])
    yl, yt = lm(lamina.tensor(idx)), tm(torch.tensor(idx))
    np.testing.assert_allclose(yl.detach().array, yt.detach().numpy())
    up = np.random.default_rng(0).standard_normal(yl.shape)
    yl.backward(lamina.tensor(up))
    yt.backward(torch.tensor(up))
    np.testing.assert_allclose(lm.weight.grad.array, tm.weight.grad.numpy(), rtol=1e-12)
    assert np.all(lm.weight.grad.array[2] == 0)
    assert F.one_hot(lamina.tensor([0, 2]), 3).tolist() == [[1, 0, 0], [0, 0, 1]]


def test_default_initialization_follows_torch_distributions():
    lamina.manual_seed(0)
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w = lin.weight.array
    assert w.min() >= -bound and w.max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound  # U(−b, b) has std b/√3
    assert abs(lin.bias.array).max() <= bound
    emb = nn.Embedding(1000, 50)
    assert abs(emb.weight.array.std() - 1) < 0.02


@pytest.mark.parametrize("name,kwargs,std", [
    ("xavier_uniform_", {}, math.sqrt(2 / (200 + 300))),
    ("xavier_normal_", {"gain": 2.0}, 2 * math.sqrt(2 / (200 + 300))),
    ("kaiming_uniform_", {"nonlinearity": "relu"}, math.sqrt(2 / 300)),
    ("kaiming_normal_", {"mode": "fan_out", "nonlinearity": "relu"}, math.sqrt(2 / 200)),
    ("normal_", {"std": 0.3}, 0.3),
    ("uniform_", {"a": -1.0, "b": 1.0}, 1 / math.sqrt(3)),
    ("trunc_normal_", {"std": 1.0, "a": -1.0, "b": 1.0}, 0.5380),
])
def test_init_moments(name, kwargs, std):
    lamina.manual_seed(1)
    t = lamina.empty(200, 300)
    getattr(init, name)(t, **kwargs)
    assert abs(t.array.mean()) < 0.05 * std + 1e-3
    assert abs(t.array.std() - std) < 0.03 * std
    if name == "trunc_normal_":
        assert t.array.min() >= -1 and t.array.max() <= 1


def test_init_exact_cases_and_gains():
    assert init.calculate_gain("relu") == torch.nn.init.calculate_gain("relu")
    assert init.calculate_gain("tanh") == torch.nn.init.calculate_gain("tanh")
    assert init.calculate_gain("leaky_relu", 0.2) == torch.nn.init.calculate_gain("leaky_relu", 0.2)
    assert init.calculate_gain("selu") == torch.nn.init.calculate_gain("selu")
    t = lamina.empty(3, 5)
    assert init.eye_(t).tolist() == np.eye(3, 5).tolist()
    assert init.constant_(t, 0.5).array.max() == 0.5 and init.zeros_(t).array.max() == 0
    assert init.ones_(t).array.min() == 1
    q = init.orthogonal_(lamina.empty(4, 6), gain=2.0).array
    np.testing.assert_allclose(q @ q.T, 4 * np.eye(4), atol=1e-5)
    w = init.dirac_(lamina.empty(4, 2, 3, 3), groups=2)
    tw = torch.nn.init.dirac_(torch.empty(4, 2, 3, 3), groups=2)
    np.testing.assert_array_equal(w.array, tw.numpy())
    with pytest.raises(ValueError, match="Fan in and fan out can not be computed"):
        init.xavier_uniform_(lamina.empty(3))


def test_dropout_train_and_eval():
    lamina.manual_seed(0)
    x = lamina.ones(200, 100)
    d = nn.Dropout(0.3)
    y = d(x)
    kept = y.array != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y.array[kept], 1 / 0.7, rtol=1e-6)  # inverted dropout
    d.eval()
    assert d(x) is x
    xg = lamina.ones(4, 5, requires_grad=True)
    yg = F.dropout(xg, 0.5)
    yg.sum().backward()
    np.testing.assert_allclose(xg.grad.array, yg.array)  # gradient flows only through survivors, scaled
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        nn.Dropout(1.5)
    assert repr(nn.Dropout(0.3)) == repr(torch.nn.Dropout(0.3))


@pytest.mark.parametrize("cls,shape", [(nn.Dropout1d, (8, 50, 7)), (nn.Dropout2d, (8, 50, 4, 4)),
                                       (nn.Dropout3d, (4, 50, 2, 3, 3))])
def test_channel_dropout_zeroes_whole_channels(cls, shape):
    lamina.manual_seed(3)
    y = cls(0.4)(lamina.ones(*shape)).array
    per_channel = y.reshape(shape[0], shape[1], -1)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 1 / 0.6).all(-1))
    assert abs((per_channel[..., 0] == 0).mean() - 0.4) < 0.1
    with pytest.raises(ValueError, match="expected"):
        cls(0.5)(lamina.ones(5))


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_channel_dropout_modes_gradient_and_inplace_as_torch(nd):
    """Evaluation and p = 0 return the input itself, p = 1 zeros; the gradient is the mask
    scaled by 1/(1−p); ``inplace`` writes into the input and returns it (an error on a leaf
    that requires grad), as torch's; unbatched ``(C, *)`` inputs drop whole channels (not a
    3-D input to dropout2d: see the next test)."""
    fn, tfn = getattr(F, f"dropout{nd}d"), getattr(torch.nn.functional, f"dropout{nd}d")
    shape = (3, 6) + (4,) * nd
    x = lamina.randn(*shape)
    tx = torch.from_numpy(x.array.copy())
    assert fn(x, 0.5, training=False) is x and fn(x, 0.0) is x
    assert tfn(tx, 0.5, training=False) is tx
    assert not fn(x, 1.0).array.any() and not tfn(tx, 1.0).numpy().any()
    xg = lamina.randn(*shape, requires_grad=True)
    lamina.manual_seed(4)
    y = fn(xg, 0.3)
    y.backward(lamina.ones(*shape))
    mask = y.array / xg.array
    np.testing.assert_allclose(xg.grad.array, mask, rtol=1e-6)
    assert np.all(np.isclose(mask, 0.0) | np.isclose(mask, 1 / 0.7, rtol=1e-5))
    h = xg * 1.0
    out = fn(h, 0.5, inplace=True)
    th = torch.ones(shape, requires_grad=True) * 1.0
    assert out is h and tfn(th, 0.5, inplace=True) is th
    out.sum().backward()  # autograd through the in-place version
    with pytest.raises(RuntimeError, match="in-place"):
        fn(lamina.ones(*shape, requires_grad=True), 0.5, inplace=True)
    with pytest.raises(RuntimeError):
        tfn(torch.ones(shape, requires_grad=True), 0.5, inplace=True)
    if nd != 2:  # a 3-D input to dropout2d is read as batched 1-D (the next test)
        unbatched = fn(lamina.ones(*shape[1:]), 0.5).array.reshape(shape[1], -1)
        assert np.all((unbatched == 0).all(-1) | (unbatched == 2.0).all(-1))


def test_inplace_dropout_after_a_reshape_and_alpha_dropout_of_everything():
    """In-place dropout on a view that needs grad (after Flatten) gives an out-of-place result
    (lamina's in-place ops do not record on views) and trains as torch's; alpha dropout with
    p = 1 gives zeros, as torch's."""
    x = np.random.default_rng(0).standard_normal((2, 1, 6, 6)).astype(np.float32)
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Dropout(0.5, inplace=True), nn.Linear(32, 2))
    m(lamina.tensor(x)).sum().backward()
    assert m[0].weight.grad is not None and m[0].weight.grad.array.any()
    for fn in (F.alpha_dropout, F.feature_alpha_dropout):
        a = np.random.default_rng(1).standard_normal((2, 3, 2)).astype(np.float32)
        tfn = getattr(torch.nn.functional, fn.__name__)
        np.testing.assert_array_equal(fn(lamina.tensor(a), 1.0, True).array, tfn(torch.tensor(a), 1.0, True).numpy())
        xa = lamina.tensor(a, requires_grad=True)
        fn(xa, 1.0, True).sum().backward()
        assert not xa.grad.array.any()


def test_dropout2d_reads_3d_input_as_batched_1d_with_torchs_warning():
    x = lamina.ones(4, 50, 6)
    with pytest.warns(UserWarning, match="Received a 3D input to dropout2d") as got:
        y = F.dropout2d(x, 0.5).array
    with pytest.warns(UserWarning) as want:
        torch.nn.functional.dropout2d(torch.ones(4, 50, 6), 0.5)
    assert str(got[0].message) == str(want[0].message)
    assert np.all((y == 0).all(-1) | (y == 2.0).all(-1))  # one draw per (n, c) row, as torch
    assert 0 < (y[..., 0] == 0).mean() < 1 and (y[:, :, 0] == 0).any(0).any() and not (y == 0).all(0).all()


def test_alpha_dropout_keeps_selu_moments():
    lamina.manual_seed(0)
    x = lamina.randn(400, 500)
    y = F.alpha_dropout(x, 0.2, training=True).array
    assert abs(y.mean()) < 0.02 and abs(y.std() - 1) < 0.02
