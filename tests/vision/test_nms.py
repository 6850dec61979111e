"""nms and batched_nms of lamina.vision.ops against the plain greedy loop (thousands of random
boxes: many seeds and thresholds, clustered boxes, IoUs exactly at the threshold, equal scores),
against onnxruntime's NonMaxSuppression, and per category; both kernels (numba, NumPy);
hand-computed cases, empty inputs, dtypes and errors."""

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import lamina
from lamina.ops.kernels import im2col, nms_numba
from lamina.ops.kernels import nms as K
from lamina.vision import ops as V

KERNELS = ["numba", "numpy"] if nms_numba.suppress is not None else ["numpy"]


@pytest.fixture(params=[True, False], ids=["numba", "numpy"])
def use_numba(request):
    """Run a test through the public functions on the numba kernel (where installed) and on NumPy."""
    old = im2col.use_numba()
    im2col.use_numba(request.param)
    yield request.param
    im2col.use_numba(old)


def random_case(rng, n, dtype=np.float32, clustered=False, integer=False):
    """``n`` boxes and scores: spread out, or in a few tight clusters (many IoUs near any
    threshold, repeated boxes); scores drawn from a few levels half of the time (ties)."""
    if clustered:
        centers = rng.uniform(0, 50, (int(rng.integers(1, 5)), 2))
        c = centers[rng.integers(0, len(centers), n)] + rng.normal(0, 1.5, (n, 2))
        wh = rng.uniform(4, 8, (n, 2))
        xy = c - wh / 2
    else:
        xy, wh = rng.uniform(0, 60, (n, 2)), rng.uniform(1, 20, (n, 2))
    if integer:
        xy, wh = np.round(xy), np.maximum(np.round(wh), 1)
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(dtype)
    if clustered and n > 2:
        boxes[1] = boxes[0]  # an identical pair: IoU 1
    levels = int(rng.integers(1, 4)) if rng.random() < 0.5 else 0
    scores = (rng.integers(0, levels, n) if levels else rng.random(n)).astype(np.float32)
    return boxes, scores


def a_threshold(rng, boxes):
    """A threshold that is exactly the (float32 / float64) IoU of some overlapping pair half of
    the time (that pair must be kept), else a round or random value."""
    if rng.random() < 0.5 and len(boxes) > 1:
        i, j = rng.choice(len(boxes), 2, replace=False)
        iou = V.box_iou(lamina.tensor(boxes[[i]]), lamina.tensor(boxes[[j]])).item()
        if 0 < iou < 1:
            return float(boxes.dtype.type(iou))
    return float(rng.choice([0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0, rng.random()]))


# ---- hand-computed --------------------------------------------------------------------------


def test_iou_exactly_at_the_threshold_is_kept(use_numba):
    wide = [0.0, 0.0, 4.0, 1.0]
    for other, iou in [([0.0, 0.0, 2.0, 1.0], 0.5), ([0.0, 0.0, 1.0, 1.0], 0.25), ([1.0, 0.0, 4.0, 1.0], 0.75)]:
        for dtype in (lamina.float32, lamina.float64):
            b = lamina.tensor([wide, other], dtype=dtype)
            s = lamina.tensor([0.9, 0.8])
            assert V.nms(b, s, iou).tolist() == [0, 1], (other, iou)  # IoU == threshold: not greater
            assert V.nms(b, s, iou - 1e-6).tolist() == [0], (other, iou)
            assert V.nms(b, lamina.tensor([0.8, 0.9]), iou - 1e-6).tolist() == [1]


def test_greedy_not_transitive(use_numba):
    """A suppresses B; B would suppress C, but a suppressed box suppresses nothing."""
    b = lamina.tensor([[0.0, 0.0, 2.0, 1.0], [1.0, 0.0, 3.0, 1.0], [2.0, 0.0, 4.0, 1.0]])  # IoU(A,B) = IoU(B,C) = 1/3
    assert V.nms(b, lamina.tensor([3.0, 2.0, 1.0]), 0.3).tolist() == [0, 2]
    assert V.nms(b, lamina.tensor([2.0, 3.0, 1.0]), 0.3).tolist() == [1]  # B first: suppresses both
    assert V.nms(b, lamina.tensor([1.0, 2.0, 3.0]), 0.4).tolist() == [2, 1, 0]  # by decreasing score


