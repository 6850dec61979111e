"""Deformable convolution speed: lamina against onnxruntime's DeformConv and lamina's conv2d.

    python bench/bench_deform.py                # N=4, 64→64, 32×32, 3×3, padding 1 (the deformable-conv target case)
    python bench/bench_deform.py --quick        # 3 repeats, N=1
    python bench/bench_deform.py --numpy        # lamina's NumPy path instead of its numba loops
    python bench/bench_deform.py --threads 1    # both libraries on one thread (steadier on a loaded machine)

Prints the median time of

- the forward (no graph) of ``lamina.vision.ops.deform_conv2d`` and of onnxruntime's CPU
  ``DeformConv`` (opset 19, built with ``onnx.helper``), with a mask (DCNv2) and without (DCNv1),
  and the ratio lamina / onnxruntime (target ≤ 1.5);
- the forward + backward of ``deform_conv2d`` (gradients of input, offset, mask, weight and bias)
  and of lamina's plain ``conv2d`` of the same shape (input, weight, bias), and the ratio
  deform / conv2d (target ≤ 3).

Each library is timed in blocks of its own after a pause (``_harness.py``); onnxruntime's
threads spin for a while after each call by default, which the pause lets run out. Tests never
assert on time; record figures in ``bench/README.md``.
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

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

import lamina  # noqa: E402
import lamina.nn.functional as F  # noqa: E402
from lamina.ops.kernels import deform as deform_kernels  # noqa: E402
from lamina.vision.ops import deform_conv2d  # noqa: E402


def ort_session(k: int, padding: int, with_mask: bool, threads: int | None) -> ort.InferenceSession:
    """onnxruntime's DeformConv (stride 1, dilation 1, one group and offset group) as a session."""
    names = ["X", "W", "offset", "B"] + (["mask"] if with_mask else [])
    node = helper.make_node("DeformConv", names, ["Y"], dilations=[1, 1], group=1, kernel_shape=[k, k],
                            offset_group=1, pads=[padding] * 4, strides=[1, 1])
    inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in names]
    graph = helper.make_graph([node], "deform", inputs, [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 repeats and N=1")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--block-s", type=float, default=_harness.MIN_BLOCK_S,
                    help="time each block for at least this long (0: only the repeats, right after the pause)")
    ap.add_argument("--numpy", action="store_true", help="lamina's NumPy path instead of the numba loops")
    ap.add_argument("--threads", type=int, default=None, help="lamina's and onnxruntime's threads")
    ap.add_argument("--ort-threads", type=int, default=None,
                    help="onnxruntime's intra-op threads (default: --threads, else its own choice, one per core)")
    args = ap.parse_args(argv)
    if args.threads:
        lamina.set_num_threads(args.threads)
        args.ort_threads = args.ort_threads or args.threads
    _harness.set_min_block(args.block_s)
    repeats = args.repeats or (3 if args.quick else 9)
    if args.numpy:
        deform_kernels.force_kernel("numpy")
    n, c, size, k, padding = (1 if args.quick else 4), 64, 32, 3, 1
    taps = k * k
    rng = np.random.default_rng(0)
    f32 = np.float32
    x = rng.standard_normal((n, c, size, size)).astype(f32)
    w = (rng.standard_normal((c, c, k, k)) / np.sqrt(c * taps)).astype(f32)
    b = rng.standard_normal(c).astype(f32)
    offset = rng.uniform(-2, 2, (n, 2 * taps, size, size)).astype(f32)  # samples partly outside the image
    mask = rng.uniform(0, 1, (n, taps, size, size)).astype(f32)
    gy = rng.standard_normal((n, c, size, size)).astype(f32)
    print(f"lamina ({lamina.get_num_threads()} threads, kernel {deform_kernels.select_kernel(f32)}), "
          f"onnxruntime {ort.__version__} (intra-op threads {args.ort_threads or 'default'}), onnx {onnx.__version__}, "
          f"numpy {np.__version__}; float32, N={n}, {c}→{c}, {size}×{size}, {k}×{k}, padding {padding}; "
          f"median of {repeats}+ calls per block (blocks of {_harness.MIN_BLOCK_S} s at least)")

    T = lamina.tensor
    lx, lw, lb, loff, lmask = (T(a, requires_grad=True) for a in (x, w, b, offset, mask))
    lgy = T(gy)
    rows = []
    for with_mask in (True, False):
        sess = ort_session(k, padding, with_mask, args.ort_threads)
        feed = {"X": x, "W": w, "offset": offset, "B": b} | ({"mask": mask} if with_mask else {})
        m = lmask if with_mask else None
        got = deform_conv2d(T(x), T(offset), T(w), T(b), padding=padding, mask=None if m is None else T(mask))
        err = float(np.abs(got.numpy() - sess.run(None, feed)[0]).max())

        def lam_fwd(m=m):
            with lamina.no_grad():
                deform_conv2d(lx, loff, lw, lb, padding=padding, mask=m)

        def ort_fwd(sess=sess, feed=feed):
            sess.run(None, feed)

        lt, ot = (median_ms(t) for t in block_medians([lam_fwd, ort_fwd], repeats))
        rows.append((f"forward DCNv{2 if with_mask else 1} vs onnxruntime (max |Δ| {err:.1e})", lt, ot))

    def deform_fb():
        for t in (lx, lw, lb, loff, lmask):
            t.grad = None
        deform_conv2d(lx, loff, lw, lb, padding=padding, mask=lmask).backward(lgy)

    def conv_fb():
        for t in (lx, lw, lb):
            t.grad = None
        F.conv2d(lx, lw, lb, padding=padding).backward(lgy)

    dt, ct = (median_ms(t) for t in block_medians([deform_fb, conv_fb], repeats))
    rows.append(("forward + backward DCNv2 vs lamina conv2d", dt, ct))
    head = f"{'case':52s} {'lamina ms':>10s} {'other ms':>9s} {'ratio':>6s}"
    print(head)
    print("-" * len(head))
    for name, mine, other in rows:
        print(f"{name:52s} {mine:10.2f} {other:9.2f} {mine / other:6.2f}")


if __name__ == "__main__":
    main()
