"""YOLO v1 (Redmon, Divvala, Girshick & Farhadi, 2016, "You Only Look Once: Unified, Real-Time
Object Detection"): one network reads the whole image and predicts, for each cell of an S×S grid,
B boxes with a confidence each and one set of C class probabilities — an ``S×S×(B·5 + C)`` tensor.

The model follows torchvision's detection contract: ``model(images, targets)`` in training returns
the loss dict, in evaluation the detections (``return_losses=True`` gives ``(losses, detections)``).

Example:
    >>> import lamina
    >>> from lamina.models.detection import yolov1
    >>> m = yolov1(num_classes=4, image_size=64, grid_size=4).eval()
    >>> det = m([lamina.rand(3, 80, 96)])
    >>> sorted(det[0])
    ['boxes', 'labels', 'scores']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ... import nn
from ...autograd.grad_mode import no_grad
from ...autograd.tensor import Tensor
from ...nn import functional as F
from ...ops.join import cat
from ...ops.nms import batched_nms
from .yolo_loss import cell_boxes, yolov1_loss

__all__ = ["YOLOv1", "YOLOv1Backbone", "yolov1"]


class YOLOv1Backbone(nn.Sequential):
    """A small Darknet-style feature extractor: ``depth`` blocks of 3×3 conv → batch norm →
    LeakyReLU(0.1) (the paper's activation), each but the last followed by a 2×2 max pool, so the
    output stride is ``2^(depth−1)``. Channels double per block from ``width`` up to ``8·width``.

    Attributes:
        out_channels: channels of the output feature map (torchvision's backbone convention).

    Shape:
        ``(N, in_channels, H, W)`` → ``(N, out_channels, H/2^(depth−1), W/2^(depth−1))``.
    """

    def __init__(self, in_channels: int = 3, width: int = 16, depth: int = 5) -> None:
        layers: list[nn.Module] = []
        cin = in_channels
        for i in range(depth):
            cout = width * 2 ** min(i, 3)
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.1)]
            if i < depth - 1:
                layers.append(nn.MaxPool2d(2))
            cin = cout
        super().__init__(*layers)
        self.out_channels = cin


def _check_targets(targets: Any, n: int, num_classes: int) -> None:
    if not isinstance(targets, (list, tuple)) or len(targets) != n:
        got = len(targets) if isinstance(targets, (list, tuple)) else type(targets).__name__
        raise ValueError(f"YOLOv1: expected a list of {n} target dicts (one per image), got {got}")
    for k, t in enumerate(targets):
        if not isinstance(t, dict) or "boxes" not in t or "labels" not in t:
            raise ValueError(f"YOLOv1: target {k} must be a dict with 'boxes' and 'labels'")
        b, lab = t["boxes"], t["labels"]
        if not isinstance(b, Tensor) or b.ndim != 2 or b.shape[1] != 4:
            raise ValueError(f"YOLOv1: target {k} boxes must be a Tensor[N, 4], got "
                             f"{getattr(b, 'shape', type(b).__name__)}")
        if not isinstance(lab, Tensor) or lab.shape != (b.shape[0],):
            raise ValueError(f"YOLOv1: target {k} labels must be a Tensor[{b.shape[0]}], got "
                             f"{getattr(lab, 'shape', type(lab).__name__)}")
        a, la = b.array, lab.array
        if not np.isfinite(a).all() or ((a[:, 2] <= a[:, 0]) | (a[:, 3] <= a[:, 1])).any():
            bad = int(np.flatnonzero(~np.isfinite(a).all(1) | (a[:, 2] <= a[:, 0]) | (a[:, 3] <= a[:, 1]))[0])
            raise ValueError(f"YOLOv1: target {k} box {bad} is degenerate or not finite: {a[bad].tolist()} "
                             "(expected x1 < x2, y1 < y2)")
        if la.size and (la.dtype.kind not in "iu" or la.min() < 1 or la.max() >= num_classes):
            raise ValueError(f"YOLOv1: target {k} labels must be integers in 1..{num_classes - 1} (0 is the "
                             f"background), got {la.tolist()}")


class YOLOv1(nn.Module):
    """YOLO v1: a backbone, a convolutional head to the ``S×S×(B·5 + C)`` grid, the v1 loss.

    The head pools the backbone's map to ``S×S`` (adaptive average pooling: the identity when the
    map already is ``S×S``), then a 3×3 conv → BN → LeakyReLU and a 1×1 conv give ``B·5 + C`` values
    per cell. Differences from the paper, as in most renditions: the two fully connected layers
    are convolutions; outputs go through a sigmoid (``x, y`` — the offset in the cell —, ``√w, √h``
    — the box's size as a fraction of the image, predicted as its square root so the loss needs no
    square root of a prediction — and the confidence) and a softmax (the class probabilities), so
    that every prediction lies in its range. The loss is the paper's: see
    :func:`lamina.models.detection.yolo_loss.yolov1_loss`.

    Images are resized (bilinear) to ``image_size × image_size`` inside, and boxes mapped back to
    each input image's pixels (as torchvision's ``GeneralizedRCNNTransform``).

    Args:
        num_classes: classes including the background (torchvision's convention): the grid
            predicts ``C = num_classes − 1`` class probabilities for labels ``1..num_classes−1``.
        backbone: a module with an ``out_channels`` attribute (a feature map ``(N, out_channels,
            h, w)``); ``None`` builds a :class:`YOLOv1Backbone` with stride ``image_size / S``.
        grid_size: ``S`` (7 in the paper).
        num_boxes: ``B`` (2 in the paper).
        image_size: side of the network input.
        lambda_coord, lambda_noobj: loss weights (5 and 0.5 in the paper).
        confidence_target: ``'iou'`` (the paper) or ``'one'``: the confidence target of a
            responsible predictor.
        score_thresh: detections with a lower class-specific score are dropped.
        nms_thresh: IoU threshold of the per-class non-maximum suppression.
        detections_per_img: most detections kept per image (the highest scores).
        in_channels: image channels (for the default backbone).
        image_mean, image_std: if given, images are normalized ``(x − mean)/std`` per channel
            after resizing (as the classifier a backbone came from was trained).
    """

    def __init__(self, num_classes: int, backbone: nn.Module | None = None, grid_size: int = 7, num_boxes: int = 2,
                 image_size: int = 112, lambda_coord: float = 5.0, lambda_noobj: float = 0.5,
                 confidence_target: str = "iou", score_thresh: float = 0.05, nms_thresh: float = 0.5,
                 detections_per_img: int = 100, in_channels: int = 3, head_channels: int | None = None,
                 image_mean: Sequence[float] | None = None, image_std: Sequence[float] | None = None) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"YOLOv1: num_classes counts the background too and must be at least 2, got {num_classes}")
        if confidence_target not in ("iou", "one"):
            raise ValueError(f"YOLOv1: confidence_target must be 'iou' or 'one', got {confidence_target!r}")
        if grid_size < 1 or num_boxes < 1 or image_size < grid_size:
            raise ValueError(f"YOLOv1: need grid_size >= 1, num_boxes >= 1 and image_size >= grid_size, got "
                             f"{grid_size}, {num_boxes}, {image_size}")
        if backbone is None:
            stride = image_size // grid_size
            depth = max(1, int(np.log2(stride)) + 1) if stride >= 1 else 1
            backbone = YOLOv1Backbone(in_channels, depth=depth)
        if not isinstance(getattr(backbone, "out_channels", None), int):
            raise TypeError(f"YOLOv1: backbone must be an nn.Module with an integer out_channels attribute, got "
                            f"{type(backbone).__name__} (make one from a classifier with "
                            "lamina.models.classifier_backbone)")
        self.num_classes, self.grid_size, self.num_boxes = num_classes, grid_size, num_boxes
        self.image_size = image_size
        self.lambda_coord, self.lambda_noobj, self.confidence_target = lambda_coord, lambda_noobj, confidence_target
        self.score_thresh, self.nms_thresh, self.detections_per_img = score_thresh, nms_thresh, detections_per_img
        self.image_mean = None if image_mean is None else [float(v) for v in image_mean]
        self.image_std = None if image_std is None else [float(v) for v in image_std]
        self.backbone = backbone
        c = backbone.out_channels
        hidden = head_channels or c
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(grid_size),
            nn.Conv2d(c, hidden, 3, padding=1, bias=False), nn.BatchNorm2d(hidden), nn.LeakyReLU(0.1),
            nn.Conv2d(hidden, num_boxes * 5 + num_classes - 1, 1),
        )

    # --- input ------------------------------------------------------------------------------
    def transform(self, images: Any, targets: Any = None) -> tuple[Tensor, list[tuple[int, int]], Any]:
        """Resize (and normalize) images to one batch; scale target boxes alike.

        Returns:
            the batch ``(N, C, image_size, image_size)``, each image's original ``(h, w)``, and
            the targets with boxes in the batch's pixels (``None`` if none were given)."""
        if isinstance(images, Tensor):
            if images.ndim != 4:
                raise ValueError(f"YOLOv1: a batched Tensor of images must be (N, C, H, W), got {tuple(images.shape)}")
            images = [images[i] for i in range(images.shape[0])]
        if not isinstance(images, (list, tuple)) or not images:
            raise ValueError(f"YOLOv1: images must be a non-empty list of Tensor[C, H, W] or a Tensor[N, C, H, W], "
                             f"got {type(images).__name__}")
        s = self.image_size
        sizes, batch = [], []
        for k, im in enumerate(images):
            if not isinstance(im, Tensor) or im.ndim != 3:
                raise ValueError(f"YOLOv1: image {k} must be a Tensor[C, H, W], got "
                                 f"{getattr(im, 'shape', type(im).__name__)}")
            sizes.append((int(im.shape[1]), int(im.shape[2])))
            x = im[None]
            if sizes[-1] != (s, s):
                x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)
            batch.append(x)
        x = cat(batch, dim=0) if len(batch) > 1 else batch[0]
        if self.image_mean is not None and self.image_std is not None:
            mean = Tensor._wrap(np.asarray(self.image_mean, x.dtype).reshape(1, -1, 1, 1))
            std = Tensor._wrap(np.asarray(self.image_std, x.dtype).reshape(1, -1, 1, 1))
            x = (x - mean) / std
        if targets is None:
            return x, sizes, None
        _check_targets(targets, len(images), self.num_classes)
        scaled = []
        for t, (h, w) in zip(targets, sizes):
            factor = np.array([s / w, s / h, s / w, s / h], dtype=np.float32)
            scaled.append({**t, "boxes": Tensor._wrap(t["boxes"].array.astype(np.float32) * factor)})
        return x, sizes, scaled

    # --- network ----------------------------------------------------------------------------
    def predict_grid(self, x: Tensor) -> Tensor:
        """The activated grid ``(N, S, S, B·5 + C)`` for a batch already of ``image_size``."""
        out = self.head(self.backbone(x)).permute(0, 2, 3, 1)
        n, s, b = out.shape[0], self.grid_size, self.num_boxes
        boxes = out[..., :b * 5].sigmoid()
        probs = F.softmax(out[..., b * 5:], dim=-1)
        return cat([boxes, probs], dim=-1).reshape(n, s, s, -1)

    def compute_loss(self, grid: Tensor, targets: Sequence[dict[str, Any]]) -> dict[str, Tensor]:
        """The v1 loss of a grid against targets in the batch's pixels (see ``yolov1_loss``)."""
        return yolov1_loss(grid, targets, (self.image_size, self.image_size), self.num_boxes, self.lambda_coord,
                           self.lambda_noobj, self.confidence_target)

    def postprocess(self, grid: Tensor, sizes: Sequence[tuple[int, int]]) -> list[dict[str, Tensor]]:
        """Detections from a grid: class-specific scores ``confidence × p(class)`` per box,
        score threshold, per-class NMS, the ``detections_per_img`` best, boxes in each image's
        pixels (clipped to it)."""
        g = grid.array
        b, c = self.num_boxes, self.num_classes - 1
        boxes_all = cell_boxes(g, b)  # normalized xyxy (N, S, S, B, 4)
        conf = g[..., 4:b * 5:5]  # (N, S, S, B)
        probs = g[..., b * 5:]  # (N, S, S, C)
        results = []
        for k, (h, w) in enumerate(sizes):
            bx = np.clip(boxes_all[k].reshape(-1, 4), 0.0, 1.0) * np.array([w, h, w, h], dtype=g.dtype)
            scores = (conf[k][..., :, None] * probs[k][..., None, :]).reshape(-1, c)  # (S·S·B, C)
            box_i, cls_i = np.nonzero(scores > self.score_thresh)
            sc = scores[box_i, cls_i]
            sel = bx[box_i]
            ok = ((sel[:, 2] - sel[:, 0]) >= 1e-2) & ((sel[:, 3] - sel[:, 1]) >= 1e-2)  # torchvision's min_size
            sel, sc, cls_i = sel[ok], sc[ok], cls_i[ok]
            keep = batched_nms(Tensor._wrap(sel), Tensor._wrap(sc), Tensor._wrap(cls_i.astype(np.int64)),
                               self.nms_thresh).array[:self.detections_per_img]
            results.append({"boxes": Tensor._wrap(sel[keep].astype(np.float32).reshape(-1, 4)),
                            "labels": Tensor._wrap((cls_i[keep] + 1).astype(np.int64)),
                            "scores": Tensor._wrap(sc[keep].astype(np.float32))})
        return results

    def forward(self, images: Any, targets: Sequence[dict[str, Any]] | None = None,
                return_losses: bool = False) -> Any:
        """Training: the loss dict (``loss_coord``, ``loss_conf_obj``, ``loss_conf_noobj``,
        ``loss_class``). Evaluation: one dict per image (``boxes`` ``[M, 4]`` xyxy in its pixels,
        ``labels`` int64 ``[M]``, ``scores`` ``[M]`` decreasing); with ``return_losses=True`` and
        targets, ``(losses, detections)``."""
        if self.training and targets is None:
            raise ValueError("YOLOv1: targets are required in training mode (model.eval() to detect)")
        if return_losses and targets is None:
            raise ValueError("YOLOv1: return_losses=True needs targets")
        want_loss = self.training or return_losses
        x, sizes, scaled = self.transform(images, targets if want_loss else None)
        grid = self.predict_grid(x)
        if self.training:
            return self.compute_loss(grid, scaled)
        with no_grad():
            detections = self.postprocess(grid, sizes)
        if return_losses:
            return self.compute_loss(grid, scaled), detections
        return detections

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, grid_size={self.grid_size}, num_boxes={self.num_boxes}, "
                f"image_size={self.image_size}")


def yolov1(num_classes: int = 2, backbone: str | nn.Module = "small", **kwargs: Any) -> YOLOv1:
    """A YOLO-v1 detector (see :class:`YOLOv1`).

    Args:
        num_classes: classes including the background.
        backbone: ``'small'`` (a :class:`YOLOv1Backbone` sized for ``image_size / grid_size``), a
            module with ``out_channels``, or a classification model (a zoo model or one loaded from
            a run), whose feature extractor is taken by
            :func:`lamina.models.classifier_backbone`.
        kwargs: the other arguments of :class:`YOLOv1`.
    """
    if isinstance(backbone, str):
        if backbone != "small":
            from ..backbone_utils import classifier_backbone

            backbone = classifier_backbone(backbone)
        else:
            backbone = None  # type: ignore[assignment]
    elif isinstance(backbone, nn.Module) and not isinstance(getattr(backbone, "out_channels", None), int):
        from ..backbone_utils import classifier_backbone

        backbone = classifier_backbone(backbone)
    return YOLOv1(num_classes, backbone=backbone, **kwargs)  # type: ignore[arg-type]
