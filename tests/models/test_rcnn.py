"""Faster and Mask R-CNN end to end (``lamina.models.detection``): torchvision's train/eval contract,
losses in eval on request, the RoI heads' sampling and postprocessing by hand, and a few SGD steps
on tiny synthetic images lowering the loss."""

from __future__ import annotations

import numpy as np
import pytest

import lamina
from lamina import models
from lamina.models.detection import (
    FasterRCNN,
    MaskRCNN,
    RoIHeads,
    SmallBackbone,
    fasterrcnn_small,
    maskrcnn_small,
)
from lamina.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from lamina.vision.ops import MultiScaleRoIAlign

TRAIN_KEYS = {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}


def _scene(seed: int, n: int = 2, size: tuple[int, int] = (96, 96), objects: int = 2):
    """Images with filled rectangles, one colour channel per class; boxes, labels and masks."""
    rng = np.random.default_rng(seed)
    images, targets = [], []
    H, W = size
    for _ in range(n):
        img = np.full((3, H, W), 0.1, np.float32)
        boxes, labels, masks = [], [], []
        for k in range(objects):
            w, h = rng.integers(14, 36, 2)
            x1, y1 = rng.integers(0, W - w), rng.integers(0, H - h)
            c = 1 + k % 2
            img[c - 1, y1:y1 + h, x1:x1 + w] = 0.9
            m = np.zeros((H, W), np.uint8)
            m[y1:y1 + h, x1:x1 + w] = 1
            boxes.append([x1, y1, x1 + w, y1 + h])
            labels.append(c)
            masks.append(m)
        images.append(lamina.tensor(img))
        targets.append({"boxes": lamina.tensor(np.asarray(boxes, np.float32)),
                        "labels": lamina.tensor(np.asarray(labels, np.int64)), "masks": lamina.tensor(np.stack(masks))})
    return images, targets


def _empty_target(size: tuple[int, int] = (96, 96)) -> dict:
    return {"boxes": lamina.zeros(0, 4), "labels": lamina.tensor(np.zeros(0, np.int64)),
            "masks": lamina.tensor(np.zeros((0, *size), np.uint8))}


def _small(mask: bool, **kw):
    lamina.manual_seed(0)
    return (maskrcnn_small if mask else fasterrcnn_small)(num_classes=3, channels=(8, 16, 32), representation_size=32,
                                                          **({"mask_layers": (16,)} if mask else {}), **kw)


def test_torchvision_module_names() -> None:
    names = set(_small(True).state_dict())
    for n in ["rpn.head.conv.0.0.weight", "rpn.head.cls_logits.weight", "rpn.head.bbox_pred.bias",
              "roi_heads.box_head.fc6.weight", "roi_heads.box_head.fc7.bias", "roi_heads.box_predictor.cls_score.weight",
              "roi_heads.box_predictor.bbox_pred.weight", "roi_heads.mask_head.0.0.weight",
              "roi_heads.mask_predictor.conv5_mask.weight", "roi_heads.mask_predictor.mask_fcn_logits.bias"]:
        assert n in names, n
    assert any(n.startswith("backbone.") for n in names)
    assert models.get_model("fasterrcnn_small", num_classes=3).roi_heads.box_predictor.cls_score.out_features == 3
    assert isinstance(models.get_model("maskrcnn_small", num_classes=2), MaskRCNN)


@pytest.mark.parametrize("mask", [False, True])
def test_train_and_eval_contract(mask: bool) -> None:
    m = _small(mask)
    images, targets = _scene(0)
    images[1] = images[1][:, :80, :72]  # another size: detections must come back in its own pixels
    targets[1] = _empty_target((80, 72))  # an image without objects is a valid target
    losses = m.train()(images, targets)
    assert set(losses) == TRAIN_KEYS | ({"loss_mask"} if mask else set())
    assert all(v.ndim == 0 and np.isfinite(v.item()) for v in losses.values())
    sum(losses.values()).backward()
    assert m.rpn.head.cls_logits.weight.grad is not None and m.backbone.body[0][0].weight.grad is not None
    m.eval()
    with lamina.no_grad():
        out = m(images)
    assert isinstance(out, list) and len(out) == 2
    for det, (h, w) in zip(out, [(96, 96), (80, 72)]):
        n = det["boxes"].shape[0]
        assert det["boxes"].shape == (n, 4) and det["boxes"].dtype == np.float32
        assert det["labels"].shape == (n,) and det["labels"].dtype == np.int64 and (det["labels"].numpy() >= 1).all()
        s = det["scores"].numpy()
        assert s.dtype == np.float32 and (np.diff(s) <= 0).all() and (s > 0.05).all()
        b = det["boxes"].numpy()
        assert (b[:, 0] >= 0).all() and (b[:, 2] <= w).all() and (b[:, 3] <= h).all()
        if mask:
            assert det["masks"].shape == (n, 1, h, w) and det["masks"].dtype == np.float32
            assert ((det["masks"].numpy() >= 0) & (det["masks"].numpy() <= 1)).all()
        else:
            assert "masks" not in det
    # a batched Tensor gives what the list of its images gives
    a, b = m(images[:1] * 2), m(lamina.stack([images[0], images[0]]))
    np.testing.assert_array_equal(a[1]["boxes"].numpy(), b[1]["boxes"].numpy())


