"""lamina.transforms.detection: boxes, masks and semantic maps move with the image."""

import numpy as np
import pytest

import lamina
from lamina.datasets import ShapesDetection
from lamina.transforms import detection as DT
from lamina.vision.ops import masks_to_boxes


def _target(masks=None, boxes=None, labels=None):
    t = {}
    if masks is not None:
        m = np.asarray(masks, dtype=np.uint8)
        t["masks"] = lamina.tensor(m)
        t["boxes"] = masks_to_boxes(t["masks"])
        t["area"] = lamina.tensor(m.sum(axis=(1, 2)).astype(np.float32))
    else:
        t["boxes"] = lamina.tensor(np.asarray(boxes, dtype=np.float32).reshape(-1, 4))
        t["area"] = lamina.tensor(np.zeros(len(t["boxes"]), dtype=np.float32))
    n = t["boxes"].shape[0]
    t["labels"] = lamina.tensor(np.asarray(labels if labels is not None else np.arange(1, n + 1), dtype=np.int64))
    t["iscrowd"] = lamina.tensor(np.zeros(n, dtype=np.int64))
    t["image_id"] = 5
    return t


def _consistent(img, t):
    """boxes == masks_to_boxes(masks), area == pixel count, one length for every per-instance key."""
    m = t["masks"].numpy()
    n = m.shape[0]
    assert m.shape[1:] == tuple(img.shape[1:])
    assert t["boxes"].shape == (n, 4) and t["labels"].shape == (n,) and t["iscrowd"].shape == (n,)
    if n:
        assert m.reshape(n, m.shape[1] * m.shape[2]).any(axis=1).all()  # no empty mask is kept
        np.testing.assert_array_equal(t["boxes"].numpy(), masks_to_boxes(t["masks"]).numpy())
    np.testing.assert_array_equal(t["area"].numpy(), m.sum(axis=(1, 2)))


def _masks_6x8():
    m = np.zeros((2, 6, 8), dtype=np.uint8)
    m[0, 1:3, 0:2] = 1  # top-left
    m[1, 2:6, 5:8] = 1  # right
    return m


def test_flip_with_masks_and_without():
    img = lamina.tensor(np.arange(3 * 6 * 8, dtype=np.float32).reshape(3, 6, 8))
    m = _masks_6x8()
    out_img, t = DT.RandomHorizontalFlip(1.0)(img, _target(m))
    np.testing.assert_array_equal(out_img.numpy(), img.numpy()[:, :, ::-1])
    np.testing.assert_array_equal(t["masks"].numpy(), m[:, :, ::-1])
    # by hand: columns 0..1 become 6..7, columns 5..7 become 0..2
    assert t["boxes"].tolist() == [[6, 1, 7, 2], [0, 2, 2, 5]]
    _consistent(out_img, t)
    assert t["image_id"] == 5
    # without masks: torchvision's continuous x -> W - x
    _, t2 = DT.RandomHorizontalFlip(1.0)(img, _target(boxes=[[1.0, 0.0, 3.0, 2.0], [0, 1, 8, 6]]))
    assert t2["boxes"].tolist() == [[5.0, 0.0, 7.0, 2.0], [0.0, 1.0, 8.0, 6.0]]
    # p = 0: unchanged
    same_img, same = DT.RandomHorizontalFlip(0.0)(img, _target(m))
    assert same_img is img and same["boxes"].tolist() == [[0, 1, 1, 2], [5, 2, 7, 5]]


def test_flip_is_seeded():
    # the flip happens exactly when the generator's draw is below p
    flip, twin = DT.RandomHorizontalFlip(0.5, generator=np.random.default_rng(3)), np.random.default_rng(3)
    img = lamina.tensor(np.array([[[1.0, 2.0]]], dtype=np.float32))
    flips = [flip(img, None)[0].tolist() == [[[2.0, 1.0]]] for _ in range(20)]
    assert flips == [bool(twin.random() < 0.5) for _ in range(20)] and 3 < sum(flips) < 17


