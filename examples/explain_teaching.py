"""Teaching pictures: the decision regions of a small MLP trained on the two spirals (the
playground's heat map), the computational graph of the lectures' backprop example with values
and gradients on its edges, and convolution-arithmetic animations (GIF) for a few layers.

    python examples/explain_teaching.py --out-dir figures

Needs matplotlib and Pillow (pip install 'lamina[plot]').
"""

from __future__ import annotations

import argparse
import os

import lamina
from lamina import nn, vis
from lamina.datasets import make_spirals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", default=".", help="where the pictures go")
    parser.add_argument("--steps", type=int, default=600, help="training steps of the MLP")
    args = parser.parse_args()
    out = args.out_dir
    os.makedirs(out, exist_ok=True)

    lamina.manual_seed(0)
    x, y = make_spirals(400, classes=2, noise=0.05, seed=0)
    mlp = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 2))
    opt = lamina.optim.Adam(mlp.parameters(), lr=0.01)
    for _ in range(args.steps):
        loss = nn.functional.cross_entropy(mlp(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"spirals: final training loss {loss.item():.3f}")
    print(vis.plot_decision_boundary(mlp, x, y, os.path.join(out, "spirals_decision_regions.png"),
                                     title="MLP 2-32-32-2 (tanh) on two spirals"))

    print(vis.plot_computational_graph(lambda x, y, z: (x + y) * z, {"x": -2.0, "y": 5.0, "z": -4.0},
                                       os.path.join(out, "backprop_graph.svg"), title="f = (x + y) · z"))
    print(vis.plot_computational_graph(lambda w0, x0, w1, x1, b: (w0 * x0 + w1 * x1 + b).sigmoid(),
                                       {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "b": -3.0},
                                       os.path.join(out, "sigmoid_neuron_graph.png"), title="a sigmoid neuron"))

    configs = {
        "conv_no_padding": dict(input_size=4, kernel_size=3),
        "conv_same_padding": dict(input_size=5, kernel_size=3, padding=1),
        "conv_stride2": dict(input_size=5, kernel_size=3, stride=2, padding=1),
        "conv_dilation2": dict(input_size=7, kernel_size=3, dilation=2),
        "transposed_stride2": dict(input_size=3, kernel_size=3, stride=2, padding=1, transposed=True),
    }
    for name, cfg in configs.items():
        print(vis.conv_arithmetic_gif(os.path.join(out, f"{name}.gif"), **cfg))


if __name__ == "__main__":
    main()
