"""Box geometry of lamina.vision.ops (box_convert, box_area, the IoU matrices, clipping,
remove_small_boxes, masks_to_boxes): hand-computed matrices, torchvision's formulas written in
plain torch as the oracle (forward and every gradient), float64 gradcheck, dtypes and errors."""

import math

import numpy as np
import pytest
import torch

import lamina
from lamina.vision import ops as V
from tests.helpers import Input, check_grads, oracle

# ---- torchvision's formulas in plain torch: the oracle --------------------------------------


def t_area(b):
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def t_inter_union(b1, b2):
    wh = (torch.min(b1[:, None, 2:], b2[:, 2:]) - torch.max(b1[:, None, :2], b2[:, :2])).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter, t_area(b1)[:, None] + t_area(b2) - inter


def t_enclosing_wh(b1, b2):
    return (torch.max(b1[:, None, 2:], b2[:, 2:]) - torch.min(b1[:, None, :2], b2[:, :2])).clamp(min=0)


def t_iou(b1, b2):
    inter, union = t_inter_union(b1, b2)
    return inter / union


def t_giou(b1, b2):
    inter, union = t_inter_union(b1, b2)
    wh = t_enclosing_wh(b1, b2)
    c = wh[..., 0] * wh[..., 1]
    return inter / union - (c - union) / c


def t_diou_iou(b1, b2, eps=1e-7):
    iou = t_iou(b1, b2)
    wh = t_enclosing_wh(b1, b2)
    c2 = wh[..., 0] ** 2 + wh[..., 1] ** 2 + eps
    ctr1, ctr2 = (b1[:, :2] + b1[:, 2:]) / 2, (b2[:, :2] + b2[:, 2:]) / 2
    rho2 = (ctr1[:, None, 0] - ctr2[None, :, 0]) ** 2 + (ctr1[:, None, 1] - ctr2[None, :, 1]) ** 2
    return iou - rho2 / c2, iou


def t_ciou(b1, b2, eps=1e-7):
    diou, iou = t_diou_iou(b1, b2, eps)
    a1 = torch.atan((b1[:, 2] - b1[:, 0]) / (b1[:, 3] - b1[:, 1]))
    a2 = torch.atan((b2[:, 2] - b2[:, 0]) / (b2[:, 3] - b2[:, 1]))
    v = (4 / math.pi ** 2) * (a1[:, None] - a2[None, :]) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return diou - alpha * v


def t_convert(b, i, o):
    p, q, r, s = b.unbind(-1)
    if i == "xywh":
        p, q, r, s = p, q, p + r, q + s
    elif i == "cxcywh":
        p, q, r, s = p - 0.5 * r, q - 0.5 * s, p + 0.5 * r, q + 0.5 * s
    if o == "xywh":
        p, q, r, s = p, q, r - p, s - q
    elif o == "cxcywh":
        p, q, r, s = (p + r) / 2, (q + s) / 2, r - p, s - q
    return torch.stack((p, q, r, s), -1)


def random_boxes(rng, n, scale=10.0, degenerate=0.0):
    """``n`` boxes ``(x1, y1, x2, y2)``; a fraction ``degenerate`` has zero width or height."""
    xy = rng.uniform(-scale / 2, scale, (n, 2))
    wh = rng.uniform(0.1, scale, (n, 2))
    flat = rng.random(n) < degenerate
    wh[flat, rng.integers(0, 2, int(flat.sum()))] = 0.0
    return np.concatenate([xy, xy + wh], axis=1)


PAIRWISE = {
    "box_iou": (V.box_iou, t_iou),
    "generalized_box_iou": (V.generalized_box_iou, t_giou),
    "distance_box_iou": (V.distance_box_iou, lambda a, b: t_diou_iou(a, b)[0]),
    "complete_box_iou": (V.complete_box_iou, t_ciou),
}

