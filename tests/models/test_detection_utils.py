"""Detection building blocks (``lamina.models.detection``): anchors and default boxes against
values worked out by hand, box coding, matching and sampling with torchvision's semantics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import lamina
from lamina.models.detection import (
    AnchorGenerator,
    BalancedPositiveNegativeSampler,
    BoxCoder,
    DefaultBoxGenerator,
    ImageList,
    Matcher,
    SSDMatcher,
)


def _images(h: int, w: int, n: int = 1) -> ImageList:
    return ImageList(lamina.zeros(n, 3, h, w), [(h, w)] * n)


# --- AnchorGenerator ---------------------------------------------------------------------------


def test_base_anchors_by_hand() -> None:
    """Size 32, ratio h/w = 2: h = 32·√2 = 45.25, w = 32/√2 = 22.63; halves 22.63, 11.31, rounded."""
    gen = AnchorGenerator(sizes=((32, 64),), aspect_ratios=((2.0, 1.0),))
    assert gen.cell_anchors[0].tolist() == [[-11, -23, 11, 23], [-23, -45, 23, 45],  # ratio 2: sizes 32, 64
                                            [-16, -16, 16, 16], [-32, -32, 32, 32]]  # ratio 1
    assert gen.num_anchors_per_location() == [4]


def test_anchor_rounding_is_half_to_even_as_torch() -> None:
    # size 3, ratio 1: ±1.5 rounds to ±2 (half to even); size 5: ±2.5 → ±2
    gen = AnchorGenerator(sizes=((3, 5),), aspect_ratios=((1.0,),))
    assert gen.cell_anchors[0].tolist() == [[-2, -2, 2, 2], [-2, -2, 2, 2]]
    assert torch.tensor([1.5, 2.5]).round().tolist() == [2.0, 2.0]


def test_grid_anchors_two_maps_by_hand() -> None:
    """An image of 64×96 with maps of 2×3 (stride 32) and 1×1 (strides 64, 96): anchors centred on
    the cells' top-left corners, location by location, row by row."""
    gen = AnchorGenerator(sizes=((16,), (32,)), aspect_ratios=((1.0,), (1.0,)))
    out = gen(_images(64, 96, 2), [lamina.zeros(2, 4, 2, 3), lamina.zeros(2, 4, 1, 1)])
    assert len(out) == 2 and out[0].tolist() == out[1].tolist()
    expected = [[x - 8, y - 8, x + 8, y + 8] for y in (0, 32) for x in (0, 32, 64)] + [[-16, -16, 16, 16]]
    assert out[0].tolist() == expected
    assert out[0].dtype == lamina.float32


def test_anchor_count_and_order_per_location() -> None:
    gen = AnchorGenerator(sizes=((8, 16),), aspect_ratios=((0.5, 1.0, 2.0),))
    a = gen(_images(32, 32), [lamina.zeros(1, 1, 4, 4)])[0].array
    assert a.shape == (4 * 4 * 6, 4)
    # the second location (x shifted by the stride 8) repeats the first's 6 anchors moved by 8 in x
    np.testing.assert_array_equal(a[6:12], a[:6] + [8, 0, 8, 0])
    h, w = a[:6, 3] - a[:6, 1], a[:6, 2] - a[:6, 0]
    assert (h[:2] < w[:2]).all() and (h[4:] > w[4:]).all()  # aspect ratio = height / width


def test_anchor_generator_flat_arguments_and_errors() -> None:
    gen = AnchorGenerator(sizes=(32, 64), aspect_ratios=(1.0,))
    assert gen.sizes == ((32.0,), (64.0,)) and gen.aspect_ratios == ((1.0,), (1.0,))
    with pytest.raises(ValueError, match="AnchorGenerator: 2 tuples of sizes but 1 of aspect ratios"):
        AnchorGenerator(sizes=((32,), (64,)), aspect_ratios=((1.0,),))
    with pytest.raises(ValueError, match="AnchorGenerator: 1 feature maps but anchors for 2"):
        gen(_images(32, 32), [lamina.zeros(1, 1, 4, 4)])
    with pytest.raises(ValueError, match="must be positive"):
        AnchorGenerator(sizes=((0,),), aspect_ratios=((1.0,),))
    with pytest.raises(TypeError, match="expected an ImageList"):
        gen(lamina.zeros(1, 3, 8, 8), [lamina.zeros(1, 1, 2, 2)])