@pytest.mark.parametrize("mask", [False, True])
def test_return_losses_in_eval(mask: bool) -> None:
    m = _small(mask).eval()
    images, targets = _scene(1)
    with lamina.no_grad():
        plain = m(images)
    lamina.manual_seed(3)
    losses, dets = m(images, targets, return_losses=True)
    assert set(losses) == TRAIN_KEYS | ({"loss_mask"} if mask else set())
    assert all(np.isfinite(v.item()) for v in losses.values())
    # the detections are eval's, untouched by the loss pass (BN in eval: the same numbers)
    for p, d in zip(plain, dets):
        np.testing.assert_array_equal(p["boxes"].numpy(), d["boxes"].numpy())
        np.testing.assert_array_equal(p["scores"].numpy(), d["scores"].numpy())
    # the same sampling seed gives the same validation loss; the model stays in eval
    lamina.manual_seed(3)
    again, _ = m(images, targets, return_losses=True)
    assert {k: v.item() for k, v in again.items()} == {k: v.item() for k, v in losses.items()}
    assert not m.training
    with pytest.raises(ValueError, match="return_losses=True needs targets"):
        m(images, return_losses=True)


def test_training_steps_lower_the_loss() -> None:
    m = _small(True).train()
    images, targets = _scene(2, n=3)
    opt = lamina.optim.SGD(m.parameters(), lr=0.02, momentum=0.9)
    totals = []
    for _ in range(12):
        losses = m(images, targets)
        total = sum(losses.values())
        opt.zero_grad()
        total.backward()
        opt.step()
        totals.append(total.item())
    assert np.mean(totals[-3:]) < 0.8 * np.mean(totals[:3]), totals


def test_bad_input_is_refused_clearly() -> None:
    m = _small(False).train()
    images, targets = _scene(0, n=1)
    with pytest.raises(ValueError, match="targets should not be None when in training mode"):
        m(images)
    bad = {"boxes": lamina.tensor([[10.0, 10.0, 10.0, 20.0]]), "labels": lamina.tensor([1])}
    with pytest.raises(ValueError, match=r"positive height and width.*\[10.0, 10.0, 10.0, 20.0\].*index 0"):
        m(images, [bad])
    with pytest.raises(ValueError, match=r"shape \[N, 4\]"):
        m(images, [{"boxes": lamina.zeros(4), "labels": lamina.tensor([1])}])
    with pytest.raises(TypeError, match="int64"):
        m(images, [{"boxes": targets[0]["boxes"], "labels": lamina.tensor([1.0, 2.0])}])
    with pytest.raises(ValueError, match=r"label 3, but the box predictor scores 3 classes"):
        m(images, [{"boxes": targets[0]["boxes"], "labels": lamina.tensor([1, 3])}])
    with pytest.raises(ValueError, match="negative label"):
        m(images, [{"boxes": targets[0]["boxes"], "labels": lamina.tensor([1, -1])}])
    with pytest.raises(ValueError, match="1 dicts"):
        m(images, targets * 2)
    with pytest.raises(ValueError, match="at least 2"):
        fasterrcnn_small(num_classes=1)
    with pytest.raises(ValueError, match="out_channels"):
        FasterRCNN(lamina.nn.ReLU(), num_classes=3)
    with pytest.raises(ValueError, match="masks"):
        _small(True).train()(images, [{k: v for k, v in targets[0].items() if k != "masks"}])


