"""YOLO v1: the loss by hand and against a torch transcription of the paper's formula (values and
input gradients), the whole model against the same layers in torch, decoding, the eval contract,
and a short training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import lamina
from lamina.models import get_model
from lamina.models.detection import YOLOv1, yolov1, yolov1_loss


def _target(boxes: list[list[float]], labels: list[int]) -> dict[str, lamina.Tensor]:
    return {"boxes": lamina.tensor(np.asarray(boxes, np.float32).reshape(-1, 4)),
            "labels": lamina.tensor(np.asarray(labels, np.int64))}


# --- the loss by hand --------------------------------------------------------------------------
def _hand_grid() -> np.ndarray:
    """N=2, S=2, B=2, C=2: per cell (x, y, √w, √h, conf) × 2, then p1, p2."""
    g = np.zeros((2, 2, 2, 12))
    g[0, 0, 0] = [0.75, 0.5, 0.5, 0.5, 0.8, 0.5, 0.5, 1.0, 0.5, 0.3, 0.6, 0.4]
    g[0, 0, 1, [4, 9]] = [0.1, 0.2]
    g[0, 1, 0, [4, 9]] = [0.0, 0.4]
    g[0, 1, 1, [4, 9]] = [0.5, 0.0]
    g[1, ..., 4] = 0.2
    g[1, ..., 9] = 0.2
    return g


def test_loss_by_hand() -> None:
    # image 4×4 px, one object (label 1) at (0.5, 0.5, 1.5, 1.5): centre (1, 1) → cell (0, 0), offset
    # (0.5, 0.5), √w = √h = √(1/4) = 0.5. Predictor 0: centre (1.5, 1), 1×1 px → IoU 0.5/1.5 = 1/3;
    # predictor 1: 4×1 px around (1, 1) → IoU 1/4; so predictor 0 is responsible.
    targets = [_target([[0.5, 0.5, 1.5, 1.5]], [1]), _target([], [])]
    pred = lamina.tensor(_hand_grid())
    got = {k: v.item() for k, v in yolov1_loss(pred, targets, (4, 4), num_boxes=2).items()}
    noobj = 0.3 ** 2 + 0.1 ** 2 + 0.2 ** 2 + 0.4 ** 2 + 0.5 ** 2 + 8 * 0.2 ** 2
    want = {"loss_coord": 5.0 * 0.25 ** 2 / 2, "loss_conf_obj": (0.8 - 1 / 3) ** 2 / 2,
            "loss_conf_noobj": 0.5 * noobj / 2, "loss_class": (0.4 ** 2 + 0.4 ** 2) / 2}
    assert got == pytest.approx(want, rel=1e-12)
    one = yolov1_loss(pred, targets, (4, 4), num_boxes=2, confidence_target="one")
    assert one["loss_conf_obj"].item() == pytest.approx((0.8 - 1) ** 2 / 2, rel=1e-12)
    # the second predictor fits better once it is the right size: it becomes responsible
    g = _hand_grid()
    g[0, 0, 0, 7] = 0.5
    loss = yolov1_loss(lamina.tensor(g), targets, (4, 4), num_boxes=2)
    assert loss["loss_coord"].item() == pytest.approx(0.0, abs=1e-15)
    assert loss["loss_conf_obj"].item() == pytest.approx((0.3 - 1) ** 2 / 2, rel=1e-12)


def test_two_objects_in_one_cell_the_first_counts() -> None:
    g = _hand_grid()[:1]
    first = yolov1_loss(lamina.tensor(g), [_target([[0.5, 0.5, 1.5, 1.5]], [1])], (4, 4))
    both = yolov1_loss(lamina.tensor(g), [_target([[0.5, 0.5, 1.5, 1.5], [0.2, 0.2, 1.8, 1.0]], [1, 2])], (4, 4))
    assert {k: v.item() for k, v in both.items()} == {k: v.item() for k, v in first.items()}


def test_loss_checks_its_input() -> None:
    with pytest.raises(ValueError, match="confidence_target"):
        yolov1_loss(lamina.tensor(_hand_grid()), [_target([], [])] * 2, (4, 4), confidence_target="x")
    with pytest.raises(ValueError, match="2 targets for a batch of 1"):
        yolov1_loss(lamina.tensor(_hand_grid()[:1]), [_target([], [])] * 2, (4, 4))


# --- the loss against a torch transcription of the paper ---------------------------------------
def _iou(a: list[float], b: list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def torch_yolo_loss(pred: torch.Tensor, targets: list[tuple[np.ndarray, np.ndarray]], size: tuple[int, int],
                    B: int, l_coord: float = 5.0, l_noobj: float = 0.5, conf_target: str = "iou") -> dict:
    """Eq. 3 of Redmon et al. (2016), cell by cell: pred (N, S, S, B·5 + C), boxes in pixels."""
    N, S = pred.shape[0], pred.shape[1]
    H, W = size
    out = {k: pred.new_zeros(()) for k in ("loss_coord", "loss_conf_obj", "loss_conf_noobj", "loss_class")}
    for n in range(N):
        owner: dict[tuple[int, int], tuple[list[float], int]] = {}
        for box, label in zip(*targets[n]):
            nb = [float(box[0]) / W, float(box[1]) / H, float(box[2]) / W, float(box[3]) / H]
            cx, cy = (nb[0] + nb[2]) / 2, (nb[1] + nb[3]) / 2
            cell = (min(int(cy * S), S - 1), min(int(cx * S), S - 1))
            owner.setdefault(cell, (nb, int(label)))
        for i in range(S):
            for j in range(S):
                p = pred[n, i, j]
                gt = owner.get((i, j))
                resp = -1
                if gt is not None:
                    nb, label = gt
                    ious = []
                    for b in range(B):
                        x, y, sw, sh = p[b * 5:b * 5 + 4].detach().tolist()
                        bx, by, bw, bh = (j + x) / S, (i + y) / S, sw * sw, sh * sh
                        ious.append(_iou([bx - bw / 2, by - bh / 2, bx + bw / 2, by + bh / 2], nb))
                    resp = int(np.argmax(ious))
                    tx, ty = ((nb[0] + nb[2]) / 2) * S - j, ((nb[1] + nb[3]) / 2) * S - i
                    tw, th = (nb[2] - nb[0]) ** 0.5, (nb[3] - nb[1]) ** 0.5
                    q = p[resp * 5:resp * 5 + 5]
                    out["loss_coord"] = out["loss_coord"] + l_coord * (
                        (q[0] - tx) ** 2 + (q[1] - ty) ** 2 + (q[2] - tw) ** 2 + (q[3] - th) ** 2)
                    c_hat = ious[resp] if conf_target == "iou" else 1.0
                    out["loss_conf_obj"] = out["loss_conf_obj"] + (q[4] - c_hat) ** 2
                    onehot = torch.zeros(pred.shape[-1] - B * 5, dtype=pred.dtype)
                    onehot[label - 1] = 1
                    out["loss_class"] = out["loss_class"] + ((p[B * 5:] - onehot) ** 2).sum()
                for b in range(B):
                    if b != resp:
                        out["loss_conf_noobj"] = out["loss_conf_noobj"] + l_noobj * p[b * 5 + 4] ** 2
    return {k: v / N for k, v in out.items()}


def _random_targets(rng: np.random.Generator, n: int, size: int, classes: int) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for k in range(n):
        m = [0, 3, 6][k % 3]  # an empty image, and several objects (some sharing a cell)
        xy = rng.uniform(0, size * 0.7, (m, 2))
        wh = rng.uniform(2, size * 0.3, (m, 2))
        out.append((np.concatenate([xy, xy + wh], 1).astype(np.float32), rng.integers(1, classes + 1, m)))
    return out


@pytest.mark.parametrize("conf_target", ["iou", "one"])
def test_loss_and_gradients_match_torch(conf_target: str) -> None:
    rng = np.random.default_rng(3)
    N, S, B, C, size = 4, 3, 2, 3, 48
    g = rng.uniform(0.05, 0.95, (N, S, S, B * 5 + C))
    targets = _random_targets(rng, N, size, C)
    x = lamina.tensor(g, requires_grad=True)
    ours = yolov1_loss(x, [_target(b.tolist(), list(lab)) for b, lab in targets], (size, size), B,
                       lambda_coord=3.0, lambda_noobj=0.25, confidence_target=conf_target)
    xt = torch.tensor(g, requires_grad=True)
    ref = torch_yolo_loss(xt, targets, (size, size), B, 3.0, 0.25, conf_target)
    for k in ref:
        assert ours[k].item() == pytest.approx(ref[k].item(), rel=1e-10, abs=1e-12), k
    assert ref["loss_coord"].item() > 0 and ref["loss_class"].item() > 0
    sum(ours.values()).backward()
    sum(ref.values()).backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)


# --- the whole model against the same layers in torch ------------------------------------------
def _torch_twin(m: YOLOv1) -> torch.nn.Module:
    layers = []
    for mod in [*m.backbone, *m.head]:
        name = type(mod).__name__
        if name == "Conv2d":
            layers.append(torch.nn.Conv2d(mod.in_channels, mod.out_channels, mod.kernel_size, mod.stride,
                                          mod.padding, bias=mod.bias is not None))
        elif name == "BatchNorm2d":
            layers.append(torch.nn.BatchNorm2d(mod.num_features))
        elif name == "LeakyReLU":
            layers.append(torch.nn.LeakyReLU(mod.negative_slope))
        elif name == "MaxPool2d":
            layers.append(torch.nn.MaxPool2d(2))
        elif name == "AdaptiveAvgPool2d":
            layers.append(torch.nn.AdaptiveAvgPool2d(mod.output_size))
        else:
            raise AssertionError(name)
    twin = torch.nn.Sequential(*layers).double()
    ours = [*m.backbone.state_dict().values(), *m.head.state_dict().values()]
    assert len(ours) == len(twin.state_dict())
    twin.load_state_dict({k: torch.tensor(v.numpy()) for k, v in zip(twin.state_dict(), ours)})
    return twin


def test_model_forward_backward_match_torch() -> None:
    lamina.manual_seed(1)
    m = YOLOv1(num_classes=4, grid_size=4, image_size=32, num_boxes=2).double().train()
    twin = _torch_twin(m)
    rng = np.random.default_rng(0)
    sizes = [(40, 48), (32, 32), (24, 36)]
    images = [rng.uniform(0, 1, (3, h, w)) for h, w in sizes]
    targets = [(np.array([[4.0, 6.0, 30.0, 20.0], [20.0, 22.0, 44.0, 38.0]], np.float32), np.array([1, 3])),
               (np.zeros((0, 4), np.float32), np.zeros(0, np.int64)),
               (np.array([[1.0, 2.0, 12.0, 20.0]], np.float32), np.array([2]))]
    losses = m([lamina.tensor(im) for im in images], [_target(b.tolist(), list(lab)) for b, lab in targets])

    batch = torch.cat([TF.interpolate(torch.tensor(im)[None], size=(32, 32), mode="bilinear", align_corners=False)
                       for im in images])
    out = twin(batch).permute(0, 2, 3, 1)
    grid = torch.cat([out[..., :10].sigmoid(), out[..., 10:].softmax(-1)], -1)
    scaled = [(b * np.array([32 / w, 32 / h, 32 / w, 32 / h], np.float32), lab) for (b, lab), (h, w) in zip(targets, sizes)]
    ref = torch_yolo_loss(grid, scaled, (32, 32), 2)
    for k in ref:
        assert losses[k].item() == pytest.approx(ref[k].item(), rel=1e-5), k
    sum(losses.values()).backward()
    sum(ref.values()).backward()
    ours = [p.grad.numpy() for p in [*m.backbone.parameters(), *m.head.parameters()]]
    for g, (name, p) in zip(ours, twin.named_parameters()):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-5, atol=1e-8, err_msg=name)


# --- decoding and the eval contract ------------------------------------------------------------
def test_decoding_a_perfect_prediction_recovers_the_boxes() -> None:
    m = yolov1(num_classes=4, grid_size=4, image_size=64, score_thresh=0.5).eval()
    h, w = 80, 120  # the original image: boxes come back in its pixels
    gt = np.array([[10.0, 8.0, 50.0, 40.0], [70.0, 30.0, 118.0, 78.0]])
    labels = [3, 1]
    grid = np.zeros((1, 4, 4, 13))
    for (x1, y1, x2, y2), lab in zip(gt, labels):
        cx, cy = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h
        i, j = int(cy * 4), int(cx * 4)
        grid[0, i, j, 5:10] = [cx * 4 - j, cy * 4 - i, ((x2 - x1) / w) ** 0.5, ((y2 - y1) / h) ** 0.5, 1.0]
        grid[0, i, j, 10 + lab - 1] = 1.0
    det = m.postprocess(lamina.tensor(grid), [(h, w)])[0]
    got = sorted(zip(det["labels"].tolist(), det["boxes"].numpy().tolist()))
    want = sorted(zip(labels, gt.tolist()))
    assert [lab for lab, _ in got] == [lab for lab, _ in want]
    np.testing.assert_allclose([b for _, b in got], [b for _, b in want], atol=1e-4)
    np.testing.assert_allclose(det["scores"].numpy(), [1.0, 1.0])


def test_eval_output_contract() -> None:
    m = get_model("yolov1", num_classes=3, grid_size=4, image_size=64, detections_per_img=20).eval()
    images = [lamina.rand(3, 50, 70), lamina.rand(3, 64, 64)]
    dets = m(images)
    assert len(dets) == 2
    for d, im in zip(dets, images):
        assert sorted(d) == ["boxes", "labels", "scores"]
        k = d["scores"].shape[0]
        assert d["boxes"].shape == (k, 4) and d["labels"].shape == (k,) and 0 < k <= 20
        assert d["boxes"].dtype == np.float32 and d["scores"].dtype == np.float32 and d["labels"].dtype == np.int64
        s = d["scores"].numpy()
        assert (np.diff(s) <= 0).all() and (s > m.score_thresh).all()
        b = d["boxes"].numpy()
        assert (b[:, 0] >= 0).all() and (b[:, 2] <= im.shape[2]).all() and (b[:, 3] <= im.shape[1]).all()
        assert set(d["labels"].tolist()) <= {1, 2}
    # a batched tensor gives what the list gives
    same = m(lamina.stack([images[1], images[1]]))
    np.testing.assert_allclose(same[0]["boxes"].numpy(), dets[1]["boxes"].numpy(), rtol=1e-4, atol=1e-3)
    m.score_thresh = 1.0  # nothing passes: an empty result of the right shapes
    empty = m(images)[0]
    assert empty["boxes"].shape == (0, 4) and empty["labels"].shape == (0,) and empty["scores"].shape == (0,)
    losses, dets = m(images, [_target([[1, 2, 30, 40]], [2]), _target([], [])], return_losses=True)
    assert sorted(losses) == ["loss_class", "loss_conf_noobj", "loss_conf_obj", "loss_coord"] and len(dets) == 2


def test_bad_input_is_named() -> None:
    m = yolov1(num_classes=3, grid_size=2, image_size=32)
    with pytest.raises(ValueError, match="targets are required"):
        m([lamina.rand(3, 32, 32)])
    with pytest.raises(ValueError, match=r"labels must be integers in 1\.\.2"):
        m([lamina.rand(3, 32, 32)], [_target([[1, 1, 5, 5]], [3])])
    with pytest.raises(ValueError, match="degenerate"):
        m([lamina.rand(3, 32, 32)], [_target([[5, 1, 5, 5]], [1])])
    with pytest.raises(ValueError, match="list of 1 target"):
        m([lamina.rand(3, 32, 32)], [])
    with pytest.raises(TypeError, match="out_channels"):
        YOLOv1(3, backbone=lamina.nn.ReLU())
    with pytest.raises(ValueError, match="at least 2"):
        YOLOv1(1)


# --- training ----------------------------------------------------------------------------------
def _rectangles(n: int, size: int, seed: int) -> tuple[list[lamina.Tensor], list[dict]]:
    rng = np.random.default_rng(seed)
    images, targets = [], []
    for _ in range(n):
        im = np.zeros((3, size, size), np.float32)
        boxes, labels = [], []
        for _ in range(int(rng.integers(1, 3))):
            w, h = rng.integers(size // 5, size // 2, 2)
            x, y = rng.integers(0, size - w), rng.integers(0, size - h)
            lab = int(rng.integers(1, 3))
            im[lab - 1, y:y + h, x:x + w] = 1.0  # class 1 red, class 2 green
            boxes.append([x, y, x + w, y + h])
            labels.append(lab)
        images.append(lamina.tensor(im))
        targets.append(_target(boxes, labels))
    return images, targets


def test_short_training_drives_the_loss_down() -> None:
    lamina.manual_seed(0)
    m = yolov1(num_classes=3, grid_size=4, image_size=64).train()
    images, targets = _rectangles(8, 64, seed=0)
    opt = lamina.optim.Adam(m.parameters(), lr=3e-3)
    history = []
    for _ in range(25):
        losses = m(images, targets)
        loss = sum(losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append({k: v.item() for k, v in losses.items()})
    first, last = history[0], history[-1]
    assert sum(last.values()) < 0.3 * sum(first.values()), history
    # not only the easy part (confidences of empty cells to 0): boxes and classes are learnt too
    assert last["loss_coord"] + last["loss_class"] < 0.5 * (first["loss_coord"] + first["loss_class"]), history
