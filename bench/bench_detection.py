"""One Faster R-CNN training step: lamina's ``fasterrcnn_small`` against the same model built here
from torch layers only (torchvision's C++ ops do not load on this machine), side by side in one
process.

    python bench/bench_detection.py            # 4 images of 96 × 96, 2 objects each
    python bench/bench_detection.py --quick    # 2 images, fewer repeats

The torch twin has lamina's weights (copied by ``state_dict`` names) and does what torchvision's
code does: backbone, RPN head, anchor decoding, per-level top-n, clip, NMS, anchor matching with
low-quality matches, balanced sampling, both RPN losses; ground truth appended to the proposals,
matching and sampling of RoIs, RoI Align (a pure-torch bilinear gather with torchvision's
``aligned=False`` rules, checked against lamina's below), the two-layer box head and the Fast
R-CNN losses; then backward and an SGD step. The twin's RoI Align is separable: two matmuls per
image (``Wy · F · Wxᵀ``), the fastest torch formulation found (a gather of the four taps took
0.5 s in its backward). NMS, whose cost is the same loop on both sides, runs
lamina's kernel on the torch side too. Prints median milliseconds per step and the ratio
lamina/torch. Tests never assert on time; record figures in ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import _harness  # noqa: E402
from _harness import block_medians, median_ms, start_lamina_threads  # noqa: E402

start_lamina_threads()  # before any other library's thread pool: see _harness.py

import torch  # noqa: E402
import torch.nn.functional as TF  # noqa: E402
from torch import nn as tnn  # noqa: E402

import lamina  # noqa: E402
from lamina.models.detection import fasterrcnn_small  # noqa: E402
from lamina.ops.kernels.nms import nms_keep  # noqa: E402


def scene(n: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    images, boxes, labels, masks = [], [], [], []
    for _ in range(n):
        img = np.full((3, 96, 96), 0.1, np.float32)
        b, lab, ms = [], [], []
        for k in range(2):
            w, h = rng.integers(12, 40, 2)
            x, y = rng.integers(0, 96 - w), rng.integers(0, 96 - h)
            img[k, y:y + h, x:x + w] = 0.9
            m = np.zeros((96, 96), np.uint8)
            m[y:y + h, x:x + w] = 1
            b.append([x, y, x + w, y + h])
            lab.append(k + 1)
            ms.append(m)
        images.append(img)
        boxes.append(np.asarray(b, np.float32))
        labels.append(np.asarray(lab, np.int64))
        masks.append(np.stack(ms))
    return images, boxes, labels, masks


def _axis_weights(lo: torch.Tensor, length: torch.Tensor, n: int, size: int, sr: int) -> torch.Tensor:
    """Per RoI the ``size × n`` matrix of one axis: bin ``i`` averages the bilinear taps of its ``sr``
    samples, with torchvision's border rules (``< −1`` or ``> n``: 0; clamped into ``[0, n − 1]``)."""
    R = lo.shape[0]
    grid = (torch.arange(size, dtype=lo.dtype)[:, None] + (torch.arange(sr, dtype=lo.dtype) + 0.5) / sr).reshape(-1)
    v = lo[:, None] + grid[None] * (length / size)[:, None]  # (R, size·sr)
    valid = ((v >= -1.0) & (v <= n)).to(lo.dtype)
    v = v.clamp(min=0)
    v0 = v.floor().long()
    top = v0 >= n - 1
    v0 = torch.where(top, n - 1, v0)
    v = torch.where(top, v0.to(v.dtype), v)
    v1 = (v0 + 1).clamp(max=n - 1)
    lw = v - v0
    w = torch.zeros(R, v.shape[1], n, dtype=lo.dtype)
    w.scatter_add_(2, v0[..., None], ((1 - lw) * valid)[..., None])
    w.scatter_add_(2, v1[..., None], (lw * valid)[..., None])
    return w.reshape(R, size, sr, n).mean(2)