def test_resize_masks_nearest_and_boxes():
    img = lamina.rand(3, 6, 8)
    m = _masks_6x8()
    out_img, t = DT.Resize((12, 4))(img, _target(m))
    assert out_img.shape == (3, 12, 4)
    ry, rx = np.floor(np.arange(12) * 6 / 12).astype(int), np.floor(np.arange(4) * 8 / 4).astype(int)
    np.testing.assert_array_equal(t["masks"].numpy(), m[:, ry][:, :, rx])
    # by hand: rows 1..2 -> 2..5, cols 0..1 -> col 0; rows 2..5 -> 4..11, cols 5..7 -> 3
    assert t["boxes"].tolist() == [[0, 2, 0, 5], [3, 4, 3, 11]]
    _consistent(out_img, t)
    # without masks: scaled by (4/8, 12/6)
    _, t2 = DT.Resize((12, 4))(img, _target(boxes=[[2.0, 1.0, 6.0, 3.0]]))
    assert t2["boxes"].tolist() == [[1.0, 2.0, 3.0, 6.0]]
    # an int: the smaller edge
    assert DT.Resize(3)(img, None)[0].shape == (3, 3, 4)


def test_semantic_maps_move_with_the_image():
    sem = lamina.tensor(np.arange(24, dtype=np.int64).reshape(4, 6))
    img = lamina.rand(3, 4, 6)
    _, s = DT.RandomHorizontalFlip(1.0)(img, sem)
    np.testing.assert_array_equal(s.numpy(), sem.numpy()[:, ::-1])
    out, s = DT.Resize((2, 3))(img, sem)
    assert s.dtype == lamina.int64 and s.tolist() == [[0, 2, 4], [12, 14, 16]]  # nearest: no new values
    out, s = DT.RandomCrop((4, 6), padding=1, generator=np.random.default_rng(0))(img, sem)
    full = np.full((6, 8), 255)
    full[1:5, 1:7] = sem.numpy()
    padded_img = np.zeros((3, 6, 8), dtype=np.float32)
    padded_img[:, 1:5, 1:7] = img.numpy()
    # find the window: the crop equals one 4x6 window of the padded map and the same of the image
    hits = [(i, j) for i in range(3) for j in range(3) if np.array_equal(full[i:i + 4, j:j + 6], s.numpy())]
    assert len(hits) == 1
    i, j = hits[0]
    np.testing.assert_array_equal(out.numpy(), padded_img[:, i:i + 4, j:j + 6])


def test_crop_clips_boxes_and_drops_the_outside():
    img = lamina.rand(3, 6, 8)
    m = _masks_6x8()
    # the window rows 0..3, cols 4..7 holds part of mask 1 only
    out_img, t = DT._crop_pair(img, _target(m), 0, 4, 4, 4, 0, "test")
    np.testing.assert_array_equal(out_img.numpy(), img.numpy()[:, 0:4, 4:8])
    assert t["labels"].tolist() == [2] and t["boxes"].tolist() == [[1, 2, 3, 3]]
    _consistent(out_img, t)
    # boxes without masks: clipped, empty ones dropped with their labels
    t = _target(boxes=[[0, 1, 2, 3], [5, 2, 8, 6], [3.5, 0, 6, 2]], labels=[7, 8, 9])
    _, t2 = DT._crop_pair(img, t, 0, 4, 4, 4, 0, "test")
    assert t2["labels"].tolist() == [8, 9] and t2["boxes"].tolist() == [[1, 2, 4, 4], [0, 0, 2, 2]]
    assert t2["area"].tolist() == [6.0, 4.0] and t2["iscrowd"].tolist() == [0, 0]


def test_random_crop_padding_and_draws():
    img = lamina.ones(3, 6, 8)
    m = _masks_6x8()
    crop = DT.RandomCrop((8, 10), padding=1, fill=0.5, generator=np.random.default_rng(1))
    out_img, t = crop(img, _target(m))  # the padded image is 8 x 10: the window is all of it
    assert out_img.shape == (3, 8, 10) and float(out_img[0, 0, 0]) == 0.5 and float(out_img[0, 1, 1]) == 1.0
    np.testing.assert_array_equal(t["masks"].numpy()[:, 1:7, 1:9], m)
    assert t["boxes"].tolist() == [[1, 2, 2, 3], [6, 3, 8, 6]]
    _consistent(out_img, t)
    a = DT.RandomCrop(4, generator=np.random.default_rng(7))(img, _target(m))
    b = DT.RandomCrop(4, generator=np.random.default_rng(7))(img, _target(m))
    np.testing.assert_array_equal(a[1]["masks"].numpy(), b[1]["masks"].numpy())
    with pytest.raises(ValueError, match="larger than the"):
        DT.RandomCrop(9)(img, None)
    assert DT.RandomCrop(9, pad_if_needed=True)(img, None)[0].shape == (3, 9, 9)


