"""Indexing, gather/scatter, index_select/index_add, masked_fill, comparisons: torch oracle."""

import numpy as np
import pytest
import torch

import lamina
from tests.helpers import Input, check_grads, oracle


def _idx(t, values):
    """An int64 index tensor of the same library as ``t``."""
    arr = np.asarray(values, dtype=np.int64)
    return lamina.tensor(arr) if isinstance(t, lamina.Tensor) else torch.from_numpy(arr)


def _mask(t, values):
    arr = np.asarray(values, dtype=bool)
    return lamina.tensor(arr) if isinstance(t, lamina.Tensor) else torch.from_numpy(arr)


GETITEM_CASES = [
    ("int", (4, 3), lambda x: x[1]),
    ("neg_int", (4, 3), lambda x: x[-1, 2]),
    ("slice", (5, 4), lambda x: x[1:4, ::2]),
    ("neg_step_free", (5, 4), lambda x: x[-3:, 1:]),
    ("none_ellipsis", (2, 3, 4), lambda x: x[..., None, 1:3]),
    ("ellipsis_int", (2, 3, 4), lambda x: x[..., 0]),
    ("bool_mask", (3, 4), lambda x: x[x > 0.1]),
    ("bool_rows", (4, 3), lambda x: x[_mask(x, [True, False, True, True])]),
    ("int_array", (5, 3), lambda x: x[_idx(x, [0, 2, 2, 4, 0])]),
    ("int_array_2d", (5, 3), lambda x: x[_idx(x, [[0, 1], [4, 4]])]),
    ("two_arrays", (4, 5), lambda x: x[_idx(x, [0, 1, 1, 3]), _idx(x, [4, 0, 0, 2])]),
    ("mixed", (3, 4, 5), lambda x: x[1:, _idx(x, [3, 0, 3])]),
    ("list_index", (4, 3), lambda x: x[[0, 0, 3]]),
]


@pytest.mark.parametrize("name,shape,fn", GETITEM_CASES, ids=[c[0] for c in GETITEM_CASES])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_getitem_oracle(name, shape, fn, dtype):
    oracle(fn, Input(shape), dtype=dtype)
    oracle(fn, Input(shape, noncontig=True), dtype=dtype, seed=2)


@pytest.mark.parametrize("name,shape,fn", GETITEM_CASES, ids=[c[0] for c in GETITEM_CASES])
def test_getitem_gradcheck(name, shape, fn):
    check_grads(lambda x: fn(x) * 1.0, Input(shape, distinct=True))


def test_duplicate_indices_accumulate_gradients():
    x = lamina.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[lamina.tensor([0, 0, 2, 0])].sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 1.0]


GATHER_CASES = [
    ("gather0", lambda x: x.gather(0, _idx(x, [[0, 2, 1, 0], [2, 2, 0, 1]]))),
    ("gather1", lambda x: x.gather(1, _idx(x, [[3, 3], [0, 1], [2, 0]]))),
    ("gather_neg", lambda x: x.gather(-1, _idx(x, [[1], [0]]))),
    ("index_select0", lambda x: x.index_select(0, _idx(x, [2, 0, 2]))),
    ("index_select1", lambda x: x.index_select(1, _idx(x, [3, 1]))),
    ("masked_fill", lambda x: x.masked_fill(_mask(x, [True, False, False, True]), -2.0)),
    ("masked_fill_rows", lambda x: x.masked_fill(_mask(x, [[True], [False], [True]]), 0.5)),
    ("narrow", lambda x: x.narrow(1, 1, 2)),
]


@pytest.mark.parametrize("name,fn", GATHER_CASES, ids=[c[0] for c in GATHER_CASES])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gather_family_oracle(name, fn, dtype):
    oracle(fn, Input((3, 4)), dtype=dtype)


@pytest.mark.parametrize("name,fn", GATHER_CASES, ids=[c[0] for c in GATHER_CASES])
def test_gather_family_gradcheck(name, fn):
    check_grads(lambda x: fn(x) * 1.0, Input((3, 4)))


