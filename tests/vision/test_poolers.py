"""MultiScaleRoIAlign and FPN's level mapping (lamina.vision.ops.poolers, as torchvision.ops.poolers)."""

import numpy as np
import pytest

import lamina
from lamina.autograd import gradcheck
from lamina.vision.ops import MultiScaleRoIAlign, roi_align
from lamina.vision.ops.poolers import LevelMapper, infer_scale, setup_scales


def _box(side_w, side_h, x0=10.0, y0=20.0):
    return [float(x0), float(y0), float(x0 + side_w), float(y0 + side_h)]


def test_level_mapper_hand_computed():
    # level = floor(4 + log2(sqrt(w·h) / 224) + 1e-6), clamped to [2, 5], minus 2
    boxes = lamina.tensor([_box(224, 224),   # log2(1) = 0: level 4
                           _box(112, 112),   # half the side: level 3
                           _box(56, 56),     # level 2
                           _box(448, 448),   # level 5
                           _box(896, 896),   # level 6, clamped to 5
                           _box(28, 28),     # level 1, clamped to 2
                           _box(223, 223),   # just under 224: 3.99… floors to 3
                           _box(224, 56),    # sqrt(224·56) = 112: level 3
                           _box(0, 30)])     # area 0: log2(0) = -inf, clamped to 2
    levels = LevelMapper(2, 5)([boxes])
    assert levels.dtype == lamina.int64
    assert levels.tolist() == [2, 1, 0, 3, 3, 0, 1, 1, 0]
    # canonical_scale / canonical_level move the mapping: 112 × 112 is now level 5
    assert LevelMapper(2, 5, canonical_scale=112, canonical_level=5)([boxes[1:2]]).tolist() == [3]


def test_level_mapper_rejects_boxes_of_negative_area():
    with pytest.raises(ValueError, match=r"^LevelMapper: box 1 has x2 < x1 or y2 < y1"):
        LevelMapper(2, 5)([lamina.tensor([_box(10, 10)]), lamina.tensor([[5.0, 5.0, 1.0, 9.0]])])


def test_infer_scale_and_setup_scales():
    # the nearest power of two of map height / image height
    assert infer_scale(lamina.zeros(1, 1, 50, 60), (800, 960)) == 2 ** -4
    assert infer_scale(lamina.zeros(1, 1, 13, 13), (200, 200)) == 2 ** -4  # 0.065: log2 = -3.94
    assert infer_scale(lamina.zeros(1, 1, 25, 25), (800, 800)) == 2 ** -5
    feats = [lamina.zeros(1, 1, s, s) for s in (64, 32, 16, 8)]
    scales, mapper = setup_scales(feats, [(256, 200), (240, 256)], 224, 4)  # against the largest: 256 × 256
    assert scales == [0.25, 0.125, 0.0625, 0.03125]
    assert (mapper.k_min, mapper.k_max, mapper.s0, mapper.lvl0) == (2, 5, 224, 4)
    with pytest.raises(ValueError, match="^setup_scales: image_shapes should not be empty"):
        setup_scales(feats, [], 224, 4)


def _pyramid(rng, n=2, c=3):
    names = ["p2", "p3", "p4", "p5"]
    return {name: lamina.tensor(rng.standard_normal((n, c, s, s)).astype(np.float32))
            for name, s in zip(names, (64, 32, 16, 8))}


