"""Beyond torch: second-order and conjugate-direction methods.

- ``Newton``: the damped Newton step :math:`(H + \\lambda I)\\,d = -g`, with the exact Hessian
  for small problems or Hessian-vector products and conjugate gradient ("Newton-CG") for
  larger ones. Hessian-vector products come from double backprop:
  :math:`Hv = \\nabla_\\theta (\\nabla_\\theta L \\cdot v)`, through
  ``lamina.autograd.grad(..., create_graph=True)``.
- ``NonlinearCG``: Fletcher–Reeves and Polak–Ribière+ conjugate gradient with a strong-Wolfe
  line search.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from .. import backend
from ..autograd.engine import grad as autograd_grad
from ..autograd.grad_mode import enable_grad, no_grad
from ..autograd.tensor import Tensor
from ._closure import check_loss, loss_and_grad, watch_backward
from .lbfgs import _strong_wolfe
from .optimizer import Optimizer

__all__ = ["Newton", "NonlinearCG"]

xp = backend.xp


class _Flat:
    """The parameters of one group seen as a single flat vector."""

    def __init__(self, params: list[Tensor]) -> None:
        self.params = params
        self.sizes = [p.numel() for p in params]

    def split(self, v: Any) -> list[Any]:
        out, offset = [], 0
        for p, n in zip(self.params, self.sizes):
            out.append(v[offset:offset + n].reshape(p.shape))
            offset += n
        return out

    def get(self) -> Any:
        return xp.concatenate([p.array.reshape(-1) for p in self.params])

    def add_(self, t: float, d: Any) -> None:
        for p, piece in zip(self.params, self.split(d)):
            p.array += t * piece
            p._bump_version()

    def set_(self, v: Any) -> None:
        for p, piece in zip(self.params, self.split(v)):
            p.array[...] = piece
            p._bump_version()

    def grad(self) -> Any:
        return xp.concatenate([xp.zeros(p.numel(), p.dtype) if p.grad is None else p.grad.array.reshape(-1)
                               for p in self.params])


def _single_group(opt: Optimizer) -> dict[str, Any]:
    if len(opt.param_groups) != 1:
        raise ValueError(f"{type(opt).__name__} doesn't support per-parameter options (parameter groups)")
    return opt.param_groups[0]


def _make_positive_definite(H: Any, beta: float = 1e-3) -> Any:
    """``H + tau I`` with the smallest tried ``tau`` that makes it positive definite
    (Cholesky with added multiple of the identity; Nocedal & Wright, Algorithm 3.3)."""
    eye = xp.eye(H.shape[0], dtype=H.dtype)
    min_diag = float(xp.diag(H).min())
    tau = 0.0 if min_diag > 0 else beta - min_diag
    for _ in range(100):
        try:
            xp.linalg.cholesky(H + tau * eye)
            return H + tau * eye
        except xp.linalg.LinAlgError:
            tau = max(2 * tau, beta)
    return H + tau * eye


class Newton(Optimizer):
    r"""Damped Newton's method: solve :math:`(H + \lambda I)\,d = -g`, then
    :math:`\theta \leftarrow \theta + t\,d`.

    Beyond torch. :math:`g` and :math:`H` are the gradient and Hessian of the loss with respect
    to all parameters (flattened together). ``hessian='exact'`` builds :math:`H` row by row
    from Hessian-vector products and solves the system directly — for problems with up to a
    few thousand parameters. ``hessian='cg'`` (Newton-CG) never forms :math:`H`: it solves the
    system approximately by conjugate gradient, each iteration one Hessian-vector product
    :math:`Hv = \nabla(\nabla L\cdot v)` by double backprop; CG stops at relative residual
    ``min(0.5, sqrt(|g|))`` (superlinear convergence) or when it meets negative curvature
    (then the last descent direction, or :math:`-g`, is used). ``'auto'`` picks exact up to
    ``max_exact`` parameters. With ``line_search='backtracking'`` the method is globalized: an
    indefinite exact Hessian is shifted by :math:`\tau I` until it is positive definite
    (modified Newton), and the step :math:`t` is halved from ``lr`` until the Armijo condition
    holds.

    On a convex quadratic :math:`\tfrac12\theta^\top A\theta - b^\top\theta` one exact step
    (``lr=1``, no damping) lands on the minimizer :math:`A^{-1}b`.

    Args:
        params: parameters to optimize (one group).
        lr: the step length :math:`t` (default 1).
        damping: Levenberg–Marquardt damping :math:`\lambda \ge 0` (default 0).
        hessian: ``'exact'``, ``'cg'`` or ``'auto'`` (default).
        max_exact: the largest parameter count for ``'auto'`` to choose the exact Hessian.
        cg_max_iter: CG iterations per step (default: the parameter count, at most 200).
        line_search: None or ``'backtracking'``.

    ``step(closure)`` takes a closure in either convention, with the same steps: one that only
    returns the loss (with its graph), or torch's (as for ``LBFGS``: ``zero_grad()``, compute the
    loss, ``loss.backward()``, return the loss) — its ``backward()`` then keeps the graph, which
    the Hessian-vector products need. The closure is called again for line-search trials.

    Example:
        >>> import lamina
        >>> w = lamina.nn.Parameter(lamina.tensor([0.0, 0.0], dtype=lamina.float64))
        >>> opt = lamina.optim.Newton([w])
        >>> A = lamina.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=lamina.float64)
        >>> b = lamina.tensor([1.0, 1.0], dtype=lamina.float64)
        >>> _ = opt.step(lambda: 0.5 * (w @ A @ w) - b @ w)
        >>> [round(v, 10) for v in w.tolist()]  # A^{-1} b = (1/5, 2/5)
        [0.2, 0.4]
    """

    def __init__(self, params: Iterable[Any], lr: float = 1.0, damping: float = 0.0, hessian: str = "auto",
                 max_exact: int = 2000, cg_max_iter: int | None = None, line_search: str | None = None) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Newton: Invalid learning rate: {lr}")
        if not 0.0 <= damping:
            raise ValueError(f"Newton: Invalid damping: {damping} (expected >= 0)")
        if hessian not in ("exact", "cg", "auto"):
            raise ValueError(f"Newton: hessian must be 'exact', 'cg' or 'auto' (got {hessian!r})")
        if line_search not in (None, "backtracking"):
            raise ValueError(f"Newton: line_search must be None or 'backtracking' (got {line_search!r})")
        defaults = dict(lr=lr, damping=damping, hessian=hessian, max_exact=max_exact, cg_max_iter=cg_max_iter,
                        line_search=line_search)
        super().__init__(params, defaults)
        _single_group(self)

    def _gradient(self, loss: Tensor, params: list[Tensor]) -> list[Tensor | None]:
        check_loss(loss, "Newton.step")
        return list(autograd_grad(loss, params, create_graph=True, allow_unused=True))

    @staticmethod
    def _hvp(grads: list[Tensor | None], params: list[Tensor], flat: _Flat, v: Any) -> Any:
        """:math:`Hv`: the gradient of :math:`g\\cdot v` with respect to the parameters."""
        pairs = [(g, p, piece) for g, p, piece in zip(grads, params, flat.split(v))
                 if g is not None and g.requires_grad]
        if not pairs:  # the gradient is constant: the loss is linear, H = 0
            return xp.zeros_like(v)
        outs, ups = [g for g, _, _ in pairs], [Tensor._wrap(piece) for _, _, piece in pairs]
        hv = autograd_grad(outs, params, grad_outputs=ups, retain_graph=True, allow_unused=True)
        return xp.concatenate([xp.zeros(p.numel(), p.dtype) if h is None else h.array.reshape(-1)
                               for h, p in zip(hv, params)])

    def step(self, closure: Callable[[], Any]) -> Any:  # type: ignore[override]
        """One damped Newton step; returns the loss before the step."""
        if closure is None:
            raise RuntimeError("Newton.step: a closure returning the loss (with its graph) is required")
        group = _single_group(self)
        params = group["params"]
        flat = _Flat(params)
        # a closure in torch's convention calls backward(), which would free the graph that the
        # Hessian-vector products differentiate again: inside the watch it keeps it
        with enable_grad(), watch_backward(keep_graph=True) as calls:
            loss = closure()
        with enable_grad():
            grads = self._gradient(loss, params)
        g = xp.concatenate([xp.zeros(p.numel(), p.dtype) if gi is None else gi.array.reshape(-1)
                            for gi, p in zip(grads, params)])
        n, lam = g.size, group["damping"]
        mode = group["hessian"]
        if mode == "auto":
            mode = "exact" if n <= group["max_exact"] else "cg"
        if mode == "exact":
            H = xp.stack([self._hvp(grads, params, flat, e) for e in xp.eye(n, dtype=g.dtype)])
            H = 0.5 * (H + H.T) + lam * xp.eye(n, dtype=g.dtype)
            if group["line_search"] is not None:
                H = _make_positive_definite(H)
            try:
                d = xp.linalg.solve(H, -g)
            except xp.linalg.LinAlgError:  # singular: the least-squares (pseudo-inverse) step
                d = xp.linalg.lstsq(H, -g, rcond=None)[0]
        else:
            d = self._cg(lambda v: self._hvp(grads, params, flat, v) + lam * v, g,
                         group["cg_max_iter"] or min(n, 200))
        state = self.state[params[0]]
        state["n_iter"] = state.get("n_iter", 0) + 1
        state["newton_decrement"] = float(math.sqrt(max(-float(g.dot(d)), 0.0)))
        t = group["lr"]
        if group["line_search"] == "backtracking":
            t = self._backtrack(closure, flat, float(loss), g, d, t, calls_backward=bool(calls))
        flat.add_(t, d)
        return loss

    @staticmethod
    def _cg(hvp: Callable[[Any], Any], g: Any, max_iter: int) -> Any:
        """Approximately solve :math:`H d = -g` by conjugate gradient (truncated at negative
        curvature, as in Nocedal & Wright's Newton-CG, Algorithm 7.1)."""
        gnorm = float(xp.linalg.norm(g))
        tol = min(0.5, math.sqrt(gnorm)) * gnorm
        d = xp.zeros_like(g)
        r, p = g.copy(), -g  # residual of H d + g
        for _ in range(max_iter):
            hp = hvp(p)
            curv = float(p.dot(hp))
            if curv <= 0:  # negative curvature: stop with what we have (or steepest descent)
                return -g if not d.any() else d
            rr = float(r.dot(r))
            alpha = rr / curv
            d = d + alpha * p
            r = r + alpha * hp
            if float(xp.linalg.norm(r)) <= tol:
                break
            p = -r + (float(r.dot(r)) / rr) * p
        return d

    @staticmethod
    def _backtrack(closure: Callable[[], Any], flat: _Flat, f0: float, g: Any, d: Any, t: float,
                   c1: float = 1e-4, calls_backward: bool = False) -> float:
        slope = float(g.dot(d))
        if slope >= 0:  # not a descent direction (H not positive definite): fall back to -g
            d[...] = -g
            slope = -float(g.dot(g))
        x0 = flat.get()
        for _ in range(60):
            flat.add_(t, d)
            with enable_grad() if calls_backward else no_grad():  # a closure that calls backward needs a graph
                f = float(closure())
            flat.set_(x0)
            if math.isfinite(f) and f <= f0 + c1 * t * slope:
                return t
            t *= 0.5
        return t


class NonlinearCG(Optimizer):
    r"""Nonlinear conjugate gradient with a strong-Wolfe line search.

    Beyond torch. Each ``step(closure)`` is one iteration: with gradient :math:`g_k` and the
    previous direction :math:`d_{k-1}`,

    .. math::
        d_k = -g_k + \beta_k d_{k-1}, \qquad
        \beta^{FR}_k = \frac{g_k^\top g_k}{g_{k-1}^\top g_{k-1}}, \qquad
        \beta^{PR+}_k = \max\Big(0, \frac{g_k^\top (g_k - g_{k-1})}{g_{k-1}^\top g_{k-1}}\Big)

    then :math:`\theta \leftarrow \theta + t_k d_k` with :math:`t_k` from a strong-Wolfe line
    search (``c2 = 0.1``, as CG needs). The direction restarts at :math:`-g` every ``restart``
    iterations (default: the parameter count) and whenever it is not a descent direction.
    The first trial step is :math:`t_{k-1} g_{k-1}^\top d_{k-1} / g_k^\top d_k`
    (Nocedal & Wright, eq. 3.60).

    Args:
        params: parameters to optimize (one group).
        lr: the first trial step of the first iteration, scaled by :math:`\min(1, 1/|g|_1)`.
        beta: ``'PR+'`` (Polak–Ribière+, default) or ``'FR'`` (Fletcher–Reeves).
        restart: restart period in iterations (default: the number of parameters).
        c1, c2: the Wolfe constants (default 1e-4, 0.1).
        max_ls: the most function evaluations of one line search (default 25).

    ``step(closure)`` takes a closure that zeroes the gradients, computes the loss, calls
    ``backward()`` and returns the loss (as for ``LBFGS``), or one that only returns the loss
    (with its graph): the optimizer then calls ``backward()`` itself; the steps are the same.

    Example:
        >>> import lamina
        >>> w = lamina.nn.Parameter(lamina.tensor([2.0, -1.0], dtype=lamina.float64))
        >>> opt = lamina.optim.NonlinearCG([w])
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = (w[0] - 1) ** 2 + 10 * (w[1] - 2) ** 2
        ...     loss.backward()
        ...     return loss
        >>> for _ in range(5):
        ...     _ = opt.step(closure)
        >>> [round(v, 6) for v in w.tolist()]
        [1.0, 2.0]
    """

    def __init__(self, params: Iterable[Any], lr: float = 1.0, beta: str = "PR+", restart: int | None = None,
                 c1: float = 1e-4, c2: float = 0.1, max_ls: int = 25) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"NonlinearCG: Invalid learning rate: {lr}")
        if beta not in ("PR+", "FR"):
            raise ValueError(f"NonlinearCG: beta must be 'PR+' or 'FR' (got {beta!r})")
        if not 0 < c1 < c2 < 1:
            raise ValueError(f"NonlinearCG: expected 0 < c1 < c2 < 1 (got c1={c1}, c2={c2})")
        super().__init__(params, dict(lr=lr, beta=beta, restart=restart, c1=c1, c2=c2, max_ls=max_ls))
        _single_group(self)

    def step(self, closure: Callable[[], Any]) -> Any:  # type: ignore[override]
        """One conjugate-gradient iteration with a line search; returns the loss before it."""
        if closure is None:
            raise RuntimeError("NonlinearCG.step: a closure that re-evaluates the loss and its gradient is required")
        group = _single_group(self)
        flat = _Flat(group["params"])
        state = self.state[group["params"][0]]
        orig_loss = loss_and_grad(closure, group["params"], "NonlinearCG.step")
        loss = float(orig_loss)
        g = flat.grad()
        if not g.any():
            return orig_loss
        k = state.get("n_iter", 0)
        restart = group["restart"] or g.size
        d_prev = state["d"].array if "d" in state else None
        g_prev = state["g"].array if "g" in state else None
        if d_prev is None or k % restart == 0:
            d = -g
        else:
            gg_prev = float(g_prev.dot(g_prev))
            if group["beta"] == "FR":
                beta = float(g.dot(g)) / gg_prev
            else:
                beta = max(0.0, float(g.dot(g - g_prev)) / gg_prev)
            d = -g + beta * d_prev
        gtd = float(g.dot(d))
        if gtd >= 0:  # not a descent direction: restart along -g
            d, gtd = -g, -float(g.dot(g))
        t = state["t"] * float(state["gtd"]) / gtd if d_prev is not None else 0.0
        if not (math.isfinite(t) and t > 0):  # first iteration, or the last search ended at t = 0
            t = min(1.0, 1.0 / float(xp.abs(g).sum())) * group["lr"]

        def obj_func(x: Any, t: float, d: Any) -> tuple[float, Any]:
            flat.add_(t, d)
            f = float(loss_and_grad(closure, group["params"], "NonlinearCG.step"))
            gn = flat.grad()
            flat.set_(x)
            return f, gn

        x0 = flat.get()
        _, _, t, _ = _strong_wolfe(obj_func, x0, t, d, loss, g, gtd, c1=group["c1"], c2=group["c2"],
                                   max_ls=group["max_ls"])
        flat.add_(t, d)
        state.update(n_iter=k + 1, d=Tensor._wrap(d), g=Tensor._wrap(g), t=t, gtd=gtd)
        return orig_loss