# ---- hand-computed matrices -----------------------------------------------------------------
# A = [0,0,2,2] (area 4), B = [1,1,3,3] (4), C = [4,0,5,1] (1), D = [0,0,4,2] (8)
A, B, C, D = [0, 0, 2, 2], [1, 1, 3, 3], [4, 0, 5, 1], [0, 0, 4, 2]
V_AD = 4 / math.pi ** 2 * (math.atan(1) - math.atan(2)) ** 2  # the aspect term of a square against D
HAND = {
    # A∩B = 1, A∪B = 7; A∩D = 4, A∪D = 8; B∩D = [1,3]×[1,2] = 2, B∪D = 10
    "box_iou": [[1 / 7, 0, 1 / 2], [1, 0, 1 / 5]],
    # enclosing boxes: AB 3×3 = 9, AC 5×2 = 10, AD = D = 8, BC 4×3 = 12, BD 4×3 = 12
    "generalized_box_iou": [[1 / 7 - 2 / 9, -5 / 10, 1 / 2], [1, -7 / 12, 1 / 5 - 2 / 12]],
    # centre distances²: AB 2, AC 12.5, AD 1, BC 8.5, BD 1; enclosing diagonals²: 18, 29, 20, 8 (BB), 25, 25
    "distance_box_iou": [[1 / 7 - 2 / 18, -12.5 / 29, 1 / 2 - 1 / 20], [1, -8.5 / 25, 1 / 5 - 1 / 25]],
    # v = 0 between squares; α = v / (1 − IoU + v) against D
    "complete_box_iou": [[1 / 7 - 2 / 18, -12.5 / 29, 1 / 2 - 1 / 20 - V_AD ** 2 / (1 / 2 + V_AD)],
                         [1, -8.5 / 25, 1 / 5 - 1 / 25 - V_AD ** 2 / (4 / 5 + V_AD)]],
}


@pytest.mark.parametrize("name", sorted(HAND))
def test_pairwise_hand_computed(name):
    fn = PAIRWISE[name][0]
    out = fn(lamina.tensor([A, B], dtype=lamina.float64), lamina.tensor([B, C, D], dtype=lamina.float64))
    assert out.shape == (2, 3) and out.dtype == lamina.float64
    np.testing.assert_allclose(out.numpy(), HAND[name], rtol=1e-6, atol=1e-7)  # eps = 1e-7 in DIoU, CIoU


def test_giou_of_boxes_apart_is_negative_and_iou_of_identical_is_one():
    a = lamina.tensor([[0.0, 0.0, 1.0, 1.0]])
    far = lamina.tensor([[3.0, 0.0, 4.0, 1.0], [9.0, 0.0, 10.0, 1.0]])
    g = V.generalized_box_iou(a, far).numpy()[0]
    np.testing.assert_allclose(g, [-2 / 4, -8 / 10], rtol=1e-6)  # the farther apart, the lower
    assert V.box_iou(far, far).numpy().diagonal().tolist() == [1.0, 1.0]


# ---- the torch oracle: forward and gradients on random boxes --------------------------------


@pytest.mark.parametrize("name", sorted(PAIRWISE))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_pairwise_oracle_random(name, dtype):
    fn, torch_fn = PAIRWISE[name]
    for seed in range(6):
        rng = np.random.default_rng(seed)
        n, m = int(rng.integers(1, 7)), int(rng.integers(1, 7))
        b1 = random_boxes(rng, n, degenerate=0.2 if name != "box_iou" else 0.0)
        b2 = random_boxes(rng, m)
        kw = dict(rtol=1e-4, atol=1e-5) if dtype == "float32" else {}
        oracle(fn, Input(array=b1), Input(array=b2), torch_fn=torch_fn, dtype=dtype, seed=seed, **kw)


