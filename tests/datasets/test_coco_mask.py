"""lamina's NumPy COCO mask code against pycocotools (the oracle, in the test extra)."""

import numpy as np
import pycocotools.mask as cocomask
import pytest

from lamina.datasets import coco_mask as C

# pycocotools 2.0 calls np.array(copy=False) on its own objects under NumPy 2
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")


def test_polygons_equal_pycocotools_on_random_polygons():
    rng = np.random.default_rng(0)
    for trial in range(400):
        h, w = (int(v) for v in rng.integers(1, 48, size=2))
        k = int(rng.integers(3, 10))
        pts = rng.uniform(-6, max(h, w) + 6, size=2 * k)  # some vertices outside the image
        if trial % 3 == 0:
            pts = np.round(pts * 2) / 2  # vertices on pixel centres and edges (ties in rounding)
        if trial % 7 == 0:
            pts[2:4] = pts[0:2]  # a repeated vertex: a zero-length edge
        segm = [pts.tolist()]
        if trial % 4 == 0:  # two parts, merged as one mask
            segm.append(rng.uniform(0, max(h, w), size=2 * int(rng.integers(3, 6))).tolist())
        ref = cocomask.decode(cocomask.frPyObjects(segm, h, w))
        ours = C.decode(C.fr_py_objects(segm, h, w))
        np.testing.assert_array_equal(ours, ref, err_msg=f"{h}x{w} {segm}")


def test_boxes_equal_pycocotools():
    rng = np.random.default_rng(1)
    for _ in range(100):
        h, w = (int(v) for v in rng.integers(1, 40, size=2))
        b = [rng.uniform(-3, w), rng.uniform(-3, h), rng.uniform(0, w), rng.uniform(0, h)]
        ref = cocomask.decode(cocomask.frPyObjects(np.array([b]), h, w))[:, :, 0]
        np.testing.assert_array_equal(C.rle_decode(C.bbox_to_rle(b, h, w), h, w), ref)


def test_rle_strings_and_counts_equal_pycocotools():
    rng = np.random.default_rng(2)
    for trial in range(300):
        h, w = (int(v) for v in rng.integers(1, 60, size=2))
        m = (rng.uniform(size=(h, w)) < rng.uniform()).astype(np.uint8)
        if trial % 5 == 0:  # long runs: multi-character counts and negative differences
            m[:, : w // 2] = 1
        enc = cocomask.encode(np.asfortranarray(m))
        s = enc["counts"].decode()
        assert C.rle_to_string(C.rle_encode(m)) == s
        # compressed counts, as str and as bytes
        np.testing.assert_array_equal(C.decode({"size": [h, w], "counts": s}), m)
        np.testing.assert_array_equal(C.decode({"size": [h, w], "counts": s.encode()}), m)
        # uncompressed counts through frPyObjects, both libraries
        unc = {"size": [h, w], "counts": C.rle_encode(m)}
        ref = cocomask.decode(cocomask.frPyObjects(unc, h, w))
        np.testing.assert_array_equal(C.decode(C.fr_py_objects(unc, h, w)), ref)
        np.testing.assert_array_equal(ref, m)


def test_hand_checked_rle():
    # column-major: a 3x2 mask [[0, 1], [1, 1], [0, 0]] reads 0,1,0, 1,1,0 -> runs 1,1,1,2,1
    m = np.array([[0, 1], [1, 1], [0, 0]], dtype=np.uint8)
    assert C.rle_encode(m) == [1, 1, 1, 2, 1]
    np.testing.assert_array_equal(C.rle_decode([1, 1, 1, 2, 1], 3, 2), m)
    assert C.rle_encode(np.ones((2, 2))) == [0, 4]  # starts with a (zero-length) run of 0s


@pytest.mark.parametrize("segm, match", [
    ({"size": [2, 2], "counts": [1, 1]}, "sum to 2"),
    ({"size": [2, 2], "counts": "0"}, "sum to 0"),
    ({"size": [2, 2], "counts": "1\x7f"}, "outside the characters"),
    ({"size": [2, 2], "counts": "0h"}, "end inside a number"),
    ({"size": [2, 2], "counts": [1, -1, 4]}, "non-negative"),
    ({"counts": [4]}, "'counts' and 'size'"),
    ({"size": [2], "counts": [4]}, "size"),
    ([[0, 0, 1, 1]], "4 coordinates"),
    ([[0, 0, 1, 1, 2]], "polygon 0"),
    ([[0, 0, 1, "a", 2, 2]], "list of numbers"),
    ([[0, 0, 1, float("nan"), 2, 2]], "non-finite"),
    ("abc", "list of polygons or an RLE"),
])
def test_malformed_segmentations(segm, match):
    with pytest.raises(C.RLEError, match=match):
        C.decode(C.fr_py_objects(segm, 2, 2))
