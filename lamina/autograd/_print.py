"""How tensors print: ``repr`` in torch's look and ``set_printoptions`` (floor 1)."""

from __future__ import annotations

import sys
from typing import Any

from .. import backend

xp = backend.xp

__all__ = ["PRINT_OPTIONS", "set_printoptions", "format_tensor"]

PRINT_OPTIONS: dict[str, Any] = {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80, "sci_mode": None}
_PROFILES = {"default": {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80},
             "short": {"precision": 2, "threshold": 1000, "edgeitems": 2, "linewidth": 80},
             "full": {"precision": 4, "threshold": sys.maxsize, "edgeitems": 3, "linewidth": 80}}


def set_printoptions(precision: int | None = None, threshold: float | None = None, edgeitems: int | None = None,
                     linewidth: int | None = None, profile: str | None = None, sci_mode: bool | None = None) -> None:
    """How tensors print, as ``torch.set_printoptions``: ``profile`` (``'default'``, ``'short'``,
    ``'full'``) first, then each option given; ``sci_mode`` True/False forces or forbids scientific
    notation, None (the default) lets the numbers decide. NumPy lays the numbers out, so column
    spacing can differ from torch's."""
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(f"set_printoptions: profile must be one of {sorted(_PROFILES)}, got {profile!r}")
        PRINT_OPTIONS.update(_PROFILES[profile])
    for name, value in (("precision", precision), ("edgeitems", edgeitems), ("linewidth", linewidth)):
        if value is not None:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"set_printoptions: {name} must be a non-negative int, got {value!r}")
            PRINT_OPTIONS[name] = value
    if threshold is not None:
        PRINT_OPTIONS["threshold"] = sys.maxsize if threshold == float("inf") else int(threshold)
    PRINT_OPTIONS["sci_mode"] = sci_mode


def format_tensor(t: Any) -> str:
    """``repr`` of a tensor, as torch prints it (under :func:`set_printoptions`)."""
    a = t.array
    integral = a.dtype.kind != "f" or bool(xp.all(xp.mod(a[xp.isfinite(a)], 1) == 0))
    opts = PRINT_OPTIONS
    kw: dict[str, Any] = {}
    if opts["sci_mode"] is True and a.dtype.kind == "f":
        kw["formatter"] = {"float_kind": lambda v: f"{v:.{opts['precision']}e}"}
    elif opts["sci_mode"] is False:
        kw["suppress_small"] = True
    body = xp.array2string(  # torch's look: 4 decimals, or "1." for integral floats
        a, separator=", ", prefix="tensor(", precision=opts["precision"],
        floatmode="maxprec" if integral else "fixed", threshold=opts["threshold"],
        edgeitems=opts["edgeitems"], max_line_width=opts["linewidth"], **kw,
    )
    extras = []
    default = {backend.get_default_dtype(), backend.int64, backend.bool_}
    if t.array.dtype not in default or (t.array.size == 0):
        extras.append(f"dtype=lamina.{t.array.dtype}")
    if t.grad_fn is not None:
        extras.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t._requires_grad:
        extras.append("requires_grad=True")
    return "tensor(" + body + "".join(", " + e for e in extras) + ")"
