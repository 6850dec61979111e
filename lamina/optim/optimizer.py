"""``Optimizer``: the base class of every optimizer, with torch's semantics.

An optimizer holds ``param_groups`` (a list of dicts: ``params`` plus that group's options) and
``state`` (a dict from parameter to its per-parameter state: Tensors such as a momentum buffer
and a ``step`` counter). Subclasses implement ``step(closure=None)``: they read ``p.grad.array``
and update ``p.array`` in place (then call ``p._bump_version()``); nothing in an update is
recorded by autograd.

``state_dict()`` has torch's layout — ``{'state': {0: {...}, 1: {...}}, 'param_groups':
[{'lr': ..., 'params': [0, 1]}]}`` with parameters replaced by their index — and
``load_state_dict`` restores it (copying every array), so that a resumed run follows the
identical trajectory.
"""

from __future__ import annotations

import functools
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from .. import backend
from ..autograd.grad_mode import enable_grad
from ..autograd.graph import RemovableHandle
from ..autograd.tensor import Tensor

__all__ = ["Optimizer", "required"]

xp = backend.xp


class _RequiredParameter:
    """Marks an option without a default (``lr`` of ``GradientDescent``), as ``torch.optim``."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def _scalar_dtype() -> Any:
    # torch keeps step counters (and ASGD's eta/mu, NAdam's mu_product) in float32 unless the
    # default dtype is float64; the float32 rounding shows in the updates, so lamina does the same
    return backend.float64 if backend.get_default_dtype() == backend.float64 else backend.float32


def scalar_state(value: float) -> Tensor:
    """A 0-d state tensor (``step``, ``eta`` …) in torch's scalar dtype."""
    return Tensor._wrap(xp.array(value, dtype=_scalar_dtype()))


def lerp_(a: Any, b: Any, w: float) -> None:
    """``a ← a + w (b − a)`` in place, with torch's two-sided formula (exact at ``w = 1``)."""
    if abs(w) < 0.5:
        a += w * (b - a)
    else:
        a[...] = b - (b - a) * (1 - w)


def _check_params(params: Any, op: str) -> list[Any]:
    if isinstance(params, Tensor):
        raise TypeError(
            f"{op}: params argument given to the optimizer should be an iterable of Tensors or dicts, "
            f"but got {type(params).__name__}"
        )
    if isinstance(params, set):
        raise TypeError(f"{op}: optimizer parameters need to be organized in ordered collections, but got a set")
    return list(params)


