"""Forward pre-hooks, forward hooks and full backward hooks of ``Module`` (a mixin)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...autograd.function import Context, Function
from ...autograd.graph import RemovableHandle
from ...autograd.tensor import Tensor

__all__ = ["_HooksMixin"]


class _Identity(Function):
    """Identity whose node marks where a module's backward hook catches gradients."""

    @staticmethod
    def forward(ctx: Context, x: Any) -> Any:
        return x

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Tensor:
        return gy


class _HooksMixin:
    """Hook registration and the backward-hook plumbing (identity nodes around the inputs and
    outputs whose tensor hooks collect ``grad_input`` and ``grad_output``)."""

    def register_forward_pre_hook(self, hook: Callable[..., Any], *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """``hook(module, args)`` (or ``hook(module, args, kwargs)``) before forward; a non-None
        return replaces the arguments."""
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        if prepend:
            self._forward_pre_hooks.move_to_end(handle.id, last=False)
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs.add(handle.id)
        return handle

    def register_forward_hook(self, hook: Callable[..., Any], *, prepend: bool = False,
                              with_kwargs: bool = False) -> RemovableHandle:
        """``hook(module, args, output)`` after forward; a non-None return replaces the output."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        if prepend:
            self._forward_hooks.move_to_end(handle.id, last=False)
        if with_kwargs:
            self._forward_hooks_with_kwargs.add(handle.id)
        return handle

    def register_full_backward_hook(self, hook: Callable[..., Any], prepend: bool = False) -> RemovableHandle:
        """``hook(module, grad_input, grad_output)`` once the gradients with respect to the
        module's tensor inputs are computed; a non-None return (a tuple like ``grad_input``)
        replaces them. ``grad_input`` entries are None for inputs that need no gradient.

        lamina differs from torch in one case: for a module with several tensor inputs that
        require grad, a replacement applies to the input whose gradient arrives last.
        """
        handle = RemovableHandle(self._backward_hooks)
        self._backward_hooks[handle.id] = hook
        if prepend:
            self._backward_hooks.move_to_end(handle.id, last=False)
        return handle

    def _wrap_backward_inputs(self, args: tuple[Any, ...]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        state: dict[str, Any] = {"grad_input": [], "grad_output": None, "pending": 0}
        new_args = []
        slots = state["grad_input"]
        for a in args:
            if isinstance(a, Tensor) and a.requires_grad:
                a2 = _Identity.apply(a)
                i = len(slots)
                slots.append(None)
                state["pending"] += 1
                a2.register_hook(self._input_hook(state, i))
                new_args.append(a2)
            else:
                if isinstance(a, Tensor):
                    slots.append(None)
                new_args.append(a)
        return tuple(new_args), state

    def _input_hook(self, state: dict[str, Any], i: int) -> Callable[[Tensor], Tensor | None]:
        def hook(g: Tensor) -> Tensor | None:
            state["grad_input"][i] = g
            state["pending"] -= 1
            if state["pending"] > 0:
                return None
            result = self._fire_backward_hooks(tuple(state["grad_input"]), state["grad_output"])
            return result[i] if result is not None else None

        return hook

    def _fire_backward_hooks(self, grad_input: tuple[Any, ...], grad_output: Any) -> tuple[Any, ...] | None:
        result = None
        for hook in list(self._backward_hooks.values()):
            r = hook(self, grad_input if result is None else result, grad_output)
            if r is not None:
                result = tuple(r) if isinstance(r, (tuple, list)) else (r,)
        return result

    def _wrap_backward_outputs(self, out: Any, state: dict[str, Any]) -> Any:
        outs = out if isinstance(out, tuple) else (out,)
        tensors = [i for i, o in enumerate(outs) if isinstance(o, Tensor) and o.requires_grad]
        if not tensors:
            return out
        grads: list[Any] = [None] * len(outs)
        remaining = [len(tensors)]
        new = list(outs)
        for i in tensors:
            o2 = _Identity.apply(outs[i])

            def hook(g: Tensor, i: int = i) -> None:
                grads[i] = g
                remaining[0] -= 1
                if remaining[0] == 0:
                    state["grad_output"] = tuple(grads)
                    if state["pending"] == 0:  # no input needs a gradient: fire now
                        self._fire_backward_hooks(tuple(state["grad_input"]), state["grad_output"])

            o2.register_hook(hook)
            new[i] = o2
        return tuple(new) if isinstance(out, tuple) else new[0]

