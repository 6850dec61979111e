"""The paths of optimizers on a 2-D loss surface (the lectures' "visualization of gradient
descent optimization algorithms").

:func:`optimizer_paths` runs each optimizer from one starting point on a function of two
variables and records where it goes (pure lamina, always available); :func:`plot_optimizer_paths`
draws the paths over the surface's contours and saves a PNG (needs matplotlib, the optional
``plot`` extra, imported only there).

Example:
    >>> from lamina.vis import optim_paths as op
    >>> paths = op.optimizer_paths(op.quadratic_bowl, (-2.0, 1.5), {"GD": ("GradientDescent", {"lr": 0.1})}, steps=5)
    >>> paths["GD"].shape
    (6, 2)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .. import backend, optim
from ..autograd.tensor import Tensor
from ..nn.parameter import Parameter
from ..serialization import atomic_write

__all__ = ["rosenbrock", "beale", "quadratic_bowl", "saddle", "himmelblau", "SURFACES", "default_optimizers",
           "optimizer_paths", "plot_optimizer_paths"]

xp = backend.xp


# --- surfaces: each works on a lamina Tensor of shape (2,) and on arrays of shape (2, ...) ---
def rosenbrock(xy: Any) -> Any:
    """:math:`(1-x)^2 + 100(y-x^2)^2`: a curved valley, minimum 0 at (1, 1)."""
    x, y = xy[0], xy[1]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def beale(xy: Any) -> Any:
    """Beale's function: flat plateaus and sharp ridges, minimum 0 at (3, 0.5)."""
    x, y = xy[0], xy[1]
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def quadratic_bowl(xy: Any) -> Any:
    """An ill-conditioned bowl :math:`x^2/2 + 5y^2` (condition number 10), minimum at (0, 0)."""
    return 0.5 * xy[0] ** 2 + 5.0 * xy[1] ** 2


def saddle(xy: Any) -> Any:
    """:math:`x^2 - y^2`: a saddle at the origin, unbounded below along y."""
    return xy[0] ** 2 - xy[1] ** 2


def himmelblau(xy: Any) -> Any:
    """Himmelblau's function: four minima of value 0, one at (3, 2)."""
    x, y = xy[0], xy[1]
    return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2


# name -> (function, start, x-limits, y-limits, a minimum or None)
SURFACES: dict[str, tuple[Callable[[Any], Any], tuple[float, float], tuple[float, float], tuple[float, float],
                          tuple[float, float] | None]] = {
    "rosenbrock": (rosenbrock, (-1.5, 2.0), (-2.0, 2.0), (-1.0, 3.0), (1.0, 1.0)),
    "beale": (beale, (1.0, 1.4), (-1.0, 4.5), (-1.5, 2.0), (3.0, 0.5)),
    "quadratic_bowl": (quadratic_bowl, (-4.0, 1.5), (-4.5, 4.5), (-2.0, 2.0), (0.0, 0.0)),
    "saddle": (saddle, (-1.5, 1e-3), (-1.5, 1.5), (-1.5, 1.5), None),
    "himmelblau": (himmelblau, (-0.5, -0.5), (-5.0, 5.0), (-5.0, 5.0), (3.0, 2.0)),
}


def default_optimizers() -> dict[str, tuple[str, dict[str, Any]]]:
    """The optimizers of the lecture's picture: name -> (``lamina.optim`` class name, options)."""
    return {
        "GD": ("GradientDescent", {"lr": 1e-3}),
        "Momentum": ("SGD", {"lr": 1e-3, "momentum": 0.9}),
        "Nesterov": ("SGD", {"lr": 1e-3, "momentum": 0.9, "nesterov": True}),
        "Adagrad": ("Adagrad", {"lr": 0.5}),
        "RMSprop": ("RMSprop", {"lr": 0.01}),
        "Adam": ("Adam", {"lr": 0.05}),
        # one iteration per step; max_eval must leave the line search room (torch's default of
        # max_iter * 5 // 4 = 1 evaluation would stop it at t = 0)
        "LBFGS": ("LBFGS", {"lr": 1, "max_iter": 1, "max_eval": 25, "line_search_fn": "strong_wolfe"}),
        "Newton": ("Newton", {"line_search": "backtracking"}),
        "NonlinearCG": ("NonlinearCG", {}),
    }


def _make(spec: Any, params: list[Parameter]) -> optim.Optimizer:
    if callable(spec):
        return spec(params)
    name, kwargs = spec
    cls = getattr(optim, name) if isinstance(name, str) else name
    return cls(params, **kwargs)


