"""ShapesDetection: the seeded synthetic detection / segmentation set, and detection_collate."""

import numpy as np
import pytest

import lamina
from lamina.datasets import ShapesDetection
from lamina.utils.data import DataLoader, Subset, detection_collate
from lamina.vision.ops import masks_to_boxes


def _np_target(t):
    return {k: (v.numpy() if hasattr(v, "numpy") else v) for k, v in t.items()}


def test_target_format_and_classes():
    ds = ShapesDetection(num_images=6, size=96, max_objects=5, seed=3)
    assert ds.classes == ["background", "circle", "square", "triangle", "cross"]
    assert len(ds) == 6
    for i in range(len(ds)):
        img, t = ds[i]
        assert img.shape == (3, 96, 96) and img.dtype == lamina.float32
        assert 0.0 <= float(img.min()) and float(img.max()) <= 1.0
        n = t["labels"].shape[0]
        assert 1 <= n <= 5
        assert t["boxes"].shape == (n, 4) and t["boxes"].dtype == lamina.float32
        assert t["labels"].dtype == lamina.int64 and t["masks"].dtype == lamina.uint8
        assert t["masks"].shape == (n, 96, 96) and t["area"].dtype == lamina.float32
        assert t["iscrowd"].dtype == lamina.int64 and t["iscrowd"].tolist() == [0] * n
        assert t["image_id"] == i
        assert set(t["labels"].tolist()) <= {1, 2, 3, 4}


def test_boxes_are_the_visible_masks_bounds_and_masks_disjoint():
    ds = ShapesDetection(num_images=40, size=80, max_objects=6, seed=1)
    for i in range(len(ds)):
        _, t = ds[i]
        masks = t["masks"].numpy()
        np.testing.assert_array_equal(t["boxes"].numpy(), masks_to_boxes(t["masks"]).numpy())
        for m, b in zip(masks, t["boxes"].numpy()):  # by hand, too
            ys, xs = np.nonzero(m)
            assert b.tolist() == [xs.min(), ys.min(), xs.max(), ys.max()]
        np.testing.assert_array_equal(t["area"].numpy(), masks.sum(axis=(1, 2)))
        assert masks.sum(axis=0).max() <= 1  # each pixel belongs to at most one instance
        assert (t["area"].numpy() >= 6).all()  # almost hidden shapes are dropped
        # shapes never touch the image border
        assert not masks[:, 0].any() and not masks[:, -1].any() and not masks[:, :, 0].any()


def test_semantic_map_matches_instances():
    det = ShapesDetection(num_images=10, size=64, seed=5)
    sem = ShapesDetection(num_images=10, size=64, seed=5, target="semantic")
    for i in range(10):
        img_d, t = det[i]
        img_s, s = sem[i]
        np.testing.assert_array_equal(img_d.numpy(), img_s.numpy())
        assert s.shape == (64, 64) and s.dtype == lamina.int64
        expected = np.zeros((64, 64), dtype=np.int64)
        for m, label in zip(t["masks"].numpy(), t["labels"].tolist()):
            expected[m == 1] = label
        np.testing.assert_array_equal(s.numpy(), expected)


def test_deterministic_per_index_and_split_seed():
    a = ShapesDetection(num_images=12, seed=7, size=64)
    b = ShapesDetection(num_images=12, seed=7, size=64)
    order = [11, 3, 0, 7]
    for i in order:  # another order, fresh instance: the same items
        (ia, ta), (ib, tb) = a[i], b[i]
        np.testing.assert_array_equal(ia.numpy(), ib.numpy())
        for k in ("boxes", "labels", "masks"):
            np.testing.assert_array_equal(ta[k].numpy(), tb[k].numpy())
    # a longer set of the same seed holds the same first images
    c = ShapesDetection(num_images=30, seed=7, size=64)
    np.testing.assert_array_equal(c[3][0].numpy(), a[3][0].numpy())
    sub = Subset(a, [5, 2])
    np.testing.assert_array_equal(sub[1][0].numpy(), a[2][0].numpy())
    # other seed / split: other images
    assert not np.array_equal(ShapesDetection(num_images=12, seed=8, size=64)[0][0].numpy(), a[0][0].numpy())
    assert not np.array_equal(ShapesDetection("test", num_images=12, seed=7, size=64)[0][0].numpy(),
                              a[0][0].numpy())
    # noise has its own stream: the layout does not change with it
    quiet = ShapesDetection(num_images=12, seed=7, size=64, noise=0.0)
    np.testing.assert_array_equal(quiet[4][1]["masks"].numpy(), a[4][1]["masks"].numpy())


