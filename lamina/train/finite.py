"""NaN and ±inf where a number should be: in a model's weights, its inputs or its outputs.

The readers of trained models (``lamina predict``, ``evaluate``, ``explain``) call
:func:`check_finite` on what the model computed, so that a result made of NaN is an error
that names its cause, never a silently printed "class 0 (p = nan)".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import backend

__all__ = ["nonfinite_state", "nonfinite_rows", "check_finite"]

xp = backend.xp


def _array(t: Any) -> Any:
    return xp.asarray(t.array if hasattr(t, "array") else t)


def nonfinite_state(model: Any) -> list[str]:
    """The names of the floating parameters and buffers of ``model`` that hold NaN or ±inf."""
    out = []
    for name, t in model.state_dict().items():
        a = _array(t)
        if a.dtype.kind in "fc" and not bool(xp.isfinite(a).all()):
            out.append(name)
    return out


def nonfinite_rows(values: Any) -> Any:
    """A boolean mask ``(N,)``: which rows (samples) of ``values`` ``(N, ...)`` hold NaN or ±inf."""
    a = _array(values)
    return ~xp.isfinite(a.reshape(len(a), -1)).all(axis=1)


def _listed(names: Sequence[str], limit: int = 4) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def check_finite(output: Any, op: str, samples: Sequence[str] | None = None, model: Any = None,
                 inputs: Any = None) -> None:
    """Raise ``ValueError`` when ``output`` ``(N, ...)`` holds NaN or ±inf.

    The message names ``op``, the samples concerned (``samples[i]`` names row ``i``; default
    "sample i") and the cause found: the parameters and buffers of ``model`` that are not
    finite, or the rows of ``inputs`` that are not.

    Example:
        >>> check_finite(xp.ones((2, 3)), "predict")
        >>> check_finite(xp.array([[1.0, float("nan")]]), "predict")
        Traceback (most recent call last):
        ...
        ValueError: predict: the model output is not finite (NaN or inf) for sample 0; no result is given
    """
    bad = nonfinite_rows(output)
    if not bad.any():
        return
    names = [samples[i] if samples is not None else f"sample {i}" for i in xp.flatnonzero(bad).tolist()]
    causes = []
    weights = nonfinite_state(model) if model is not None else []
    if weights:
        causes.append(f"the model's weights hold NaN or inf ({_listed(weights)})")
    if inputs is not None:
        bad_in = nonfinite_rows(inputs)
        if bad_in.any():
            which = [samples[i] if samples is not None else f"sample {i}" for i in xp.flatnonzero(bad_in).tolist()]
            causes.append(f"the input holds NaN or inf ({_listed(which)})")
    cause = f": {'; '.join(causes)}" if causes else ""
    raise ValueError(f"{op}: the model output is not finite (NaN or inf) for {_listed(names)}{cause}; "
                     "no result is given")
