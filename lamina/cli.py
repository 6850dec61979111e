"""Floor 6: the ``lamina`` command line. Until ``lamina train`` exists, ``lamina demo`` (and
``python -m lamina``) builds a small graph and prints its gradients."""

from __future__ import annotations

import argparse
import sys


def demo() -> int:
    import lamina

    print("lamina demo — backpropagation through a computational graph\n")
    x = lamina.tensor(-2.0, requires_grad=True)
    y = lamina.tensor(5.0, requires_grad=True)
    z = lamina.tensor(-4.0, requires_grad=True)
    q = x + y
    f = q * z
    f.backward()
    print("f(x, y, z) = (x + y) * z  at x=-2, y=5, z=-4")
    print(f"  f = {f.item():g}")
    print(f"  df/dx = z = {x.grad.item():g}   df/dy = z = {y.grad.item():g}", end="")
    print(f"   df/dz = x + y = {z.grad.item():g}")

    lamina.manual_seed(0)
    w = lamina.randn(3, dtype=lamina.float64, requires_grad=True)
    b = lamina.tensor(0.1, dtype=lamina.float64, requires_grad=True)
    inp = lamina.tensor([1.0, -2.0, 0.5], dtype=lamina.float64)
    out = ((w * inp).sum() + b).sigmoid()
    out.backward()
    print("\nA sigmoid neuron  s = sigmoid(w·x + b)")
    print(f"  s = {out.item():.6f}")
    print(f"  ds/dw = s(1-s)·x = {[round(v, 6) for v in w.grad.tolist()]}")
    print(f"  ds/db = s(1-s)   = {b.grad.item():.6f}")

    t = lamina.tensor(1.5, dtype=lamina.float64, requires_grad=True)
    (g,) = lamina.autograd.grad(t ** 3, t, create_graph=True)
    (h,) = lamina.autograd.grad(g, t)
    print("\nHigher order: d/dt t³ = 3t² =", g.item(), "  d²/dt² t³ = 6t =", h.item())
    ok = lamina.autograd.gradcheck(lambda a: (a * a).sum().sigmoid(), (w,))
    print("gradcheck of sigmoid(sum(w²)) in float64:", "passed" if ok else "FAILED")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lamina", description="lamina command line")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("demo", help="build a small graph and print its gradients")
    args = parser.parse_args(argv)
    if args.command in (None, "demo"):
        return demo()
    parser.print_help()
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
