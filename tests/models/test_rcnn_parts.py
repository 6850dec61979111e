"""Faster / Mask R-CNN's pieces (``lamina.models.detection``) against identical torch layers with
copied weights, the losses against torch re-implementations of torchvision's formulas (float64),
and the transform and mask pasting against values worked out by hand."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch

import lamina
from lamina.models.detection import (
    AnchorGenerator,
    FastRCNNPredictor,
    GeneralizedRCNNTransform,
    ImageList,
    MaskRCNNHeads,
    MaskRCNNPredictor,
    RegionProposalNetwork,
    RPNHead,
    TwoMLPHead,
    paste_masks_in_image,
)
from lamina.models.detection.roi_heads import fastrcnn_loss, maskrcnn_inference, maskrcnn_loss
from lamina.models.detection.rpn import concat_box_prediction_layers

tnn = torch.nn


def _copy(lam: lamina.nn.Module, ref: torch.nn.Module) -> None:
    """Load lamina's weights into the torch twin by the shared state_dict names."""
    sd = {k: torch.tensor(np.asarray(v.detach().numpy())) for k, v in lam.state_dict().items()}
    ref.load_state_dict(sd, strict=True)


def _compare(lam: lamina.nn.Module, ref: torch.nn.Module, x: np.ndarray, fn=None, tfn=None) -> None:
    """Forward and every parameter's gradient (of the sum of outputs · fixed weights) agree, float64."""
    lam.double()
    _copy(lam, ref.double())
    fn = fn or (lambda m, v: m(v))
    tfn = tfn or fn
    out = fn(lam, lamina.tensor(x))
    tout = tfn(ref, torch.tensor(x))
    outs = out if isinstance(out, (list, tuple)) else [out]
    touts = tout if isinstance(tout, (list, tuple)) else [tout]
    rng = np.random.default_rng(1)
    loss, tloss = 0, 0
    for o, t in zip(outs, touts):
        np.testing.assert_allclose(o.detach().numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-12)
        w = rng.standard_normal(o.shape)
        loss = loss + (o * lamina.tensor(w)).sum()
        tloss = tloss + (t * torch.tensor(w)).sum()
    loss.backward()
    tloss.backward()
    tparams = dict(ref.named_parameters())
    for name, p in lam.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[name].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


# --- heads against torch layers ------------------------------------------------------------------------


