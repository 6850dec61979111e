"""Autograd overhead: lamina vs torch (CPU) side by side in one process.

Cases: a chain of small elementwise ops (graph bookkeeping dominates), a 2-layer MLP
forward + backward on a mini-batch (GEMMs dominate), and a softmax cross-entropy.
Prints the median time of each and the ratio lamina/torch.

    python bench/bench_autograd.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import lamina
import lamina.nn.functional as F

lamina.runtime.tune()  # the benchmark owns its process, as the ``lamina`` command does


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def chain(lib, x, n):
    def run():
        y = x
        for _ in range(n):
            y = (y * 1.0001 + 0.001).tanh()
        y.sum().backward()
    return run


def mlp(lib, x, w1, w2, tgt):
    Fn = F if lib is lamina else torch.nn.functional

    def run():
        h = (x @ w1).relu()
        loss = Fn.cross_entropy(h @ w2, tgt)
        loss.backward()
    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    reps = 3 if args.quick else 9
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    cases = []
    small = rng.standard_normal((16,)).astype(np.float32)
    cases.append(("chain of 300 elementwise ops (16 elements)",
                  lambda lib: chain(lib, lib.tensor(small, requires_grad=True), 300)))
    xb = rng.standard_normal((256, 784)).astype(np.float32)
    w1 = (rng.standard_normal((784, 256)) * 0.05).astype(np.float32)
    w2 = (rng.standard_normal((256, 10)) * 0.05).astype(np.float32)
    tg = rng.integers(0, 10, 256)
    cases.append(("MLP 784-256-10, batch 256, fwd+bwd",
                  lambda lib: mlp(lib, lib.tensor(xb), lib.tensor(w1, requires_grad=True),
                                  lib.tensor(w2, requires_grad=True), lib.tensor(tg))))
    print(f"{'case':48s} {'lamina ms':>10s} {'torch ms':>10s} {'ratio':>7s}")
    for name, make in cases:
        tl = median_time(make(lamina), reps)
        tt = median_time(make(torch), reps)
        print(f"{name:48s} {tl * 1e3:10.2f} {tt * 1e3:10.2f} {tl / tt:7.2f}")


if __name__ == "__main__":
    main()