@pytest.mark.parametrize("name", sorted(PAIRWISE))
def test_pairwise_oracle_at_kinks(name):
    """Shared edges, identical and nested boxes: max/min ties and the clamp at 0 take torch's
    subgradients (half to each side of a tie; clamp passes at its bound)."""
    fn, torch_fn = PAIRWISE[name]
    b1 = np.array([A, B, [0, 0, 1, 1], [0.5, 0.5, 1.5, 1.5]], dtype=np.float64)
    b2 = np.array([A, [2, 0, 3, 2], [0, 0, 1, 1], [0, 0, 4, 4]], dtype=np.float64)  # identical, touching, nested
    oracle(fn, Input(array=b1), Input(array=b2), torch_fn=torch_fn)


@pytest.mark.parametrize("name", ["box_iou", "generalized_box_iou", "distance_box_iou"])
def test_pairwise_gradcheck(name):
    fn = PAIRWISE[name][0]
    for seed in range(3):
        rng = np.random.default_rng(100 + seed)
        b1, b2 = random_boxes(rng, 3), random_boxes(rng, 5)
        if seed == 2:  # degenerate boxes far to the right of all others: smooth there (no overlap to kink)
            b1[0] = [30.0, 1.0, 30.0, 4.0]
            b1[1] = [35.0, 2.0, 38.0, 2.0]
        check_grads(fn, Input(array=b1), Input(array=b2), seed=seed)


def _aspect_term(b1, b2):
    """CIoU's ``v``, written with lamina ops."""
    a1 = ((b1[:, 2] - b1[:, 0]) / (b1[:, 3] - b1[:, 1])).atan()
    a2 = ((b2[:, 2] - b2[:, 0]) / (b2[:, 3] - b2[:, 1])).atan()
    return (4 / math.pi ** 2) * (a1[:, None] - a2[None, :]) ** 2


def test_complete_box_iou_gradient_holds_alpha_constant():
    """CIoU's α is a weight computed under no-grad, so its gradient is that of
    ``DIoU − α₀·v`` with ``α₀`` frozen at the point: gradcheck that function, and check that
    complete_box_iou's gradient is its gradient."""
    for seed in range(3):
        rng = np.random.default_rng(200 + seed)
        b1, b2 = random_boxes(rng, 3), random_boxes(rng, 4)
        if seed == 2:  # zero width (aspect angle 0), far from the others; zero height has no gradient (w/0)
            b1[0] = [30.0, 1.0, 30.0, 4.0]
        t1, t2 = lamina.tensor(b1, requires_grad=True), lamina.tensor(b2, requires_grad=True)
        iou, v = V.box_iou(t1, t2).detach(), _aspect_term(t1, t2).detach()
        alpha0 = lamina.tensor((v / (1 - iou + v + 1e-7)).numpy())

        def frozen(p, q, alpha0=alpha0):
            return V.distance_box_iou(p, q) - alpha0 * _aspect_term(p, q)

        np.testing.assert_allclose(frozen(t1, t2).detach().numpy(), V.complete_box_iou(t1, t2).detach().numpy(),
                                   rtol=1e-12, atol=1e-12)
        check_grads(frozen, Input(array=b1), Input(array=b2), seed=seed)
        up = lamina.tensor(rng.standard_normal((3, 4)))
        g_ciou = lamina.autograd.grad(V.complete_box_iou(t1, t2), (t1, t2), up)
        g_frozen = lamina.autograd.grad(frozen(t1, t2), (t1, t2), up)
        for a, b in zip(g_ciou, g_frozen):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-12)


def test_empty_sets():
    e = lamina.zeros(0, 4, requires_grad=True)
    b = lamina.tensor([A, B], dtype=lamina.float32, requires_grad=True)
    for name, (fn, _) in PAIRWISE.items():
        assert fn(e, b).shape == (0, 2), name
        assert fn(b, e).shape == (2, 0), name
        fn(b, e).sum().backward()
        assert b.grad is not None and not b.grad.numpy().any()
        b.grad = None
    assert V.box_area(e).shape == (0,)


# ---- dtypes: torchvision's _upcast ----------------------------------------------------------