def optimizer_paths(loss_fn: Callable[[Tensor], Tensor], start: Sequence[float], optimizers: Mapping[str, Any],
                    steps: int = 100) -> dict[str, Any]:
    """Run each optimizer ``steps`` times from ``start`` on ``loss_fn`` and record the path.

    Args:
        loss_fn: a function of a lamina Tensor of shape (2,) returning a scalar Tensor.
        start: the starting point (x, y).
        optimizers: name -> ``(class or class name, options)`` or a callable ``params -> Optimizer``.
        steps: optimizer steps per path (each ``step`` of LBFGS, Newton or NonlinearCG may
            evaluate the function several times).

    Returns:
        name -> float64 array of shape ``(steps + 1, 2)``: the start, then the point after
        each step. A path that leaves the finite numbers stops there (the rest is nan).

    Shape:
        Each path: :math:`(\\text{steps} + 1, 2)`.
    """
    if len(start) != 2:
        raise ValueError(f"optimizer_paths: expected a 2-d start point, got {tuple(start)}")
    paths = {}
    for name, spec in optimizers.items():
        w = Parameter(Tensor._wrap(xp.array(start, dtype=backend.float64)))
        opt = _make(spec, [w])

        def closure(opt: optim.Optimizer = opt, w: Parameter = w) -> Tensor:
            opt.zero_grad()
            loss = loss_fn(w)
            if loss.requires_grad:  # not in line-search trials run under no_grad
                loss.backward(retain_graph=True)  # Newton differentiates the same graph again
            return loss

        path = xp.full((steps + 1, 2), math.nan)
        path[0] = w.array
        with xp.errstate(over="ignore", invalid="ignore"):  # diverging paths (a saddle) just stop
            for k in range(1, steps + 1):
                opt.step(closure)
                if not bool(xp.all(xp.isfinite(w.array))):
                    break
                path[k] = w.array
        paths[name] = path
    return paths


def plot_optimizer_paths(paths: Mapping[str, Any], loss_fn: Callable[[Any], Any], xlim: tuple[float, float],
                         ylim: tuple[float, float], path: str | os.PathLike[str] | None = None,
                         minimum: tuple[float, float] | None = None, title: str | None = None, levels: int = 30,
                         resolution: int = 300) -> Any:
    """Draw the paths over the contours of ``loss_fn`` and save a PNG (atomically) to ``path``.

    Needs matplotlib (``pip install lamina[plot]``).

    Args:
        paths: name -> array of shape (n, 2), as returned by :func:`optimizer_paths`.
        loss_fn: the surface, evaluated on a grid (arrays of shape (2, H, W)).
        xlim, ylim: the plotted window.
        path: where to save the PNG (None: don't save).
        minimum: a point to mark with a star.
        title: the figure title.
        levels: number of contour levels (log-spaced on non-negative surfaces).
        resolution: grid points per axis.

    Returns:
        The matplotlib ``Figure``.
    """
    try:
        from matplotlib.colors import LogNorm
        from matplotlib.figure import Figure
        from matplotlib.ticker import LogLocator
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("plot_optimizer_paths needs matplotlib: pip install 'lamina[plot]'") from e
    gx, gy = xp.meshgrid(xp.linspace(*xlim, resolution), xp.linspace(*ylim, resolution))
    z = xp.asarray(loss_fn(xp.stack([gx, gy])), dtype=float)
    fig = Figure(figsize=(8, 6.5))
    ax = fig.add_subplot()
    if float(z.min()) >= 0:
        lo = max(float(z[z > 0].min()) if (z > 0).any() else 1e-3, 1e-3)
        lv = xp.logspace(math.log10(lo), math.log10(float(z.max())), levels)
        cs = ax.contourf(gx, gy, z, levels=lv, norm=LogNorm(), cmap="viridis", alpha=0.6)
        fig.colorbar(cs, ax=ax, label="loss (log scale)", ticks=LogLocator())
    else:
        cs = ax.contourf(gx, gy, z, levels=levels, cmap="viridis", alpha=0.6)
        fig.colorbar(cs, ax=ax, label="loss")
    for name, p in paths.items():
        p = xp.asarray(p)
        p = p[xp.all(xp.isfinite(p), axis=1)]
        ax.plot(p[:, 0], p[:, 1], marker="o", markersize=2, linewidth=1.5, label=name)
    if minimum is not None:
        ax.plot(*minimum, marker="*", markersize=15, color="red", linestyle="none", label="minimum")
    first = next(iter(paths.values()), None)
    if first is not None:
        ax.plot(*xp.asarray(first)[0], marker="s", color="black", linestyle="none", label="start")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend(loc="best", fontsize=8)
    if title:
        ax.set_title(title)
    if path is not None:
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110, bbox_inches="tight"))
    return fig