# --- DefaultBoxGenerator -----------------------------------------------------------------------


def test_default_boxes_by_hand() -> None:
    """Two maps (2×2 and 1×1) of a 100×100 image, scales 0.2, 0.6, 1.0 (from min/max 0.2/0.6):
    map 0's boxes: squares 0.2 and √(0.2·0.6), then 0.2·(√2, 1/√2) and its transpose."""
    gen = DefaultBoxGenerator([[2], []], min_ratio=0.2, max_ratio=0.6)
    assert gen.scales == pytest.approx([0.2, 0.6, 1.0])
    assert gen.num_anchors_per_location() == [4, 2]
    boxes = gen(_images(100, 100), [lamina.zeros(1, 1, 2, 2), lamina.zeros(1, 1, 1, 1)])[0].array
    assert boxes.shape == (2 * 2 * 4 + 2, 4)
    s1 = math.sqrt(0.2 * 0.6) * 100 / 2
    r = math.sqrt(2)
    cx, cy = 25, 25  # the first cell's centre (0.5/2 of the image)
    expected_first = [[cx - 10, cy - 10, cx + 10, cy + 10], [cx - s1, cy - s1, cx + s1, cy + s1],
                      [cx - 10 * r, cy - 10 / r, cx + 10 * r, cy + 10 / r],
                      [cx - 10 / r, cy - 10 * r, cx + 10 / r, cy + 10 * r]]
    np.testing.assert_allclose(boxes[:4], expected_first, rtol=1e-5)
    np.testing.assert_allclose(boxes[4:8], np.array(expected_first) + [50, 0, 50, 0], rtol=1e-5)  # next in x
    s2 = math.sqrt(0.6 * 1.0)
    np.testing.assert_allclose(boxes[-2:], [[20, 20, 80, 80], [50 - 50 * s2, 50 - 50 * s2, 50 + 50 * s2,
                                                               50 + 50 * s2]], rtol=1e-5)


def test_default_boxes_steps_and_clip() -> None:
    # steps: centres at (j + ½)·step pixels; clip: a relative size over 1 is clamped to 1
    gen = DefaultBoxGenerator([[]], scales=[1.5, 1.5], steps=[10])
    boxes = gen(_images(40, 20), [lamina.zeros(1, 1, 4, 2)])[0].array
    np.testing.assert_allclose(boxes[0], [5 - 10, 5 - 20, 5 + 10, 5 + 20])  # w, h clipped to the image's
    np.testing.assert_allclose(boxes[2], [15 - 10, 5 - 20, 15 + 10, 5 + 20])
    unclipped = DefaultBoxGenerator([[]], scales=[1.5, 1.5], steps=[10], clip=False)
    np.testing.assert_allclose(unclipped(_images(40, 20), [lamina.zeros(1, 1, 4, 2)])[0].array[0],
                               [5 - 15, 5 - 30, 5 + 15, 5 + 30])
    with pytest.raises(ValueError, match="aspect_ratios and steps should have the same length"):
        DefaultBoxGenerator([[2], [3]], steps=[8])


# --- BoxCoder ----------------------------------------------------------------------------------


def test_encode_by_hand_with_weights() -> None:
    """Proposal (0, 0, 10, 20): centre (5, 10), size 10×20; ground truth (2, 4, 12, 44): centre
    (7, 24), size 10×40. Targets (10·2/10, 10·14/20, 5·log 1, 5·log 2)."""
    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    t = coder.encode_single(lamina.tensor([[2.0, 4.0, 12.0, 44.0]]), lamina.tensor([[0.0, 0.0, 10.0, 20.0]]))
    np.testing.assert_allclose(t.array, [[2.0, 7.0, 0.0, 5 * math.log(2)]], rtol=1e-6)