def torch_roi_align(feat: torch.Tensor, rois: torch.Tensor, size: int, scale: float, sr: int) -> torch.Tensor:
    """torchvision's ``roi_align(aligned=False)`` with a fixed ``sampling_ratio``, in torch: bilinear
    sampling on a tensor-product grid is separable, so each RoI is ``Wy · F · Wxᵀ`` (two matmuls)."""
    N, C, H, W = feat.shape
    x1, y1, x2, y2 = (rois[:, i] * scale for i in range(1, 5))
    with torch.no_grad():
        wy = _axis_weights(y1, (y2 - y1).clamp(min=1.0), H, size, sr)
        wx = _axis_weights(x1, (x2 - x1).clamp(min=1.0), W, size, sr)
    b = rois[:, 0].long()
    out = feat.new_zeros(rois.shape[0], C, size, size)
    parts, order = [], []
    for i in range(N):
        idx = torch.where(b == i)[0]
        if idx.numel() == 0:
            continue
        R = idx.numel()
        t = (feat[i].reshape(C * H, W) @ wx[idx].reshape(R * size, W).T).reshape(C, H, R, size)
        t = t.permute(2, 1, 0, 3).reshape(R, H, C * size)
        parts.append(torch.bmm(wy[idx], t).reshape(R, size, C, size).permute(0, 2, 1, 3))
        order.append(idx)
    if parts:
        out = torch.cat(parts)[torch.argsort(torch.cat(order))]
    return out


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    area = lambda t: (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])  # noqa: E731
    lt, rb = torch.max(a[:, None, :2], b[None, :, :2]), torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(2)
    return inter / (area(a)[:, None] + area(b)[None] - inter)


def encode(gt: torch.Tensor, ref: torch.Tensor, w: tuple[float, ...]) -> torch.Tensor:
    pw, ph = ref[:, 2] - ref[:, 0], ref[:, 3] - ref[:, 1]
    px, py = ref[:, 0] + 0.5 * pw, ref[:, 1] + 0.5 * ph
    gw, gh = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
    gx, gy = gt[:, 0] + 0.5 * gw, gt[:, 1] + 0.5 * gh
    return torch.stack((w[0] * (gx - px) / pw, w[1] * (gy - py) / ph, w[2] * torch.log(gw / pw),
                        w[3] * torch.log(gh / ph)), 1)


def match(iou: torch.Tensor, hi: float, lo: float, low_quality: bool) -> torch.Tensor:
    vals, idx = iou.max(0)
    out = idx.clone()
    out[vals < lo] = -1
    out[(vals >= lo) & (vals < hi)] = -2
    if low_quality:
        best = iou.max(1).values
        p = torch.nonzero(iou == best[:, None])[:, 1]
        out[p] = idx[p]
    return out


def sample(labels: torch.Tensor, batch: int, frac: float) -> torch.Tensor:
    pos, neg = torch.where(labels >= 1)[0], torch.where(labels == 0)[0]
    npos = min(pos.numel(), int(batch * frac))
    nneg = min(neg.numel(), batch - npos)
    return torch.cat([pos[torch.randperm(pos.numel())[:npos]], neg[torch.randperm(neg.numel())[:nneg]]])


