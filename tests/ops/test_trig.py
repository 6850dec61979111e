"""tan, asin, acos, sinh, cosh, asinh, acosh, atanh, atan2: torch's values and gradients, gradchecked."""

import numpy as np
import pytest
import torch

import lamina
from tests.helpers import Input, check_grads, oracle

# (name, low, high): inputs inside the domain, away from the poles
UNARY = [("tan", -1.2, 1.2), ("asin", -0.9, 0.9), ("acos", -0.9, 0.9), ("sinh", -3, 3), ("cosh", -3, 3),
         ("asinh", -3, 3), ("acosh", 1.2, 4), ("atanh", -0.9, 0.9)]


@pytest.mark.parametrize("name,low,high", UNARY)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_unary_matches_torch(name, low, high, dtype):
    oracle(lambda x: getattr(x, name)(), Input((3, 4), low, high), dtype=dtype)
    oracle(lambda x: getattr(lamina if isinstance(x, lamina.Tensor) else torch, name)(x), Input((5,), low, high),
           dtype=dtype)


@pytest.mark.parametrize("name,low,high", UNARY)
def test_unary_gradcheck(name, low, high):
    check_grads(lambda x: getattr(lamina, name)(x), Input((2, 3), low, high))


def test_atan2_matches_torch_with_broadcasting_in_every_quadrant():
    oracle(lambda y, x: (lamina if isinstance(y, lamina.Tensor) else torch).atan2(y, x), Input((3, 1)), Input((4,)))
    check_grads(lambda y, x: lamina.atan2(y, x), Input((3, 1)), Input((4,)))
    pts = [(1.0, 1.0), (1.0, -1.0), (-1.0, -1.0), (-1.0, 1.0), (0.0, -1.0)]
    y, x = (np.array(v) for v in zip(*pts))
    np.testing.assert_allclose(lamina.atan2(lamina.tensor(y), lamina.tensor(x)).numpy(),
                               [np.pi / 4, 3 * np.pi / 4, -3 * np.pi / 4, -np.pi / 4, np.pi])
    assert lamina.atan2(lamina.tensor([1]), lamina.tensor([2])).dtype == lamina.float32  # ints: float, as torch
    assert str(torch.atan2(torch.tensor([1]), torch.tensor([2])).dtype) == "torch.float32"


def test_hand_computed_values_and_domains():
    assert lamina.tan(lamina.tensor(np.pi / 4, dtype=lamina.float64)).item() == pytest.approx(1.0)
    assert lamina.cosh(lamina.tensor(0.0)).item() == 1.0 and lamina.asin(lamina.tensor(1.0)).item() == pytest.approx(
        np.pi / 2)
    out = lamina.asin(lamina.tensor([2.0])).tolist() + lamina.acosh(lamina.tensor([0.5])).tolist()
    theirs = torch.asin(torch.tensor([2.0])).tolist() + torch.acosh(torch.tensor([0.5])).tolist()
    assert np.isnan(out).all() and np.isnan(theirs).all()
    assert lamina.atanh(lamina.tensor([1.0])).tolist() == torch.atanh(torch.tensor([1.0])).tolist() == [float("inf")]
    x = lamina.tensor([0.5], requires_grad=True)
    lamina.arcsin(x).backward()  # the numpy-style alias, as torch has
    assert x.grad.item() == pytest.approx(1 / np.sqrt(0.75))
    assert lamina.arctan is lamina.atan and lamina.tensor([0, 1]).sinh().dtype == lamina.float32
