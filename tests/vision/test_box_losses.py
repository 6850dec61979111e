"""The detection losses of lamina.vision.ops (generalized / distance / complete IoU losses,
sigmoid focal loss): hand-computed values, torchvision's formulas in plain torch as the oracle
(forward and gradients, degenerate boxes included), float64 gradcheck, reductions, errors."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import lamina
from lamina.vision import ops as V
from tests.helpers import Input, check_grads, oracle
from tests.vision.test_boxes import HAND, A, B, C, D, random_boxes

# ---- torchvision's loss formulas in plain torch: the oracle ----------------------------------


def t_inter_union(b1, b2):
    x1, y1, x2, y2 = b1.unbind(-1)
    x1g, y1g, x2g, y2g = b2.unbind(-1)
    xk1, yk1, xk2, yk2 = torch.max(x1, x1g), torch.max(y1, y1g), torch.min(x2, x2g), torch.min(y2, y2g)
    inter = torch.zeros_like(x1)
    m = (yk2 > yk1) & (xk2 > xk1)  # a masked assignment: no gradient where the boxes do not overlap
    inter[m] = (xk2[m] - xk1[m]) * (yk2[m] - yk1[m])
    return inter, (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter


def t_enclosing(b1, b2):
    x1, y1, x2, y2 = b1.unbind(-1)
    x1g, y1g, x2g, y2g = b2.unbind(-1)
    return torch.max(x2, x2g) - torch.min(x1, x1g), torch.max(y2, y2g) - torch.min(y1, y1g)


def t_giou_loss(b1, b2, eps=1e-7):
    inter, union = t_inter_union(b1, b2)
    wc, hc = t_enclosing(b1, b2)
    c = wc * hc
    return 1 - (inter / (union + eps) - (c - union) / (c + eps))


def t_diou_loss_iou(b1, b2, eps=1e-7):
    inter, union = t_inter_union(b1, b2)
    iou = inter / (union + eps)
    wc, hc = t_enclosing(b1, b2)
    ctr1, ctr2 = (b1[..., :2] + b1[..., 2:]) / 2, (b2[..., :2] + b2[..., 2:]) / 2
    rho2 = ((ctr1 - ctr2) ** 2).sum(-1)
    return 1 - iou + rho2 / (wc ** 2 + hc ** 2 + eps), iou


def t_ciou_loss(b1, b2, eps=1e-7):
    loss, iou = t_diou_loss_iou(b1, b2, eps)
    a1 = torch.atan((b1[..., 2] - b1[..., 0]) / (b1[..., 3] - b1[..., 1]))
    a2 = torch.atan((b2[..., 2] - b2[..., 0]) / (b2[..., 3] - b2[..., 1]))
    v = (4 / math.pi ** 2) * (a2 - a1) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return loss + alpha * v


def t_focal(x, t, alpha=0.25, gamma=2.0):
    p = torch.sigmoid(x)
    p_t = p * t + (1 - p) * (1 - t)
    loss = TF.binary_cross_entropy_with_logits(x, t, reduction="none") * (1 - p_t) ** gamma
    return (alpha * t + (1 - alpha) * (1 - t)) * loss if alpha >= 0 else loss


LOSSES = {
    "generalized_box_iou_loss": (V.generalized_box_iou_loss, t_giou_loss),
    "distance_box_iou_loss": (V.distance_box_iou_loss, lambda a, b: t_diou_loss_iou(a, b)[0]),
    "complete_box_iou_loss": (V.complete_box_iou_loss, t_ciou_loss),
}
MATRIX = {"generalized_box_iou_loss": "generalized_box_iou", "distance_box_iou_loss": "distance_box_iou",
          "complete_box_iou_loss": "complete_box_iou"}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_hand_computed(name):
    """1 − the hand-computed GIoU / DIoU / CIoU of the pairs (A, B), (A, C), (A, D), (B, B)."""
    fn = LOSSES[name][0]
    b1 = lamina.tensor([A, A, A, B], dtype=lamina.float64)
    b2 = lamina.tensor([B, C, D, B], dtype=lamina.float64)
    hand = HAND[MATRIX[name]]
    expected = 1 - np.array([hand[0][0], hand[0][1], hand[0][2], 1.0])
    np.testing.assert_allclose(fn(b1, b2).numpy(), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fn(b1, b2, reduction="sum").item(), expected.sum(), rtol=1e-6)
    np.testing.assert_allclose(fn(b1, b2, reduction="mean").item(), expected.mean(), rtol=1e-6)
    single = fn(lamina.tensor(A, dtype=lamina.float64), lamina.tensor(D, dtype=lamina.float64))  # one box: [4]
    assert single.shape == () and abs(single.item() - expected[2]) < 1e-6


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_is_one_minus_the_matrix_diagonal(name):
    rng = np.random.default_rng(3)
    b1, b2 = lamina.tensor(random_boxes(rng, 9)), lamina.tensor(random_boxes(rng, 9))
    diag = getattr(V, MATRIX[name])(b1, b2).numpy().diagonal()
    np.testing.assert_allclose(LOSSES[name][0](b1, b2).numpy(), 1 - diag, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_loss_oracle_random(name, dtype):
    fn, torch_fn = LOSSES[name]
    for seed in range(8):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(1, 9))
        b1 = random_boxes(rng, n, degenerate=0.25 if name != "complete_box_iou_loss" else 0.0)
        b2 = random_boxes(rng, n)
        red = ["none", "mean", "sum"][seed % 3]
        kw = dict(rtol=1e-4, atol=1e-5) if dtype == "float32" else {}
        oracle(lambda p, q, fn=fn, red=red: fn(p, q, reduction=red), Input(array=b1), Input(array=b2),
               torch_fn=lambda p, q, torch_fn=torch_fn, red=red: _reduce(torch_fn(p, q), red),
               dtype=dtype, seed=seed, **kw)


def _reduce(loss, reduction):
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_oracle_degenerate(name):
    """Points, lines, identical, nested, touching and distant pairs: eps keeps the losses finite,
    and the gradients (torch's subgradients at the ties) match."""
    fn, torch_fn = LOSSES[name]
    b1 = np.array([[1, 1, 1, 1], [0, 0, 0, 3], [0, 0, 2, 2], [0, 0, 4, 4], [0, 0, 1, 1], [0, 0, 1, 2], [0, 0, 1, 1]],
                  dtype=np.float64)
    b2 = np.array([[1, 1, 1, 1], [5, 5, 6, 6], [0, 0, 2, 2], [1, 1, 2, 2], [1, 0, 2, 1], [9, 9, 9, 12], [2, 2, 2, 2]],
                  dtype=np.float64)
    if name == "complete_box_iou_loss":  # a point's aspect angle atan(0/0) is nan there (torchvision's too)
        b1, b2 = b1[1:6], b2[1:6]
    out = fn(lamina.tensor(b1), lamina.tensor(b2))
    assert np.isfinite(out.numpy()).all()
    oracle(fn, Input(array=b1), Input(array=b2), torch_fn=torch_fn)


@pytest.mark.parametrize("name", ["generalized_box_iou_loss", "distance_box_iou_loss"])
def test_loss_gradcheck(name):
    fn = LOSSES[name][0]
    for seed in range(3):
        rng = np.random.default_rng(50 + seed)
        b1, b2 = random_boxes(rng, 5), random_boxes(rng, 5)
        if seed == 2:  # a point and a line paired with boxes far from them (no overlap to kink)
            b1[0], b2[0] = [20.0, 20.0, 20.0, 20.0], [1.0, 1.0, 3.0, 2.0]
            b1[1], b2[1] = [30.0, 1.0, 30.0, 4.0], [0.0, 0.0, 1.0, 1.0]
        check_grads(lambda p, q, fn=fn: fn(p, q, reduction="none"), Input(array=b1), Input(array=b2), seed=seed)
        check_grads(lambda p, q, fn=fn: fn(p, q, reduction="mean"), Input(array=b1), Input(array=b2), seed=seed)


def test_complete_box_iou_loss_gradient_holds_alpha_constant():
    """As complete_box_iou: the gradient is that of ``DIoU loss + α₀·v`` with ``α₀`` frozen."""
    for seed in range(3):
        rng = np.random.default_rng(60 + seed)
        b1, b2 = random_boxes(rng, 4), random_boxes(rng, 4)
        if seed == 2:
            b1[0], b2[0] = [30.0, 1.0, 30.0, 4.0], [0.0, 0.0, 1.0, 1.0]  # zero width, far away

        def v(p, q):
            a1 = ((p[:, 2] - p[:, 0]) / (p[:, 3] - p[:, 1])).atan()
            a2 = ((q[:, 2] - q[:, 0]) / (q[:, 3] - q[:, 1])).atan()
            return (4 / math.pi ** 2) * (a2 - a1) ** 2

        t1, t2 = lamina.tensor(b1, requires_grad=True), lamina.tensor(b2, requires_grad=True)
        iou = lamina.tensor(V.box_iou(t1, t2).detach().numpy().diagonal().copy())
        v0 = v(t1, t2).detach()
        alpha0 = lamina.tensor((v0 / (1 - iou + v0 + 1e-7)).numpy())

        def frozen(p, q, alpha0=alpha0):
            return V.distance_box_iou_loss(p, q) + alpha0 * v(p, q)

        np.testing.assert_allclose(frozen(t1, t2).detach().numpy(), V.complete_box_iou_loss(t1, t2).detach().numpy(),
                                   rtol=1e-6, atol=1e-9)
        check_grads(frozen, Input(array=b1), Input(array=b2), seed=seed)
        up = lamina.tensor(rng.standard_normal(4))
        for a, b in zip(lamina.autograd.grad(V.complete_box_iou_loss(t1, t2), (t1, t2), up),
                        lamina.autograd.grad(frozen(t1, t2), (t1, t2), up)):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_empty_and_dtypes(name):
    fn = LOSSES[name][0]
    e = lamina.zeros(0, 4, requires_grad=True)
    assert fn(e, e).shape == (0,)
    mean = fn(e, e, reduction="mean")  # torchvision: 0 for no boxes, not nan; still differentiable
    assert mean.item() == 0.0 and fn(e, e, reduction="sum").item() == 0.0
    mean.backward()
    assert e.grad.shape == (0, 4)
    h = lamina.tensor([A, B], dtype=lamina.float16)
    assert fn(h, h).dtype == lamina.float32  # _upcast_non_float
    i = lamina.tensor([A, B])
    np.testing.assert_allclose(fn(i, lamina.tensor([B, D])).numpy(),
                               fn(i.float(), lamina.tensor([B, D]).float()).numpy(), rtol=1e-6)


def test_loss_errors_name_the_op():
    good = lamina.zeros(3, 4)
    with pytest.raises(ValueError, match="generalized_box_iou_loss: boxes1 of shape \\(3, 4\\) and boxes2 of shape "
                                         "\\(2, 4\\) do not pair up"):
        V.generalized_box_iou_loss(good, lamina.zeros(2, 4))
    with pytest.raises(ValueError, match=r"distance_box_iou_loss: boxes2 should be a Tensor\[\.\.\., 4\]"):
        V.distance_box_iou_loss(good, lamina.zeros(3, 5))
    with pytest.raises(ValueError, match="complete_box_iou_loss: 'avg' is not a valid value for reduction"):
        V.complete_box_iou_loss(good, good, reduction="avg")
    with pytest.raises(TypeError, match="generalized_box_iou_loss: boxes1 has dtype float32 but boxes2 has float64"):
        V.generalized_box_iou_loss(good, good.double())


# ---- sigmoid_focal_loss ---------------------------------------------------------------------


def test_focal_loss_hand_computed():
    x = lamina.tensor([0.0, 2.0, -1.0], dtype=lamina.float64)
    t = lamina.tensor([1.0, 0.0, 1.0], dtype=lamina.float64)
    s2, s1 = 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(1))  # σ(2), σ(−1)
    expected = [
        0.25 * 0.5 ** 2 * math.log(2),  # p = 1/2, positive: α·(1 − 1/2)²·log 2
        0.75 * s2 ** 2 * -math.log(1 - s2),  # negative: (1 − α)·p²·(−log(1 − p))
        0.25 * (1 - s1) ** 2 * -math.log(s1),
    ]
    np.testing.assert_allclose(V.sigmoid_focal_loss(x, t).numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(V.sigmoid_focal_loss(x, t, alpha=-1, gamma=0).numpy(),
                               [math.log(2), -math.log(1 - s2), -math.log(s1)], rtol=1e-12)  # plain BCE


def test_focal_loss_oracle_and_gradcheck():
    rng = np.random.default_rng(0)
    for seed, (alpha, gamma, red) in enumerate([(0.25, 2, "none"), (0.5, 0, "mean"), (-1, 1.5, "sum"),
                                                (0.9, 3, "none"), (0.25, 2, "mean")]):
        shape = tuple(int(s) for s in rng.integers(1, 5, size=seed % 3 + 1))
        targets = (rng.random(shape) < 0.3).astype(np.float64)
        if seed == 3:
            targets = rng.random(shape)  # soft labels

        def fn(x, t, alpha=alpha, gamma=gamma, red=red):
            return V.sigmoid_focal_loss(x, t, alpha, gamma, red)

        def torch_fn(x, t, alpha=alpha, gamma=gamma, red=red):
            return _reduce(t_focal(x, t, alpha, gamma), red)

        t_spec = Input(array=targets, grad=False)
        for dtype in ("float64", "float32"):
            oracle(fn, Input(shape, low=-4, high=4), t_spec, torch_fn=torch_fn, dtype=dtype, seed=seed,
                   **(dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else {}))
        check_grads(fn, Input(shape, low=-4, high=4), t_spec, seed=seed)


def test_focal_loss_extremes_and_reductions():
    x = lamina.tensor([-1e4, -50.0, 50.0, 1e4], requires_grad=True)
    t = lamina.tensor([1.0, 0.0, 1.0, 0.0])
    loss = V.sigmoid_focal_loss(x, t)
    assert np.isfinite(loss.detach().numpy()).all() and loss.detach().tolist() == [2500.0, 0.0, 0.0, 7500.0]
    loss.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()
    assert math.isnan(V.sigmoid_focal_loss(lamina.zeros(0), lamina.zeros(0), reduction="mean").item())  # as torch
    assert V.sigmoid_focal_loss(x, lamina.tensor([1, 0, 1, 0])).dtype == lamina.float32  # integer labels
    with pytest.raises(ValueError, match="sigmoid_focal_loss: targets of shape \\(3,\\) should have the shape"):
        V.sigmoid_focal_loss(x, lamina.zeros(3))
    with pytest.raises(ValueError, match="sigmoid_focal_loss: 'max' is not a valid value for reduction"):
        V.sigmoid_focal_loss(x, t, reduction="max")
    with pytest.raises(TypeError, match="sigmoid_focal_loss: targets has dtype float64 but inputs has float32"):
        V.sigmoid_focal_loss(x, t.double())
