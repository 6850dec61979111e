"""F.normalize, F.cosine_similarity, F.pairwise_distance: torch's values and gradients (zero vectors
included), float64 gradcheck, a hand case."""

import numpy as np
import pytest
import torch

import lamina
import lamina.nn.functional as F
from tests.helpers import Input, check_grads, oracle


def fn(x):
    return F if isinstance(x, lamina.Tensor) else torch.nn.functional


@pytest.mark.parametrize("p,dim", [(2.0, 1), (1.0, -1), (3.0, 0), (float("inf"), 1)])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_normalize_matches_torch(p, dim, dtype):
    oracle(lambda x: fn(x).normalize(x, p, dim), Input((3, 4, 2), distinct=True), dtype=dtype)
    check_grads(lambda x: F.normalize(x, p, dim), Input((2, 3), distinct=True), second=p not in (1.0, float("inf")))


def test_normalize_and_cosine_of_a_zero_vector():
    a = np.array([[0.0, 0.0, 0.0], [1.0, -2.0, 2.0]])
    oracle(lambda x: fn(x).normalize(x), Input(array=a))
    oracle(lambda x, y: fn(x).cosine_similarity(x, y), Input(array=a), Input(array=a[::-1].copy()))


@pytest.mark.parametrize("shapes,dim", [(((4, 3), (4, 3)), 1), (((2, 3, 4), (3, 4)), -1), (((5, 1), (1, 5)), 0)])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cosine_similarity_matches_torch(shapes, dim, dtype):
    oracle(lambda a, b: fn(a).cosine_similarity(a, b, dim), *shapes, dtype=dtype)
    check_grads(lambda a, b: F.cosine_similarity(a, b, dim), *shapes)


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0])
@pytest.mark.parametrize("keepdim", [False, True])
def test_pairwise_distance_matches_torch(p, keepdim):
    oracle(lambda a, b: fn(a).pairwise_distance(a, b, p, keepdim=keepdim), (4, 3), (4, 3))
    oracle(lambda a, b: fn(a).pairwise_distance(a, b, p), (3,), (3,))
    check_grads(lambda a, b: F.pairwise_distance(a, b, p), (4, 3), (4, 3))


def test_hand_case():
    a, b = lamina.tensor([[1.0, 0.0]]), lamina.tensor([[1.0, 1.0]])
    assert F.cosine_similarity(a, b).item() == pytest.approx(2 ** -0.5)
    assert F.normalize(lamina.tensor([[3.0, 4.0]])).tolist()[0] == pytest.approx([0.6, 0.8])


def test_modules_and_top_level_names_match_torch():
    oracle(lambda a, b: (nn_of(a).CosineSimilarity(dim=0, eps=1e-6))(a, b), (3, 4), (3, 4))
    oracle(lambda a, b: (nn_of(a).PairwiseDistance(p=1.0, keepdim=True))(a, b), (3, 4), (3, 4))
    oracle(lambda a, b: (lamina if isinstance(a, lamina.Tensor) else torch).cosine_similarity(a, b), (3, 4), (3, 4))
    oracle(lambda a, b: (lamina if isinstance(a, lamina.Tensor) else torch).pairwise_distance(a, b), (3, 4), (3, 4))


def nn_of(x):
    return lamina.nn if isinstance(x, lamina.Tensor) else torch.nn
