"""Each conv implementation on each pass of the bench_conv cases: what the selector's choice gains.

    python bench/ablate_conv.py            # bench_conv's batch sizes
    python bench/ablate_conv.py --quick    # a quarter of them

For every case of ``bench_conv.py`` and every pass (forward, input gradient, weight gradient),
each implementation of :mod:`lamina.ops.kernels.conv_select` that supports the problem (the
NumPy reference left out) is forced and timed on one thread: the median CPU time
(``time.process_time``, steadier than wall time on a shared machine) of ``--repeats`` calls
after a warm-up, and its ratio to the selector's own choice (marked ``*``). An implementation
that gains less than 15 % over the next best on every case is a candidate for removal.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("LAMINA_NUM_THREADS", "1")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _harness import start_lamina_threads  # noqa: E402

start_lamina_threads()

import lamina  # noqa: E402
from lamina.ops.kernels import conv_gemm  # noqa: E402
from lamina.ops.kernels import conv_select as sel  # noqa: E402


def _cases() -> list[tuple]:
    from bench_conv import CASES  # noqa: PLC0415 - after the threads are set up

    return CASES


def _time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    lamina.set_num_threads(1)
    print(f"{'case':58s} {'pass':11s} {'impl':10s} {'ms':>8s} {'/chosen':>8s}")
    for name, n, cin, cout, size, k, s, p, g, transposed in _cases():
        if args.quick:
            n = max(1, n // 4)
        if transposed:  # the conv whose input gradient the transposed conv is
            cin, cout = cout, cin
            size = (size - 1) * s - 2 * p + k
        _ablate(name, n, cin, cout, size, k, s, p, g, args.repeats)


def _ablate(name: str, n: int, cin: int, cout: int, size: int, k: int, s: int, p: int, g: int, repeats: int) -> None:
    """Time every supported implementation of every pass of one conv, print one row each."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, cin, size, size)).astype(np.float32)
    w = (rng.standard_normal((cout, cin // g, k, k)) * 0.1).astype(np.float32)
    out = ((size + 2 * p - k) // s + 1,) * 2
    gy = rng.standard_normal((n, cout, *out)).astype(np.float32)
    st, dl, pd = (s, s), (1, 1), (p, p)
    calls = {
        "forward": lambda: conv_gemm.conv_forward(x, w, st, dl, pd, out, g),
        "input_grad": lambda: conv_gemm.conv_input_grad(gy, w, (size, size), st, dl, pd, g),
        "weight_grad": lambda: conv_gemm.conv_weight_grad(x, gy, (k, k), st, dl, pd, g),
    }
    prob = sel.problem(x.shape, w.shape, x.dtype, st, dl, pd, out, g)
    for pass_ in sel.PASSES:
        chosen = sel.select(pass_, prob).name
        rows = []
        for impl in sel.table(pass_):
            if impl.name == "reference" or not impl.supports(prob):
                continue
            with sel.force(**{pass_: impl.name}):
                rows.append((impl.name, _time(calls[pass_], repeats)))
        base = dict(rows)[chosen]
        for impl_name, ms in rows:
            mark = "*" if impl_name == chosen else " "
            print(f"{name[:58]:58s} {pass_:11s} {impl_name + mark:10s} {ms:8.2f} {ms / base:8.2f}", flush=True)

if __name__ == "__main__":
    main()
