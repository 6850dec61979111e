"""cumprod (with zeros), median, mode, repeat_interleave, tile, meshgrid, nan_to_num, isin, cdist, unique,
where(condition): torch's values and gradients, float64 gradcheck, hand cases, torch's errors."""

import math

import numpy as np
import pytest
import torch

import lamina
from tests.helpers import Input, check_grads, oracle


def ns(x):
    return lamina if isinstance(x, lamina.Tensor) else torch


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cumprod_matches_torch(dim, dtype):
    oracle(lambda x: x.cumprod(dim), (3, 4, 2), dtype=dtype)
    oracle(lambda x: ns(x).cumprod(x, dim), (2, 5), dtype=dtype)


@pytest.mark.parametrize("row", [[0.0, 2.0, 3.0, 4.0], [2.0, 0.0, 3.0, 4.0], [2.0, 3.0, 4.0, 0.0],
                                 [0.0, 2.0, 0.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
def test_cumprod_gradient_with_zeros_is_torchs(row):
    a = np.array([row, [1.5, -2.0, 0.5, 3.0]])
    oracle(lambda x: x.cumprod(1), Input(array=a))
    check_grads(lambda x: x.cumprod(1), Input(array=a))


def test_cumprod_gradcheck_and_hand_case():
    check_grads(lambda x: x.cumprod(0), (4, 3))
    x = lamina.tensor([2.0, 0.0, 3.0], requires_grad=True)
    y = x.cumprod(0)
    assert y.tolist() == [2.0, 0.0, 0.0]
    y.sum().backward()  # d/dx0 = 1 + x1 + x1x2 = 1; d/dx1 = x0 + x0x2 = 8; d/dx2 = x0x1 = 0
    assert x.grad.tolist() == [1.0, 8.0, 0.0]
    assert lamina.tensor([1, 2, 3], dtype=lamina.int32).cumprod(0).dtype == lamina.int64


@pytest.mark.parametrize("shape,dim", [((7,), 0), ((3, 4), 1), ((3, 4), 0), ((2, 3, 5), -1)])
def test_median_matches_torch(shape, dim):
    oracle(lambda x: tuple(x.median(dim)), Input(shape, distinct=True))
    oracle(lambda x: tuple(ns(x).median(x, dim, keepdim=True)), Input(shape, distinct=True))
    oracle(lambda x: x.median(), Input(shape, distinct=True))
    check_grads(lambda x: x.median(dim).values, Input(shape, distinct=True))


def test_median_and_mode_hand_cases_ties_and_nan():
    assert lamina.tensor([3.0, 1.0, 2.0, 4.0]).median().item() == 2.0  # the lower of 2 and 3
    t = [[1.0, 2, 2, 3, 3, 0], [5, 5, 1, 1, 1, 2]]
    ours, theirs = lamina.tensor(t).mode(1), torch.tensor(t).mode(1)
    assert ours.values.tolist() == theirs.values.tolist() == [2.0, 1.0]
    assert ours.indices.tolist() == theirs.indices.tolist()
    nan = [[3.0, 1, 2, 4], [1, math.nan, 2, math.nan]]
    ours, theirs = lamina.tensor(nan).median(1), torch.tensor(nan).median(1)
    np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
    assert ours.indices.tolist() == theirs.indices.tolist()


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_mode_matches_torch_with_gradient(dim):
    a = np.random.default_rng(0).integers(0, 3, (4, 5)).astype(np.float64)
    oracle(lambda x: tuple(x.mode(dim)), Input(array=a))
    oracle(lambda x: tuple(ns(x).mode(x, dim, keepdim=True)), Input(array=a))


@pytest.mark.parametrize("repeats,dim", [(2, None), (3, 0), (2, 1), ("tensor", 1), ("tensor1", 0)])
def test_repeat_interleave_matches_torch(repeats, dim):
    def f(x):
        r = repeats
        if repeats == "tensor":
            r = ns(x).tensor([1, 0, 2, 3])
        elif repeats == "tensor1":
            r = ns(x).tensor([2])
        return x.repeat_interleave(r, dim)

    oracle(f, (3, 4))
    check_grads(f, (3, 4))
    counts = [2, 0, 3]
    assert lamina.repeat_interleave(lamina.tensor(counts)).tolist() == torch.repeat_interleave(
        torch.tensor(counts)).tolist() == [0, 0, 2, 2, 2]
    with pytest.raises(RuntimeError, match="same size"):
        lamina.zeros(3).repeat_interleave(lamina.tensor([1, 2]), 0)


@pytest.mark.parametrize("dims", [(2,), (2, 1), (1, 2, 3), (3, 1, 1, 2)])
def test_tile_matches_torch(dims):
    oracle(lambda x: x.tile(dims), (2, 3))
    oracle(lambda x: ns(x).tile(x, dims), (4,))
    check_grads(lambda x: x.tile(dims), (2, 3), second=False)


@pytest.mark.parametrize("indexing", ["ij", "xy"])
def test_meshgrid_matches_torch(indexing):
    oracle(lambda a, b, c: ns(a).meshgrid(a, b, c, indexing=indexing), (2,), (3,), (4,))
    oracle(lambda a, b: ns(a).meshgrid([a, b], indexing=indexing), (2,), ())
    check_grads(lambda a, b: lamina.meshgrid(a, b, indexing=indexing), (2,), (3,))
    with pytest.warns(UserWarning, match="indexing"):
        lamina.meshgrid(lamina.zeros(2), lamina.zeros(3))


@pytest.mark.parametrize("kw", [{}, dict(nan=1.5), dict(posinf=9.0, neginf=-9.0)])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_nan_to_num_matches_torch(kw, dtype):
    a = np.array([[1.0, np.nan, np.inf], [-np.inf, -2.0, 0.5]])
    oracle(lambda x: x.nan_to_num(**kw), Input(array=a), dtype=dtype)
    assert lamina.tensor([1, 2]).nan_to_num().tolist() == [1, 2]


def test_isin_matches_torch():
    e, t = [[1, 2, 3], [4, 5, 6]], [2, 6, 9]
    for invert in (False, True):
        assert lamina.isin(lamina.tensor(e), lamina.tensor(t), invert=invert).tolist() == torch.isin(
            torch.tensor(e), torch.tensor(t), invert=invert).tolist()
    assert lamina.isin(lamina.tensor(e), 5).tolist() == torch.isin(torch.tensor(e), 5).tolist()
    assert lamina.isin(3, lamina.tensor(t)).item() is False


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, 0.0, math.inf])
@pytest.mark.parametrize("shapes", [((4, 3), (5, 3)), ((2, 4, 3), (2, 5, 3)), ((2, 1, 3, 2), (4, 2, 2))])
def test_cdist_matches_torch(p, shapes):
    oracle(lambda a, b: ns(a).cdist(a, b, p), Input(shapes[0], distinct=True), Input(shapes[1], distinct=True))
    if p not in (0.0,):
        check_grads(lambda a, b: lamina.cdist(a, b, p), Input(shapes[0], distinct=True),
                    Input(shapes[1], distinct=True), second=p not in (1.0, math.inf))


def test_cdist_zero_distance_gradient_and_errors():
    a = np.array([[0.0, 1.0], [2.0, 2.0]])
    oracle(lambda x, y: ns(x).cdist(x, y), Input(array=a), Input(array=a.copy()))
    with pytest.raises(RuntimeError, match="same number of columns"):
        lamina.cdist(lamina.zeros(2, 3), lamina.zeros(2, 4))


@pytest.mark.parametrize("dim", [None, 0, 1])
def test_unique_matches_torch(dim):
    a = np.array([[3, 1, 3], [0, 1, 0], [3, 1, 3]])
    ours = lamina.unique(lamina.tensor(a), return_inverse=True, return_counts=True, dim=dim)
    theirs = torch.unique(torch.tensor(a), return_inverse=True, return_counts=True, dim=dim)
    for o, t in zip(ours, theirs):
        assert o.tolist() == t.tolist()
    assert lamina.tensor([2.0, 1.0, 2.0]).unique().tolist() == [1.0, 2.0]


def test_where_one_argument_is_nonzero_as_tuple():
    c = [[True, False], [False, True]]
    ours, theirs = lamina.where(lamina.tensor(c)), torch.where(torch.tensor(c))
    assert [o.tolist() for o in ours] == [t.tolist() for t in theirs] == [[0, 1], [0, 1]]
    assert [o.tolist() for o in lamina.where(lamina.tensor([0.0, 2.0, 3.0]))] == [[1, 2]]
