"""Semantic-segmentation metrics: a hand confusion matrix, a NumPy bincount oracle, ignore_index."""

from __future__ import annotations

import numpy as np
import pytest

import lamina
from lamina.train import MeanIoU, PixelAccuracy, SegmentationConfusionMatrix, get_metric


def test_hand_confusion_matrix() -> None:
    # 3 classes, 2×4 image; 255 is ignored whatever the prediction there
    target = np.array([[[0, 0, 1, 1], [2, 2, 255, 1]]])
    pred = np.array([[[0, 1, 1, 1], [2, 0, 2, 0]]])
    m = SegmentationConfusionMatrix(3)
    m.update(lamina.tensor(pred), lamina.tensor(target))
    # rows: true class; columns: predicted
    expected = np.array([[1, 1, 0], [1, 2, 0], [1, 0, 1]])
    np.testing.assert_array_equal(m.compute(), expected)
    r = m.results()
    assert r["acc_global"] == pytest.approx(4 / 7)
    np.testing.assert_allclose(r["acc"], [1 / 2, 2 / 3, 1 / 2])
    # iu = C_ii / (row + column - C_ii): 1/(2+3-1), 2/(3+3-2), 1/(2+1-1)
    np.testing.assert_allclose(r["iu"], [1 / 4, 2 / 4, 1 / 2])
    assert r["miou"] == pytest.approx((1 / 4 + 1 / 2 + 1 / 2) / 3)


def test_logits_against_numpy_bincount() -> None:
    rng = np.random.default_rng(0)
    n_classes = 5
    miou, acc = MeanIoU(n_classes), PixelAccuracy(n_classes)
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    for _ in range(3):
        logits = rng.normal(size=(2, n_classes, 7, 9)).astype(np.float32)
        target = rng.integers(0, n_classes, (2, 7, 9))
        target[rng.uniform(size=target.shape) < 0.1] = 255
        for metric in (miou, acc):
            metric.update(lamina.tensor(logits), lamina.tensor(target))
        t, p = target.reshape(-1), logits.argmax(1).reshape(-1)
        keep = t != 255
        cm += np.bincount(n_classes * t[keep] + p[keep], minlength=n_classes ** 2).reshape(n_classes, n_classes)
    np.testing.assert_array_equal(miou.matrix, cm)
    iu = np.diag(cm) / (cm.sum(0) + cm.sum(1) - np.diag(cm))
    assert miou.compute() == pytest.approx(iu.mean())
    assert acc.compute() == pytest.approx(np.trace(cm) / cm.sum())
    assert isinstance(miou.compute(), float)  # the Trainer logs float metrics


def test_absent_class_and_ignore_index_inside_range() -> None:
    m = SegmentationConfusionMatrix(3, ignore_index=0)
    m.update(np.array([[1, 1, 0]]), np.array([[1, 0, 1]]))
    # class 0 is ignored as a target; class 2 never occurs: its IoU is nan and left out of the mean
    np.testing.assert_array_equal(m.compute(), [[0, 0, 0], [1, 1, 0], [0, 0, 0]])
    r = m.results()
    assert np.isnan(r["iu"][2]) and r["miou"] == pytest.approx((0.0 + 0.5) / 2)


def test_bad_input_and_get_metric() -> None:
    m = MeanIoU(3)
    with pytest.raises(ValueError, match="output has 4 class scores but num_classes is 3"):
        m.update(np.zeros((1, 4, 2, 2), np.float32), np.zeros((1, 2, 2), np.int64))
    with pytest.raises(ValueError, match=r"predicted labels must lie in 0\.\.2"):
        m.update(np.full((1, 2, 2), 3), np.zeros((1, 2, 2), np.int64))
    with pytest.raises(TypeError, match="integer class indices"):
        m.update(np.zeros((1, 2, 2), np.int64), np.zeros((1, 2, 2), np.float32))
    assert isinstance(get_metric("miou", 4), MeanIoU) and isinstance(get_metric("pixel_accuracy", 4), PixelAccuracy)
    with pytest.raises(ValueError, match="miou needs num_classes"):
        get_metric("miou")