def test_encode_decode_round_trip_per_image() -> None:
    rng = np.random.default_rng(0)

    def boxes(n: int) -> lamina.Tensor:
        xy = rng.uniform(0, 50, (n, 2))
        return lamina.tensor(np.concatenate([xy, xy + rng.uniform(1, 30, (n, 2))], 1))

    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    gts, props = [boxes(5), boxes(3)], [boxes(5), boxes(3)]
    codes = coder.encode(gts, props)
    assert [c.shape for c in codes] == [(5, 4), (3, 4)]
    decoded = coder.decode(lamina.cat(list(codes), 0), props)
    assert decoded.shape == (8, 1, 4)
    np.testing.assert_allclose(decoded.array[:, 0], np.concatenate([g.array for g in gts]), rtol=1e-9, atol=1e-9)


def test_decode_clamps_before_exp_and_is_differentiable() -> None:
    coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
    ref = lamina.tensor([[0.0, 0.0, 16.0, 16.0]], dtype=lamina.float64)
    out = coder.decode_single(lamina.tensor([[0.0, 0.0, 100.0, 100.0]], dtype=lamina.float64), ref)
    np.testing.assert_allclose(out.array, [[8 - 500, 8 - 500, 8 + 500, 8 + 500]])  # exp(log(1000/16))·16 = 1000
    # gradients of decode against torch's autograd of the same formula (two boxes, two classes)
    rng = np.random.default_rng(1)
    codes = rng.normal(size=(2, 8))
    anchors = np.array([[1.0, 2.0, 11.0, 8.0], [0.0, 0.0, 4.0, 9.0]])
    c = lamina.tensor(codes, requires_grad=True)
    (BoxCoder((2.0, 3.0, 4.0, 5.0)).decode_single(c, lamina.tensor(anchors)) ** 2).sum().backward()
    ct, at = torch.tensor(codes, requires_grad=True), torch.tensor(anchors)
    w, h = at[:, 2] - at[:, 0], at[:, 3] - at[:, 1]
    cx, cy = at[:, 0] + 0.5 * w, at[:, 1] + 0.5 * h
    px = ct[:, 0::4] / 2 * w[:, None] + cx[:, None]
    py = ct[:, 1::4] / 3 * h[:, None] + cy[:, None]
    pw = torch.exp(torch.clamp(ct[:, 2::4] / 4, max=math.log(1000 / 16))) * w[:, None]
    ph = torch.exp(torch.clamp(ct[:, 3::4] / 5, max=math.log(1000 / 16))) * h[:, None]
    tb = torch.stack((px - 0.5 * pw, py - 0.5 * ph, px + 0.5 * pw, py + 0.5 * ph), dim=2).flatten(1)
    (tb ** 2).sum().backward()
    np.testing.assert_allclose(c.grad.array, ct.grad.numpy(), rtol=1e-10)
    assert lamina.autograd.gradcheck(lambda x: coder.decode_single(x, ref.expand(2, 4)),
                                     (lamina.tensor(rng.normal(size=(2, 4)), requires_grad=True),))


def test_box_coder_errors_name_the_op() -> None:
    coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
    ok = lamina.tensor([[0.0, 0.0, 4.0, 4.0]])
    with pytest.raises(ValueError, match=r"BoxCoder.encode: proposals must have positive width and height .* box 0"):
        coder.encode_single(ok, lamina.tensor([[0.0, 0.0, 0.0, 4.0]]))
    with pytest.raises(ValueError, match=r"BoxCoder.encode: reference boxes must have shape \[N, 4\]"):
        coder.encode_single(lamina.zeros(3), ok)
    with pytest.raises(ValueError, match="non-finite"):
        coder.encode_single(lamina.tensor([[0.0, 0.0, float("nan"), 4.0]]), ok)
    with pytest.raises(ValueError, match=r"BoxCoder.decode: codes must have shape \[1, 4·k\]"):
        coder.decode_single(lamina.zeros(1, 5), ok)
    with pytest.raises(ValueError, match="four numbers"):
        BoxCoder((1.0, 1.0))


