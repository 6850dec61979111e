"""Explain a trained CNN: train the LeNet-style net of a bare ``lamina train`` on the embedded
8×8 digits (a few epochs, under a minute on 2 cores) — or take an existing run folder — and
draw every picture of ``lamina explain`` into it, all shown in its ``report.html``.

    python examples/explain_cnn.py                        # trains into runs/explain_demo
    python examples/explain_cnn.py --run runs/my_run      # explains an existing run folder
    python examples/explain_cnn.py --index 7 --epochs 6

The same pictures one at a time: ``lamina explain RUN --method gradcam`` (see ``--help``).
Needs matplotlib (pip install 'lamina[plot]').
"""

from __future__ import annotations

import argparse
import os

from lamina.vis.explain_cli import METHODS, explain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="an existing run folder or checkpoint (default: train a new one)")
    parser.add_argument("--out", default=os.path.join("runs", "explain_demo"), help="run folder to train into")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--index", type=int, default=0, help="the test image to explain")
    args = parser.parse_args()

    run = args.run
    if run is None:
        from lamina.train.run import default_config, train_run

        config = default_config()
        config["epochs"] = args.epochs
        final = train_run(config, args.out, log=lambda *a, **k: None, progress=False)
        print(f"trained {config['model']} on {config['data']}: test accuracy {final['test_accuracy']:.3f}")
        run = args.out
    for method in METHODS:
        if method == "decision-boundary":
            continue
        written, notes = explain(run, method, index=args.index)
        print(f"{method:>20}: {os.path.basename(written[0])}" + (f"  ({notes[0]})" if notes else ""))
    print(f"report: {os.path.join(run if os.path.isdir(run) else os.path.dirname(run), 'report.html')}")


if __name__ == "__main__":
    main()