def test_equal_scores_visit_by_index(use_numba):
    same = lamina.tensor([[0.0, 0.0, 1.0, 1.0]] * 4)
    assert V.nms(same, lamina.ones(4), 0.5).tolist() == [0]  # the first of equal boxes and scores
    b = lamina.tensor([[0.0, 0.0, 1.0, 1.0], [5.0, 5.0, 6.0, 6.0], [0.0, 0.0, 1.0, 1.0], [5.0, 5.0, 6.0, 6.0]])
    assert V.nms(b, lamina.tensor([1.0, 1.0, 2.0, 1.0]), 0.5).tolist() == [2, 1]
    assert V.nms(b, lamina.ones(4), 0.5).tolist() == [0, 1]
    assert V.nms(b, lamina.ones(4), 1.0).tolist() == [0, 1, 2, 3]  # nothing is above IoU 1


def test_inverted_boxes_have_the_area_as_computed(use_numba):
    """torchvision does not sort the corners: two identical inverted boxes have a positive area
    but an empty overlap, so neither suppresses the other (onnxruntime would sort the corners)."""
    inv = lamina.tensor([[2.0, 2.0, 0.0, 0.0], [2.0, 2.0, 0.0, 0.0]])
    assert V.nms(inv, lamina.tensor([1.0, 0.5]), 0.5).tolist() == [0, 1]
    rng = np.random.default_rng(0)
    for seed in range(20):
        boxes, scores = random_case(rng, 30)
        flip = rng.random(30) < 0.3
        boxes[flip] = boxes[flip][:, [2, 3, 0, 1]]
        thr = float(rng.random())
        assert V.nms(lamina.tensor(boxes), lamina.tensor(scores), thr).tolist() == K.nms_reference(boxes, scores, thr)


def test_empty_and_single(use_numba):
    for fn, extra in ((V.nms, ()), (V.batched_nms, (lamina.zeros(0, dtype=lamina.int64),))):
        out = fn(lamina.zeros(0, 4), lamina.zeros(0), *extra, 0.5)
        assert out.dtype == lamina.int64 and out.shape == (0,)
    assert V.nms(lamina.tensor([[0.0, 0.0, 1.0, 1.0]]), lamina.tensor([0.3]), 0.5).tolist() == [0]
    one = V.batched_nms(lamina.tensor([[0.0, 0.0, 1.0, 1.0]]), lamina.tensor([0.3]), lamina.tensor([7]), 0.5)
    assert one.dtype == lamina.int64 and one.tolist() == [0]


# ---- against the plain loop -----------------------------------------------------------------


@pytest.mark.parametrize("kernel", KERNELS)
def test_against_the_reference(kernel):
    """Thousands of boxes over 240 random cases: both dtypes, spread and clustered, ties."""
    rng = np.random.default_rng(1)
    total = 0
    for case in range(240):
        dtype = np.float64 if case % 4 == 3 else np.float32
        boxes, scores = random_case(rng, int(rng.integers(1, 70)), dtype, clustered=case % 2 == 1)
        thr = a_threshold(rng, boxes)
        expected = K.nms_reference(boxes, scores, thr)
        got = K.nms_keep(boxes, scores, thr, kernel=kernel)
        assert got.dtype == np.int64 and got.tolist() == expected, (case, thr)
        total += len(boxes)
    assert total > 7000


def test_public_nms_matches_the_reference(use_numba):
    rng = np.random.default_rng(2)
    for case in range(30):
        boxes, scores = random_case(rng, int(rng.integers(1, 60)), clustered=case % 2 == 0)
        thr = a_threshold(rng, boxes)
        out = V.nms(lamina.tensor(boxes, requires_grad=True), lamina.tensor(scores), thr)
        assert out.dtype == lamina.int64 and out.tolist() == K.nms_reference(boxes, scores, thr)


@pytest.mark.skipif(len(KERNELS) < 2, reason="numba not installed: the NumPy kernel is tested alone above")
def test_kernels_agree_on_large_inputs():
    rng = np.random.default_rng(3)
    for clustered in (False, True):
        boxes, scores = random_case(rng, 3000, clustered=clustered)
        for thr in (0.3, 0.5, 0.7):
            a = K.nms_keep(boxes, scores, thr, kernel="numba")
            assert a.tolist() == K.nms_keep(boxes, scores, thr, kernel="numpy").tolist()
            assert 0 < len(a) < len(boxes)


def test_kernel_choice():
    old = im2col.use_numba()
    try:
        im2col.use_numba(False)
        assert K.select_kernel(100, np.dtype(np.float32)) == "numpy"
        im2col.use_numba(True)
        assert K.select_kernel(100, np.dtype(np.float32)) == ("numba" if nms_numba.suppress is not None else "numpy")
    finally:
        im2col.use_numba(old)
    with pytest.raises(ValueError, match="nms: unknown kernel 'gpu'"):
        K.nms_keep(np.zeros((2, 4), np.float32), np.zeros(2, np.float32), 0.5, kernel="gpu")


