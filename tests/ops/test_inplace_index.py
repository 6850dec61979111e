"""index_fill, index_copy, masked_scatter, put and the in-place scatter_, scatter_add_, index_add_,
index_fill_, index_copy_, masked_scatter_, put_, unsqueeze_, squeeze_, transpose_: torch's values and
gradients (through a non-leaf, recorded in place), gradcheck, errors as torch's."""

import numpy as np
import pytest
import torch

import lamina
from tests.helpers import Input, check_grads, oracle


def ns(x):
    return lamina if isinstance(x, lamina.Tensor) else torch


def idx(x, values):
    return ns(x).tensor(values)


CASES = {
    "index_fill": lambda x, s: x.index_fill(1, idx(x, [0, 2]), -1.5),
    "index_copy": lambda x, s: x.index_copy(1, idx(x, [2, 0]), s[:, :2]),
    "masked_scatter": lambda x, s: x.masked_scatter(x > 0, s),
    "put": lambda x, s: x.put(idx(x, [0, 5, -1]), s[0, :3]),
    "put_accumulate": lambda x, s: x.put(idx(x, [0, 5, 0]), s[0, :3], accumulate=True),
    "scatter_": lambda x, s: (x * 1).scatter_(1, idx(x, [[0, 1], [2, 0], [1, 2]]), s[:, :2]),
    "scatter_value_": lambda x, s: (x * 1).scatter_(0, idx(x, [[0, 1, 2]]), 4.0),
    "scatter_add_": lambda x, s: (x * 1).scatter_add_(1, idx(x, [[0, 0], [2, 0], [1, 2]]), s[:, :2]),
    "index_add_": lambda x, s: (x * 1).index_add_(1, idx(x, [0, 2, 0]), s[:, :3]),
    "index_add_alpha_": lambda x, s: (x * 1).index_add_(0, idx(x, [1]), s[:1, :4], alpha=2.0),
    "index_fill_": lambda x, s: (x * 1).index_fill_(0, idx(x, [1]), 3.0),
    "index_copy_": lambda x, s: (x * 1).index_copy_(0, idx(x, [2, 0]), s[:2, :4]),
    "masked_scatter_": lambda x, s: (x * 1).masked_scatter_(x < 0, s),
    "put_": lambda x, s: (x * 1).put_(idx(x, [1, 3]), s[1, :2]),
    "unsqueeze_": lambda x, s: (x * 1).unsqueeze_(1) * s[:, :1].unsqueeze(1),
    "squeeze_": lambda x, s: (x[:1] * 1).squeeze_(0),
    "transpose_": lambda x, s: (x * 1).transpose_(0, 1) @ s,
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_matches_torch_values_and_gradients(name, dtype):
    oracle(CASES[name], Input((3, 4), distinct=True), (3, 5), dtype=dtype)


@pytest.mark.parametrize("name", list(CASES))
def test_gradcheck(name):
    check_grads(CASES[name], Input((3, 4), distinct=True), (3, 5))


def test_inplace_returns_self_and_bumps_version_and_keeps_inf():
    x = lamina.zeros(2, 3)
    v = x._version
    assert x.index_fill_(1, lamina.tensor([1]), 7.0) is x and x._version > v
    assert x.tolist() == [[0.0, 7.0, 0.0], [0.0, 7.0, 0.0]]
    y = lamina.tensor([[1.0, float("inf")]])
    assert y.index_copy(1, lamina.tensor([0]), lamina.tensor([[5.0]])).tolist() == [[5.0, float("inf")]]
    z = lamina.zeros(2, 3)
    assert z.transpose_(0, 1) is z and z.shape == (3, 2) and z.unsqueeze_(0).shape == (1, 3, 2)
    assert z.squeeze_().shape == (3, 2)


def test_random_fill_of_a_non_leaf_holding_inf_gives_samples_not_nan():
    x = lamina.tensor([1.0, float("inf")], requires_grad=True)
    for fill in (lambda t: t.normal_(), lambda t: t.uniform_(), lambda t: t.bernoulli_(0.5)):
        y = x * 1
        assert np.isfinite(fill(y).detach().numpy()).all()


def test_errors_as_torch():
    leaf = lamina.zeros(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        leaf.unsqueeze_(0)
    with pytest.raises(RuntimeError, match="leaf"):
        leaf.index_fill_(0, lamina.tensor([0]), 1.0)
    with pytest.raises(RuntimeError, match="at least 3 elements"):
        lamina.zeros(3).masked_scatter(lamina.tensor([True, True, True]), lamina.zeros(2))
    with pytest.raises(RuntimeError):
        torch.zeros(3).masked_scatter(torch.tensor([True, True, True]), torch.zeros(2))
    with pytest.raises(RuntimeError, match="same number of elements"):
        lamina.zeros(3).put_(lamina.tensor([0, 1]), lamina.zeros(3))
    with pytest.raises(IndexError, match="out of range"):
        lamina.zeros(3).put_(lamina.tensor([3]), lamina.zeros(1))
    with pytest.raises(RuntimeError, match="0-dimensional"):
        lamina.zeros(3).index_fill(0, lamina.tensor([0]), lamina.zeros(2))
    with pytest.raises(NotImplementedError, match="reduce"):
        lamina.zeros(3).scatter_(0, lamina.tensor([0]), lamina.ones(1), reduce="multiply")
