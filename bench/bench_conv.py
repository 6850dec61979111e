"""Convolution speed: lamina vs torch (CPU), side by side in one process.

    python bench/bench_conv.py            # median of 7+ calls per case (blocks of 0.1 s at least)
    python bench/bench_conv.py --quick    # 3 repeats, smaller batches
    python bench/bench_conv.py --numpy    # lamina without the optional numba kernels
    python bench/bench_conv.py --threads 1  # one thread each (steadier on a shared machine)

Prints, per case, the median time of the forward pass and of forward + backward (input,
weight and bias gradients) for lamina and torch (each timed in blocks of its own, two rounds,
see ``_harness.py``), and the ratio lamina/torch. Then the peak
memory of the 3×3 case: for lamina the peak of NumPy allocations seen by ``tracemalloc``, and
for both libraries, each in a fresh subprocess, the rise of the peak resident set (``VmHWM`` in
``/proc/self/status``, reset through ``/proc/self/clear_refs``) over one forward + backward —
torch's CPU allocator does not report a peak of its own, so the resident set is the common
yardstick (with glibc's mmap threshold fixed so that freed buffers leave the resident set).
Tests never assert on time; record figures in ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tracemalloc

if "--threads" in sys.argv:  # BLAS, numba and lamina read their thread counts at import
    _n = sys.argv[sys.argv.index("--threads") + 1]
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                 "LAMINA_NUM_THREADS"):
        os.environ[_var] = _n

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import _harness  # noqa: E402
from _harness import block_medians, median_ms, start_lamina_threads  # noqa: E402

start_lamina_threads()  # before torch: see _harness.py

import torch  # noqa: E402

import lamina  # noqa: E402
import lamina.nn.functional as F  # noqa: E402
from lamina.ops.kernels import im2col as kernels  # noqa: E402

TF = torch.nn.functional

# name, N, C_in, C_out, size, kernel, stride, padding, groups, transposed
CASES = [
    ("conv2d 3x3 (N=32, 64->64, 32x32, pad 1)", 32, 64, 64, 32, 3, 1, 1, 1, False),
    ("conv2d 5x5 LeNet c1 (N=64, 1->6, 28x28, pad 2)", 64, 1, 6, 28, 5, 1, 2, 1, False),
    ("conv2d 5x5 LeNet c3 (N=64, 6->16, 14x14)", 64, 6, 16, 14, 5, 1, 0, 1, False),
    ("conv2d 1x1 (N=32, 256->64, 16x16)", 32, 256, 64, 16, 1, 1, 0, 1, False),
    ("depthwise 3x3 (N=32, C=128, 32x32, pad 1)", 32, 128, 128, 32, 3, 1, 1, 128, False),
    ("conv2d 3x3 stride 2 (N=32, 64->128, 32x32, pad 1)", 32, 64, 128, 32, 3, 2, 1, 1, False),
    ("conv_transpose2d 4x4 stride 2 (N=16, 64->32, 16x16, pad 1)", 16, 64, 32, 16, 4, 2, 1, 1, True),
]


def median_pair_ms(fa, fb, repeats: int) -> tuple[float, float]:
    """Median ms of ``fa`` and ``fb``, each timed in blocks of its own (see ``_harness.py``)."""
    ta, tb = block_medians([fa, fb], repeats)
    return median_ms(ta), median_ms(tb)


def make(case, quick: bool):
    _, n, cin, cout, size, k, s, p, g, transposed = case
    if quick:
        n = max(1, n // 4)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, cin, size, size)).astype(np.float32)
    wshape = (cin, cout // g, k, k) if transposed else (cout, cin // g, k, k)
    w = (rng.standard_normal(wshape) * 0.1).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    if transposed:
        lam = lambda x, w, b: F.conv_transpose2d(x, w, b, stride=s, padding=p, groups=g)  # noqa: E731
        tor = lambda x, w, b: TF.conv_transpose2d(x, w, b, stride=s, padding=p, groups=g)  # noqa: E731
    else:
        lam = lambda x, w, b: F.conv2d(x, w, b, stride=s, padding=p, groups=g)  # noqa: E731
        tor = lambda x, w, b: TF.conv2d(x, w, b, stride=s, padding=p, groups=g)  # noqa: E731
    return x, w, b, lam, tor


def run_case(case, repeats: int, quick: bool) -> tuple[float, float, float, float]:
    x, w, b, lam, tor = make(case, quick)
    lx, lw, lb = (lamina.tensor(a, requires_grad=True) for a in (x, w, b))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    gy = np.random.default_rng(1).standard_normal(tor(tx, tw, tb).shape).astype(np.float32)
    lgy, tgy = lamina.tensor(gy), torch.tensor(gy)

    def lam_fwd():
        with lamina.no_grad():
            lam(lx, lw, lb)

    def tor_fwd():
        with torch.no_grad():
            tor(tx, tw, tb)

    def lam_fb():
        lx.grad = lw.grad = lb.grad = None
        lam(lx, lw, lb).backward(lgy)

    def tor_fb():
        tx.grad = tw.grad = tb.grad = None
        tor(tx, tw, tb).backward(tgy)

    lf, tf = median_pair_ms(lam_fwd, tor_fwd, repeats)
    lfb, tfb = median_pair_ms(lam_fb, tor_fb, repeats)
    return lf, tf, lfb, tfb


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return 0


def memory_child(which: str) -> None:
    """In a fresh process: the rise of the peak resident set over one forward + backward of the
    3×3 case (after a small warm-up conv has loaded the libraries), in MB."""
    x, w, b, lam, tor = make(CASES[0], False)
    if which == "lamina":
        wrap, fn, root = (lambda a: lamina.tensor(a, requires_grad=True)), lam, lamina.tensor
    else:
        wrap, fn, root = (lambda a: torch.tensor(a, requires_grad=True)), tor, torch.tensor
    sx, sw, sb = wrap(x[:1, :8].copy()), wrap(w[:8, :8].copy()), wrap(b[:8].copy())
    y = fn(sx, sw, sb)
    y.backward(root(np.ones(tuple(y.shape), dtype=np.float32)))
    tx, tw, tb = (wrap(a) for a in (x, w, b))
    gy = root(np.ones((x.shape[0], w.shape[0], x.shape[2], x.shape[3]), dtype=np.float32))
    del y
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current resident set
    base = _status("VmRSS:")
    fn(tx, tw, tb).backward(gy)
    print(f"{(_status('VmHWM:') - base) / 2**20:.1f}")


def memory() -> None:
    x, w, b, lam, _ = make(CASES[0], False)
    lx, lw, lb = (lamina.tensor(a, requires_grad=True) for a in (x, w, b))
    gy = lamina.tensor(np.ones((x.shape[0], w.shape[0], x.shape[2], x.shape[3]), dtype=np.float32))
    lam(lx, lw, lb).backward(gy)
    tracemalloc.start()
    lam(lx, lw, lb).backward(gy)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"\npeak memory of {CASES[0][0]}, forward + backward (input and output 8.0 MB each):")
    print(f"  lamina: NumPy allocations peak (tracemalloc) {peak / 2**20:.1f} MB")
    # with glibc's mmap threshold fixed, freed large buffers leave the resident set at once, so
    # the resident set follows what each library holds alive (lamina's own malloc settings, which
    # keep freed memory for reuse, are left out: see lamina/runtime/memory.py)
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", LAMINA_KEEP_MEMORY="0")
    for which in ("lamina", "torch"):
        try:
            out = subprocess.run([sys.executable, __file__, "--memory-child", which], env=env, check=True,
                                 capture_output=True, text=True).stdout.strip().splitlines()[-1]
            print(f"  {which}: peak resident-set rise over one forward + backward {out} MB")
        except (subprocess.CalledProcessError, OSError, IndexError) as e:  # e.g. no /proc
            print(f"  {which}: resident-set measurement unavailable ({type(e).__name__})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--block-s", type=float, default=_harness.MIN_BLOCK_S,
                    help="time each block for at least this long (0: only the repeats, right after the pause)")
    ap.add_argument("--quick", action="store_true", help="3 repeats and a quarter of the batch")
    ap.add_argument("--numpy", action="store_true", help="disable the optional numba kernels")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for both libraries (default: all cores); 1 gives ratios that a busy machine "
                         "disturbs less")
    ap.add_argument("--memory-child", choices=["lamina", "torch"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    _harness.set_min_block(args.block_s)
    if args.memory_child:
        memory_child(args.memory_child)
        return
    if args.numpy:
        kernels.use_numba(False)
    repeats = args.repeats or (3 if args.quick else 7)
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    print(f"lamina vs torch {torch.__version__} CPU ({torch.get_num_threads()} threads), float32, "
          f"median of {repeats}+ calls per block (blocks of {_harness.MIN_BLOCK_S} s at least); "
          f"numba kernels: {'on' if kernels.use_numba() else 'off'}")
    print(f"{'case':60s} {'fwd lam':>8s} {'torch':>8s} {'ratio':>6s}   {'f+b lam':>8s} {'torch':>8s} {'ratio':>6s}")
    for case in CASES:
        lf, tf, lfb, tfb = run_case(case, repeats, args.quick)
        print(f"{case[0]:60s} {lf:8.1f} {tf:8.1f} {lf / tf:6.2f}   {lfb:8.1f} {tfb:8.1f} {lfb / tfb:6.2f}",
              flush=True)
    memory()


if __name__ == "__main__":
    main()