SCATTER_CASES = [
    ("scatter_add0", (3, 4), (2, 4), lambda x, s: x.scatter_add(0, _idx(x, [[0, 1, 2, 0], [2, 2, 0, 0]]), s)),
    ("scatter_add1", (3, 4), (3, 2), lambda x, s: x.scatter_add(1, _idx(x, [[0, 0], [3, 1], [2, 2]]), s)),
    ("scatter0", (3, 4), (2, 4), lambda x, s: x.scatter(0, _idx(x, [[0, 1, 2, 0], [2, 0, 1, 1]]), s)),
    ("scatter1", (3, 4), (3, 2), lambda x, s: x.scatter(1, _idx(x, [[0, 3], [1, 2], [3, 0]]), s)),
    ("index_add", (4, 3), (3, 3), lambda x, s: x.index_add(0, _idx(x, [3, 0, 3]), s)),
    ("index_add_alpha", (4, 3), (4, 2), lambda x, s: x.index_add(1, _idx(x, [2, 0]), s, alpha=-0.5)),
]


@pytest.mark.parametrize("name,sx,ss,fn", SCATTER_CASES, ids=[c[0] for c in SCATTER_CASES])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_scatter_family_oracle(name, sx, ss, fn, dtype):
    oracle(fn, Input(sx), Input(ss), dtype=dtype)


@pytest.mark.parametrize("name,sx,ss,fn", SCATTER_CASES, ids=[c[0] for c in SCATTER_CASES])
def test_scatter_family_gradcheck(name, sx, ss, fn):
    check_grads(fn, Input(sx), Input(ss))


def test_scatter_value_and_errors():
    x = lamina.zeros(2, 3)
    y = x.scatter(1, lamina.tensor([[2], [0]]), value=5.0)
    assert y.tolist() == [[0.0, 0.0, 5.0], [5.0, 0.0, 0.0]]
    with pytest.raises(IndexError, match="gather: index out of range for dim 1 of size 3"):
        x.gather(1, lamina.tensor([[3], [0]]))
    with pytest.raises(RuntimeError, match="gather: index tensor must have the same number of dimensions"):
        x.gather(1, lamina.tensor([0, 1]))
    with pytest.raises(TypeError, match="index_select: expected index to be a 1-D"):
        x.index_select(0, lamina.tensor([0.0]))
    with pytest.raises(IndexError, match="__getitem__"):
        x[5]


def test_setitem_like_torch():
    x = lamina.zeros(3, 4)
    x[1] = 2.0
    x[:, 0] = lamina.tensor([1.0, 2.0, 3.0])
    x[x > 2.5] = -1.0
    t = torch.zeros(3, 4)
    t[1] = 2.0
    t[:, 0] = torch.tensor([1.0, 2.0, 3.0])
    t[t > 2.5] = -1.0
    np.testing.assert_array_equal(x.array, t.numpy())
    # recorded on a non-leaf: the gradient flows to the written values and around them
    for lib in (lamina, torch):
        a = lib.ones(3, 4, dtype=lib.float64, requires_grad=True)
        v = lib.tensor([5.0, 6.0, 7.0, 8.0], dtype=lib.float64, requires_grad=True)
        b = a * 2
        b[1] = v * 3
        (b * lib.arange(12, dtype=lib.float64).reshape(3, 4)).sum().backward()
        if lib is lamina:
            ga, gv = a.grad.array, v.grad.array
        else:
            np.testing.assert_allclose(ga, a.grad.numpy())
            np.testing.assert_allclose(gv, v.grad.numpy())


def test_comparisons_and_logical_ops_make_no_graph():
    a = lamina.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = lamina.tensor([3.0, 2.0, 1.0])
    for op, expected in [(a == b, [False, True, False]), (a != b, [True, False, True]), (a < b, [True, False, False]),
                         (a <= b, [True, True, False]), (a > b, [False, False, True]), (a >= b, [False, True, True]),
                         ((a > 1) & (b > 1), [False, True, False]), ((a > 1) | (b > 2), [True, True, True]),
                         (~(a > 1), [True, False, False]), ((a > 1) ^ (b > 1), [True, False, True]),
                         (lamina.logical_not(a > 2), [True, True, False])]:
        assert op.dtype == lamina.bool and not op.requires_grad and op.tolist() == expected
    assert lamina.equal(a.detach(), lamina.tensor([1.0, 2.0, 3.0]))
    assert (a > 0).all().item() and (a > 2).any().item() and not (a > 5).any().item()
    assert lamina.isnan(lamina.tensor([0.0, float("nan")])).tolist() == [False, True]
    assert lamina.allclose(a.detach(), b.flip(0))