def _heads(**kw) -> RoIHeads:
    lamina.manual_seed(0)
    return RoIHeads(MultiScaleRoIAlign(["0"], 2, 2), TwoMLPHead(4 * 4, 8), FastRCNNPredictor(8, 3), 0.5, 0.5,
                    kw.pop("batch", 1000), 0.25, None, kw.pop("score_thresh", 0.05), 0.5, kw.pop("detections", 100))


def test_roi_heads_training_samples_by_hand() -> None:
    """The ground-truth boxes join the proposals: they match themselves (IoU 1) with zero regression
    targets; a proposal of IoU 0.5 with the box is positive (≥), one of IoU < 0.5 background."""
    heads = _heads()
    gt = lamina.tensor([[0.0, 0.0, 20.0, 20.0]])
    props = [lamina.tensor([[0.0, 0.0, 20.0, 10.0], [30.0, 30.0, 40.0, 40.0]])]  # IoU 0.5 and 0
    p, idx, labels, reg = heads.select_training_samples(props, [{"boxes": gt, "labels": lamina.tensor([2])}])
    order = np.argsort(p[0].numpy()[:, 0] * 100 + p[0].numpy()[:, 3])  # sampling shuffles; sort back
    assert p[0].numpy()[order].tolist() == [[0.0, 0.0, 20.0, 10.0], [0.0, 0.0, 20.0, 20.0], [30.0, 30.0, 40.0, 40.0]]
    assert labels[0].numpy()[order].tolist() == [2, 2, 0]
    r = reg[0].numpy()[order]
    np.testing.assert_allclose(r[1], [0, 0, 0, 0], atol=1e-7)
    # (10·0, 10·(10 − 5)/10, 5·log 1, 5·log 2): the half-height box moved down and doubled
    np.testing.assert_allclose(r[0], [0.0, 5.0, 0.0, 5 * np.log(2)], rtol=1e-6)
    # an image without objects: every proposal background, zero targets
    p, idx, labels, reg = heads.select_training_samples(props, [{"boxes": lamina.zeros(0, 4),
                                                                 "labels": lamina.tensor(np.zeros(0, np.int64))}])
    assert labels[0].tolist() == [0, 0] and not reg[0].numpy().any()


def test_postprocess_detections_by_hand() -> None:
    """One proposal, logits (0, log 3, log 6) → softmax (0.1, 0.3, 0.6); zero deltas keep the box for
    every class; the background dropped, clipped to the image, sorted by score; the threshold is ``>``."""
    heads = _heads(score_thresh=0.3)
    logits = lamina.tensor([[0.0, np.log(3.0), np.log(6.0)]])
    boxes, scores, labels = heads.postprocess_detections(logits, lamina.zeros(1, 12), [lamina.tensor(
        [[-2.0, 1.0, 8.0, 5.0]])], [(6, 7)])
    assert labels[0].tolist() == [2]  # 0.3 is not > 0.3
    np.testing.assert_allclose(scores[0].numpy(), [0.6], rtol=1e-6)
    assert boxes[0].tolist() == [[0.0, 1.0, 7.0, 5.0]]
    heads = _heads(score_thresh=0.05, detections=1)
    boxes, scores, labels = heads.postprocess_detections(logits, lamina.zeros(1, 12), [lamina.tensor(
        [[0.0, 1.0, 4.0, 5.0]])], [(6, 7)])
    assert labels[0].tolist() == [2] and scores[0].shape == (1,)  # detections_per_img keeps the best


