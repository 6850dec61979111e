"""Draw the paths of lamina's optimizers on 2-D loss surfaces (the lectures' "visualization of
gradient descent optimization algorithms").

    python examples/optimizer_paths.py                       # Rosenbrock → optimizer_paths_rosenbrock.png
    python examples/optimizer_paths.py --surface all --steps 300 --out-dir figures

Needs matplotlib for the picture (pip install 'lamina[plot]'); without it the script still runs
the optimizers and prints where each one ended.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from lamina.vis import optim_paths as op


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--surface", default="rosenbrock", choices=sorted(op.SURFACES) + ["all"])
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps per path")
    parser.add_argument("--out-dir", default=".", help="where the PNG files go")
    args = parser.parse_args()

    names = sorted(op.SURFACES) if args.surface == "all" else [args.surface]
    for name in names:
        fn, start, xlim, ylim, minimum = op.SURFACES[name]
        paths = op.optimizer_paths(fn, start, op.default_optimizers(), steps=args.steps)
        print(f"{name}: start {start}, {args.steps} steps")
        for opt_name, path in paths.items():
            finite = path[np.all(np.isfinite(path), axis=1)]
            end = finite[-1]
            print(f"  {opt_name:12s} ends at ({end[0]: .4f}, {end[1]: .4f})  loss {float(fn(end)):.3g}")
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("  (matplotlib is not installed: no picture; pip install 'lamina[plot]')")
            continue
        os.makedirs(args.out_dir, exist_ok=True)
        out = os.path.join(args.out_dir, f"optimizer_paths_{name}.png")
        op.plot_optimizer_paths(paths, fn, xlim, ylim, out, minimum=minimum,
                                title=f"{name}: {args.steps} steps from {start}")
        print(f"  saved {out}")


if __name__ == "__main__":
    main()
