"""Anomaly detection, as ``torch.autograd.set_detect_anomaly`` / ``detect_anomaly``: while it is on,
a backward step that returns a nan gradient raises, naming the backward function.

Unlike torch, lamina records no forward traceback; the error names the node (``DivBackward0``)."""

from __future__ import annotations

from typing import Any

__all__ = ["set_detect_anomaly", "detect_anomaly", "is_anomaly_enabled", "is_anomaly_check_nan_enabled"]

_state = {"enabled": False, "check_nan": True}


def is_anomaly_enabled() -> bool:
    return _state["enabled"]


def is_anomaly_check_nan_enabled() -> bool:
    return _state["check_nan"]


class set_detect_anomaly:  # noqa: N801  (torch's name)
    """Switch anomaly detection on or off at once; as a context manager it restores the old mode."""

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        self._prev = dict(_state)
        _state["enabled"], _state["check_nan"] = bool(mode), bool(check_nan)

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: Any) -> None:
        _state.update(self._prev)


class detect_anomaly:  # noqa: N801
    """Anomaly detection on inside the block."""

    def __init__(self, check_nan: bool = True) -> None:
        self._check_nan = check_nan

    def __enter__(self) -> None:
        self._prev = dict(_state)
        _state["enabled"], _state["check_nan"] = True, bool(self._check_nan)

    def __exit__(self, *exc: Any) -> None:
        _state.update(self._prev)
