"""Box ops speed: lamina's nms against onnxruntime's NonMaxSuppression, and box_iou against
torchvision's formula written in torch, side by side in one process.

    python bench/bench_boxes.py            # median of 9+ calls per block (blocks of 0.1 s at least)
    python bench/bench_boxes.py --quick    # 3 repeats, 1,000 boxes and a 300×300 IoU matrix

NMS: 5,000 random boxes (spread: corners uniform in a 1000×1000 image, sides 10–100; clustered:
20 clusters, so that most boxes are suppressed), scores uniform, float32, threshold 0.5 and
0.7. lamina's ``nms`` (its numba kernel) and its NumPy kernel against onnxruntime (CPU, one intra-op thread; its
NonMaxSuppression is a serial loop) with ``max_output_boxes_per_class`` unlimited and no
score threshold; the selections are checked to be equal. box_iou: boxes1 ``[N, 4]`` against
boxes2 ``[N, 4]``, forward (no graph) and forward + backward of the sum, against the same formula
in torch ops (torchvision's ``box_iou`` is Python over torch ops; its C++ ops are not needed).
Prints the ratio lamina / other. Tests never assert on time; record figures in bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import _harness  # noqa: E402
from _harness import block_medians, median_ms, start_lamina_threads  # noqa: E402

start_lamina_threads()  # before torch: see _harness.py

import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

import lamina  # noqa: E402
from lamina.ops.kernels import nms as K  # noqa: E402
from lamina.vision import ops as V  # noqa: E402


def nms_boxes(n: int, clustered: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if clustered:
        centers = rng.uniform(100, 900, (20, 2))
        c = centers[rng.integers(0, 20, n)] + rng.normal(0, 15, (n, 2))
        wh = rng.uniform(40, 80, (n, 2))
        xy = c - wh / 2
    else:
        xy, wh = rng.uniform(0, 1000, (n, 2)), rng.uniform(10, 100, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32), rng.random(n).astype(np.float32)


def ort_session() -> ort.InferenceSession:
    graph = helper.make_graph(
        [helper.make_node("NonMaxSuppression", ["boxes", "scores", "max", "iou"], ["selected"], center_point_box=0)],
        "nms",
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, None, 4]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1, None]),
         helper.make_tensor_value_info("max", TensorProto.INT64, [1]),
         helper.make_tensor_value_info("iou", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("selected", TensorProto.INT64, [None, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def bench_nms(n: int, repeats: int) -> None:
    session = ort_session()
    print(f"\nnms, {n} boxes, float32 (ms; ratio lamina / onnxruntime)")
    head = f"{'case':26s} {'kept':>5s} {'numba':>8s} {'numpy':>8s} {'onnxrt':>8s} {'numba/ort':>10s} {'numpy/ort':>10s}"
    print(head)
    print("-" * len(head))
    for clustered in (False, True):
        boxes, scores = nms_boxes(n, clustered)
        tb, ts = lamina.tensor(boxes), lamina.tensor(scores)
        for thr in (0.5, 0.7):
            feed = {"boxes": boxes[None][:, :, [1, 0, 3, 2]], "scores": scores[None, None],
                    "max": np.array([1 << 40]), "iou": np.array([thr], np.float32)}
            kept = session.run(None, feed)[0][:, 2]
            fns = [lambda tb=tb, ts=ts, thr=thr: V.nms(tb, ts, thr),  # the public op: checks, then numba's kernel
                   lambda boxes=boxes, scores=scores, thr=thr: K.nms_keep(boxes, scores, thr, kernel="numpy")]
            for f in fns:
                assert f().tolist() == kept.tolist(), "lamina and onnxruntime disagree"
            tn, tp, to = block_medians(fns + [lambda feed=feed: session.run(None, feed)], repeats)
            mn, mp, mo = median_ms(tn), median_ms(tp), median_ms(to)
            name = f"{'clustered' if clustered else 'spread'}, iou {thr}"
            print(f"{name:26s} {len(kept):5d} {mn:8.2f} {mp:8.2f} {mo:8.2f} {mn / mo:9.2f}x {mp / mo:9.2f}x",
                  flush=True)


def t_box_iou(b1: torch.Tensor, b2: torch.Tensor) -> torch.Tensor:
    area1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
    area2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
    wh = (torch.min(b1[:, None, 2:], b2[:, 2:]) - torch.max(b1[:, None, :2], b2[:, :2])).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area1[:, None] + area2 - inter)


def bench_box_iou(n: int, repeats: int) -> None:
    b1, _ = nms_boxes(n, False, seed=1)
    b2, _ = nms_boxes(n, False, seed=2)
    l1, l2 = lamina.tensor(b1, requires_grad=True), lamina.tensor(b2, requires_grad=True)
    t1, t2 = torch.tensor(b1, requires_grad=True), torch.tensor(b2, requires_grad=True)
    np.testing.assert_allclose(V.box_iou(l1, l2).detach().numpy(), t_box_iou(t1, t2).detach().numpy(), rtol=1e-6)

    def lam_fwd():
        with lamina.no_grad():
            V.box_iou(l1, l2)

    def tor_fwd():
        with torch.no_grad():
            t_box_iou(t1, t2)

    def lam_fb():
        l1.grad = l2.grad = None
        V.box_iou(l1, l2).sum().backward()

    def tor_fb():
        t1.grad = t2.grad = None
        t_box_iou(t1, t2).sum().backward()

    lf, tf = (median_ms(t) for t in block_medians([lam_fwd, tor_fwd], repeats))
    lb, tb = (median_ms(t) for t in block_medians([lam_fb, tor_fb], repeats))
    print(f"\nbox_iou {n}x{n}, float32 (ms; ratio lamina / torch)")
    head = f"{'case':26s} {'lamina':>8s} {'torch':>8s} {'ratio':>7s}"
    print(head)
    print("-" * len(head))
    print(f"{'forward':26s} {lf:8.2f} {tf:8.2f} {lf / tf:6.2f}x")
    print(f"{'forward + backward':26s} {lb:8.2f} {tb:8.2f} {lb / tb:6.2f}x", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--block-s", type=float, default=_harness.MIN_BLOCK_S,
                    help="time each block for at least this long (0: only the repeats, right after the pause)")
    ap.add_argument("--quick", action="store_true", help="3 repeats, 1,000 boxes, a 300×300 IoU matrix")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--torch-threads", type=int, default=None, help="torch's intra-op threads")
    args = ap.parse_args(argv)
    _harness.set_min_block(args.block_s)
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    repeats = args.repeats or (3 if args.quick else 9)
    print(f"onnxruntime {ort.__version__} (1 thread), torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"numpy {np.__version__}, median of {repeats}+ calls per block (blocks of {_harness.MIN_BLOCK_S} s at least)")
    bench_nms(1000 if args.quick else 5000, repeats)
    bench_box_iou(300 if args.quick else 1000, repeats)


if __name__ == "__main__":
    main()