def test_random_iou_crop():
    rng = np.random.default_rng(0)
    ds = ShapesDetection(num_images=20, size=64, max_objects=5, seed=4)
    crop = DT.RandomIoUCrop(generator=rng)
    changed = 0
    for i in range(len(ds)):
        img, t = ds[i]
        out, t2 = crop(img, t)
        _consistent(out, t2)
        changed += out.shape != img.shape
        assert t2["boxes"].shape[0] >= 1  # the chosen window holds some box's centre
    assert changed >= 5
    # boxes only: clipped into the window, centres outside dropped
    t = _target(boxes=[[0, 0, 10, 10], [50, 50, 60, 60]])
    for seed in range(10):
        out, t2 = DT.RandomIoUCrop(sampler_options=[0.0], generator=np.random.default_rng(seed))(lamina.rand(3, 64, 64), t)
        b = t2["boxes"].numpy()
        h, w = out.shape[1:]
        assert ((b[:, 0::2] >= 0) & (b[:, 0::2] <= w) & (b[:, 1::2] >= 0) & (b[:, 1::2] <= h)).all()
        assert 1 <= len(b) <= 2 and t2["labels"].shape == (len(b),)
    empty = _target(boxes=np.zeros((0, 4)))
    out, t3 = DT.RandomIoUCrop()(lamina.rand(3, 8, 8), empty)
    assert out.shape == (3, 8, 8) and t3 is empty


def test_scale_jitter_size():
    img = lamina.rand(3, 32, 48)
    # r = min(64 / 48, 64 / 32) * 0.5 = 2 / 3 -> (int(32 * 2/3), int(48 * 2/3)) = (21, 32)
    out, t = DT.ScaleJitter((64, 64), scale_range=(0.5, 0.5))(img, None)
    assert out.shape == (3, 21, 32)
    m = np.zeros((1, 32, 48), dtype=np.uint8)
    m[0, 3:9, 10:30] = 1
    out, t = DT.ScaleJitter((64, 64), scale_range=(0.5, 2.0), generator=np.random.default_rng(2))(img, _target(m))
    _consistent(out, t)
    with pytest.raises(ValueError, match="scale_range"):
        DT.ScaleJitter((64, 64), scale_range=(2.0, 1.0))


def test_color_jitter_image_only():
    img = lamina.rand(3, 6, 8)
    t = _target(_masks_6x8())
    out, t2 = DT.ColorJitter(brightness=0.5, generator=np.random.default_rng(0))(img, t)
    assert t2 is t and out.shape == img.shape and not np.allclose(out.numpy(), img.numpy())


def test_pipeline_on_shapes_keeps_targets_consistent():
    lamina.manual_seed(0)
    aug = DT.Compose([DT.ScaleJitter((96, 96), (0.5, 1.5)), DT.RandomHorizontalFlip(), DT.RandomCrop(64, pad_if_needed=True),
                      DT.ColorJitter(0.2, 0.2, 0.2)])
    ds = ShapesDetection(num_images=15, size=80, max_objects=5, seed=2, transforms=aug, empty_prob=0.2)
    for i in range(len(ds)):
        img, t = ds[i]
        assert img.shape == (3, 64, 64)
        _consistent(img, t)
    # semantic target through the same pipeline
    sem = ShapesDetection(num_images=3, size=80, target="semantic", transforms=aug)
    _, s = sem[0]
    assert s.shape == (64, 64) and s.dtype == lamina.int64 and set(np.unique(s.numpy())) <= {0, 1, 2, 3, 4, 255}


def test_bad_targets():
    with pytest.raises(ValueError, match="needs 'boxes'"):
        DT.RandomHorizontalFlip(1.0)(lamina.rand(3, 4, 4), {"labels": lamina.tensor([1])})
    with pytest.raises(TypeError, match=r"semantic target must be an array or Tensor \(H, W\)"):
        DT.Resize(2)(lamina.rand(3, 4, 4), lamina.zeros(1, 4, 4))
    with pytest.raises(TypeError, match="RandomIoUCrop: needs a detection target"):
        DT.RandomIoUCrop()(lamina.rand(3, 4, 4), None)
