"""diagonal, diag_embed, diag, trace: torch's values and gradients, gradcheck, a hand case, errors."""

import pytest
import torch

import lamina
from tests.helpers import check_grads, oracle


def ns(x):
    return lamina if isinstance(x, lamina.Tensor) else torch


@pytest.mark.parametrize("offset", [0, 1, -2, 5])
@pytest.mark.parametrize("dims", [(0, 1), (1, 0), (-1, 0), (2, 1)])
def test_diagonal_matches_torch(offset, dims):
    oracle(lambda x: x.diagonal(offset, *dims), (3, 4, 5))
    check_grads(lambda x: x.diagonal(offset, *dims), (2, 3, 4))


@pytest.mark.parametrize("offset", [0, 1, -1])
@pytest.mark.parametrize("dims", [(-2, -1), (0, 2), (2, 0), (1, 2)])
def test_diag_embed_matches_torch(offset, dims):
    oracle(lambda x: ns(x).diag_embed(x, offset, *dims), (2, 3))
    check_grads(lambda x: lamina.diag_embed(x, offset, *dims), (2, 3))


@pytest.mark.parametrize("shape,k", [((4,), 0), ((4,), 2), ((3,), -1), ((3, 4), 0), ((3, 4), 1), ((4, 3), -2)])
def test_diag_and_trace_match_torch(shape, k):
    oracle(lambda x: ns(x).diag(x, k), shape)
    check_grads(lambda x: lamina.diag(x, k), shape)
    if len(shape) == 2:
        oracle(lambda x: x.trace(), shape)
        oracle(lambda x: ns(x).linalg.diagonal(x, offset=k), (2,) + shape, torch_fn=lambda x: torch.linalg.diagonal(
            x, offset=k))


def test_hand_case_and_errors():
    a = lamina.tensor([[1, 2, 3], [4, 5, 6]])
    assert a.diagonal().tolist() == [1, 5] and a.diagonal(1).tolist() == [2, 6] and a.trace().item() == 6
    assert lamina.diag(lamina.tensor([1.0, 2.0])).tolist() == [[1.0, 0.0], [0.0, 2.0]]
    with pytest.raises(RuntimeError, match="1D or 2D"):
        lamina.diag(lamina.zeros(2, 2, 2))
    with pytest.raises(RuntimeError, match="cannot be identical"):
        lamina.zeros(2, 2).diagonal(0, 1, 1)
    with pytest.raises(RuntimeError, match="matrix"):
        lamina.trace(lamina.zeros(3))
    with pytest.raises(RuntimeError):
        torch.trace(torch.zeros(3))


def test_diagonal_is_a_view_as_torchs():
    x = lamina.zeros(3, 4)
    x.diagonal().fill_(1.0)
    x.diagonal(1).add_(2.0)
    t = torch.zeros(3, 4)
    t.diagonal().fill_(1.0)
    t.diagonal(1).add_(2.0)
    assert x.tolist() == t.tolist()
    b = lamina.zeros(2, 3, 3)
    b.diagonal(-1, 1, 2).fill_(5.0)
    assert b[0].tolist() == [[0.0, 0.0, 0.0], [5.0, 0.0, 0.0], [0.0, 5.0, 0.0]]
    y = lamina.ones(3, 3, requires_grad=True) * 1.0
    with pytest.raises(RuntimeError, match="view"):
        y.diagonal().fill_(0.0)  # a view in a graph: a clear error, as for other views


@pytest.mark.parametrize("dim,index", [(0, 1), (1, -1), (-1, 2)])
def test_select_matches_torch_and_is_a_view(dim, index):
    oracle(lambda x: x.select(dim, index), (3, 4))
    oracle(lambda x: ns(x).select(x, dim, index), (2, 3, 4))
    x, t = lamina.zeros(3, 4), torch.zeros(3, 4)
    x.select(dim, index).fill_(1.0)
    t.select(dim, index).fill_(1.0)
    assert x.tolist() == t.tolist()
    with pytest.raises(IndexError, match="out of range"):
        lamina.zeros(3, 4).select(0, 3)