def test_zero_boxes_encode_and_decode() -> None:
    coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
    empty = lamina.zeros(0, 4)
    assert coder.encode([empty], [empty])[0].shape == (0, 4)
    assert coder.decode(lamina.zeros(0, 4), [empty]).shape == (0, 4)


# --- Matcher -----------------------------------------------------------------------------------


def test_matcher_thresholds_are_inclusive_as_torchvision() -> None:
    """Quality ≥ high matches, low ≤ q < high is between, q < low is below."""
    q = lamina.tensor([[0.7, 0.3, 0.2999, 0.6999]])
    assert Matcher(0.7, 0.3)(q).tolist() == [0, -2, -1, -2]
    assert Matcher(0.5, 0.5)(q).tolist() == [0, -1, -1, 0]


def test_matcher_picks_the_best_ground_truth_and_first_of_ties() -> None:
    q = lamina.tensor([[0.8, 0.9, 0.1], [0.95, 0.9, 0.2]])
    assert Matcher(0.5, 0.4)(q).tolist() == [1, 0, -1]


def test_low_quality_matches_include_ties() -> None:
    """gt 0's best quality 0.4 is reached by predictions 0 and 2: both keep gt 0 although 0.4 is
    below the thresholds; prediction 1 (gt 1's best, 0.2) is kept too."""
    q = lamina.tensor([[0.4, 0.1, 0.4, 0.0], [0.0, 0.2, 0.1, 0.1]])
    assert Matcher(0.7, 0.3)(q).tolist() == [-2, -1, -2, -1]
    assert Matcher(0.7, 0.3, allow_low_quality_matches=True)(q).tolist() == [0, 1, 0, -1]


def test_ssd_matcher_gives_each_ground_truth_its_best_prediction() -> None:
    q = lamina.tensor([[0.3, 0.2, 0.1], [0.1, 0.6, 0.4]])
    assert SSDMatcher(0.5)(q).tolist() == [0, 1, -1]


def test_matcher_errors() -> None:
    with pytest.raises(ValueError, match="no ground-truth boxes"):
        Matcher(0.7, 0.3)(lamina.zeros(0, 5))
    with pytest.raises(ValueError, match="no proposal boxes"):
        Matcher(0.7, 0.3)(lamina.zeros(2, 0))
    with pytest.raises(ValueError, match="NaN"):
        Matcher(0.7, 0.3)(lamina.tensor([[float("nan"), 0.5]]))
    with pytest.raises(ValueError, match="low_threshold"):
        Matcher(0.3, 0.7)


# --- BalancedPositiveNegativeSampler -----------------------------------------------------------


def test_sampler_counts_and_subsets() -> None:
    lamina.manual_seed(3)
    rng = np.random.default_rng(3)
    matched = [lamina.tensor(rng.integers(-1, 4, 500)), lamina.tensor(np.array([0, 0, 1, -1, 0]))]
    pos, neg = BalancedPositiveNegativeSampler(64, 0.25)(matched)
    m0 = matched[0].array
    assert int(pos[0].sum()) == 16 and int(neg[0].sum()) == 48
    assert (m0[pos[0].array == 1] >= 1).all() and (m0[neg[0].array == 1] == 0).all()
    assert not (pos[0].array & neg[0].array).any() and pos[0].dtype == np.uint8
    # few positives: the rest of the batch is negatives, as many as exist
    assert int(pos[1].sum()) == 1 and int(neg[1].sum()) == 3
    # reproducible from lamina's seed
    lamina.manual_seed(3)
    pos2, _ = BalancedPositiveNegativeSampler(64, 0.25)(matched)
    assert (pos2[0].array == pos[0].array).all()
