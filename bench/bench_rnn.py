"""Recurrent layers' speed: one training step (forward, loss, backward, SGD update) of lamina's
LSTM / GRU classifier beside torch's, in one process.

    python bench/bench_rnn.py            # median of 5+ calls per case (blocks of 0.1 s at least)
    python bench/bench_rnn.py --quick    # 3 repeats
    python bench/bench_rnn.py --torch-threads 1

The model is the MNIST-1D sequence classifier of ``lamina train --model lstm``: a recurrent layer
over the 40 steps, a linear head on the last hidden state. Prints lamina's and torch's median
milliseconds per step and the ratio lamina/torch. Tests never assert on time; record figures in
``bench/README.md``.
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

# name, layer, batch, steps, input features, hidden size
CASES = [
    ("LSTM h=64 (N=64, L=40, 1 feature)", "LSTM", 64, 40, 1, 64),
    ("LSTM h=128 (N=64, L=40, 1 feature)", "LSTM", 64, 40, 1, 128),
    ("GRU h=64 (N=64, L=40, 1 feature)", "GRU", 64, 40, 1, 64),
    ("LSTM h=64 2 layers (N=64, L=40, 8 features)", "LSTM2", 64, 40, 8, 64),
]


def _step_fn(lib, kind: str, x, y, hidden: int, features: int):
    nn = lib.nn
    layers = 2 if kind.endswith("2") else 1
    rnn = getattr(nn, kind.rstrip("2"))(features, hidden, num_layers=layers, batch_first=True)
    head = nn.Linear(hidden, 10)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = lib.optim.SGD(params, lr=0.01)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        out, _ = rnn(x)
        loss = loss_fn(head(out[:, -1]), y)
        loss.backward()
        opt.step()
    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--torch-threads", type=int, default=None)
    ap.add_argument("--block-s", type=float, default=_harness.MIN_BLOCK_S)
    args = ap.parse_args()
    _harness.set_min_block(args.block_s)
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    repeats = 3 if args.quick else 5
    print(f"lamina {lamina.__version__ if hasattr(lamina, '__version__') else ''} vs torch {torch.__version__}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'case':<46} {'lamina ms':>10} {'torch ms':>10} {'ratio':>7}")
    rng = np.random.default_rng(0)
    for name, kind, n, steps, features, hidden in CASES:
        xa = rng.standard_normal((n, steps, features)).astype(np.float32)
        ya = rng.integers(0, 10, n)
        lamina.manual_seed(0)
        torch.manual_seed(0)
        lam = _step_fn(lamina, kind, lamina.tensor(xa), lamina.tensor(ya), hidden, features)
        tor = _step_fn(torch, kind, torch.tensor(xa), torch.tensor(ya), hidden, features)
        t_l, t_t = block_medians([lam, tor], repeats)
        ml, mt = median_ms(t_l), median_ms(t_t)
        print(f"{name:<46} {ml:>10.2f} {mt:>10.2f} {ml / mt:>7.2f}")


if __name__ == "__main__":
    main()
