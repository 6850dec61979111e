"""MeanAveragePrecision against pycocotools' COCOeval (random cases) and hand-computed cases."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest

# the oracle: pycocotools is in the test extra, so a missing one fails here instead of skipping
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import lamina
from lamina.train import MeanAveragePrecision

KEYS = ["map", "map_50", "map_75", "map_small", "map_medium", "map_large",
        "mar_1", "mar_10", "mar_100", "mar_small", "mar_medium", "mar_large"]


def _xywh(b: np.ndarray) -> list[float]:
    b = b.astype(np.float64)
    return [b[0], b[1], b[2] - b[0], b[3] - b[1]]


def _rle(m: np.ndarray) -> dict:
    return mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))


def coco_eval(preds: list[dict], targets: list[dict], iou_type: str, hw: tuple[int, int]) -> COCOeval:
    """Run pycocotools on the same images (ids 1..n in order, annotations in input order)."""
    images, anns, results = [], [], []
    labels = set()
    for i, (p, t) in enumerate(zip(preds, targets), start=1):
        images.append({"id": i, "height": hw[0], "width": hw[1]})
        for j in range(len(t["labels"])):
            label = int(t["labels"][j])
            labels.add(label)
            ann = {"id": len(anns) + 1, "image_id": i, "category_id": label, "bbox": _xywh(t["boxes"][j]),
                   "iscrowd": int(t.get("iscrowd", np.zeros(len(t["labels"])))[j])}
            if iou_type == "segm":
                ann["segmentation"] = _rle(t["masks"][j])
                ann["area"] = float(t["area"][j]) if "area" in t else float(t["masks"][j].sum())
            else:
                ann["area"] = float(t["area"][j]) if "area" in t else ann["bbox"][2] * ann["bbox"][3]
            anns.append(ann)
        for j in range(len(p["labels"])):
            labels.add(int(p["labels"][j]))
            res = {"image_id": i, "category_id": int(p["labels"][j]), "score": float(p["scores"][j])}
            if iou_type == "segm":
                res["segmentation"] = _rle(p["masks"][j])
            else:
                res["bbox"] = _xywh(p["boxes"][j])
            results.append(res)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": c} for c in sorted(labels)]}
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(results), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def random_case(rng: np.random.Generator, iou_type: str, n_images: int = 10, n_classes: int = 3,
                hw: tuple[int, int] = (160, 200)) -> tuple[list[dict], list[dict]]:
    """Random ground truths of all sizes, noisy and spurious detections, crowd objects, ties in the
    scores, images without objects and images without detections."""
    h, w = hw
    preds, targets = [], []
    for i in range(n_images):
        n_gt = 0 if i % 5 == 1 else int(rng.integers(1, 9))
        size = np.exp(rng.uniform(np.log(3), np.log(min(h, w) * 0.9), (n_gt, 2)))
        xy = rng.uniform(0, 1, (n_gt, 2)) * (np.array([w, h]) - size)
        boxes = np.concatenate([xy, xy + size], 1).astype(np.float32)
        labels = rng.integers(1, n_classes + 1, n_gt)
        crowd = (rng.uniform(size=n_gt) < 0.12).astype(np.int64)
        t = {"boxes": boxes, "labels": labels, "iscrowd": crowd}
        p_boxes, p_labels = [], []
        for b, c in zip(boxes, labels):
            for _ in range(int(rng.integers(0, 3))):
                jit = rng.normal(0, 0.06, 4) * np.array([b[2] - b[0], b[3] - b[1]] * 2)
                p_boxes.append(b + jit)
                p_labels.append(c if rng.uniform() > 0.1 else rng.integers(1, n_classes + 1))
        n_fp = int(rng.integers(0, 6)) if i % 5 != 3 else 0
        if i % 5 == 3:
            p_boxes, p_labels = [], []  # an image without detections
        if i % 7 == 4 and rng.uniform() < 0.5:
            n_fp = 330  # more than maxDets=100 of a class in one image
        for _ in range(n_fp):
            s = rng.uniform(3, 80, 2)
            x, y = rng.uniform(0, w - s[0]), rng.uniform(0, h - s[1])
            p_boxes.append(np.array([x, y, x + s[0], y + s[1]]))
            p_labels.append(rng.integers(1, n_classes + 1))
        p_boxes = np.clip(np.array(p_boxes, dtype=np.float32).reshape(-1, 4), 0, [w, h, w, h])
        p_boxes[:, 2:] = np.maximum(p_boxes[:, 2:], p_boxes[:, :2] + 1)
        scores = rng.uniform(size=len(p_boxes))
        if i % 2:
            scores = np.round(scores, 1)  # ties: the stable sort must keep the input order
        p = {"boxes": p_boxes, "scores": scores.astype(np.float32), "labels": np.array(p_labels, dtype=np.int64)}
        if i % 4 == 2 and n_gt:
            t["area"] = (rng.uniform(0.5, 1.5, n_gt) * size.prod(1)).astype(np.float32)
        if iou_type == "segm":
            yy, xx = np.mgrid[:h, :w]

            def ellipses(bx: np.ndarray) -> np.ndarray:
                cx, cy = (bx[:, 0] + bx[:, 2]) / 2, (bx[:, 1] + bx[:, 3]) / 2
                rx, ry = np.maximum((bx[:, 2] - bx[:, 0]) / 2, 1), np.maximum((bx[:, 3] - bx[:, 1]) / 2, 1)
                d = ((xx[None] - cx[:, None, None]) / rx[:, None, None]) ** 2 \
                    + ((yy[None] - cy[:, None, None]) / ry[:, None, None]) ** 2
                return (d <= 1).astype(np.uint8)

            t["masks"], p["masks"] = ellipses(boxes), ellipses(p_boxes)
        preds.append(p)
        targets.append(t)
    return preds, targets


def _lamina(d: dict) -> dict:
    return {k: lamina.tensor(v) for k, v in d.items()}


def _check_against_coco(preds: list[dict], targets: list[dict], iou_type: str, hw: tuple[int, int]) -> None:
    ev = coco_eval(preds, targets, iou_type, hw)
    metric = MeanAveragePrecision(iou_type=iou_type, class_metrics=True)
    metric.update([_lamina(p) for p in preds[:4]], [_lamina(t) for t in targets[:4]])
    metric.update([_lamina(p) for p in preds[4:]], [_lamina(t) for t in targets[4:]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = metric.compute()
    ours = np.array([out[k] for k in KEYS])
    np.testing.assert_allclose(ours, ev.stats, rtol=0, atol=1e-6)
    # per class: pycocotools' precision / recall arrays of area "all", maxDets 100
    prec, rec = ev.eval["precision"][:, :, :, 0, -1], ev.eval["recall"][:, :, 0, -1]
    assert out["classes"].tolist() == ev.params.catIds
    for k in range(len(ev.params.catIds)):
        p, r = prec[:, :, k], rec[:, k]
        assert out["map_per_class"][k] == pytest.approx(p[p > -1].mean() if (p > -1).any() else -1, abs=1e-6)
        assert out["mar_100_per_class"][k] == pytest.approx(r[r > -1].mean() if (r > -1).any() else -1, abs=1e-6)
    curves = metric.pr_curves(0.5)
    np.testing.assert_allclose(curves["precision"], ev.eval["precision"][0, :, :, 0, -1].T, atol=1e-12)
    np.testing.assert_allclose(curves["scores"], ev.eval["scores"][0, :, :, 0, -1].T, atol=1e-6)


@pytest.mark.parametrize("seed", range(20))
def test_bbox_matches_pycocotools(seed: int) -> None:
    rng = np.random.default_rng(seed)
    preds, targets = random_case(rng, "bbox", hw=(400, 500))
    _check_against_coco(preds, targets, "bbox", (400, 500))


@pytest.mark.parametrize("seed", range(6))
def test_segm_matches_pycocotools(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    preds, targets = random_case(rng, "segm", n_images=8, hw=(120, 150))
    _check_against_coco(preds, targets, "segm", (120, 150))


def test_summary_text_matches_pycocotools() -> None:
    preds, targets = random_case(np.random.default_rng(7), "bbox", hw=(400, 500))
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        ev = coco_eval(preds, targets, "bbox", (400, 500))
        ev.summarize()
    metric = MeanAveragePrecision()
    metric.update(preds, targets)
    expected = [line for line in buf.getvalue().splitlines() if line.startswith(" Average")][-12:]
    assert metric.summary().splitlines() == expected


def _one_image(gt_boxes: list, gt_labels: list, dt_boxes: list, scores: list, dt_labels: list | None = None,
               **target: object) -> tuple[list[dict], list[dict]]:
    dt_labels = dt_labels if dt_labels is not None else [1] * len(dt_boxes)
    pred = {"boxes": np.array(dt_boxes, dtype=np.float32).reshape(-1, 4), "scores": np.array(scores, np.float32),
            "labels": np.array(dt_labels, dtype=np.int64)}
    tgt = {"boxes": np.array(gt_boxes, dtype=np.float32).reshape(-1, 4), "labels": np.array(gt_labels, np.int64)}
    tgt.update({k: np.asarray(v) for k, v in target.items()})
    return [pred], [tgt]


# two objects and three detections: hit (0.9), miss (0.8), hit (0.7); TP, FP, TP at every IoU threshold
HAND = _one_image([[0, 0, 10, 10], [20, 20, 30, 30]], [1, 1],
                  [[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 30]], [0.9, 0.8, 0.7])


def test_hand_case_coco_ap() -> None:
    # recall 0.5, 0.5, 1; precision 1, 1/2, 2/3; envelope 1, 2/3, 2/3. The 51 recall levels
    # 0..0.50 read 1, the 50 levels 0.51..1 read 2/3: AP = (51 + 50·2/3) / 101
    metric = MeanAveragePrecision()
    metric.update(*HAND)
    with pytest.warns(UserWarning, match="map_medium, map_large are -1"):
        out = metric.compute()
    ap = (51 + 50 * 2 / 3) / 101
    assert out["map"] == pytest.approx(ap, abs=1e-12)
    assert out["map_50"] == pytest.approx(ap, abs=1e-12) and out["map_75"] == pytest.approx(ap, abs=1e-12)
    assert out["map_small"] == pytest.approx(ap, abs=1e-12)  # both boxes are 10×10 = 100 px² < 32²
    assert out["map_medium"] == -1 and out["map_large"] == -1
    assert (out["mar_1"], out["mar_10"], out["mar_100"]) == (0.5, 1.0, 1.0)
    np.testing.assert_allclose(np.array([out[k] for k in KEYS]), coco_eval(*HAND, "bbox", (64, 64)).stats, atol=1e-12)


def test_hand_case_voc_ap() -> None:
    # VOC2007 11 points: levels 0..0.5 (six) read 1, 0.6..1 (five) read 2/3: (6 + 5·2/3) / 11.
    # continuous: area under the envelope = 0.5·1 + 0.5·2/3
    for method, expected in (("voc11", (6 + 5 * 2 / 3) / 11), ("continuous", 0.5 + 0.5 * 2 / 3)):
        metric = MeanAveragePrecision(ap_method=method, iou_thresholds=[0.5])
        metric.update(*HAND)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = metric.compute()
        assert out["map_50"] == pytest.approx(expected, abs=1e-9)
        assert out["map"] == pytest.approx(expected, abs=1e-9)


def test_voc11_recall_of_exactly_three_tenths() -> None:
    # 10 objects, 3 found first: recall reaches exactly 0.3 at precision 1, then only misses, so the
    # level 0.3 must read precision 1 (np.arange's 0.30000000000000004 would read 0)
    gts = [[i * 20, 0, i * 20 + 10, 10] for i in range(10)]
    metric = MeanAveragePrecision(ap_method="voc11", iou_thresholds=[0.5])
    metric.update(*_one_image(gts, [1] * 10, gts[:3] + [[300, 300, 310, 310]], [0.9, 0.8, 0.7, 0.6]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert metric.compute()["map_50"] == pytest.approx(4 / 11, abs=1e-12)


def test_crowd_ground_truth_absorbs_detections() -> None:
    # two detections inside a crowd region (IoU = intersection / detection area = 1) are ignored,
    # not false positives, even though they score above the true hit
    case = _one_image([[0, 0, 10, 10], [20, 20, 60, 60]], [1, 1],
                      [[25, 25, 35, 35], [40, 40, 50, 50], [0, 0, 10, 10]], [0.9, 0.8, 0.7], iscrowd=[0, 1])
    metric = MeanAveragePrecision()
    metric.update(*case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert metric.compute()["map"] == pytest.approx(1.0)
    not_crowd = MeanAveragePrecision()
    not_crowd.update(case[0], [dict(case[1][0], iscrowd=np.array([0, 0]))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert not_crowd.compute()["map"] < 0.5


def test_equal_iou_goes_to_the_last_ground_truth() -> None:
    # the first detection overlaps both objects with IoU exactly 0.5; pycocotools keeps the LAST
    # of equal matches, which leaves object A for the second detection: two hits at IoU 0.5
    case = _one_image([[0, 0, 10, 10], [10, 0, 20, 10]], [1, 1], [[0, 0, 20, 10], [0, 0, 10, 11]], [0.9, 0.8])
    metric = MeanAveragePrecision()
    metric.update(*case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = metric.compute()
    assert out["map_50"] == pytest.approx(1.0)
    np.testing.assert_allclose(np.array([out[k] for k in KEYS]), coco_eval(*case, "bbox", (32, 32)).stats, atol=1e-12)


def test_relative_area_ranges() -> None:
    # a 32×32 image: the thresholds scale by 1024 / (640·480), so a 10×10 box (100 px²) is large
    # (100 > 96²·1024/307200 = 30.72); the warning names the empty ranges
    metric = MeanAveragePrecision(area_ranges="relative", image_size=(32, 32))
    metric.update(*HAND)
    with pytest.warns(UserWarning, match=r"small .*medium"):
        out = metric.compute()
    assert out["map_large"] == pytest.approx(out["map"]) and out["map_small"] == -1 and out["map_medium"] == -1
    sized = MeanAveragePrecision(area_ranges="relative")
    sized.update(HAND[0], [dict(HAND[1][0], image_size=(32, 32))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert sized.compute()["map_large"] == pytest.approx(out["map"])
    with pytest.raises(ValueError, match="needs the image size"):
        MeanAveragePrecision(area_ranges="relative").update(*HAND)


def test_per_class_table_and_micro_average() -> None:
    # class 1: HAND's two objects; class 2: one object, missed (its detection scores 0.3 and is wrong)
    pred, tgt = _one_image([[0, 0, 10, 10], [20, 20, 30, 30], [70, 70, 80, 80]], [1, 1, 2],
                           [[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 30], [90, 90, 99, 99]],
                           [0.9, 0.8, 0.7, 0.3], [1, 1, 1, 2])
    metric = MeanAveragePrecision(class_metrics=True)
    metric.update(pred, tgt)
    table = metric.per_class(score_threshold=0.75)
    assert table["classes"].tolist() == [1, 2]
    assert table["images"].tolist() == [1, 1] and table["instances"].tolist() == [2, 1]
    # class 1 above 0.75: the hit and the miss -> P = 1/2, R = 1/2; class 2: nothing above 0.75
    np.testing.assert_allclose(table["precision"], [0.5, 0.0])
    np.testing.assert_allclose(table["recall"], [0.5, 0.0])
    np.testing.assert_allclose(table["map_50"], [(51 + 50 * 2 / 3) / 101, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = metric.compute()
    np.testing.assert_allclose(out["map_per_class"], table["map"])
    assert out["map"] == pytest.approx(np.mean(table["map"]))
    micro = MeanAveragePrecision(average="micro")
    micro.update(pred, tgt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # pooled: hit, miss, hit, miss over 3 objects: envelope 1 to recall 1/3, 2/3 to 2/3, then 0
        levels = np.linspace(0, 1, 101)
        expected = np.where(levels <= 1 / 3, 1.0, np.where(levels <= 2 / 3, 2 / 3, 0.0)).mean()
        assert micro.compute()["map"] == pytest.approx(expected, abs=1e-12)


def test_bad_input_is_named() -> None:
    metric = MeanAveragePrecision(iou_type="segm")
    with pytest.raises(KeyError, match=r"preds\[0\] lacks \['masks'\]"):
        metric.update(*HAND)
    with pytest.raises(ValueError, match="2 predictions but 1 targets"):
        MeanAveragePrecision().update(HAND[0] * 2, HAND[1])
    with pytest.raises(ValueError, match=r"target\[0\]\['boxes'\] must have shape \[N, 4\]"):
        MeanAveragePrecision().update(HAND[0], [{"boxes": np.zeros((2, 3)), "labels": np.zeros(2)}])
    with pytest.raises(ValueError, match="has 2 boxes but 3 entries in 'labels'"):
        MeanAveragePrecision().update(HAND[0], [{"boxes": np.zeros((2, 4)), "labels": np.zeros(3)}])
    with pytest.raises(ValueError, match="ap_method must be one of"):
        MeanAveragePrecision(ap_method="voc")


def test_reset_and_empty() -> None:
    metric = MeanAveragePrecision()
    metric.update(*HAND)
    metric.reset()
    out = metric.compute()
    assert out["map"] == -1 and out["mar_100"] == -1 and out["classes"].size == 0


def test_micro_average_matches_pycocotools_without_categories() -> None:
    # average="micro" pools the classes, as COCOeval with params.useCats = 0
    preds, targets = random_case(np.random.default_rng(11), "bbox", hw=(400, 500))
    with contextlib.redirect_stdout(io.StringIO()):
        ev = coco_eval(preds, targets, "bbox", (400, 500))
        ev.params.useCats = 0
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    metric = MeanAveragePrecision(average="micro")
    metric.update(preds, targets)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = metric.compute()
    np.testing.assert_allclose([out[k] for k in KEYS], ev.stats, atol=1e-6)


def test_custom_max_detections_match_pycocotools() -> None:
    preds, targets = random_case(np.random.default_rng(12), "bbox", hw=(400, 500))
    with contextlib.redirect_stdout(io.StringIO()):
        ev = coco_eval(preds, targets, "bbox", (400, 500))
        ev.params.maxDets = [1, 2, 4]
        ev.evaluate()
        ev.accumulate()
    metric = MeanAveragePrecision(max_detection_thresholds=[1, 2, 4])
    metric.update(preds, targets)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = metric.compute()
    prec, rec = ev.eval["precision"], ev.eval["recall"]
    for m, max_det in enumerate([1, 2, 4]):
        r = rec[:, :, 0, m]
        assert out[f"mar_{max_det}"] == pytest.approx(r[r > -1].mean(), abs=1e-6)
    p = prec[:, :, :, 0, -1]
    assert out["map"] == pytest.approx(p[p > -1].mean(), abs=1e-6)


def test_box_formats_and_probability_masks_agree() -> None:
    preds, targets = random_case(np.random.default_rng(13), "segm", n_images=4, hw=(100, 120))
    ref = MeanAveragePrecision(iou_type="segm")
    ref.update(preds, targets)
    # float probabilities [M, 1, H, W] (Mask R-CNN's output), cut at 0.5
    soft = [dict(p, masks=(p["masks"][:, None] * 0.6 + 0.2).astype(np.float32)) for p in preds]
    alt = MeanAveragePrecision(iou_type="segm")
    alt.update(soft, targets)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert alt.compute()["map"] == pytest.approx(ref.compute()["map"], abs=1e-12)
    boxes = MeanAveragePrecision()
    boxes.update(preds, targets)

    def convert(d: dict, fmt: str) -> dict:
        b = d["boxes"].astype(np.float64)
        wh = b[:, 2:] - b[:, :2]
        return dict(d, boxes=np.concatenate([b[:, :2], wh], 1) if fmt == "xywh"
                    else np.concatenate([b[:, :2] + wh / 2, wh], 1))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = boxes.compute()
        for fmt in ("xywh", "cxcywh"):
            other = MeanAveragePrecision(box_format=fmt)
            other.update([convert(p, fmt) for p in preds], [convert(t, fmt) for t in targets])
            np.testing.assert_allclose([other.compute()[k] for k in KEYS], [expected[k] for k in KEYS], atol=1e-9)