class TorchFasterRCNN(tnn.Module):
    """fasterrcnn_small's twin (its defaults: stride 8, 12 anchors, 600/300 proposals, 128 + 128 samples)."""

    def __init__(self, lam: lamina.nn.Module, anchors: np.ndarray) -> None:
        super().__init__()
        chans = [s[0].out_channels for s in lam.backbone.body]
        layers, c = [], 3
        for o in chans:
            layers.append(tnn.Sequential(tnn.Conv2d(c, o, 3, 2, 1, bias=False), tnn.BatchNorm2d(o), tnn.ReLU(),
                                         tnn.Conv2d(o, o, 3, 1, 1, bias=False), tnn.BatchNorm2d(o), tnn.ReLU()))
            c = o
        self.backbone = tnn.Module()
        self.backbone.body = tnn.Sequential(*layers)
        A = lam.rpn.head.cls_logits.out_channels
        self.rpn = tnn.Module()
        self.rpn.head = tnn.Module()
        self.rpn.head.conv = tnn.Sequential(tnn.Sequential(tnn.Conv2d(c, c, 3, 1, 1), tnn.ReLU()))
        self.rpn.head.cls_logits, self.rpn.head.bbox_pred = tnn.Conv2d(c, A, 1), tnn.Conv2d(c, 4 * A, 1)
        bh, bp = lam.roi_heads.box_head, lam.roi_heads.box_predictor
        self.roi_heads = tnn.Module()
        self.roi_heads.box_head = tnn.Module()
        self.roi_heads.box_head.fc6 = tnn.Linear(bh.fc6.in_features, bh.fc6.out_features)
        self.roi_heads.box_head.fc7 = tnn.Linear(bh.fc7.in_features, bh.fc7.out_features)
        self.roi_heads.box_predictor = tnn.Module()
        self.roi_heads.box_predictor.cls_score = tnn.Linear(bp.cls_score.in_features, bp.cls_score.out_features)
        self.roi_heads.box_predictor.bbox_pred = tnn.Linear(bp.bbox_pred.in_features, bp.bbox_pred.out_features)
        self.load_state_dict({k: torch.tensor(v.detach().numpy()) for k, v in lam.state_dict().items()})
        self.anchors = torch.tensor(anchors)
        self.mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
        self.std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]

    def forward(self, images: torch.Tensor, boxes: list[torch.Tensor], labels: list[torch.Tensor]) -> torch.Tensor:
        x = (images - self.mean) / self.std
        feat = self.backbone.body(x)
        N, _, Hf, Wf = feat.shape
        t = self.rpn.head.conv(feat)
        obj = self.rpn.head.cls_logits(t)
        A = obj.shape[1]
        obj = obj.reshape(N, A, 1, Hf, Wf).permute(0, 3, 4, 1, 2).reshape(N, -1)
        deltas = self.rpn.head.bbox_pred(t).reshape(N, A, 4, Hf, Wf).permute(0, 3, 4, 1, 2).reshape(N, -1, 4)
        a = self.anchors
        losses, proposals = [], []
        with torch.no_grad():  # the proposals: decode, top-n, clip, NMS (torchvision's filter_proposals)
            d = deltas.detach()
            aw, ah = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
            cx, cy = a[:, 0] + 0.5 * aw, a[:, 1] + 0.5 * ah
            pcx, pcy = d[..., 0] * aw + cx, d[..., 1] * ah + cy
            pw = torch.exp(d[..., 2].clamp(max=np.log(1000 / 16))) * aw
            ph = torch.exp(d[..., 3].clamp(max=np.log(1000 / 16))) * ah
            props = torch.stack((pcx - pw / 2, pcy - ph / 2, pcx + pw / 2, pcy + ph / 2), -1)
            top = obj.detach().topk(min(600, obj.shape[1]), 1).indices
            for i in range(N):
                b = props[i, top[i]].clamp(min=0, max=96)
                s = torch.sigmoid(obj[i, top[i]].detach())
                k = ((b[:, 2] - b[:, 0]) >= 1e-3) & ((b[:, 3] - b[:, 1]) >= 1e-3)
                b, s = b[k], s[k]
                keep = torch.from_numpy(nms_keep(b.numpy(), s.numpy(), 0.7))[:300]
                proposals.append(b[keep])
        rpn_obj, rpn_box, nsamp = [], [], 0
        for i in range(N):
            m = match(box_iou(boxes[i], a), 0.7, 0.3, True)
            lab = (m >= 0).float()
            lab[m == -2] = -1.0
            s = sample(lab, 128, 0.5)
            pos = s[lab[s] == 1]
            rpn_obj.append(TF.binary_cross_entropy_with_logits(obj[i, s], lab[s], reduction="sum"))
            rpn_box.append(TF.smooth_l1_loss(deltas[i, pos], encode(boxes[i][m[pos]], a[pos], (1, 1, 1, 1)),
                                             beta=1 / 9, reduction="sum"))
            nsamp += s.numel()
        losses += [sum(rpn_obj) / nsamp, sum(rpn_box) / nsamp]
        rois, roi_labels, roi_targets = [], [], []
        for i in range(N):
            p = torch.cat([proposals[i], boxes[i]])
            m = match(box_iou(boxes[i], p), 0.5, 0.5, False)
            lab = labels[i][m.clamp(min=0)]
            lab[m == -1] = 0
            lab[m == -2] = -1
            s = sample(lab, 128, 0.25)
            p, m, lab = p[s], m[s].clamp(min=0), lab[s]
            rois.append(torch.cat([torch.full((len(p), 1), float(i)), p], 1))
            roi_labels.append(lab)
            roi_targets.append(encode(boxes[i][m], p, (10, 10, 5, 5)))
        rois_t, lab, tgt = torch.cat(rois), torch.cat(roi_labels), torch.cat(roi_targets)
        pooled = torch_roi_align(feat, rois_t, 7, 1 / 8, 2)
        h = torch.relu(self.roi_heads.box_head.fc7(torch.relu(self.roi_heads.box_head.fc6(pooled.flatten(1)))))
        logits, reg = self.roi_heads.box_predictor.cls_score(h), self.roi_heads.box_predictor.bbox_pred(h)
        pos = torch.where(lab > 0)[0]
        losses.append(TF.cross_entropy(logits, lab))
        losses.append(TF.smooth_l1_loss(reg.reshape(len(lab), -1, 4)[pos, lab[pos]], tgt[pos], beta=1 / 9,
                                        reduction="sum") / lab.numel())
        return sum(losses)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--block-s", type=float, default=None)
    args = ap.parse_args()
    if args.block_s is not None:
        _harness.set_min_block(args.block_s)
    n = 2 if args.quick else 4
    repeats = 3 if args.quick else 7
    imgs, boxes, labels, masks = scene(n)
    lamina.manual_seed(0)
    torch.manual_seed(0)
    lam = fasterrcnn_small(num_classes=3).train()
    images = [lamina.tensor(i) for i in imgs]
    targets = [{"boxes": lamina.tensor(b), "labels": lamina.tensor(lab), "masks": lamina.tensor(m)}
               for b, lab, m in zip(boxes, labels, masks)]
    opt = lamina.optim.SGD(lam.parameters(), lr=0.01, momentum=0.9)

    def lamina_step() -> None:
        loss = sum(lam(images, targets).values())
        opt.zero_grad()
        loss.backward()
        opt.step()

    il, _ = lam.transform(images)
    feat = lam.backbone(il.tensors)
    anchors = lam.rpn.anchor_generator(il, [feat])[0].numpy()
    ref = TorchFasterRCNN(lam, anchors).train()
    # the twin's RoI Align is torchvision's: check it against lamina's on this map
    rois = np.array([[0, 3.2, 5.5, 60.1, 40.7], [1 % n, -4.0, 10.0, 90.0, 99.0]], np.float32)
    want = lamina.vision.ops.roi_align(feat.detach(), lamina.tensor(rois), 7, 1 / 8, 2).numpy()
    got = torch_roi_align(torch.tensor(feat.detach().numpy()), torch.tensor(rois), 7, 1 / 8, 2).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    timgs = torch.tensor(np.stack(imgs))
    tboxes, tlabels = [torch.tensor(b) for b in boxes], [torch.tensor(lab) for lab in labels]
    topt = torch.optim.SGD(ref.parameters(), lr=0.01, momentum=0.9)

    def torch_step() -> None:
        loss = ref(timgs, tboxes, tlabels)
        topt.zero_grad()
        loss.backward()
        topt.step()

    tl, tt = block_medians([lamina_step, torch_step], repeats)
    threads = torch.get_num_threads()
    print(f"Faster R-CNN small, training step, {n} images 96x96, torch {torch.__version__}, {threads} threads")
    a, b = median_ms(tl), median_ms(tt)
    print(f"  lamina {a:8.1f} ms   torch {b:8.1f} ms   ratio {a / b:.2f}")


if __name__ == "__main__":
    main()