def test_float16_upcast_avoids_overflow():
    h = lamina.tensor([[0.0, 0.0, 300.0, 300.0], [100.0, 100.0, 400.0, 400.0]], dtype=lamina.float16)
    area = V.box_area(h)
    assert area.dtype == lamina.float32 and area.numpy().tolist() == [90000.0, 90000.0]  # 65504 is float16's max
    with np.errstate(over="ignore"):
        assert np.isinf(np.float16(300) * np.float16(300))
    for name, (fn, _) in PAIRWISE.items():
        out = fn(h, h)
        assert out.dtype == lamina.float32, name
        np.testing.assert_allclose(out.numpy(), fn(h.float(), h.float()).numpy(), rtol=1e-6, err_msg=name)
    np.testing.assert_allclose(V.box_iou(h, h).numpy()[0, 1], 200 * 200 / (2 * 90000 - 200 * 200), rtol=1e-6)


def test_integer_boxes():
    i8 = lamina.tensor([[0, 0, 100, 100], [50, 50, 120, 120]], dtype=lamina.int8)
    area = V.box_area(i8)
    assert area.dtype == lamina.int32 and area.numpy().tolist() == [10000, 4900]  # int8 would wrap
    i64 = lamina.tensor([A, B, D])
    assert V.box_area(i64).dtype == lamina.int64
    for name, (fn, _) in PAIRWISE.items():
        out = fn(i64, i64)
        assert out.dtype.kind == "f", name
        np.testing.assert_allclose(out.numpy(), fn(i64.double(), i64.double()).numpy(), rtol=1e-6, err_msg=name)


# ---- box_convert, clip_boxes_to_image, remove_small_boxes, masks_to_boxes -------------------

FMTS = ["xyxy", "xywh", "cxcywh"]


def test_box_convert_hand_computed():
    xyxy = lamina.tensor([[1.0, 2.0, 4.0, 8.0]])
    assert V.box_convert(xyxy, "xyxy", "xywh").tolist() == [[1.0, 2.0, 3.0, 6.0]]
    assert V.box_convert(xyxy, "xyxy", "cxcywh").tolist() == [[2.5, 5.0, 3.0, 6.0]]
    assert V.box_convert(lamina.tensor([[2.5, 5.0, 3.0, 6.0]]), "cxcywh", "xywh").tolist() == [[1.0, 2.0, 3.0, 6.0]]
    same = V.box_convert(xyxy, "xyxy", "xyxy")
    assert same.tolist() == xyxy.tolist() and same.array is not xyxy.array  # a copy, as torchvision's clone


@pytest.mark.parametrize("in_fmt", FMTS)
@pytest.mark.parametrize("out_fmt", FMTS)
def test_box_convert_oracle_and_roundtrip(in_fmt, out_fmt):
    def fn(m):
        return lambda b: m(b, in_fmt, out_fmt)

    oracle(fn(V.box_convert), (5, 4), torch_fn=fn(t_convert))
    oracle(fn(V.box_convert), (2, 3, 4), torch_fn=fn(t_convert), dtype="float32")  # any leading dims
    b = lamina.tensor(random_boxes(np.random.default_rng(1), 6))
    back = V.box_convert(V.box_convert(b, in_fmt, out_fmt), out_fmt, in_fmt)
    np.testing.assert_allclose(back.numpy(), b.numpy(), rtol=1e-12, atol=1e-12)
    check_grads(fn(V.box_convert), (3, 4))


def test_clip_boxes_to_image():
    b = lamina.tensor([[-1.0, 2.0, 7.0, 5.0], [1.0, -3.0, 2.0, 3.0]])
    assert V.clip_boxes_to_image(b, (4, 6)).tolist() == [[0.0, 2.0, 6.0, 4.0], [1.0, 0.0, 2.0, 3.0]]
    arr = np.array([[-1.0, 2.0, 7.0, 5.0], [0.0, 4.0, 6.0, 1.0], [3.0, 1.0, 4.0, 2.0]])  # on the bounds too

    def fn(b):
        return V.clip_boxes_to_image(b, (4, 6))

    def torch_fn(b):
        x, y = b[..., 0::2].clamp(0, 6), b[..., 1::2].clamp(0, 4)
        return torch.stack((x, y), dim=-1).reshape(b.shape)

    oracle(fn, Input(array=arr), torch_fn=torch_fn)
    oracle(fn, (2, 5, 4), torch_fn=torch_fn)


