"""``autocast``: torch's context manager (and decorator), which in lamina casts nothing."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

from .. import backend

__all__ = ["autocast", "is_autocast_available"]

_warned: set[tuple[str, str]] = set()


def is_autocast_available(device_type: str) -> bool:
    """False: lamina has no autocast (it runs every operation in its inputs' dtypes)."""
    return False


class autocast:  # noqa: N801  (torch's name)
    """``torch.autocast(device_type, dtype=None, enabled=True, cache_enabled=None)``.

    Lamina does no mixed precision: inside the block every operation runs in its inputs' dtypes,
    as it does outside. Asked for CUDA (or another GPU), it warns as torch does on a machine
    without one and is disabled; asked on the CPU for a lower precision (torch's CPU default is
    bfloat16), it says once per dtype that it runs in lamina's dtypes instead.

    Args:
        device_type: ``'cpu'`` or ``'cuda'`` (or another device type torch knows).
        dtype: the precision torch would autocast to (default: bfloat16 on CPU, float16 on CUDA).
        enabled: ``False`` makes it a no-op.
        cache_enabled: accepted and ignored (torch's weight-cast cache).

    Example:
        >>> import warnings, lamina
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     with lamina.autocast("cpu"):
        ...         y = lamina.ones(2, 2) @ lamina.ones(2, 2)
        >>> y.dtype
        dtype('float32')
    """

    def __init__(self, device_type: str = "cuda", dtype: Any = None, enabled: bool = True,
                 cache_enabled: bool | None = None) -> None:
        if not isinstance(device_type, str):
            raise ValueError(f"autocast: expected device_type to be a str like 'cpu' or 'cuda', got "
                             f"{type(device_type).__name__}")
        backend.Device(device_type)  # an unknown device type is a clear error
        self.device = device_type
        self.fast_dtype = dtype if dtype is not None else (backend.bfloat16 if device_type == "cpu"
                                                           else backend.float16)
        self._enabled = bool(enabled)
        if not self._enabled:
            return
        if device_type != "cpu":
            warnings.warn(f"autocast: lamina has no GPU backend ({device_type!r} is not available); "
                          f"disabling autocast", UserWarning, stacklevel=2)
            self._enabled = False
            return
        key = (device_type, repr(self.fast_dtype))
        if key not in _warned:
            _warned.add(key)
            warnings.warn(f"autocast: lamina does no mixed precision and has no {self.fast_dtype} autocast "
                          f"kernels; operations run in their inputs' dtypes (float32 or float64)",
                          UserWarning, stacklevel=2)

    def __enter__(self) -> autocast:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                return fn(*args, **kwargs)

        return wrapper