def _with_step_hooks(step: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a subclass's ``step`` so that the registered pre- and post-hooks run around it."""

    @functools.wraps(step)
    def wrapper(self: Optimizer, *args: Any, **kwargs: Any) -> Any:
        for hook in list(getattr(self, "_step_pre_hooks", {}).values()):
            result = hook(self, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(f"{type(self).__name__}: a step pre-hook must return None or a tuple of "
                                       f"(new_args, new_kwargs), but got {result!r}")
                args, kwargs = result
        out = step(self, *args, **kwargs)
        for hook in list(getattr(self, "_step_post_hooks", {}).values()):
            hook(self, args, kwargs)
        return out

    return wrapper


class Optimizer:
    """Base class for all optimizers (``torch.optim.Optimizer``).

    Args:
        params: an iterable of Tensors, of ``(name, Tensor)`` pairs, or of dicts (parameter
            groups: ``{'params': [...], 'lr': ...}``, each option overriding ``defaults``).
        defaults: the default value of every option.

    Example:
        >>> import lamina
        >>> w = lamina.nn.Parameter(lamina.tensor([1.0, -2.0]))
        >>> opt = lamina.optim.SGD([w], lr=0.5)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> w.tolist()
        [0.0, 0.0]
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "step" in cls.__dict__:
            cls.step = _with_step_hooks(cls.__dict__["step"])  # type: ignore[method-assign]

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self._step_pre_hooks: dict[int, Callable[..., Any]] = {}
        self._step_post_hooks: dict[int, Callable[..., Any]] = {}
        self.defaults = dict(defaults)
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        groups = _check_params(params, type(self).__name__)
        if len(groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # --- groups ---------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own options (missing ones take the defaults)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        group = dict(param_group)
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else _check_params(params, "add_param_group")
        if params and isinstance(params[0], tuple):
            group["param_names"] = [n for n, _ in params]
            params = [p for _, p in params]
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            group.setdefault(name, default)
        if len({id(p) for p in params}) != len(params):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; "
                          "in future, this will cause an error", UserWarning, stacklevel=3)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    # --- hooks ----------------------------------------------------------------------------
    def register_step_pre_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """``hook(optimizer, args, kwargs)`` before each ``step``; it may return ``(args, kwargs)``
        to replace the arguments. Returns a handle whose ``remove()`` unregisters it."""
        if not hasattr(self, "_step_pre_hooks"):
            self._step_pre_hooks = {}
        handle = RemovableHandle(self._step_pre_hooks)
        self._step_pre_hooks[handle.id] = hook
        return handle

    def register_step_post_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """``hook(optimizer, args, kwargs)`` after each ``step``."""
        if not hasattr(self, "_step_post_hooks"):
            self._step_post_hooks = {}
        handle = RemovableHandle(self._step_post_hooks)
        self._step_post_hooks[handle.id] = hook
        return handle

    # --- gradients ------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all optimized parameters (to None by default, as torch)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad = Tensor._wrap(xp.zeros_like(p.grad.array))

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update the parameters once; ``closure`` re-evaluates the loss (with autograd on)."""
        raise NotImplementedError

    @staticmethod
    def _eval_closure(closure: Callable[[], Any] | None) -> Any:
        if closure is None:
            return None
        with enable_grad():
            return closure()

    def _grads(self, group: dict[str, Any]) -> Iterable[tuple[Tensor, Any]]:
        """``(param, gradient array)`` for the parameters of ``group`` that have a gradient;
        the gradient is negated under ``maximize`` (a new array, never ``p.grad`` itself)."""
        for p in group["params"]:
            if p.grad is None:
                continue
            g = p.grad.array
            if g.shape != p.shape:
                raise RuntimeError(f"{type(self).__name__}.step: gradient of shape {g.shape} for a "
                                   f"parameter of shape {p.shape}")
            yield p, (-g if group.get("maximize", False) else g)

    # --- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{'state': {index: {...}}, 'param_groups': [{..., 'params': [indices]}]}``, as torch."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: v for p, v in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a ``state_dict`` (from lamina or torch): options per group and per-parameter
        state, copied (and cast to each parameter's float dtype, except step counters)."""
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups "
                             f"({len(saved)} vs the optimizer's {len(self.param_groups)})")
        for g, s in zip(self.param_groups, saved):
            if len(g["params"]) != len(s["params"]):
                raise ValueError("loaded state dict contains a parameter group that doesn't match the size of "
                                 f"optimizer's group ({len(s['params'])} vs {len(g['params'])} parameters)")
        id_map = {old: p for g, s in zip(self.param_groups, saved) for old, p in zip(s["params"], g["params"])}
        self.state = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k not in id_map:
                continue
            p = id_map[k]
            self.state[p] = {name: _cast(p, name, value) for name, value in v.items()}
        new_groups = []
        for g, s in zip(self.param_groups, saved):
            new = {k: _copy_value(v) for k, v in s.items() if k not in ("params", "param_names")}
            for k, v in self.defaults.items():  # options newer than the saved state keep their defaults
                new.setdefault(k, v)
            new["params"] = g["params"]
            if "param_names" in g:
                new["param_names"] = g["param_names"]
            new_groups.append(new)
        self.param_groups = new_groups

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(group):
                if k not in ("params", "param_names"):
                    lines.append(f"    {k}: {group[k]}")
        lines.append(")")
        return "\n".join(lines)


def _copy_value(v: Any) -> Any:
    if isinstance(v, list):
        return [_copy_value(x) for x in v]
    if isinstance(v, tuple):
        return tuple(_copy_value(x) for x in v)
    if isinstance(v, dict):
        return {k: _copy_value(x) for k, x in v.items()}
    return v


_SCALAR_KEYS = {"step", "eta", "mu", "mu_product"}


def _cast(p: Tensor, key: str, value: Any) -> Any:
    """A copy of a saved state value, as a lamina Tensor where it was a tensor (lamina or torch).

    Buffers shaped like the parameter take its float dtype; 0-d scalars (``step``, ASGD's ``eta``
    and ``mu``, NAdam's ``mu_product``) keep theirs. torch casts those scalars too, which makes
    its resumed run drift from the uninterrupted one; lamina's resume is exact."""
    if isinstance(value, (list, tuple)):
        return type(value)(_cast(p, key, v) for v in value)
    if isinstance(value, dict):
        return {k: _cast(p, key, v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Tensor) or hasattr(value, "__array__"):
        arr = xp.array(value.array if isinstance(value, Tensor) else xp.asarray(value), copy=True)
        if key in _SCALAR_KEYS and arr.size == 1:
            arr = arr.reshape(())  # a 0-d counter that a file format stored as shape (1,)
        if arr.ndim > 0 and arr.dtype.kind == "f" and p.dtype.kind == "f" and arr.dtype != p.dtype:
            arr = arr.astype(p.dtype)
        return Tensor._wrap(arr)
    return value
