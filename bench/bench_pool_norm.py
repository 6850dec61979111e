"""Pooling and normalization speed: lamina vs torch (CPU), side by side in one process.

    python bench/bench_pool_norm.py            # median of 9+ calls per case (blocks of 0.1 s at least)
    python bench/bench_pool_norm.py --quick    # 3 repeats, a quarter of the batch
    python bench/bench_pool_norm.py --torch-threads 1   # torch on one thread (NumPy's ufuncs use one)

Prints, per case, the median time of the forward pass (no graph) and of forward + backward
(input gradient, and γ/β gradients for batch norm) for lamina and torch, and the ratio
lamina/torch. lamina and torch calls alternate, so both see the same machine load. Tests
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

start_lamina_threads()  # before torch: see _harness.py

import torch  # noqa: E402

import lamina  # noqa: E402
import lamina.nn.functional as F  # noqa: E402

TF = torch.nn.functional


def _bn(lib):
    def fn(x, w, b):
        return lib.batch_norm(x, None, None, w, b, training=True)
    return fn


# name, shape (N, C, H, W), lamina fn, torch fn, affine parameters (γ, β)?
CASES = [
    ("max_pool2d 2x2 (N=32, C=64, 32x32)", (32, 64, 32, 32),
     lambda x: F.max_pool2d(x, 2), lambda x: TF.max_pool2d(x, 2), False),
    ("max_pool2d 3x3/2 (N=32, C=64, 32x32)", (32, 64, 32, 32),
     lambda x: F.max_pool2d(x, 3, 2), lambda x: TF.max_pool2d(x, 3, 2), False),
    ("batch_norm2d train (N=32, C=64, 32x32)", (32, 64, 32, 32), _bn(F), _bn(TF), True),
    ("avg_pool2d 2x2 (N=32, C=64, 32x32)", (32, 64, 32, 32),
     lambda x: F.avg_pool2d(x, 2), lambda x: TF.avg_pool2d(x, 2), False),
    ("adaptive_avg_pool2d 1 (N=32, C=256, 8x8)", (32, 256, 8, 8),
     lambda x: F.adaptive_avg_pool2d(x, 1), lambda x: TF.adaptive_avg_pool2d(x, 1), False),
    ("interpolate bilinear x2 (N=8, C=64, 32x32)", (8, 64, 32, 32),
     lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"),
     lambda x: TF.interpolate(x, scale_factor=2, mode="bilinear"), False),
]


def paired_medians(fa, fb, repeats: int) -> tuple[float, float]:
    """Median ms of ``fa`` and of ``fb``, each timed in blocks of its own (see ``_harness.py``)."""
    ta, tb = block_medians([fa, fb], repeats)
    return median_ms(ta), median_ms(tb)


def run_case(case, repeats: int, quick: bool) -> tuple[float, float, float, float]:
    _, shape, lam, tor, affine = case
    if quick:
        shape = (max(1, shape[0] // 4),) + shape[1:]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    params = [rng.uniform(0.5, 1.5, shape[1]).astype(np.float32), rng.standard_normal(shape[1]).astype(np.float32)]
    lx = lamina.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    lp = [lamina.tensor(p, requires_grad=True) for p in params] if affine else []
    tp = [torch.tensor(p, requires_grad=True) for p in params] if affine else []
    gy = rng.standard_normal(tor(tx, *tp).shape).astype(np.float32)
    lgy, tgy = lamina.tensor(gy), torch.tensor(gy)

    def lam_fwd():
        with lamina.no_grad():
            lam(lx, *lp)

    def tor_fwd():
        with torch.no_grad():
            tor(tx, *tp)

    def lam_fb():
        for t in [lx, *lp]:
            t.grad = None
        lam(lx, *lp).backward(lgy)

    def tor_fb():
        for t in [tx, *tp]:
            t.grad = None
        tor(tx, *tp).backward(tgy)

    return paired_medians(lam_fwd, tor_fwd, repeats) + paired_medians(lam_fb, tor_fb, repeats)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--block-s", type=float, default=_harness.MIN_BLOCK_S,
                    help="time each block for at least this long (0: only the repeats, right after the pause)")
    ap.add_argument("--quick", action="store_true", help="3 repeats and a quarter of the batch")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="torch's intra-op threads (default: torch's own choice); 1 is fairer on a loaded machine")
    args = ap.parse_args(argv)
    _harness.set_min_block(args.block_s)
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    repeats = args.repeats or (3 if args.quick else 9)
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), numpy {np.__version__}, "
          f"float32, median of {repeats}+ calls per block (blocks of {_harness.MIN_BLOCK_S} s at least)"
          f"{' (quick: N/4)' if args.quick else ''}")
    head = (f"{'case':44s} {'fwd lamina':>10s} {'torch':>8s} {'ratio':>6s} {'f+b lamina':>11s} {'torch':>8s} "
            f"{'ratio':>6s}")
    print(head)
    print("-" * len(head))
    for case in CASES:
        lf, tf, lfb, tfb = run_case(case, repeats, args.quick)
        print(f"{case[0]:44s} {lf:8.2f}ms {tf:6.2f}ms {lf / tf:5.2f}x {lfb:9.2f}ms {tfb:6.2f}ms {lfb / tfb:5.2f}x",
              flush=True)


if __name__ == "__main__":
    main()