def test_occlusion_happens_and_scales_vary():
    ds = ShapesDetection(num_images=60, size=96, max_objects=6, seed=0, classes=["circle", "square"])
    occluded, areas = 0, []
    for i in range(len(ds)):
        _, t = ds[i]
        masks = t["masks"].numpy().astype(bool)
        areas += t["area"].tolist()
        # circles and squares are convex: each row of a whole one is one run of pixels. A later
        # instance's pixel inside that run on the row means it was painted over the earlier one.
        for j, m in enumerate(masks):
            later = masks[j + 1:].any(axis=0)
            for row in np.nonzero(m.any(axis=1))[0]:
                xs = np.nonzero(m[row])[0]
                if later[row, xs.min():xs.max() + 1].any():
                    occluded += 1
                    break
            # an earlier instance is never painted over a later one
            earlier = masks[:j].any(axis=0)
            assert not (earlier & m).any()
    assert occluded >= 5
    areas = np.array(areas)
    assert (areas < 150).sum() >= 10 and (areas > 700).sum() >= 10 and ((areas > 250) & (areas < 600)).sum() >= 10


def test_empty_images_are_valid():
    ds = ShapesDetection(num_images=5, size=48, seed=0, empty_prob=1.0)
    img, t = ds[2]
    assert t["boxes"].shape == (0, 4) and t["boxes"].dtype == lamina.float32
    assert t["labels"].shape == (0,) and t["masks"].shape == (0, 48, 48) and t["area"].shape == (0,)
    sem = ShapesDetection(num_images=5, size=48, seed=0, empty_prob=1.0, target="semantic")[2][1]
    assert int(sem.sum()) == 0
    mixed = ShapesDetection(num_images=40, size=48, seed=0, empty_prob=0.3)
    n_empty = sum(mixed[i][1]["labels"].shape[0] == 0 for i in range(40))
    assert 4 <= n_empty <= 24


def test_transforms_get_image_and_target():
    seen = []

    def tf(img, target):
        seen.append(target["image_id"])
        return img * 0.0, {**target, "extra": 1}

    ds = ShapesDetection(num_images=3, size=32, seed=0, transforms=tf)
    img, t = ds[1]
    assert seen == [1] and t["extra"] == 1 and float(img.abs().max()) == 0.0


def test_detection_collate_with_dataloader():
    ds = ShapesDetection(num_images=5, size=48, seed=2, max_objects=5)
    images, targets = next(iter(DataLoader(ds, batch_size=3, collate_fn=detection_collate)))
    assert isinstance(images, list) and isinstance(targets, list) and len(images) == len(targets) == 3
    for i in range(3):
        np.testing.assert_array_equal(images[i].numpy(), ds[i][0].numpy())
        np.testing.assert_array_equal(targets[i]["boxes"].numpy(), ds[i][1]["boxes"].numpy())
    with pytest.raises(ValueError, match="empty batch"):
        detection_collate([])
    with pytest.raises(TypeError, match="sample 1 must be a pair"):
        detection_collate([(1, 2), (1, 2, 3)])


@pytest.mark.parametrize("kwargs, match", [
    ({"split": "val"}, "split"), ({"size": 16}, "size"), ({"max_objects": 0}, "max_objects"),
    ({"num_images": 0}, "num_images"), ({"target": "boxes"}, "target"), ({"classes": ["star"]}, "classes"),
    ({"empty_prob": 1.5}, "empty_prob"), ({"noise": -1.0}, "noise"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ShapesDetection(**kwargs)


def test_index_out_of_range():
    ds = ShapesDetection(num_images=3, size=32)
    with pytest.raises(IndexError, match="out of range"):
        ds[3]
    np.testing.assert_array_equal(ds[-1][0].numpy(), ds[2][0].numpy())


def test_windowed_rendering_equals_full_rendering():
    # shapes are rendered in a window around them for speed: the result must equal the full-image render
    from lamina.datasets.shapes import _REACH, render_shape
    from lamina.datasets.shapes_detection import _SCALES

    ds = ShapesDetection(num_images=1, size=64)
    for seed in range(40):
        kind = ("circle", "square", "triangle", "cross")[seed % 4]
        m, angle = ds._shape_mask(kind, np.random.default_rng(seed))
        g = np.random.default_rng(seed)  # the same draws, in the same order
        lo, hi = _SCALES[int(g.integers(0, 3))]
        r = g.uniform(lo, hi) * 64
        e = _REACH[kind] * r
        cx, cy = g.uniform(e + 0.5, 64 - 1.5 - e, size=2)
        assert g.uniform(0.0, 2 * np.pi) == angle
        np.testing.assert_array_equal(m, render_shape(kind, 64, cx, cy, r, angle))
        assert m.sum() > 0
