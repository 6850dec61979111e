"""Losses against torch across every option (reductions, weights, ignore_index, label smoothing,
probability targets, N-d inputs, pos_weight, log_target), gradchecks, and ±1e4 logits."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import lamina
import lamina.nn.functional as F
from lamina import nn
from tests.helpers import Input, check_grads, oracle

REDUCTIONS = ["mean", "sum", "none"]


def lib_of(t):
    return (lamina, F) if isinstance(t, lamina.Tensor) else (torch, TF)


def idx(t, arr):
    return lamina.tensor(np.asarray(arr, dtype=np.int64)) if isinstance(t, lamina.Tensor) else torch.from_numpy(np.asarray(arr, dtype=np.int64))


def fl(t, arr):
    arr = np.asarray(arr, dtype=np.float64).astype(t.dtype if isinstance(t, lamina.Tensor) else str(t.dtype).split(".")[1])
    return lamina.tensor(arr) if isinstance(t, lamina.Tensor) else torch.from_numpy(arr)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_regression_losses(reduction, dtype):
    for name, kw in [("mse_loss", {}), ("l1_loss", {}), ("smooth_l1_loss", {}), ("smooth_l1_loss", {"beta": 0.5}),
                     ("smooth_l1_loss", {"beta": 0.0}), ("huber_loss", {}), ("huber_loss", {"delta": 0.3})]:
        oracle(lambda a, b: getattr(lib_of(a)[1], name)(a, b, reduction=reduction, **kw),
               Input((4, 3), distinct=True), Input((4, 3)), dtype=dtype)
        check_grads(lambda a, b: getattr(F, name)(a, b, reduction=reduction, **kw),
                    Input((3, 2), distinct=True), Input((3, 2)))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_bce(reduction, weighted):
    w = np.random.default_rng(1).uniform(0.5, 2, (4, 3))

    def f(x, t):
        _, FF = lib_of(x)
        return FF.binary_cross_entropy(x, t, weight=fl(x, w) if weighted else None, reduction=reduction)

    oracle(f, Input((4, 3), low=0.05, high=0.95), Input((4, 3), low=0, high=1))
    check_grads(f, Input((4, 3), low=0.05, high=0.95), Input((4, 3), low=0, high=1))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted,pos", list(itertools.product([False, True], [False, True])))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_bce_with_logits(reduction, weighted, pos, dtype):
    rng = np.random.default_rng(2)
    w, pw = rng.uniform(0.5, 2, (4, 3)), rng.uniform(0.5, 3, (3,))

    def f(x, t):
        _, FF = lib_of(x)
        return FF.binary_cross_entropy_with_logits(x, t, weight=fl(x, w) if weighted else None, reduction=reduction,
                                                   pos_weight=fl(x, pw) if pos else None)

    oracle(f, Input((4, 3)), Input((4, 3), low=0, high=1), dtype=dtype)
    if dtype == "float64":
        check_grads(f, Input((4, 3)), Input((4, 3), low=0, high=1))


def _ce_cases():
    for shape, probs in [((5, 4), False), ((4,), False), ((3, 4, 2, 3), False), ((5, 4), True), ((2, 4, 3), True)]:
        for reduction in REDUCTIONS:
            for weighted in (False, True):
                for smoothing in (0.0, 0.15):
                    for ignore in ((False, True) if not probs and len(shape) > 1 else (False,)):
                        yield shape, probs, reduction, weighted, smoothing, ignore


@pytest.mark.parametrize("shape,probs,reduction,weighted,smoothing,ignore", list(_ce_cases()))
def test_cross_entropy_every_option(shape, probs, reduction, weighted, smoothing, ignore):
    rng = np.random.default_rng(len(shape) * 7 + int(probs))
    c = shape[0] if len(shape) == 1 else shape[1]
    tshape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    labels = rng.integers(0, c, tshape)
    if ignore:
        labels.reshape(-1)[::3] = 1  # ignore_index=1: a real class index being ignored
    probs_t = rng.dirichlet(np.ones(c), size=int(np.prod(tshape)) or 1).reshape(tshape + (c,))
    probs_t = np.moveaxis(probs_t, -1, 1 if len(shape) > 1 else 0)
    w = rng.uniform(0.5, 2.0, c)

    def f(x):
        _, FF = lib_of(x)
        target = fl(x, probs_t) if probs else idx(x, labels)
        kw = dict(weight=fl(x, w) if weighted else None, reduction=reduction, label_smoothing=smoothing)
        if ignore:
            kw["ignore_index"] = 1
        return FF.cross_entropy(x, target, **kw)

    oracle(f, Input(shape))
    oracle(f, Input(shape), dtype="float32", seed=3)
    check_grads(f, Input(shape), second=reduction != "none")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_and_module_forms(reduction):
    labels = np.array([0, 3, 1, 3, 2])
    w = np.array([1.0, 2.0, 0.5, 1.5])
    oracle(lambda x: lib_of(x)[1].nll_loss(x.log_softmax(1), idx(x, labels), weight=fl(x, w), reduction=reduction,
                                           ignore_index=3), Input((5, 4)))
    lm = nn.CrossEntropyLoss(weight=lamina.tensor(w), reduction=reduction, label_smoothing=0.1).double()
    tm = torch.nn.CrossEntropyLoss(weight=torch.tensor(w), reduction=reduction, label_smoothing=0.1)
    oracle(lambda x: (lm if isinstance(x, lamina.Tensor) else tm)(x, idx(x, labels)), Input((5, 4)))
    assert "weight" in dict(lm.named_buffers())


def test_cross_entropy_finite_for_huge_logits():
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [0.0, 0.0, 0.0]])
    for dtype in ("float32", "float64"):
        oracle(lambda t: lib_of(t)[1].cross_entropy(t, idx(t, [1, 2, 0])), Input(array=x), dtype=dtype)
        oracle(lambda t: lib_of(t)[1].binary_cross_entropy_with_logits(t, fl(t, np.ones((3, 3)))), Input(array=x),
               dtype=dtype)
        t = lamina.tensor(x, dtype=dtype, requires_grad=True)
        loss = F.cross_entropy(t, lamina.tensor([1, 2, 0])) + F.binary_cross_entropy_with_logits(t, lamina.zeros(3, 3, dtype=dtype))
        loss.backward()
        assert np.isfinite(loss.item()) and np.isfinite(t.grad.array).all()


@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(reduction, log_target):
    rng = np.random.default_rng(4)
    p = rng.dirichlet(np.ones(5), size=3)
    p[0, 1] = 0.0  # a zero target probability contributes 0
    target = np.log(p + 1e-300) if log_target else p

    def f(x):
        return lib_of(x)[1].kl_div(x.log_softmax(1), fl(x, target), reduction=reduction, log_target=log_target)

    oracle(f, Input((3, 5)))
    check_grads(f, Input((3, 5)))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_embedding_and_ranking_losses(reduction):
    y = np.array([1, -1, 1, -1])
    oracle(lambda a, b: lib_of(a)[1].cosine_embedding_loss(a, b, idx(a, y), margin=0.2, reduction=reduction),
           Input((4, 5)), Input((4, 5)))
    oracle(lambda a, b: lib_of(a)[1].margin_ranking_loss(a, b, fl(a, y), margin=0.1, reduction=reduction),
           Input((4,), distinct=True), Input((4,), distinct=True))
    oracle(lambda a: lib_of(a)[1].hinge_embedding_loss(a, fl(a, y), margin=0.7, reduction=reduction),
           Input((4,), distinct=True))
    oracle(lambda a: lib_of(a)[1].soft_margin_loss(a, fl(a, y), reduction=reduction), Input((4,)))
    check_grads(lambda a, b: F.cosine_embedding_loss(a, b, lamina.tensor(y), margin=0.2, reduction=reduction),
                Input((4, 5)), Input((4, 5)))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("weighted", [False, True])
def test_multi_margin_loss(reduction, p, weighted):
    t = np.array([2, 0, 3])
    w = np.array([0.5, 1.0, 2.0, 1.5])

    def f(x):
        return lib_of(x)[1].multi_margin_loss(x, idx(x, t), p=p, margin=0.8, weight=fl(x, w) if weighted else None,
                                              reduction=reduction)

    oracle(f, Input((3, 4), distinct=True))
    check_grads(f, Input((3, 4), distinct=True))


def test_other_nll_losses():
    oracle(lambda x, v: lib_of(x)[1].gaussian_nll_loss(x, fl(x, np.ones((3, 2))), v), Input((3, 2)),
           Input((3, 2), low=0.5, high=2))
    oracle(lambda x: lib_of(x)[1].poisson_nll_loss(x, fl(x, [[1, 2], [0, 3]]), full=True), Input((2, 2)))


def test_loss_errors_are_clear():
    with pytest.raises(IndexError, match="Target 7 is out of bounds for 3 classes"):
        F.cross_entropy(lamina.randn(2, 3), lamina.tensor([0, 7]))
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        F.mse_loss(lamina.ones(2), lamina.ones(2), reduction="avg")
    with pytest.raises(ValueError, match="all elements of input should be between 0 and 1"):
        F.binary_cross_entropy(lamina.tensor([1.5]), lamina.tensor([1.0]))
    with pytest.raises(ValueError, match="nll_loss: expected target of shape"):
        F.nll_loss(lamina.randn(2, 3), lamina.tensor([0, 1, 2]))


def test_hand_computed_cross_entropy_and_mse():
    # logits (2, 0, 0): softmax = e²/(e² + 2) for class 0, CE = −log of it = log(1 + 2e⁻²)
    loss = F.cross_entropy(lamina.tensor([[2.0, 0.0, 0.0]], dtype=lamina.float64), lamina.tensor([0]))
    assert abs(loss.item() - np.log(1 + 2 * np.exp(-2.0))) < 1e-14
    # MSE of predictions (1, 2, 3) against (1, 1, 1): (0 + 1 + 4)/3
    assert nn.MSELoss()(lamina.tensor([1.0, 2.0, 3.0]), lamina.ones(3)).item() == pytest.approx(5 / 3)


def test_saturated_probabilities_and_empty_targets_give_finite_gradients():
    x = lamina.tensor([20.0, -120.0], requires_grad=True)  # σ(20) is exactly 1 in float32
    F.binary_cross_entropy(x.sigmoid(), lamina.tensor([1.0, 0.0])).backward()
    assert np.isfinite(x.grad.array).all()
    for smoothing in (0.0, 0.1):
        x = lamina.randn(2, 3, requires_grad=True)
        loss = nn.CrossEntropyLoss(ignore_index=1, label_smoothing=smoothing)(x, lamina.tensor([1, 1]))
        loss.backward()
        t = torch.randn(2, 3, requires_grad=True)
        tl = torch.nn.CrossEntropyLoss(ignore_index=1, label_smoothing=smoothing)(t, torch.tensor([1, 1]))
        tl.backward()
        assert np.isnan(loss.item()) and np.isnan(tl.item())
        assert x.grad.tolist() == [[0.0] * 3] * 2 and t.grad.abs().sum().item() == 0