def test_threshold_in_the_boxes_dtype():
    """The float32 threshold that compares as C++'s float-against-double does."""
    for thr in (0.5, 0.7, 0.1, 1 / 3, 0.0, -0.25, 1.0, 1e39):
        t = K.threshold_for(thr, np.dtype(np.float32))
        with np.errstate(over="ignore"):
            vs = (np.nextafter(t, np.float32(-np.inf)), t, np.nextafter(t, np.float32(np.inf)))
        for v in vs:
            assert (v > t) == (float(v) > thr), (thr, v)


# ---- against onnxruntime --------------------------------------------------------------------


def _ort_nms():
    graph = helper.make_graph(
        [helper.make_node("NonMaxSuppression", ["boxes", "scores", "max", "iou"], ["selected"], center_point_box=0)],
        "nms",
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, None, 4]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1, None]),
         helper.make_tensor_value_info("max", TensorProto.INT64, [1]),
         helper.make_tensor_value_info("iou", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("selected", TensorProto.INT64, [None, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])

    def run(boxes, scores, thr):
        feed = {"boxes": boxes[None][:, :, [1, 0, 3, 2]],  # ONNX's (y1, x1, y2, x2)
                "scores": scores[None, None], "max": np.array([1 << 40]),  # no cap (0 would select nothing)
                "iou": np.array([thr], np.float32)}  # and no score_threshold
        return session.run(None, feed)[0][:, 2].tolist()

    return run


def test_against_onnxruntime(use_numba):
    """onnxruntime's NonMaxSuppression also suppresses only IoU > threshold, and on equal scores
    selects the lower index first; its IoU is float32 with the same operations, so on valid
    float32 boxes and float32 thresholds the selections agree exactly (220 cases)."""
    run = _ort_nms()
    rng = np.random.default_rng(4)
    for case in range(220):
        boxes, scores = random_case(rng, int(rng.integers(1, 120)), clustered=case % 2 == 1, integer=case % 5 == 0)
        thr = float(np.float32(a_threshold(rng, boxes)))
        assert V.nms(lamina.tensor(boxes), lamina.tensor(scores), thr).tolist() == run(boxes, scores, thr), case
    boxes, scores = random_case(rng, 5000)
    assert V.nms(lamina.tensor(boxes), lamina.tensor(scores), 0.5).tolist() == run(boxes, scores, 0.5)


# ---- batched_nms ----------------------------------------------------------------------------


def _coordinate_trick(boxes, scores, idxs, thr):
    """torchvision's _batched_nms_coordinate_trick: shift each category's boxes apart, one nms."""
    shifted = boxes + idxs[:, None].astype(boxes.dtype) * (boxes.max() + 1)
    return V.nms(lamina.tensor(shifted), lamina.tensor(scores), thr).tolist()


def test_batched_nms(use_numba):
    rng = np.random.default_rng(5)
    for case in range(60):
        n = int(rng.integers(1, 60))
        boxes, scores = random_case(rng, n, clustered=case % 2 == 0, integer=case % 3 == 0)
        idxs = rng.integers(0, int(rng.integers(1, 5)), n) * int(rng.choice([1, 7]))
        thr = a_threshold(rng, boxes)
        out = V.batched_nms(lamina.tensor(boxes), lamina.tensor(scores), lamina.tensor(idxs), thr)
        expected = K.batched_nms_reference(boxes, scores, idxs, thr)
        assert out.dtype == lamina.int64 and out.tolist() == expected, case
        per_class = []  # the public nms on each category, merged by score (ties by index)
        for c in np.unique(idxs):
            members = np.nonzero(idxs == c)[0]
            per_class += members[V.nms(lamina.tensor(boxes[members]), lamina.tensor(scores[members]),
                                       thr).numpy()].tolist()
        per_class.sort()
        assert out.tolist() == sorted(per_class, key=lambda i: -scores[i]), case
        if case % 3 == 0:  # integer coordinates: torchvision's shifted boxes are exact, so the same IoUs
            assert out.tolist() == _coordinate_trick(boxes, scores, idxs, thr), case


def test_batched_nms_categories_do_not_suppress_each_other(use_numba):
    b = lamina.tensor([[0.0, 0.0, 1.0, 1.0]] * 4)
    s = lamina.tensor([0.5, 0.9, 0.5, 0.7])
    assert V.batched_nms(b, s, lamina.tensor([0, 1, 2, 1]), 0.5).tolist() == [1, 0, 2]  # ties by index
    assert V.batched_nms(b, s, lamina.tensor([3, 3, 3, 3]), 0.5).tolist() == [1]
    assert V.batched_nms(b, s, lamina.tensor([-1, 0, 1, 2]), 0.5).tolist() == [1, 3, 0, 2]


# ---- dtypes and errors ----------------------------------------------------------------------


def test_dtypes(use_numba):
    rng = np.random.default_rng(6)
    boxes, scores = random_case(rng, 40, clustered=True, integer=True)
    s = lamina.tensor(scores)
    ref64 = V.nms(lamina.tensor(boxes.astype(np.float64)), s, 0.4).tolist()
    assert V.nms(lamina.tensor(boxes.astype(np.int32)), s, 0.4).tolist() == ref64  # integers: in float64
    # float16: in float32 (an IoU of 2/5 rounds above 0.4 in float32, not in float64: the two differ here)
    ref32 = V.nms(lamina.tensor(boxes.astype(np.float32)), s, 0.4).tolist()
    assert ref32 != ref64
    assert V.nms(lamina.tensor(boxes.astype(np.float16)), s, 0.4).tolist() == ref32
    assert V.nms(lamina.tensor(boxes), lamina.tensor(scores.astype(np.int64)), 0.4).tolist() == \
        V.nms(lamina.tensor(boxes), lamina.tensor(scores.astype(np.float64)), 0.4).tolist()
    b = lamina.tensor(boxes)
    assert V.nms(b, s, lamina.tensor(0.4, dtype=lamina.float64)).tolist() == V.nms(b, s, 0.4).tolist()
    # a float32 threshold is float32's 0.4, a little above 0.4: the IoUs of 2/5 are then kept
    assert V.nms(b, s, lamina.tensor(0.4)).tolist() == V.nms(b, s, float(np.float32(0.4))).tolist() != ref32


def test_errors_name_the_op():
    b, s = lamina.zeros(3, 4), lamina.zeros(3)
    with pytest.raises(ValueError, match=r"nms: boxes should be a Tensor\[N, 4\].*got shape \(3, 5\)"):
        V.nms(lamina.zeros(3, 5), s, 0.5)
    with pytest.raises(ValueError, match=r"nms: boxes should be a Tensor\[N, 4\].*got shape \(4,\)"):
        V.nms(lamina.zeros(4), s, 0.5)
    with pytest.raises(ValueError, match=r"nms: scores should be a Tensor\[N\] with one score per box \(N = 3\), "
                                         r"got shape \(2,\)"):
        V.nms(b, lamina.zeros(2), 0.5)
    with pytest.raises(ValueError, match=r"nms: scores should be a Tensor\[N\].*\(3, 1\)"):
        V.nms(b, lamina.zeros(3, 1), 0.5)
    with pytest.raises(ValueError, match=r"nms: boxes must be finite, but box 1 is \[0.0, nan, 1.0, 1.0\]"):
        V.nms(lamina.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, float("nan"), 1.0, 1.0]]), lamina.zeros(2), 0.5)
    with pytest.raises(ValueError, match="batched_nms: boxes must be finite, but box 0"):
        V.batched_nms(lamina.tensor([[0.0, 0.0, float("inf"), 1.0]]), lamina.zeros(1), lamina.tensor([0]), 0.5)
    with pytest.raises(ValueError, match=r"nms: scores contain nan \(score 2\)"):
        V.nms(b, lamina.tensor([0.0, 1.0, float("nan")]), 0.5)
    with pytest.raises(ValueError, match="nms: iou_threshold is nan"):
        V.nms(b, s, float("nan"))
    with pytest.raises(TypeError, match="nms: iou_threshold should be a number, got str"):
        V.nms(b, s, "0.5")
    with pytest.raises(TypeError, match="nms: expected boxes to be a lamina Tensor, got ndarray"):
        V.nms(np.zeros((3, 4)), s, 0.5)
    with pytest.raises(TypeError, match="nms: boxes must hold real numbers, got dtype bool"):
        V.nms(b.bool(), s, 0.5)
    with pytest.raises(ValueError, match=r"batched_nms: idxs should be a Tensor\[N\] with one category per box "
                                         r"\(N = 3\), got shape \(2,\)"):
        V.batched_nms(b, s, lamina.tensor([0, 1]), 0.5)
    with pytest.raises(TypeError, match="batched_nms: idxs must be integer categories, got dtype float32"):
        V.batched_nms(b, s, lamina.zeros(3), 0.5)
