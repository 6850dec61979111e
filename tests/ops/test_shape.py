"""Shape and layout ops, joining and splitting, padding, matmul: torch oracle and gradchecks."""

import numpy as np
import pytest
import torch

import lamina
import lamina.nn.functional as F
from tests.helpers import Input, check_grads, oracle, random_shape

SEEDS = range(5)

SHAPE_CASES = [
    ("reshape", (2, 3, 4), lambda x: x.reshape(4, -1)),
    ("reshape_tuple", (2, 3, 4), lambda x: x.reshape((6, 4))),
    ("view", (2, 3, 4), lambda x: x.view(-1)),
    ("flatten", (2, 3, 4, 2), lambda x: x.flatten(1)),
    ("flatten_mid", (2, 3, 4, 2), lambda x: x.flatten(1, 2)),
    ("unflatten", (2, 12), lambda x: x.unflatten(1, (3, -1))),
    ("squeeze_all", (1, 3, 1, 2), lambda x: x.squeeze()),
    ("squeeze_dim", (1, 3, 1, 2), lambda x: x.squeeze(2)),
    ("squeeze_noop", (2, 3), lambda x: x.squeeze(0)),
    ("unsqueeze", (3, 2), lambda x: x.unsqueeze(-1)),
    ("transpose", (2, 3, 4), lambda x: x.transpose(0, 2)),
    ("permute", (2, 3, 4, 5), lambda x: x.permute(2, 0, 3, 1)),
    ("movedim", (2, 3, 4), lambda x: x.movedim(0, -1)),
    ("T", (3, 4), lambda x: x.T),
    ("mT", (2, 3, 4), lambda x: x.mT),
    ("t", (3, 4), lambda x: x.t()),
    ("expand", (3, 1), lambda x: x.expand(2, 3, 4)),
    ("expand_minus1", (3, 1), lambda x: x.expand(-1, 5)),
    ("broadcast_to", (1, 4), lambda x: x.broadcast_to((3, 4))),
    ("contiguous", (3, 4), lambda x: x.t().contiguous()),
    ("flip", (2, 3, 4), lambda x: x.flip(0, 2)),
    ("flip_list", (2, 3, 4), lambda x: x.flip([1])),
    ("roll", (3, 4), lambda x: x.roll(1, 0)),
    ("roll_multi", (3, 4), lambda x: x.roll((2, -1), (0, 1))),
    ("roll_flat", (3, 4), lambda x: x.roll(5)),
    ("clone", (3, 4), lambda x: x.clone() * 2),
]


