"""Optimizer paths on 2-D surfaces (always tested) and their picture (when matplotlib exists)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lamina.vis import optim_paths as op


def test_gradient_descent_path_is_the_closed_form():
    """On the bowl x²/2 + 5y², GD with step η multiplies x by (1 − η) and y by (1 − 10η)."""
    start, eta = (-2.0, 1.5), 0.05
    path = op.optimizer_paths(op.quadratic_bowl, start, {"GD": ("GradientDescent", {"lr": eta})}, steps=10)["GD"]
    k = np.arange(11)
    expected = np.stack([start[0] * (1 - eta) ** k, start[1] * (1 - 10 * eta) ** k], axis=1)
    np.testing.assert_allclose(path, expected, rtol=1e-13, atol=1e-15)


def test_newton_path_reaches_the_bowl_minimum_in_one_step():
    path = op.optimizer_paths(op.quadratic_bowl, (3.0, -1.0), {"Newton": ("Newton", {})}, steps=2)["Newton"]
    np.testing.assert_allclose(path[1:], 0.0, atol=1e-14)


@pytest.mark.parametrize("surface", sorted(op.SURFACES))
def test_default_optimizers_on_every_surface(surface):
    fn, start, _, _, minimum = op.SURFACES[surface]
    paths = op.optimizer_paths(fn, start, op.default_optimizers(), steps=60)
    assert set(paths) == set(op.default_optimizers())
    for name, path in paths.items():
        assert path.shape == (61, 2) and tuple(path[0]) == start, name
        assert np.isfinite(path[1]).all(), name
    if surface in ("rosenbrock", "beale", "quadratic_bowl"):
        for name in ("Newton", "NonlinearCG", "LBFGS"):
            np.testing.assert_allclose(paths[name][-1], minimum, atol=1e-4, err_msg=name)
    if surface == "saddle":  # unbounded below: the second-order methods run off and the path stops
        assert np.isnan(paths["Newton"][-1]).all() or np.abs(paths["Newton"][-1]).max() > 1e3


def test_surfaces_work_on_arrays_and_tensors():
    import lamina

    for fn, start, *_ in op.SURFACES.values():
        a = float(fn(np.array(start)))
        t = fn(lamina.tensor(start, dtype=lamina.float64)).item()
        assert a == pytest.approx(t, rel=1e-14)
    assert op.rosenbrock(np.array([1.0, 1.0])) == 0.0 and op.beale(np.array([3.0, 0.5])) == 0.0


def test_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    fn, start, xlim, ylim, minimum = op.SURFACES["rosenbrock"]
    paths = op.optimizer_paths(fn, start, op.default_optimizers(), steps=20)
    out = tmp_path / "paths.png"
    fig = op.plot_optimizer_paths(paths, fn, xlim, ylim, out, minimum=minimum, title="rosenbrock", resolution=60)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(fig.axes[0].lines) >= len(paths)
    assert not list(tmp_path.glob("*.png.tmp*")) and len(list(tmp_path.iterdir())) == 1  # atomic write


def test_example_script_runs(tmp_path):
    pytest.importorskip("matplotlib")
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, str(root / "examples" / "optimizer_paths.py"), "--surface",
                          "quadratic_bowl", "--steps", "15", "--out-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=120, cwd=root, env=env)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "optimizer_paths_quadratic_bowl.png").exists()
    assert "Newton" in res.stdout