def test_remove_small_boxes():
    b = lamina.tensor([[0.0, 0.0, 1.0, 5.0], [0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 5.0, 1.9], [1.0, 1.0, 4.0, 4.0]])
    keep = V.remove_small_boxes(b, 2.0)
    assert keep.dtype == lamina.int64 and keep.tolist() == [1, 3]  # a side equal to min_size stays
    assert V.remove_small_boxes(lamina.zeros(0, 4), 1.0).tolist() == []


def test_masks_to_boxes_hand_and_random():
    m = lamina.zeros(2, 4, 5)
    m[0, 1:3, 2:5] = 1
    m[1, 3, 0] = 7  # one pixel: x1 == x2, y1 == y2
    out = V.masks_to_boxes(m)
    assert out.dtype == lamina.float32 and out.tolist() == [[2.0, 1.0, 4.0, 2.0], [0.0, 3.0, 0.0, 3.0]]
    rng = np.random.default_rng(0)
    masks = rng.random((20, 7, 9)) < 0.05
    masks[:, 3, 4] = True
    expected = []
    for mask in masks:  # the plain loop: the extreme indices of the nonzero pixels
        ys, xs = np.nonzero(mask)
        expected.append([xs.min(), ys.min(), xs.max(), ys.max()])
    assert V.masks_to_boxes(lamina.tensor(masks)).tolist() == expected
    assert V.masks_to_boxes(lamina.zeros(0, 3, 3)).shape == (0, 4)


# ---- errors name the op ---------------------------------------------------------------------


def test_errors_name_the_op():
    good = lamina.tensor([A])
    with pytest.raises(ValueError, match=r"box_iou: boxes1 should be a Tensor\[N, 4\].*\(3, 5\)"):
        V.box_iou(lamina.zeros(3, 5), good)
    with pytest.raises(ValueError, match=r"generalized_box_iou: boxes2 should be a Tensor\[N, 4\].*\(4,\)"):
        V.generalized_box_iou(good, lamina.zeros(4))
    with pytest.raises(TypeError, match="distance_box_iou: expected boxes1 to be a lamina Tensor"):
        V.distance_box_iou(np.zeros((1, 4)), good)
    with pytest.raises(TypeError, match="complete_box_iou: boxes1 must hold real numbers, got dtype bool"):
        V.complete_box_iou(lamina.zeros(1, 4).bool(), good)
    with pytest.raises(TypeError, match="box_iou: boxes1 has dtype float32 but boxes2 has float64"):
        V.box_iou(lamina.zeros(1, 4), lamina.zeros(1, 4, dtype=lamina.float64))
    with pytest.raises(ValueError, match="box_area: boxes should be a Tensor"):
        V.box_area(lamina.zeros(2, 4, 1))
    with pytest.raises(ValueError, match="box_convert: unsupported conversion from in_fmt 'xyxy' to out_fmt 'xywhr'"):
        V.box_convert(good, "xyxy", "xywhr")
    with pytest.raises(ValueError, match=r"box_convert: boxes should be a Tensor\[\.\.\., 4\]"):
        V.box_convert(lamina.zeros(2, 5), "xyxy", "xywh")
    with pytest.raises(ValueError, match=r"clip_boxes_to_image: size should be \(height, width\)"):
        V.clip_boxes_to_image(good, 5)
    with pytest.raises(ValueError, match="masks_to_boxes: masks should be a Tensor\\[N, H, W\\]"):
        V.masks_to_boxes(lamina.ones(3, 3))
    with pytest.raises(ValueError, match="masks_to_boxes: mask 1 of 2 is empty"):
        V.masks_to_boxes(lamina.tensor([[[1]], [[0]]]))