@pytest.mark.parametrize("name,shape,fn", SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_shape_ops_oracle(name, shape, fn, dtype):
    oracle(fn, Input(shape), dtype=dtype)
    oracle(fn, Input(shape, noncontig=True), dtype=dtype, seed=1)


@pytest.mark.parametrize("name,shape,fn", SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
def test_shape_ops_gradcheck(name, shape, fn):
    check_grads(lambda x: fn(x) * 1.5, Input(shape))


@pytest.mark.parametrize("seed", SEEDS)
def test_random_permute_reshape_chain(seed):
    rng = np.random.default_rng(seed)
    shape = random_shape(rng, 2, 5)
    perm = tuple(int(i) for i in rng.permutation(len(shape)))
    oracle(lambda x: (x.permute(*perm).reshape(-1) * 2).reshape(shape[::-1]).sum(0), Input(shape), seed=seed)


def test_reshape_errors_are_clear():
    x = lamina.ones(2, 3)
    with pytest.raises(RuntimeError, match=r"reshape: shape '\[4, 2\]' is invalid for input of size 6"):
        x.reshape(4, 2)
    with pytest.raises(RuntimeError, match="only one dimension can be inferred"):
        x.reshape(-1, -1)
    with pytest.raises(RuntimeError, match="cannot expand"):
        x.expand(4, 3, 2)
    with pytest.raises(RuntimeError, match="number of dims don't match"):
        x.permute(1, 0, 2)


JOIN_CASES = [
    ("cat0", [(2, 3), (4, 3)], lambda a, b: lamina.cat([a, b]) if isinstance(a, lamina.Tensor) else torch.cat([a, b])),
    ("cat1", [(2, 3), (2, 1)], lambda a, b: (lamina if isinstance(a, lamina.Tensor) else torch).cat([a, b, a], 1)),
    ("stack", [(2, 3), (2, 3)], lambda a, b: (lamina if isinstance(a, lamina.Tensor) else torch).stack([a, b], 1)),
    ("stack_neg", [(2, 3), (2, 3)], lambda a, b: (lamina if isinstance(a, lamina.Tensor) else torch).stack([a, b], -1)),
    ("split_int", [(7, 3)], lambda a: a.split(3)),
    ("split_sizes", [(7, 3)], lambda a: a.split([2, 4, 1])),
    ("split_dim", [(2, 5)], lambda a: a.split(2, dim=1)),
    ("chunk", [(7, 3)], lambda a: a.chunk(3)),
    ("chunk_more", [(5, 2)], lambda a: a.chunk(4)),
    ("chunk_dim", [(2, 6)], lambda a: a.chunk(4, 1)),
    ("unbind", [(3, 2)], lambda a: a.unbind(1)),
]


@pytest.mark.parametrize("name,shapes,fn", JOIN_CASES, ids=[c[0] for c in JOIN_CASES])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_join_split_oracle(name, shapes, fn, dtype):
    oracle(fn, *[Input(s) for s in shapes], dtype=dtype)


@pytest.mark.parametrize("name,shapes,fn", JOIN_CASES, ids=[c[0] for c in JOIN_CASES])
def test_join_split_gradcheck(name, shapes, fn):
    def f(*xs):
        out = fn(*xs)
        return tuple(o * 1.0 for o in out) if isinstance(out, tuple) else out
    check_grads(f, *[Input(s) for s in shapes])


def test_cat_errors():
    with pytest.raises(RuntimeError, match=r"cat: sizes of tensors must match except in dimension 0"):
        lamina.cat([lamina.ones(2, 3), lamina.ones(2, 4)])
    assert lamina.cat([lamina.ones(2), lamina.ones(2, dtype=lamina.float64)]).dtype == lamina.float64  # as torch
    with pytest.raises(RuntimeError, match="split_with_sizes expects split_sizes to sum exactly to 7"):
        lamina.ones(7).split([3, 3])


PAD_CASES = [
    ((2, 3, 5), (1, 2), "constant"),
    ((2, 3, 5), (2, 0, 1, 1), "constant"),
    ((2, 3, 5), (-1, 2), "constant"),
    ((2, 3, 5), (2, 3), "reflect"),
    ((1, 2, 4, 5), (1, 2, 3, 1), "reflect"),
    ((2, 3, 5), (4, 1), "replicate"),
    ((1, 2, 4, 5), (2, 2, 1, 3), "replicate"),
    ((2, 3, 5), (2, 3), "circular"),
    ((1, 2, 4, 5), (1, 2, 4, 1), "circular"),
    ((1, 1, 3, 4, 5), (1, 1, 2, 0, 1, 2), "replicate"),
    ((1, 1, 3, 4, 5), (1, 1, 2, 0, 1, 2), "circular"),
]


@pytest.mark.parametrize("shape,pad,mode", PAD_CASES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_pad_oracle(shape, pad, mode, dtype):
    oracle(lambda x: F.pad(x, pad, mode=mode) if isinstance(x, lamina.Tensor)
           else torch.nn.functional.pad(x, pad, mode=mode), Input(shape), dtype=dtype)
    if mode == "constant":
        oracle(lambda x: F.pad(x, pad, value=2.5) if isinstance(x, lamina.Tensor)
               else torch.nn.functional.pad(x, pad, value=2.5), Input(shape), dtype=dtype)


@pytest.mark.parametrize("shape,pad,mode", PAD_CASES)
def test_pad_gradcheck(shape, pad, mode):
    check_grads(lambda x: F.pad(x, pad, mode=mode), Input(shape))


def test_pad_hand_computed_and_errors():
    x = lamina.tensor([1.0, 2.0, 3.0, 4.0])
    assert F.pad(x, (2, 1), mode="reflect").tolist() == [3.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0]
    assert F.pad(x, (2, 1), mode="replicate").tolist() == [1.0, 1.0, 1.0, 2.0, 3.0, 4.0, 4.0]
    assert F.pad(x, (2, 1), mode="circular").tolist() == [3.0, 4.0, 1.0, 2.0, 3.0, 4.0, 1.0]
    assert F.pad(x, (1, 1)).tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 0.0]
    # a border element copied three times by replicate receives three gradients
    x.requires_grad_()
    F.pad(x, (2, 1), mode="replicate").sum().backward()
    assert x.grad.tolist() == [3.0, 1.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="padding size should be less than"):
        F.pad(lamina.ones(1, 3), (3, 0), mode="reflect")
    with pytest.raises(ValueError, match="padding length must be even"):
        F.pad(lamina.ones(1, 3), (1,))
    with pytest.raises(ValueError, match="mode must be"):
        F.pad(lamina.ones(1, 3), (1, 1), mode="mirror")


MATMUL_SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)),
                 ((2, 3), (5, 3, 4)), ((1, 2, 3), (4, 3, 2)), ((2, 1, 2, 3), (3, 3, 2)), ((4,), (2, 4, 3)),
                 ((2, 3, 4), (4,))]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_matmul_oracle(sa, sb, dtype):
    oracle(lambda a, b: a @ b, Input(sa), Input(sb, noncontig=True), dtype=dtype)
    oracle(lambda a, b: a.matmul(b), Input(sa, noncontig=True), Input(sb), dtype=dtype, seed=3)


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
def test_matmul_gradcheck(sa, sb):
    check_grads(lambda a, b: a @ b, Input(sa), Input(sb))


def test_matmul_errors_name_the_shapes():
    with pytest.raises(RuntimeError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) cannot be multiplied"):
        lamina.ones(2, 3) @ lamina.ones(4, 5)
    with pytest.raises(RuntimeError, match="0-d"):
        lamina.ones(()) @ lamina.ones(3)


def test_repeat_tril_triu_and_tensor_helpers():
    for f in [lambda t: t.repeat(2, 1, 3), lambda t: t.repeat(1, 2), lambda t: t.tril(), lambda t: t.triu(1),
              lambda t: t.tril(-1), lambda t: t.clamp_min(0.1), lambda t: t.clamp_max(0.1)]:
        oracle(f, Input((3, 4)))
        check_grads(f, Input((2, 3)))
    w = lamina.empty(200, 300)
    w.normal_(0.0, 0.02)
    assert abs(w.array.std() - 0.02) < 0.002
    w.uniform_(-1, 1)
    assert w.array.min() >= -1 and w.array.max() <= 1
    assert w.new_zeros(2, 3).shape == (2, 3) and w.new_zeros(2).dtype == lamina.float32
    assert w.new_full((2,), 3.0).tolist() == [3.0, 3.0] and w.type_as(lamina.ones(1, dtype=lamina.float64)).dtype == lamina.float64
    m = lamina.ones(3)
    m.masked_fill_(lamina.tensor([True, False, True]), 0.0)
    assert m.tolist() == [0.0, 1.0, 0.0]
    p = lamina.nn.Parameter(lamina.ones(2))
    with pytest.raises(RuntimeError, match="leaf Variable"):
        p.normal_()
    p.data.normal_()  # the usual escape hatch
