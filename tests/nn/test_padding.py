"""Padding layers as torch's: values and gradients for every kind and rank."""

import numpy as np
import pytest
import torch

import lamina

KINDS = ["Zero", "Constant", "Reflection", "Replication", "Circular"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_padding_layers_equal_torch(kind, n):
    name = f"{kind}Pad{n}d"
    padding = tuple([1, 2, 2, 0, 1, 1][: 2 * n])
    args = (padding, 0.5) if kind == "Constant" else (padding,)
    a = np.random.default_rng(n).standard_normal((2, 3) + (4,) * n)
    x, tx = lamina.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    ours, theirs = getattr(lamina.nn, name)(*args)(x), getattr(torch.nn, name)(*args)(tx)
    np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())
    up = np.random.default_rng(0).standard_normal(tuple(theirs.shape))
    ours.backward(lamina.tensor(up))
    theirs.backward(torch.tensor(up))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    assert repr(getattr(lamina.nn, name)(*args)) == repr(getattr(torch.nn, name)(*args))


def test_an_int_padding_and_bad_input():
    m = lamina.nn.ZeroPad2d(2)
    assert m(lamina.ones(1, 1, 3, 3)).shape == (1, 1, 7, 7) and m.padding == (2, 2, 2, 2)
    with pytest.raises(ValueError, match="ReflectionPad2d: padding must be an int or 4 ints"):
        lamina.nn.ReflectionPad2d((1, 2))
    with pytest.raises(RuntimeError, match="ZeroPad2d: expected a 3-d or 4-d input"):
        m(lamina.ones(3))
