"""Gradient-recording switches: ``no_grad``, ``enable_grad``, ``set_grad_enabled``."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "inference_mode",
           "is_inference_mode_enabled"]

F = TypeVar("F", bound=Callable[..., Any])


class _State(threading.local):
    enabled = True
    inference = False


_state = _State()


def is_grad_enabled() -> bool:
    """Whether operations currently record a graph for backward."""
    return _state.enabled


class _GradMode:
    """Context manager and decorator that sets grad mode to ``self._mode`` inside it."""

    _mode = True

    def __new__(cls, orig_func: Any = None) -> Any:
        if orig_func is not None:  # bare @no_grad / @enable_grad, as torch allows
            if not callable(orig_func):
                raise TypeError(f"{cls.__name__}: expected a function to decorate, got {type(orig_func).__name__}")
            return cls()(orig_func)
        return super().__new__(cls)

    def __enter__(self) -> None:
        self._prev = _state.enabled
        _state.enabled = self._mode

    def __exit__(self, *exc: object) -> None:
        _state.enabled = self._prev

    def __call__(self, fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.__class__() if not isinstance(self, set_grad_enabled) else set_grad_enabled(self._mode):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class no_grad(_GradMode):
    """Disable graph recording inside the block (or the decorated function), as ``torch.no_grad``.

    Example:
        >>> import lamina
        >>> x = lamina.ones(2, requires_grad=True)
        >>> with lamina.no_grad():
        ...     y = x * 2
        >>> y.requires_grad
        False
    """

    _mode = False


class enable_grad(_GradMode):
    """Enable graph recording inside the block, even within ``no_grad``."""

    _mode = True


class set_grad_enabled(_GradMode):
    """Set grad mode to ``mode``: takes effect at once, and as a context manager restores it after."""

    def __new__(cls, mode: bool) -> Any:
        return object.__new__(cls)

    def __init__(self, mode: bool) -> None:
        self._mode = bool(mode)
        self._prev = _state.enabled
        _state.enabled = self._mode

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        _state.enabled = self._prev

    def __call__(self, fn: F) -> F:
        _state.enabled = self._prev  # used as a decorator: undo the immediate switch
        return super().__call__(fn)


class inference_mode(_GradMode):
    """``torch.inference_mode``: no graph is recorded inside the block (or the decorated function).

    Lamina implements it as :class:`no_grad` (torch's extra speed from skipping version counters
    has no counterpart here); unlike torch, tensors made inside may later take part in autograd.

    Args:
        mode: ``False`` makes it a no-op, as in torch.
    """

    def __new__(cls, mode: Any = True) -> Any:
        if callable(mode):  # bare @inference_mode, as torch allows
            return cls()(mode)
        return super().__new__(cls)

    def __init__(self, mode: bool = True) -> None:
        self._on = bool(mode)

    def __enter__(self) -> None:
        self._prev = _state.enabled
        self._prev_inference = _state.inference
        if self._on:
            _state.enabled = False
            _state.inference = True

    def __exit__(self, *exc: object) -> None:
        _state.enabled = self._prev
        _state.inference = self._prev_inference

    def __call__(self, fn: F) -> F:
        mode = self._on

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with inference_mode(mode):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def is_inference_mode_enabled() -> bool:
    """Whether an :class:`inference_mode` block is running."""
    return _state.inference
