"""Inference of converted ONNX networks (``lamina.onnx.convert``) against onnxruntime running the
same file, in one process; prints medians and the ratio lamina / onnxruntime.

Networks: rapidocr's trained text-direction classifier (MobileNetV3-style, batch 8 × 3×48×192)
and DBNet text detector (1 × 3×320×320) when rapidocr is installed
(``pip install --no-deps rapidocr``), and ResNet-18 exported from lamina's zoo
(``lamina.onnx.export``, 1 × 3×224×224) always.

    python bench/bench_onnx.py [--quick] [--ort-threads N] [--block-s S]
"""

from __future__ import annotations

import argparse
import glob
import io
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import _harness  # noqa: E402
from _harness import block_medians, median_ms, start_lamina_threads  # noqa: E402

start_lamina_threads()

import onnxruntime as ort  # noqa: E402

import lamina  # noqa: E402
import lamina.onnx  # noqa: E402
from lamina import models  # noqa: E402


def cases(quick: bool) -> list[tuple[str, bytes, tuple[int, ...]]]:
    out = []
    try:
        import rapidocr
    except ImportError:
        print("(rapidocr is not installed: its networks are left out; pip install --no-deps rapidocr)")
    else:
        folder = os.path.join(os.path.dirname(rapidocr.__file__), "models")
        for pattern, shape in (("*cls*.onnx", (8, 3, 48, 192)), ("*det*.onnx", (1, 3, 320, 320))):
            for path in sorted(glob.glob(os.path.join(folder, pattern)))[:1]:
                with open(path, "rb") as fh:
                    out.append((f"rapidocr {os.path.basename(path)}", fh.read(), shape))
    buf = io.BytesIO()
    side = 112 if quick else 224
    lamina.onnx.export(models.resnet18().eval(), lamina.randn(1, 3, side, side), buf)
    out.append((f"lamina resnet18 exported ({side}×{side})", buf.getvalue(), (1, 3, side, side)))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--block-s", type=float, default=_harness.MIN_BLOCK_S,
                    help="time each block for at least this long (0: only the repeats, right after the pause)")
    ap.add_argument("--quick", action="store_true", help="3 repeats, a smaller ResNet input")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--ort-threads", type=int, default=None, help="onnxruntime's intra-op threads (default: its own)")
    args = ap.parse_args(argv)
    _harness.set_min_block(args.block_s)
    repeats = args.repeats or (3 if args.quick else 9)
    print(f"onnxruntime {ort.__version__} ({args.ort_threads or 'default'} threads), numpy {np.__version__}, "
          f"lamina {lamina.get_num_threads()} threads, float32, median of {repeats}+ calls per block")
    head = f"{'network':58s} {'lamina':>10s} {'onnxrt':>10s} {'ratio':>6s} {'max |diff|':>11s}"
    print(head)
    print("-" * len(head))
    options = ort.SessionOptions()
    if args.ort_threads:
        options.intra_op_num_threads = args.ort_threads
    rng = np.random.default_rng(0)
    for name, data, shape in cases(args.quick):
        module = lamina.onnx.convert(data)
        sess = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        x = rng.random(shape, dtype=np.float32)
        xt = lamina.tensor(x)
        feed = {sess.get_inputs()[0].name: x}

        def run_lamina(module=module, xt=xt) -> np.ndarray:
            with lamina.no_grad():
                y = module(xt)
            return (y[0] if isinstance(y, tuple) else y).numpy()

        def run_ort(sess=sess, feed=feed) -> np.ndarray:
            return sess.run(None, feed)[0]

        diff = float(np.abs(run_lamina() - run_ort()).max())
        t_lam, t_ort = block_medians([run_lamina, run_ort], repeats)
        lm, om = median_ms(t_lam), median_ms(t_ort)
        print(f"{name:58s} {lm:8.2f}ms {om:8.2f}ms {lm / om:6.2f} {diff:11.2e}")


if __name__ == "__main__":
    main()
