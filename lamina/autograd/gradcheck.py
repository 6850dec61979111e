"""Finite-difference checks of analytical gradients: ``gradcheck`` and ``gradgradcheck``."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

from .. import backend
from .engine import grad as autograd_grad
from .grad_mode import enable_grad
from .tensor import Tensor

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]

xp = backend.xp


class GradcheckError(RuntimeError):
    """An analytical gradient disagrees with the central finite difference."""


def _as_tuple(x: Any) -> tuple[Any, ...]:
    return (x,) if isinstance(x, Tensor) else tuple(x)


def _float_outputs(outs: Any) -> list[Tensor]:
    return [o for o in _as_tuple(outs) if isinstance(o, Tensor) and o.is_floating_point()]


def gradcheck(
    fn: Callable[..., Any],
    inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    seed: int = 0,
) -> bool:
    """Check the gradients of ``fn`` at ``inputs`` against central finite differences.

    The outputs of ``fn`` (a Tensor or a sequence of them) are contracted with a random upstream
    gradient ``v`` (seeded), so that one backward checks the full vector-Jacobian product
    ``vᵀJ``; the numerical side perturbs every element of every input that requires grad by
    ``±eps``. An element passes when ``|analytic − numeric| ≤ atol + rtol·|numeric|``.

    Args:
        fn: the function to check, called as ``fn(*inputs)``.
        inputs: a Tensor or a tuple of them (and of other arguments); those with
            ``requires_grad=True`` are checked. Use float64.
        eps: the finite-difference step.
        atol, rtol: the tolerances.
        raise_exception: raise :class:`GradcheckError` on failure (else return False).
        seed: seed of the random upstream gradient.

    Returns:
        True when every element passes.

    Raises:
        GradcheckError: naming the input, the element and both values.

    Example:
        >>> import lamina
        >>> x = lamina.randn(3, 4, dtype=lamina.float64, requires_grad=True)
        >>> lamina.autograd.gradcheck(lambda t: (t * t).sum(dim=1).exp(), (x,))
        True
    """
    inputs = _as_tuple(inputs)
    diff = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not diff:
        raise ValueError("gradcheck: expected at least one input tensor with requires_grad=True")
    for i in diff:
        if inputs[i].dtype != backend.float64:
            warnings.warn(
                f"gradcheck: input {i} has dtype {inputs[i].dtype}; finite differences are only "
                "reliable in float64",
                stacklevel=2,
            )
    rng = xp.random.default_rng(seed)
    with enable_grad():
        outs = _float_outputs(fn(*inputs))
    if not outs:
        raise ValueError("gradcheck: fn returned no floating-point tensor")
    vs = [xp.asarray(rng.standard_normal(o.shape)).astype(o.dtype) for o in outs]

    # analytical: one vector-Jacobian product
    live = [(o, v) for o, v in zip(outs, vs) if o.requires_grad]
    if live:
        analytic = autograd_grad(
            [o for o, _ in live], [inputs[i] for i in diff],
            grad_outputs=[Tensor._wrap(v) for _, v in live], allow_unused=True,
        )
    else:
        analytic = (None,) * len(diff)

    def objective() -> float:
        # grad mode stays on: fn may itself differentiate (gradgradcheck's first derivative)
        with enable_grad():
            res = _float_outputs(fn(*inputs))
        return float(sum(float((o.array.astype(xp.float64) * v).sum()) for o, v in zip(res, vs)))

    for k, i in enumerate(diff):
        t = inputs[i]
        original = t.array
        work = xp.array(original, dtype=original.dtype, copy=True)
        t.array = work
        a = analytic[k]
        a_arr = a.array if a is not None else xp.zeros(t.shape, dtype=t.dtype)
        try:
            for j in range(work.size):
                idx = xp.unravel_index(j, work.shape)
                orig = work[idx].copy()
                work[idx] = orig + eps
                fp = objective()
                work[idx] = orig - eps
                fm = objective()
                work[idx] = orig
                num = (fp - fm) / (2 * eps)
                ana = float(a_arr[idx])
                if not abs(ana - num) <= atol + rtol * abs(num):
                    if not raise_exception:
                        return False
                    raise GradcheckError(
                        f"gradcheck: Jacobian mismatch for input {i} (shape {tuple(t.shape)}) at "
                        f"element {tuple(int(q) for q in idx)}: numerical {num!r} vs analytical "
                        f"{ana!r} (atol={atol}, rtol={rtol})"
                    )
        finally:
            t.array = original
    return True


def gradgradcheck(
    fn: Callable[..., Any],
    inputs: Any,
    grad_outputs: Sequence[Tensor] | None = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    seed: int = 0,
) -> bool:
    """Check second derivatives of ``fn``: gradcheck of the map
    ``(inputs, v) ↦ ∂(vᵀ fn(inputs))/∂inputs`` computed with ``create_graph=True``.

    Args:
        fn, inputs, eps, atol, rtol, raise_exception, seed: as :func:`gradcheck`.
        grad_outputs: the upstream gradients ``v`` (random float64 ones by default); they are
            checked as inputs too.

    Example:
        >>> import lamina
        >>> x = lamina.randn(4, dtype=lamina.float64, requires_grad=True)
        >>> lamina.autograd.gradgradcheck(lambda t: (t ** 3).sin(), (x,))
        True
    """
    inputs = _as_tuple(inputs)
    diff = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    with enable_grad():
        outs = _float_outputs(fn(*inputs))
    if grad_outputs is None:
        rng = xp.random.default_rng(seed + 1)
        grad_outputs = [
            Tensor._wrap(rng.standard_normal(o.shape).astype(o.dtype)).requires_grad_()
            for o in outs
        ]
    else:
        grad_outputs = list(_as_tuple(grad_outputs))
    n = len(inputs)

    def first_derivative(*args: Any) -> tuple[Tensor, ...]:
        xs, gos = args[:n], args[n:]
        res = _float_outputs(fn(*xs))
        pairs = [(o, g) for o, g in zip(res, gos) if o.requires_grad]
        grads = autograd_grad(
            [o for o, _ in pairs], [xs[i] for i in diff], grad_outputs=[g for _, g in pairs],
            create_graph=True, allow_unused=True,
        )
        return tuple(g for g in grads if g is not None)

    return gradcheck(
        first_derivative, tuple(inputs) + tuple(grad_outputs), eps=eps, atol=atol, rtol=rtol,
        raise_exception=raise_exception, seed=seed + 2,
    )
