"""The lectures' backpropagation figure: the computational graph of a small expression, each
node showing its value and each edge the value flowing forward and the gradient ``∂f/∂·``
flowing back, drawn as SVG or PNG.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from .. import backend
from ..autograd import Tensor, grad, tensor
from ..autograd.function import _record_ops
from ._common import pyplot, save_figure

__all__ = ["trace", "plot_computational_graph"]

xp = backend.xp


def trace(fn: Callable[..., Tensor], inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Evaluate ``fn(**inputs)`` on float64 tensors and return its graph: ``nodes`` (id → dict
    with ``label``, ``value``, ``grad``, ``kind`` in ``'input' | 'op' | 'const'``), ``edges``
    (``(src, dst)`` pairs, inputs of each op in order) and ``output`` (the id of the result).
    Gradients are ``∂ output / ∂ node`` (the output must be a scalar).

    Example:
        >>> g = trace(lambda x, y, z: (x + y) * z, {"x": -2.0, "y": 5.0, "z": -4.0})
        >>> sorted((n["label"], n["value"], n["grad"]) for n in g["nodes"].values())[:3]
        [('Add', 3.0, -4.0), ('Mul', -12.0, 1.0), ('x', -2.0, -4.0)]
    """
    leaves = {k: tensor(v, dtype=backend.float64, requires_grad=True) for k, v in inputs.items()}
    with _record_ops() as made:
        out = fn(**leaves)
    if not isinstance(out, Tensor) or out.numel() != 1:
        raise ValueError("plot_computational_graph: fn must return a scalar Tensor")
    producers = {id(o): (cls, ins, o) for cls, ins, o, _ in made}
    nodes: dict[int, dict[str, Any]] = {}
    edges: list[tuple[int, int]] = []
    names = {id(t): k for k, t in leaves.items()}

    def visit(t: Tensor) -> int:
        key = id(t)
        if key in nodes:
            return key
        if isinstance(t, Tensor) and key in producers:
            cls, ins, _ = producers[key]
            nodes[key] = dict(label=cls.__name__, value=t, kind="op")
            for i in ins:
                if isinstance(i, Tensor):  # options passed positionally (shapes, dims) are not drawn
                    edges.append((visit(i), key))
        else:
            nodes[key] = dict(label=names.get(key, "const"), value=t, kind="input" if key in names else "const")
        return key

    root = visit(out)
    differentiable = [k for k, n in nodes.items() if isinstance(n["value"], Tensor) and n["value"].requires_grad]
    grads = grad(out, [nodes[k]["value"] for k in differentiable], allow_unused=True)
    gmap = dict(zip(differentiable, grads))
    for k, n in nodes.items():
        v = n["value"]
        n["value"] = _num(v.detach().array if isinstance(v, Tensor) else v)
        g = gmap.get(k)
        n["grad"] = None if g is None else _num(g.array)
    return dict(nodes=nodes, edges=edges, output=root)


def _num(a: Any) -> Any:
    a = xp.asarray(a)
    return float(a.reshape(())) if a.size == 1 else a


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    return f"{v:.4g}" if isinstance(v, float) else f"array{tuple(v.shape)}"


def plot_computational_graph(fn: Callable[..., Tensor], inputs: Mapping[str, Any],
                             path: str | os.PathLike[str], title: str = "") -> str:
    """Draw the graph of ``fn(**inputs)`` left to right: inputs on the left, the result on the
    right; each node shows its value; above each edge the forward value (green), below it the
    gradient of the result with respect to that value (red). SVG if ``path`` ends in ``.svg``,
    else PNG. The figure is ``(1.9·depth + 1.2) × (1.3·width + 0.8)`` inches.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "graph.svg")
        >>> _ = plot_computational_graph(lambda x, y, z: (x + y) * z, {"x": -2, "y": 5, "z": -4}, p)
        >>> open(p).read(5)
        '<?xml'
    """
    g = trace(fn, inputs)
    nodes, edges = g["nodes"], g["edges"]
    depth: dict[int, int] = {}

    def d(k: int) -> int:
        if k not in depth:
            srcs = [s for s, t in edges if t == k]
            depth[k] = 1 + max((d(s) for s in srcs), default=-1)
        return depth[k]

    for k in nodes:
        d(k)
    levels: dict[int, list[int]] = {}
    for k in nodes:
        levels.setdefault(depth[k], []).append(k)
    ncol, nrow = max(levels) + 1, max(len(v) for v in levels.values())
    pos = {k: (c, (len(ks) - 1) / 2 - i) for c, ks in levels.items() for i, k in enumerate(ks)}
    plt = pyplot()
    fig = plt.figure(figsize=(1.9 * ncol + 1.2, 1.3 * nrow + 0.8))
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.9 if title else 0.96))
    ax.axis("off")
    ax.set_xlim(-0.6, ncol - 0.4)
    ax.set_ylim(-(nrow - 1) / 2 - 0.6, (nrow - 1) / 2 + 0.6)
    for s, t in edges:
        (x0, y0), (x1, y1) = pos[s], pos[t]
        ax.annotate("", xy=(x1 - 0.22, y1), xytext=(x0 + 0.22, y0),
                    arrowprops=dict(arrowstyle="->", color="#555", lw=1.2))
        mx, my = x0 + 0.38 * (x1 - x0), y0 + 0.38 * (y1 - y0)  # off-centre: crossing edges keep apart
        ax.text(mx, my + 0.09, _fmt(nodes[s]["value"]), color="green", ha="center", va="bottom", fontsize=9)
        ax.text(mx, my - 0.09, _fmt(nodes[s]["grad"]), color="crimson", ha="center", va="top", fontsize=9)
    colors = {"input": "#dbe9f6", "op": "#fde9c9", "const": "#eeeeee"}
    for k, n in nodes.items():
        x, y = pos[k]
        ax.text(x, y, f"{n['label']}\n{_fmt(n['value'])}", ha="center", va="center", fontsize=9,
                bbox=dict(boxstyle="round,pad=0.35", fc=colors[n["kind"]], ec="#333"))
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)
