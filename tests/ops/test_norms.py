"""linalg.vector_norm, matrix_norm, norm: torch's values and gradients (zeros, ties and every ord),
float64 gradcheck, torch's error cases."""

import math

import numpy as np
import pytest
import torch

import lamina
from tests.helpers import Input, check_grads, oracle


def ns(x):
    return lamina if isinstance(x, lamina.Tensor) else torch


ORDS = [2, 1, 3, 0.5, 1.5, math.inf, -math.inf, 0, -1]


@pytest.mark.parametrize("ord", ORDS)
@pytest.mark.parametrize("dim,keepdim", [(None, False), (1, True), ((0, 2), False), (-1, False)])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_vector_norm_matches_torch(ord, dim, keepdim, dtype):
    oracle(lambda x: ns(x).linalg.vector_norm(x, ord, dim, keepdim), Input((2, 3, 4), distinct=True), dtype=dtype)


@pytest.mark.parametrize("ord", [2, 1, 3, 0.5, 1.5, math.inf, 0])
def test_vector_norm_gradient_at_zeros_and_ties_is_torchs(ord):
    a = np.array([[0.0, 0.0, 0.0], [3.0, -3.0, 0.0], [1.0, -2.0, 2.0]])  # a zero row, ties, zero entries
    oracle(lambda x: ns(x).linalg.vector_norm(x, ord, dim=1), Input(array=a))


@pytest.mark.parametrize("ord", [2, 1, 3, 1.5, math.inf, -math.inf])
def test_vector_norm_gradcheck(ord):
    check_grads(lambda x: lamina.linalg.vector_norm(x, ord, dim=-1), Input((3, 4), distinct=True), second=ord != 1)


MATRIX_ORDS = ["fro", "nuc", 2, -2, 1, -1, math.inf, -math.inf]


@pytest.mark.parametrize("ord", MATRIX_ORDS)
@pytest.mark.parametrize("dim,keepdim", [((-2, -1), False), ((0, 2), True), ((2, 0), False)])
def test_matrix_norm_matches_torch(ord, dim, keepdim):
    oracle(lambda x: ns(x).linalg.matrix_norm(x, ord, dim, keepdim), Input((3, 2, 4), distinct=True))
    oracle(lambda x: ns(x).linalg.matrix_norm(x, ord, dim, keepdim), Input((3, 2, 4), distinct=True),
           dtype="float32", rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("ord", MATRIX_ORDS)
def test_matrix_norm_gradcheck(ord):
    check_grads(lambda x: lamina.linalg.matrix_norm(x, ord), Input((2, 3, 3), distinct=True),
                second=ord not in (1, -1, math.inf, -math.inf))


@pytest.mark.parametrize("args", [dict(), dict(ord=1), dict(dim=1), dict(dim=(0, 1)), dict(ord="fro", dim=(1, 2)),
                                  dict(ord=math.inf, dim=0, keepdim=True), dict(ord=2, dim=(0, 2))])
def test_linalg_norm_dispatches_as_torch(args):
    shape = (3, 4) if "dim" not in args or args.get("dim") in (0, 1, (0, 1)) else (2, 3, 4)
    if args.get("dim") == 1 and len(args) == 1:
        shape = (2, 3, 4)
    oracle(lambda x: ns(x).linalg.norm(x, **args), Input(shape, distinct=True))


def test_hand_computed_and_errors():
    x = lamina.tensor([[3.0, -4.0], [0.0, 0.0]], requires_grad=True)
    n = lamina.linalg.vector_norm(x, dim=1)
    assert n.tolist() == [5.0, 0.0]
    n.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0.6, -0.8], [0.0, 0.0]])  # x/‖x‖, and 0 at the zero row
    assert lamina.linalg.matrix_norm(lamina.tensor([[1.0, -2.0], [3.0, 4.0]]), 1).item() == 6.0  # max column sum
    with pytest.raises(RuntimeError, match="floating point"):
        lamina.linalg.vector_norm(lamina.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="not supported"):
        lamina.linalg.matrix_norm(lamina.eye(2), 3)
    with pytest.raises(RuntimeError, match="1D or 2D"):
        lamina.linalg.norm(lamina.zeros(2, 2, 2), ord=1)
    with pytest.raises(RuntimeError):
        torch.linalg.norm(torch.zeros(2, 2, 2), ord=1)
    with pytest.raises(RuntimeError, match="identity"):
        lamina.linalg.vector_norm(lamina.zeros(0), -1)
    with pytest.raises(RuntimeError):
        torch.linalg.vector_norm(torch.zeros(0), -1)