def test_custom_backbone_and_feature_dict() -> None:
    """Any backbone with ``out_channels`` (a map or an OrderedDict of maps) plugs in."""
    lamina.manual_seed(0)

    class TwoMaps(lamina.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = SmallBackbone(channels=(8, 8))
            self.down = lamina.nn.Conv2d(8, 8, 3, stride=2, padding=1)
            self.out_channels = 8

        def forward(self, x):
            a = self.body(x)
            return {"0": a, "1": self.down(a)}

    from lamina.models.detection import AnchorGenerator

    m = FasterRCNN(TwoMaps(), num_classes=3, min_size=64, max_size=64,
                   rpn_anchor_generator=AnchorGenerator(((16,), (32,)), ((1.0,),) * 2),
                   box_roi_pool=MultiScaleRoIAlign(["0", "1"], 7, 2), rpn_batch_size_per_image=32,
                   box_batch_size_per_image=32, rpn_pre_nms_top_n_test=50, rpn_post_nms_top_n_test=20)
    images, targets = _scene(4, n=1, size=(64, 64))
    losses = m.train()(images, targets)
    assert set(losses) == TRAIN_KEYS
    out = m.eval()(images)
    assert out[0]["boxes"].shape[1] == 4


def test_resnet_fpn_detectors_have_torchvision_parameter_counts() -> None:
    """torchvision's published counts (41,755,286 and 44,401,393 at 91 classes) are of its
    pretrained models, whose batch norms are frozen (buffers, not parameters): the same here once
    the backbone's batch-norm weights and biases are left out."""
    from lamina.models.detection import fasterrcnn_resnet50_fpn, maskrcnn_resnet50_fpn

    for build, published in ((fasterrcnn_resnet50_fpn, 41_755_286), (maskrcnn_resnet50_fpn, 44_401_393)):
        with models.no_weight_init():
            m = build()
        bn = sum(p.numel() for n, p in m.named_parameters() if ".bn" in n or "downsample.1" in n)
        assert sum(p.numel() for p in m.parameters()) - bn == published
        assert "backbone.fpn.inner_blocks.0.0.weight" in m.state_dict()
        assert "backbone.body.layer4.2.conv3.weight" in m.state_dict()


def test_resnet18_fpn_trains_on_a_small_image() -> None:
    from lamina.models.detection import AnchorGenerator, fasterrcnn_resnet18_fpn

    lamina.manual_seed(0)
    m = fasterrcnn_resnet18_fpn(num_classes=3, trainable_backbone_layers=3, min_size=64, max_size=64,
                                rpn_anchor_generator=AnchorGenerator(((8,), (16,), (32,), (64,), (128,)),
                                                                     ((1.0,),) * 5),
                                rpn_batch_size_per_image=32, box_batch_size_per_image=32)
    frozen = {n for n, p in m.named_parameters() if not p.requires_grad}
    assert "backbone.body.conv1.weight" in frozen and "backbone.body.layer1.0.conv1.weight" in frozen
    assert "backbone.body.layer2.0.conv1.weight" not in frozen
    images, targets = _scene(5, n=1, size=(64, 64))
    losses = m.train()(images, targets)
    assert set(losses) == TRAIN_KEYS
    sum(losses.values()).backward()
    assert m.backbone.fpn.layer_blocks[0][0].weight.grad is not None
    out = m.eval()(images)
    assert out[0]["boxes"].shape[1] == 4


def test_images_without_objects_and_without_detections() -> None:
    m = _small(True)
    images, _ = _scene(0)
    losses = m.train()(images, [_empty_target(), _empty_target()])
    # nothing to regress or segment: those losses are 0 (and still reach the graph), the classifiers learn "background"
    assert losses["loss_box_reg"].item() == 0.0 and losses["loss_rpn_box_reg"].item() == 0.0
    assert losses["loss_mask"].item() == 0.0 and losses["loss_classifier"].item() > 0
    sum(losses.values()).backward()
    m.eval()
    m.roi_heads.score_thresh = 1.0  # no softmax score passes: no detection at all
    det = m(images)[0]
    assert det["boxes"].shape == (0, 4) and det["labels"].shape == (0,) and det["scores"].shape == (0,)
    assert det["masks"].shape == (0, 1, 96, 96)


@pytest.mark.parametrize("factory", [fasterrcnn_small, maskrcnn_small])
def test_small_rcnn_anchors_cover_the_synthetic_shapes(factory) -> None:
    """The small R-CNNs' anchors fit the default synthetic set (8–50 px boxes in 96 px images): most
    boxes have an anchor at the RPN's foreground IoU 0.7 and nearly all one at 0.5. Octave sizes
    (8, 16, 32, 64) on one stride-8 map reached 0.7 for about a fifth of the boxes."""
    from lamina.datasets import ShapesDetection
    from lamina.train.task_eval import anchor_coverage

    ds = ShapesDetection("train", num_images=60, size=96, max_objects=3, seed=0)
    batch = ([ds[i][0] for i in range(len(ds))], [ds[i][1] for i in range(len(ds))])
    cov = anchor_coverage(factory(num_classes=5, min_size=96, max_size=96), [batch])
    best = np.asarray(cov["best_iou"])
    assert cov["boxes"] > 60
    assert cov["coverage"] >= 0.4
    assert (best >= 0.5).mean() >= 0.8
