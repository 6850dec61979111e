"""einsum: torch's values and gradients over many equations (ellipsis, repeated indices, broadcasting,
implicit output, sublists), float64 gradcheck and gradgradcheck, torch's error cases."""

import numpy as np
import pytest
import torch

import lamina
from tests.helpers import check_grads, oracle

CASES = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij,jk", [(2, 3), (3, 4)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(3, 3)]),
    ("iij->ij", [(3, 3, 2)]),
    ("ij->", [(2, 3)]),
    ("ij->ji", [(2, 3)]),
    ("i,i->", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 2)]),
    ("...j,jk", [(2, 3, 4), (4, 5)]),
    ("...j,jk->k", [(2, 3, 4), (4, 5)]),
    ("b...,b...->b", [(2, 3, 4), (2, 3, 4)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    ("ij,ij->ij", [(1, 3), (2, 3)]),
    ("bA,Ab", [(2, 3), (3, 2)]),
    ("ijk,jl,lk->il", [(2, 3, 4), (3, 5), (5, 4)]),
    ("i j , j k -> i k", [(2, 3), (3, 4)]),
    ("ij,kl->", [(2, 3), (4, 1)]),
    ("iji->j", [(3, 2, 3)]),
]


def _both(eq):
    return lambda *xs: (lamina if isinstance(xs[0], lamina.Tensor) else torch).einsum(eq, *xs)


@pytest.mark.parametrize("eq,shapes", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_einsum_matches_torch(eq, shapes, dtype):
    oracle(_both(eq), *shapes, dtype=dtype)


@pytest.mark.parametrize("eq,shapes", [c for c in CASES if c[0] not in ("i j , j k -> i k",)][::2],
                         ids=[c[0] for c in CASES if c[0] not in ("i j , j k -> i k",)][::2])
def test_einsum_gradcheck(eq, shapes):
    check_grads(lambda *xs: lamina.einsum(eq, *xs), *shapes)


def test_einsum_random_matmul_shapes():
    rng = np.random.default_rng(1)
    for _ in range(5):
        b, n, m, p = (int(v) for v in rng.integers(1, 5, 4))
        oracle(_both("bnm,bmp->bnp"), (b, n, m), (b, m, p))
        oracle(_both("nm,pm->np"), (n, m), (p, m))


def test_einsum_sublist_and_list_forms_and_integers():
    a, b = np.random.default_rng(0).standard_normal((2, 3)), np.random.default_rng(1).standard_normal((3, 4))
    la, lb, ta, tb = lamina.tensor(a), lamina.tensor(b), torch.tensor(a), torch.tensor(b)
    np.testing.assert_allclose(lamina.einsum(la, [0, 1], lb, [1, 2], [0, 2]).numpy(),
                               torch.einsum(ta, [0, 1], tb, [1, 2], [0, 2]).numpy())
    np.testing.assert_allclose(lamina.einsum(la, [1, 0]).numpy(), torch.einsum(ta, [1, 0]).numpy())
    np.testing.assert_allclose(lamina.einsum("ij,jk", [la, lb]).numpy(), a @ b)
    x = lamina.arange(6).reshape(2, 3)
    out = lamina.einsum("ij,ij->", x, x)
    assert out.item() == 55 and out.dtype == lamina.int64  # hand sum of squares 0..5


def test_einsum_hand_computed_trace_and_diagonal_gradient():
    a = lamina.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    out = lamina.einsum("ii->", a)
    assert out.item() == 5.0
    out.backward()
    assert a.grad.tolist() == [[1.0, 0.0], [0.0, 1.0]]


@pytest.mark.parametrize("eq,shapes,message", [
    ("i->ii", [(3,)], "appears more than once in the output"),
    ("ij->k", [(2, 3)], "does not appear in the equation"),
    ("ij,jk", [(2, 3), (4, 4)], "does not broadcast"),
    ("ijk", [(2, 3)], "does not match the number of dimensions"),
    ("ij", [(2, 3), (2, 3)], "more operands were provided"),
    ("ij,jk", [(2, 3)], "fewer operands"),
    ("i1", [(2, 3)], "invalid subscript"),
])
def test_einsum_errors_as_torch(eq, shapes, message):
    ours = [lamina.zeros(*s) for s in shapes]
    with pytest.raises(RuntimeError, match=message):
        lamina.einsum(eq, *ours)
    if "fewer" not in message and "invalid" not in message:
        with pytest.raises(RuntimeError, match=message):
            torch.einsum(eq, *[torch.zeros(*s) for s in shapes])
    with pytest.raises(RuntimeError, match="one dtype"):
        lamina.einsum("ij,jk", lamina.zeros(2, 3), lamina.zeros(3, 4, dtype=lamina.float64))
