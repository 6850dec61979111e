"""Dice and focal losses: hand values, independent torch implementations of the formulas (torch has
neither loss), float64 gradchecks, focal with γ = 0 as cross-entropy; cross-entropy on (N, C, H, W)
with ignore_index = 255 and class weights against torch."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import lamina
import lamina.nn.functional as F
from lamina import nn
from tests.helpers import Input, check_grads, oracle

REDUCTIONS = ["mean", "sum", "none"]
SHAPE = (2, 4, 3, 5)  # N, C, H, W


def _labels(seed: int, shape=(2, 3, 5), c: int = 4, ignore: int | None = 255) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = rng.integers(0, c, shape)
    if ignore is not None:
        t[rng.uniform(size=shape) < 0.25] = ignore
    return t


def _target(x, arr):
    return lamina.tensor(arr) if isinstance(x, lamina.Tensor) else torch.from_numpy(arr)


def torch_dice(x: torch.Tensor, t: torch.Tensor, smooth: float, ignore_index, reduction: str,
               batch: bool = False) -> torch.Tensor:
    """The Dice loss written from its formula in torch."""
    n, c = x.shape[:2]
    keep = (t != ignore_index) if ignore_index is not None else torch.ones_like(t, dtype=torch.bool)
    safe = torch.where(keep, t, torch.zeros_like(t))
    if c == 1:
        p, y = torch.sigmoid(x)[:, 0], safe.to(x.dtype)
        p, y = (p * keep).reshape(n, 1, -1), (y * keep).reshape(n, 1, -1)
    else:
        p = torch.softmax(x, 1) * keep[:, None]
        y = TF.one_hot(safe, c).movedim(-1, 1).to(x.dtype) * keep[:, None]
        p, y = p.reshape(n, c, -1), y.reshape(n, c, -1)
    dims = (0, 2) if batch else 2
    loss = 1 - (2 * (p * y).sum(dims) + smooth) / (p.sum(dims) + y.sum(dims) + smooth)
    if batch:
        loss = loss[None]
    return {"mean": loss.mean(), "sum": loss.sum(), "none": loss}[reduction]


def torch_focal(x: torch.Tensor, t: torch.Tensor, alpha, gamma: float, ignore_index: int,
                reduction: str) -> torch.Tensor:
    """−α_t (1 − p_t)^γ log p_t from the softmax probabilities, in torch."""
    keep = t != ignore_index
    safe = torch.where(keep, t, torch.zeros_like(t))
    p_t = torch.softmax(x, 1).gather(1, safe.unsqueeze(1)).squeeze(1)
    w = (alpha[safe] if alpha is not None else torch.ones_like(p_t)) * keep
    loss = -w * (1 - p_t) ** gamma * torch.log(p_t)
    return {"mean": loss.sum() / w.sum(), "sum": loss.sum(), "none": loss}[reduction]


def test_dice_hand_value() -> None:
    # zero logits: p = 1/2 everywhere; target [0, 1]: each class overlaps 1/2 of its pixel,
    # Σp = 1, Σy = 1: Dice = (2·1/2 + s) / (2 + s), 1/2 at s = 0 and 2/3 at s = 1
    x, t = lamina.zeros((1, 2, 1, 2)), lamina.tensor([[[0, 1]]])
    assert F.dice_loss(x, t, smooth=0.0).item() == pytest.approx(0.5)
    assert F.dice_loss(x, t, smooth=1.0).item() == pytest.approx(1 / 3)
    # the ignored pixel drops out: class 0 alone on pixel 0, class 1 absent: (1 + 1)/(1/2 + 1 + 1), (0 + 1)/(1/2 + 1)
    per = F.dice_loss(x, lamina.tensor([[[0, 255]]]), ignore_index=255, reduction="none").numpy()
    np.testing.assert_allclose(per, [[1 - 2 / 2.5, 1 - 1 / 1.5]], rtol=1e-6)


def test_dice_over_the_batch_hand_value() -> None:
    # zero logits (p = 1/2), two images of two pixels: the first all class 0, the second all class 1.
    # Per image (s = 0): the present class 1 − 2·1/(1 + 2) = 1/3, the absent one 1 − 0/1 = 1: mean 2/3.
    # Over the batch: each class Σp·y = 1, Σp = 2, Σy = 2: 1 − 2/4 = 1/2 for both.
    x, t = lamina.zeros((2, 2, 1, 2)), lamina.tensor([[[0, 0]], [[1, 1]]])
    assert F.dice_loss(x, t, smooth=0.0).item() == pytest.approx(2 / 3)
    assert F.dice_loss(x, t, smooth=0.0, batch=True).item() == pytest.approx(0.5)
    assert F.dice_loss(x, t, smooth=0.0, batch=True, reduction="none").shape == (1, 2)
    # a gradient flows through the batch sums like through the per-image ones
    xg = lamina.randn(2, 3, 4, 4, requires_grad=True)
    F.dice_loss(xg, lamina.randint(0, 3, (2, 4, 4)), batch=True).backward()
    assert xg.grad is not None and np.isfinite(xg.grad.numpy()).all() and np.abs(xg.grad.numpy()).sum() > 0


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ignore_index", [255, None])
def test_dice_against_torch(reduction: str, ignore_index) -> None:
    labels = _labels(0, ignore=ignore_index)

    def lam(x):
        return F.dice_loss(x, _target(x, labels), smooth=0.5, ignore_index=ignore_index, reduction=reduction)

    oracle(lam, Input(SHAPE), torch_fn=lambda x: torch_dice(x, _target(x, labels), 0.5, ignore_index, reduction))
    oracle(lam, Input(SHAPE), torch_fn=lambda x: torch_dice(x, _target(x, labels), 0.5, ignore_index, reduction),
           dtype="float32", seed=2)
    check_grads(lam, Input(SHAPE), second=reduction != "none")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_dice_over_the_batch_against_torch(reduction: str) -> None:
    labels = _labels(0, ignore=255)

    def lam(x):
        return F.dice_loss(x, _target(x, labels), smooth=0.5, ignore_index=255, reduction=reduction, batch=True)

    oracle(lam, Input(SHAPE), torch_fn=lambda x: torch_dice(x, _target(x, labels), 0.5, 255, reduction, batch=True))
    check_grads(lam, Input(SHAPE), second=reduction != "none")


def test_binary_dice_with_sigmoid() -> None:
    labels = _labels(1, c=2, ignore=255)

    def lam(x):
        return F.dice_loss(x, _target(x, labels), ignore_index=255)

    oracle(lam, Input((2, 1, 3, 5)), torch_fn=lambda x: torch_dice(x, _target(x, labels), 1.0, 255, "mean"))
    check_grads(lam, Input((2, 1, 3, 5)))


def test_focal_hand_value() -> None:
    # logits (0, log 3): p = (1/4, 3/4); target 1: (1/4)² · log(4/3); target 0 weighted 2: 2·(3/4)²·log 4,
    # mean divides by the weights 1 + 2
    x = lamina.tensor([[0.0, np.log(3.0)], [0.0, np.log(3.0)]], dtype=lamina.float64)
    t = lamina.tensor([1, 0])
    a, b = (1 / 4) ** 2 * np.log(4 / 3), 2 * (3 / 4) ** 2 * np.log(4)
    out = F.focal_loss(x, t, alpha=lamina.tensor([2.0, 1.0], dtype=lamina.float64), reduction="none")
    np.testing.assert_allclose(out.numpy(), [a, b], rtol=1e-12)
    mean = F.focal_loss(x, t, alpha=lamina.tensor([2.0, 1.0], dtype=lamina.float64))
    assert mean.item() == pytest.approx((a + b) / 3, rel=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("gamma", [2.0, 0.5])
def test_focal_against_torch(reduction: str, weighted: bool, gamma: float) -> None:
    labels = _labels(3, ignore=-100)
    alpha = np.random.default_rng(4).uniform(0.25, 2.0, 4)

    def lam(x):
        a = lamina.tensor(alpha.astype(x.dtype)) if weighted else None
        return F.focal_loss(x, _target(x, labels), alpha=a, gamma=gamma, reduction=reduction)

    def tor(x):
        a = torch.from_numpy(alpha.astype(str(x.dtype).split(".")[1])) if weighted else None
        return torch_focal(x, _target(x, labels), a, gamma, -100, reduction)

    oracle(lam, Input(SHAPE), torch_fn=tor)
    oracle(lam, Input(SHAPE), torch_fn=tor, dtype="float32", seed=5)
    check_grads(lam, Input(SHAPE), second=reduction != "none")


@pytest.mark.parametrize("weighted", [False, True])
def test_focal_with_gamma_zero_is_cross_entropy(weighted: bool) -> None:
    labels = _labels(6, ignore=255)
    alpha = np.random.default_rng(7).uniform(0.5, 2.0, 4)

    def lam(x):
        a = lamina.tensor(alpha) if weighted else None
        return F.focal_loss(x, _target(x, labels), alpha=a, gamma=0.0, ignore_index=255)

    def tor(x):
        return TF.cross_entropy(x, _target(x, labels), weight=torch.from_numpy(alpha) if weighted else None,
                                ignore_index=255)

    oracle(lam, Input(SHAPE), torch_fn=tor)
    x = lamina.randn(*SHAPE, dtype=lamina.float64)
    ce = F.cross_entropy(x, lamina.tensor(labels), weight=lamina.tensor(alpha) if weighted else None, ignore_index=255)
    assert F.focal_loss(x, lamina.tensor(labels), alpha=lamina.tensor(alpha) if weighted else None, gamma=0.0,
                        ignore_index=255).item() == pytest.approx(ce.item(), rel=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_per_pixel_ignore_255_and_weight(reduction: str) -> None:
    labels = _labels(8, ignore=255)
    w = np.random.default_rng(9).uniform(0.5, 2.0, 4)

    def f(x):
        mod = lamina if isinstance(x, lamina.Tensor) else torch
        FF = F if isinstance(x, lamina.Tensor) else TF
        weight = mod.tensor(w.astype(np.float64)) if mod is lamina else torch.from_numpy(w)
        return FF.cross_entropy(x, _target(x, labels), weight=weight, ignore_index=255, reduction=reduction)

    oracle(f, Input(SHAPE))


def test_large_logits_stay_finite() -> None:
    x = lamina.tensor(np.array([[[[1e4]], [[-1e4]], [[0.0]]]]), requires_grad=True)
    t = lamina.tensor([[[1]]])
    for loss in (F.focal_loss(x, t), F.dice_loss(x, t)):
        loss.backward()
        assert np.isfinite(loss.item()) and np.isfinite(x.grad.numpy()).all()
        x.grad = None


def test_modules_and_errors() -> None:
    x, t = lamina.randn(2, 3, 4, 4), lamina.tensor(_labels(10, shape=(2, 4, 4), c=3, ignore=255))
    alpha = lamina.tensor([1.0, 2.0, 0.5])
    focal = nn.FocalLoss(alpha=alpha, gamma=1.5, ignore_index=255)
    assert focal(x, t).item() == pytest.approx(F.focal_loss(x, t, alpha, 1.5, 255).item())
    assert "alpha" in focal.state_dict()
    dice = nn.DiceLoss(smooth=0.0, ignore_index=255, reduction="sum")
    assert dice(x, t).item() == pytest.approx(F.dice_loss(x, t, 0.0, 255, "sum").item())
    with pytest.raises(IndexError, match="dice_loss: Target 255 is out of bounds for 3 classes"):
        F.dice_loss(x, t)  # 255 without ignore_index=255
    with pytest.raises(ValueError, match=r"focal_loss: expected target of shape \(2, 4, 4\)"):
        F.focal_loss(x, t[:, :2], ignore_index=255)
    with pytest.raises(ValueError, match="alpha must have 3 elements"):
        F.focal_loss(x, t, alpha=lamina.tensor([1.0, 2.0]), ignore_index=255)
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        F.focal_loss(x, t, gamma=-1.0, ignore_index=255)
    with pytest.raises(TypeError, match="int64 class indices"):
        F.dice_loss(x, x[:, 0])
