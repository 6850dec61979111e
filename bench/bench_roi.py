"""RoI Align speed: lamina vs onnxruntime's RoiAlign (CPU), side by side in one process.

    python bench/bench_roi.py              # median of 9+ calls per block (blocks of 0.1 s at least)
    python bench/bench_roi.py --quick      # 3 repeats, a quarter of the boxes
    python bench/bench_roi.py --numpy      # lamina's NumPy kernels instead of numba's
    python bench/bench_roi.py --ort-threads 1

Prints, per case, the median time of lamina's forward (no graph) and of onnxruntime's, their
ratio, then lamina's forward + backward (input gradient) against onnxruntime's forward:
onnxruntime has no RoiAlign gradient on the CPU, and the backward does the forward's
multiply-adds once more, so 2.0 there is "a backward as fast as onnxruntime's forward". The
ONNX graph is one RoiAlign node (opset 16, mode avg): ``output_half_pixel`` is
``aligned=False``, ``half_pixel`` ``aligned=True``, sampling_ratio 0 the adaptive grid. Tests
never assert on time; record figures in ``bench/README.md``.
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

import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

import lamina  # noqa: E402
from lamina.ops.kernels import roi_align as KA  # noqa: E402
from lamina.vision.ops import roi_align  # noqa: E402

# name, (N, C, H, W), boxes, output size, sampling ratio, aligned
CASES = [
    ("roi_align 7x7 sr2 (N=2, C=256, 50x50, 512 RoIs)", (2, 256, 50, 50), 512, 7, 2, False),
    ("  the same, aligned=True", (2, 256, 50, 50), 512, 7, 2, True),
    ("  the same, adaptive sampling (sr 0)", (2, 256, 50, 50), 512, 7, 0, False),
    ("roi_align 14x14 sr2 (N=1, C=256, 50x50, 128 RoIs)", (1, 256, 50, 50), 128, 14, 2, True),
]
SCALE = 1 / 16  # boxes on an 800 × 800 image, the map 16 times smaller (a Faster R-CNN C4 map)


def boxes(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """``k`` boxes of 16 to 400 pixels a side on an 800 × 800 image, ``(batch, x1, y1, x2, y2)``."""
    xy = rng.uniform(0, 720, (k, 2))
    wh = rng.uniform(16, 400, (k, 2))
    return np.concatenate([rng.integers(0, n, (k, 1)), xy, np.minimum(xy + wh, 800)], 1).astype(np.float32)


def ort_session(size: int, sr: int, aligned: bool, threads: int | None) -> ort.InferenceSession:
    node = helper.make_node("RoiAlign", ["X", "rois", "batch_indices"], ["Y"], mode="avg", output_height=size,
                            output_width=size, sampling_ratio=sr, spatial_scale=SCALE,
                            coordinate_transformation_mode="half_pixel" if aligned else "output_half_pixel")
    graph = helper.make_graph([node], "roi_align",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("rois", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("batch_indices", TensorProto.INT64, None)],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run_case(case, repeats: int, quick: bool, threads: int | None) -> tuple[float, float, float]:
    _, shape, k, size, sr, aligned = case
    if quick:
        k = max(1, k // 4)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    rois = boxes(rng, shape[0], k)
    session = ort_session(size, sr, aligned, threads)
    feed = {"X": x, "rois": np.ascontiguousarray(rois[:, 1:]), "batch_indices": rois[:, 0].astype(np.int64)}
    lx, lrois = lamina.tensor(x, requires_grad=True), lamina.tensor(rois)
    with lamina.no_grad():
        y = roi_align(lx, lrois, size, SCALE, sr, aligned)
    np.testing.assert_allclose(y.numpy(), session.run(None, feed)[0], rtol=1e-4, atol=1e-4)  # the same numbers
    lgy = lamina.tensor(rng.standard_normal(y.shape).astype(np.float32))

    def lam_fwd():
        with lamina.no_grad():
            roi_align(lx, lrois, size, SCALE, sr, aligned)

    def lam_fb():
        lx.grad = None
        roi_align(lx, lrois, size, SCALE, sr, aligned).backward(lgy)

    def ort_fwd():
        session.run(None, feed)

    lf, of, lfb = block_medians([lam_fwd, ort_fwd, lam_fb], repeats)
    return median_ms(lf), median_ms(of), median_ms(lfb)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--block-s", type=float, default=_harness.MIN_BLOCK_S,
                    help="time each block for at least this long (0: only the repeats, right after the pause)")
    ap.add_argument("--quick", action="store_true", help="3 repeats and a quarter of the boxes")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--numpy", action="store_true", help="lamina's NumPy kernels (as without numba)")
    ap.add_argument("--ort-threads", type=int, default=None, help="onnxruntime's intra-op threads (default: its own)")
    args = ap.parse_args(argv)
    _harness.set_min_block(args.block_s)
    repeats = args.repeats or (3 if args.quick else 9)
    impl = "numpy" if args.numpy else KA.align_impl(np.float32)
    print(f"onnxruntime {ort.__version__} ({args.ort_threads or 'default'} threads), numpy {np.__version__}, "
          f"lamina kernel {impl}, float32, spatial_scale 1/16, median of {repeats}+ calls per block "
          f"(blocks of {_harness.MIN_BLOCK_S} s at least){' (quick: K/4)' if args.quick else ''}")
    head = f"{'case':50s} {'fwd lamina':>10s} {'onnxrt':>8s} {'ratio':>6s} {'f+b lamina':>11s} {'/ort fwd':>9s}"
    print(head)
    print("-" * len(head))
    with KA.force_impl(impl):
        for case in CASES:
            lf, of, lfb = run_case(case, repeats, args.quick, args.ort_threads)
            print(f"{case[0]:50s} {lf:8.2f}ms {of:6.2f}ms {lf / of:6.2f} {lfb:9.2f}ms {lfb / of:9.2f}")


if __name__ == "__main__":
    main()