def test_rpn_head_matches_torch() -> None:
    lamina.manual_seed(0)
    head = RPNHead(6, 3, conv_depth=2)
    assert sorted(head.state_dict()) == ["bbox_pred.bias", "bbox_pred.weight", "cls_logits.bias", "cls_logits.weight",
                                         "conv.0.0.bias", "conv.0.0.weight", "conv.1.0.bias", "conv.1.0.weight"]
    assert abs(float(head.cls_logits.weight.detach().numpy().std()) - 0.01) < 0.004
    assert not head.bbox_pred.bias.detach().numpy().any()

    class Ref(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = tnn.Sequential(*[tnn.Sequential(tnn.Conv2d(6, 6, 3, padding=1), tnn.ReLU()) for _ in range(2)])
            self.cls_logits = tnn.Conv2d(6, 3, 1)
            self.bbox_pred = tnn.Conv2d(6, 12, 1)

        def forward(self, xs):
            out = []
            for x in xs:
                t = self.conv(x)
                out += [self.cls_logits(t), self.bbox_pred(t)]
            return out

    x = np.random.default_rng(0).standard_normal((2, 6, 5, 4))
    # give the 0.01-std weights some size, so that the ReLUs cut somewhere
    for p in head.parameters():
        p.array[...] = np.random.default_rng(p.numel()).standard_normal(p.shape) * 0.3
    _compare(head, Ref(), x, fn=lambda m, v: [t for pair in zip(*m([v, v[:, :, :3]])) for t in pair],
             tfn=lambda m, v: m([v, v[:, :, :3]]))


def test_box_heads_match_torch() -> None:
    lamina.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((5, 4, 3, 3))

    class RefMLP(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc6, self.fc7 = tnn.Linear(36, 8), tnn.Linear(8, 8)

        def forward(self, v):
            return torch.relu(self.fc7(torch.relu(self.fc6(v.flatten(1)))))

    _compare(TwoMLPHead(36, 8), RefMLP(), x)

    class RefPred(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cls_score, self.bbox_pred = tnn.Linear(36, 3), tnn.Linear(36, 12)

        def forward(self, v):
            v = v.flatten(1)
            return [self.cls_score(v), self.bbox_pred(v)]

    _compare(FastRCNNPredictor(36, 3), RefPred(), x.reshape(5, 36, 1, 1), fn=lambda m, v: list(m(v)))
    with pytest.raises(ValueError, match=r"FastRCNNPredictor: .*\[1,1\]"):
        FastRCNNPredictor(4, 3)(lamina.zeros(5, 4, 3, 3))


def test_mask_heads_match_torch() -> None:
    lamina.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((3, 4, 6, 6))
    heads = MaskRCNNHeads(4, (5, 6), 2)
    ref = tnn.Sequential(tnn.Sequential(tnn.Conv2d(4, 5, 3, padding=2, dilation=2), tnn.ReLU()),
                         tnn.Sequential(tnn.Conv2d(5, 6, 3, padding=2, dilation=2), tnn.ReLU()))
    _compare(heads, ref, x)
    pred = MaskRCNNPredictor(4, 5, 3)
    assert sorted(pred.state_dict()) == ["conv5_mask.bias", "conv5_mask.weight", "mask_fcn_logits.bias",
                                         "mask_fcn_logits.weight"]
    tpred = tnn.Sequential(OrderedDict([("conv5_mask", tnn.ConvTranspose2d(4, 5, 2, 2, 0)), ("relu", tnn.ReLU()),
                                        ("mask_fcn_logits", tnn.Conv2d(5, 3, 1, 1, 0))]))
    _compare(pred, tpred, x)
    assert tuple(pred(lamina.tensor(x)).shape) == (3, 3, 12, 12)


# --- the losses against torch re-implementations of torchvision's formulas -----------------------------


def _torch_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    area = lambda t: (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])  # noqa: E731
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(2)
    return inter / (area(a)[:, None] + area(b)[None] - inter)


def _torch_encode(gt: torch.Tensor, ref: torch.Tensor, w: tuple[float, ...]) -> torch.Tensor:
    pw, ph = ref[:, 2] - ref[:, 0], ref[:, 3] - ref[:, 1]
    px, py = ref[:, 0] + 0.5 * pw, ref[:, 1] + 0.5 * ph
    gw, gh = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
    gx, gy = gt[:, 0] + 0.5 * gw, gt[:, 1] + 0.5 * gh
    return torch.stack((w[0] * (gx - px) / pw, w[1] * (gy - py) / ph, w[2] * torch.log(gw / pw),
                        w[3] * torch.log(gh / ph)), dim=1)


def test_rpn_losses_match_a_torch_reimplementation() -> None:
    """The whole RPN on a fixed feature map: the head, the anchors' labels (torchvision's Matcher with
    low-quality matches), targets and both losses, re-done in torch. A sample larger than the
    anchors makes the sampler take every labelled anchor, so both sides see the same sample."""
    lamina.manual_seed(0)
    gen = AnchorGenerator(((8, 16),), ((0.5, 1.0, 2.0),))
    head = RPNHead(4, 6).double()
    for p in head.parameters():
        p.array[...] = np.random.default_rng(p.numel()).standard_normal(p.shape) * 0.2
    rpn = RegionProposalNetwork(gen, head, 0.7, 0.3, 100000, 0.5, dict(training=50, testing=50),
                                dict(training=20, testing=20), 0.7).train()
    feat = np.random.default_rng(0).standard_normal((2, 4, 4, 4))
    images = ImageList(lamina.zeros(2, 3, 32, 32, dtype=lamina.float64), [(32, 32), (30, 28)])
    gts = [np.array([[2.0, 3.0, 14.0, 12.0], [16.0, 16.0, 30.0, 31.0]]), np.zeros((0, 4))]
    targets = [{"boxes": lamina.tensor(g), "labels": lamina.tensor(np.ones(len(g), np.int64))} for g in gts]
    f = lamina.tensor(feat, requires_grad=True)
    boxes, losses = rpn(images, {"0": f}, targets)
    assert len(boxes) == 2 and all(b.shape[0] <= 20 for b in boxes)
    (losses["loss_objectness"] + 2 * losses["loss_rpn_box_reg"]).backward()

    anchors = torch.tensor(gen(images, [f])[0].numpy())
    tf = torch.tensor(feat, requires_grad=True)
    W = {k: torch.tensor(v.detach().numpy()) for k, v in head.state_dict().items()}
    t = torch.relu(torch.nn.functional.conv2d(tf, W["conv.0.0.weight"], W["conv.0.0.bias"], padding=1))
    logits = torch.nn.functional.conv2d(t, W["cls_logits.weight"], W["cls_logits.bias"])
    deltas = torch.nn.functional.conv2d(t, W["bbox_pred.weight"], W["bbox_pred.bias"])
    logits = logits.reshape(2, 6, 1, 4, 4).permute(0, 3, 4, 1, 2).reshape(-1)
    deltas = deltas.reshape(2, 6, 4, 4, 4).permute(0, 3, 4, 1, 2).reshape(-1, 4)
    labels, targets_t = [], []
    for g in gts:
        if len(g) == 0:
            labels.append(torch.zeros(len(anchors), dtype=torch.float64))
            targets_t.append(torch.zeros(len(anchors), 4, dtype=torch.float64))
            continue
        g = torch.tensor(g)
        iou = _torch_iou(g, anchors)
        vals, idx = iou.max(0)
        lab = torch.full((len(anchors),), -1.0, dtype=torch.float64)
        lab[vals < 0.3] = 0.0
        lab[vals >= 0.7] = 1.0
        best = iou.max(1).values
        lab[torch.nonzero(iou == best[:, None])[:, 1]] = 1.0  # each box's best anchors, ties included
        labels.append(lab)
        targets_t.append(_torch_encode(g[idx], anchors, (1.0, 1.0, 1.0, 1.0)))
    lab, tgt = torch.cat(labels), torch.cat(targets_t)
    sampled, pos = lab >= 0, lab == 1
    obj = torch.nn.functional.binary_cross_entropy_with_logits(logits[sampled], lab[sampled])
    box = torch.nn.functional.smooth_l1_loss(deltas[pos], tgt[pos], beta=1 / 9, reduction="sum") / sampled.sum()
    (obj + 2 * box).backward()
    assert pos.sum() >= 2
    np.testing.assert_allclose(losses["loss_objectness"].item(), obj.item(), rtol=1e-12)
    np.testing.assert_allclose(losses["loss_rpn_box_reg"].item(), box.item(), rtol=1e-12)
    np.testing.assert_allclose(f.grad.numpy(), tf.grad.numpy(), rtol=1e-9, atol=1e-14)


def test_concat_box_prediction_layers_orders_as_the_anchors() -> None:
    # per level (N, A·C, H, W) → rows (image, y, x, anchor): the order AnchorGenerator lays anchors in
    cls = lamina.tensor(np.arange(2 * 2 * 2 * 3, dtype=np.float64).reshape(2, 2, 2, 3))
    reg = lamina.tensor(np.arange(2 * 8 * 2 * 3, dtype=np.float64).reshape(2, 8, 2, 3))
    c, r = concat_box_prediction_layers([cls], [reg])
    assert c.shape == (24, 1) and r.shape == (24, 4)
    assert c[:4, 0].tolist() == [0.0, 6.0, 1.0, 7.0]  # (y0, x0, a0), (y0, x0, a1), (y0, x1, a0) ...
    assert r[1].tolist() == [24.0, 30.0, 36.0, 42.0]  # anchor 1's four deltas are channels 4..7


def test_fastrcnn_loss_matches_torch() -> None:
    rng = np.random.default_rng(0)
    logits, reg = rng.standard_normal((7, 3)), rng.standard_normal((7, 12))
    labels = [np.array([0, 2, 1, 0], np.int64), np.array([1, 0, 0], np.int64)]
    targets = [rng.standard_normal((4, 4)), rng.standard_normal((3, 4))]
    lg, rg = lamina.tensor(logits, requires_grad=True), lamina.tensor(reg, requires_grad=True)
    cls, box = fastrcnn_loss(lg, rg, [lamina.tensor(v) for v in labels], [lamina.tensor(v) for v in targets])
    (cls + 3 * box).backward()
    tl, tr = torch.tensor(logits, requires_grad=True), torch.tensor(reg, requires_grad=True)
    lab, tgt = torch.tensor(np.concatenate(labels)), torch.tensor(np.concatenate(targets))
    pos = torch.where(lab > 0)[0]
    tcls = torch.nn.functional.cross_entropy(tl, lab)
    tbox = torch.nn.functional.smooth_l1_loss(tr.reshape(7, 3, 4)[pos, lab[pos]], tgt[pos], beta=1 / 9,
                                              reduction="sum") / lab.numel()
    (tcls + 3 * tbox).backward()
    np.testing.assert_allclose([cls.item(), box.item()], [tcls.item(), tbox.item()], rtol=1e-12)
    np.testing.assert_allclose(lg.grad.numpy(), tl.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(rg.grad.numpy(), tr.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_maskrcnn_loss_by_hand_and_torch() -> None:
    """An 8 × 8 ground truth, left half 1; the proposal is the whole image, M = 2: RoI Align samples
    x = 0.5 … 3.5 in the left bin (3.5 is half on the edge: 0.5), so the targets are
    [[0.875, 0], [0.875, 0]]; the BCE uses the ground-truth class's channel."""
    gt = np.zeros((1, 8, 8), np.uint8)
    gt[0, :, :4] = 1
    logits = np.random.default_rng(0).standard_normal((1, 3, 2, 2))
    lg = lamina.tensor(logits, requires_grad=True)
    loss = maskrcnn_loss(lg, [lamina.tensor([[0.0, 0.0, 8.0, 8.0]], dtype=lamina.float64)], [lamina.tensor(gt)],
                         [lamina.tensor([2])], [lamina.tensor([0])])
    loss.backward()
    tl = torch.tensor(logits, requires_grad=True)
    tloss = torch.nn.functional.binary_cross_entropy_with_logits(tl[0, 2], torch.tensor([[0.875, 0.0], [0.875, 0.0]], dtype=torch.float64))
    tloss.backward()
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-12)
    np.testing.assert_allclose(lg.grad.numpy(), tl.grad.numpy(), rtol=1e-10, atol=1e-14)
    # no positive RoI: a zero that still reaches the logits
    empty = maskrcnn_loss(lg[:0], [lamina.zeros(0, 4, dtype=lamina.float64)], [lamina.tensor(gt)],
                          [lamina.tensor([2])], [lamina.tensor(np.zeros(0, np.int64))])
    assert empty.item() == 0.0 and empty.requires_grad


def test_maskrcnn_inference_takes_the_label_channel() -> None:
    x = lamina.tensor(np.arange(3 * 2 * 1 * 1, dtype=np.float64).reshape(3, 2, 1, 1) - 2.0)
    a, b = maskrcnn_inference(x, [lamina.tensor([1, 0]), lamina.tensor([1])])
    assert a.shape == (2, 1, 1, 1) and b.shape == (1, 1, 1, 1)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    np.testing.assert_allclose(a.numpy().ravel(), [sig(-1.0), sig(0.0)])  # x[0, 1] = -1, x[1, 0] = 0
    np.testing.assert_allclose(b.numpy().ravel(), [sig(3.0)])


# --- transform and pasting by hand ---------------------------------------------------------------------


def test_transform_resizes_normalizes_and_maps_back() -> None:
    t = GeneralizedRCNNTransform(32, 64, [0.5, 0.5, 0.5], [0.25, 0.25, 0.25], size_divisible=16).eval()
    rng = np.random.default_rng(0)
    a, b = rng.random((3, 20, 30), dtype=np.float32), rng.random((3, 20, 100), dtype=np.float32)
    masks = (rng.random((1, 20, 30)) > 0.5).astype(np.uint8)
    target = {"boxes": lamina.tensor([[2.0, 4.0, 10.0, 15.0]]), "labels": lamina.tensor([1]),
              "masks": lamina.tensor(masks)}
    il, out = t([lamina.tensor(a), lamina.tensor(b)], [target, {"boxes": lamina.zeros(0, 4),
                                                              "labels": lamina.tensor(np.zeros(0, np.int64))}])
    # a: scale min(32/20, 64/30) = 1.6 → 32 × 48; b: min(32/20, 64/100) = 0.64 (the max side binds), which in
    # float32 is 0.63999999761…, so 100 · s floors to 63 (as in torchvision)
    assert il.image_sizes == [(32, 48), (12, 63)] and tuple(il.tensors.shape) == (2, 3, 32, 64)
    ref = torch.nn.functional.interpolate(((torch.tensor(a) - 0.5) / 0.25)[None], scale_factor=1.6, mode="bilinear",
                                          recompute_scale_factor=True, align_corners=False)[0]
    np.testing.assert_allclose(il.tensors[0, :, :32, :48].numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)
    assert not il.tensors[0, :, :, 48:].numpy().any() and not il.tensors[1, :, 12:].numpy().any()  # zero padding
    np.testing.assert_allclose(out[0]["boxes"].numpy(), [[3.2, 6.4, 16.0, 24.0]], rtol=1e-6)
    tm = torch.nn.functional.interpolate(torch.tensor(masks)[:, None].float(), scale_factor=1.6,
                                         recompute_scale_factor=True)[:, 0].byte()
    assert out[0]["masks"].dtype == np.uint8 and (out[0]["masks"].numpy() == tm.numpy()).all()
    assert target["boxes"].tolist() == [[2.0, 4.0, 10.0, 15.0]]  # the caller's target is not changed
    det = [{"boxes": lamina.tensor([[3.2, 6.4, 16.0, 24.0]])}, {"boxes": lamina.tensor([[0.0, 0.0, 64.0, 12.0]])}]
    back = t.postprocess(det, il.image_sizes, [(20, 30), (20, 100)])
    np.testing.assert_allclose(back[0]["boxes"].numpy(), [[2.0, 4.0, 10.0, 15.0]], rtol=1e-6)
    np.testing.assert_allclose(back[1]["boxes"].numpy(), [[0.0, 0.0, 64.0 * 100 / 63, 20.0]], rtol=1e-6)
    with pytest.raises(TypeError, match="floating type"):
        t([lamina.tensor(np.zeros((3, 4, 4), np.uint8))])
    with pytest.raises(ValueError, match=r"\[C, H, W\]"):
        t([lamina.zeros(4, 4)])


def test_paste_masks_in_image_by_hand() -> None:
    """A 2 × 2 mask of ones, box (2, 3, 4, 5): padded to 4 × 4 (ones inside), box grown ×2 about its
    centre (3, 4) to (1, 2, 5, 6), i.e. 5 × 5 pixels (inclusive); the padded mask resized bilinearly
    to 5 × 5 is pasted at rows 2..6, columns 1..5. A box half outside keeps its inside part."""
    m = lamina.ones(2, 1, 2, 2)
    boxes = lamina.tensor([[2.0, 3.0, 4.0, 5.0], [-1.0, -1.0, 1.0, 1.0]])
    out = paste_masks_in_image(m, boxes, (8, 7)).numpy()
    assert out.shape == (2, 1, 8, 7)
    padded = torch.zeros(1, 1, 4, 4)
    padded[..., 1:3, 1:3] = 1
    r = torch.nn.functional.interpolate(padded, size=(5, 5), mode="bilinear", align_corners=False)[0, 0].numpy()
    want = np.zeros((8, 7), np.float32)
    want[2:7, 1:6] = r
    np.testing.assert_allclose(out[0, 0], want, rtol=1e-6)
    # second box grown to (-2, -2, 2, 2): 5 × 5 pixels, of which rows/columns 2..4 (image 0..2) fall inside
    want = np.zeros((8, 7), np.float32)
    want[0:3, 0:3] = r[2:5, 2:5]
    np.testing.assert_allclose(out[1, 0], want, rtol=1e-6)
    assert r[2, 2] == 1.0 and r[0, 0] == 0.0  # the middle is the mask, the corners the padding
    assert paste_masks_in_image(lamina.zeros(0, 1, 2, 2), lamina.zeros(0, 4), (8, 7)).shape == (0, 1, 8, 7)


# --- feature pyramid ----------------------------------------------------------------------------------


def test_feature_pyramid_network_matches_torch() -> None:
    from lamina.vision.ops import FeaturePyramidNetwork, LastLevelMaxPool

    lamina.manual_seed(0)
    fpn = FeaturePyramidNetwork([3, 5, 4], 6, extra_blocks=LastLevelMaxPool())
    assert "inner_blocks.2.0.weight" in fpn.state_dict() and "layer_blocks.0.0.bias" in fpn.state_dict()

    class Ref(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner_blocks = tnn.ModuleList([tnn.Sequential(tnn.Conv2d(c, 6, 1)) for c in (3, 5, 4)])
            self.layer_blocks = tnn.ModuleList([tnn.Sequential(tnn.Conv2d(6, 6, 3, padding=1)) for _ in range(3)])

        def forward(self, xs):  # torchvision's top-down pass
            last = self.inner_blocks[-1](xs[-1])
            res = [self.layer_blocks[-1](last)]
            for i in range(len(xs) - 2, -1, -1):
                lat = self.inner_blocks[i](xs[i])
                last = lat + torch.nn.functional.interpolate(last, size=lat.shape[-2:], mode="nearest")
                res.insert(0, self.layer_blocks[i](last))
            return res + [torch.nn.functional.max_pool2d(res[-1], 1, 2, 0)]

    rng = np.random.default_rng(0)
    maps = [rng.standard_normal((2, 3, 9, 11)), rng.standard_normal((2, 5, 5, 6)), rng.standard_normal((2, 4, 3, 3))]
    x = np.zeros(1)  # the maps are closed over; _compare's input is unused

    def run(m, _):
        out = m(OrderedDict((str(i), lamina.tensor(a)) for i, a in enumerate(maps)))
        assert list(out) == ["0", "1", "2", "pool"]
        return list(out.values())

    _compare(fpn, Ref(), x, fn=run, tfn=lambda m, _: m([torch.tensor(a) for a in maps]))