def test_output_equals_roi_align_on_each_box_level():
    rng = np.random.default_rng(0)
    x = _pyramid(rng)
    x["extra"] = lamina.zeros(2, 3, 4, 4)  # not in featmap_names: ignored
    boxes = [lamina.tensor([_box(30, 40), _box(130, 120), _box(250, 240)]),
             lamina.tensor([_box(60, 50, 100, 100), _box(9, 12, 200, 5), _box(460, 460, 0, 0)])]
    pool = MultiScaleRoIAlign(["p2", "p3", "p4", "p5"], 3, 2)
    y = pool(x, boxes, [(256, 256), (256, 256)])
    assert y.shape == (6, 3, 3, 3)
    assert pool.scales == [0.25, 0.125, 0.0625, 0.03125]
    levels = pool.map_levels(boxes).tolist()
    # by hand: sqrt(w·h) = 34.6, 124.9, 244.9, 54.8, 10.4, 460 → levels 1.3, 3.2, 4.1, 2.0, -0.4, 5.0
    # (4 + log2(s / 224)), floored and clamped to [2, 5], minus 2
    assert levels == [0, 1, 2, 0, 0, 3]
    flat = [(0, b) for b in boxes[0].tolist()] + [(1, b) for b in boxes[1].tolist()]
    names = ["p2", "p3", "p4", "p5"]
    for k, ((img, box), lvl) in enumerate(zip(flat, levels)):
        one = roi_align(x[names[lvl]], lamina.tensor([[img, *box]]), 3, pool.scales[lvl], 2)
        np.testing.assert_array_equal(y[k:k + 1].numpy(), one.numpy())


def test_one_level_is_plain_roi_align_and_repr():
    rng = np.random.default_rng(1)
    x = {"0": lamina.tensor(rng.standard_normal((1, 2, 16, 16)).astype(np.float32))}
    boxes = [lamina.tensor([_box(30, 40, 5, 5), _box(3, 2, 50, 60)])]
    pool = MultiScaleRoIAlign(["0"], (2, 3), -1)
    y = pool(x, boxes, [(128, 128)])
    np.testing.assert_array_equal(y.numpy(), roi_align(x["0"], boxes, (2, 3), 0.125, -1).numpy())
    assert repr(pool) == "MultiScaleRoIAlign(featmap_names=['0'], output_size=(2, 3), sampling_ratio=-1)"


def test_gradients_reach_every_level():
    rng = np.random.default_rng(2)
    names = ["p2", "p3", "p4", "p5"]
    x = [lamina.tensor(rng.standard_normal((1, 1, s, s)), requires_grad=True) for s in (16, 8, 4, 2)]  # of a 64² image
    # canonical 16 × 16 on level 4: sides 5, 10, 20, 40 go to levels 2, 3, 4, 5
    boxes = [lamina.tensor([_box(5, 5, 3, 4), _box(10, 10, 30, 2), _box(20, 20, 40, 50), _box(40, 40, 0, 0)],
                           dtype=lamina.float64)]
    pool = MultiScaleRoIAlign(names, 2, 2, canonical_scale=16, canonical_level=4)

    def fn(*feats):
        return pool(dict(zip(names, feats)), boxes, [(64, 64)])

    assert pool.map_levels is None
    fn(*x)
    assert pool.map_levels(boxes).tolist() == [0, 1, 2, 3]
    assert gradcheck(fn, tuple(x))


def test_multiscale_errors():
    rng = np.random.default_rng(3)
    x = _pyramid(rng)
    boxes = [lamina.tensor([_box(30, 40)]), lamina.tensor([_box(30, 40)])]
    with pytest.raises(ValueError, match=r"^MultiScaleRoIAlign\(featmap_names=\['q'\], output_size=\(2, 2\), sampling_ratio=2\): none of featmap_names \['q'\] is a key"):
        MultiScaleRoIAlign(["q"], 2, 2)(x, boxes, [(256, 256)])
    x["p3"] = lamina.zeros(2, 5, 32, 32)
    with pytest.raises(ValueError, match=r"^MultiScaleRoIAlign\(.*\): the maps must have one number of channels"):
        MultiScaleRoIAlign(list(x), 2, 2)(x, boxes, [(256, 256)])
    with pytest.raises(ValueError, match=r"^MultiScaleRoIAlign\(.*\): roi_align: boxes\[2\] holds 1 boxes for image 2, but the input holds 2 images"):
        MultiScaleRoIAlign(["p2"], 2, 2)(x, boxes + [lamina.tensor([_box(3, 3)])], [(256, 256)])
