"""The conv-arithmetic explorer's numbers: a convolution's (or transposed convolution's) output
size from the user's input size, kernel, stride, padding and dilation, with the formula filled in
and the illegal cases explained. The formulas are those of ``lamina.nn.Conv2d`` and
``lamina.nn.ConvTranspose2d`` (and torch's)."""

from __future__ import annotations

from typing import Any

__all__ = ["describe"]

_KEYS = {"size": 5, "kernel": 3, "stride": 1, "padding": 0, "dilation": 1, "output_padding": 0}


def _int(params: dict[str, Any], key: str) -> int:
    raw = params.get(key, _KEYS[key])
    try:
        v = int(str(raw))
    except ValueError:
        raise ValueError(f"conv explorer: {key} must be an integer, got {raw!r}") from None
    if abs(v) > 4096:
        raise ValueError(f"conv explorer: {key} must be at most 4096 in size, got {v}")
    return v


def describe(params: dict[str, Any]) -> dict[str, Any]:
    """Output size and explanation for one spatial dimension.

    Args:
        params: ``size``, ``kernel``, ``stride``, ``padding``, ``dilation``, ``output_padding``
            (integers, as strings from a query) and ``transposed`` (``"1"``/``"true"`` or not).

    Returns:
        ``{"out": int | None, "formula": str, "legal": bool, "problems": [str], "notes": [str],
        "positions": [first input index of each output window]}``; ``out`` is ``None`` when illegal.
    """
    unknown = sorted(set(params) - set(_KEYS) - {"transposed"})
    if unknown:
        raise ValueError(f"conv explorer: unknown parameters {', '.join(unknown)}; known: {', '.join(_KEYS)}, "
                         "transposed")
    n, k, s, p, d, op = (_int(params, key) for key in _KEYS)
    transposed = str(params.get("transposed", "0")).lower() in ("1", "true", "yes", "on")
    problems, notes = [], []
    for key, v, lo in (("size", n, 1), ("kernel", k, 1), ("stride", s, 1), ("dilation", d, 1), ("padding", p, 0),
                       ("output_padding", op, 0)):
        if v < lo:
            problems.append(f"{key} must be at least {lo}, got {v}")
    span = d * (k - 1) + 1  # the dilated kernel's extent
    if transposed:
        formula = f"(n − 1)·s − 2p + d·(k − 1) + output_padding + 1 = ({n} − 1)·{s} − 2·{p} + {d}·({k} − 1) + {op} + 1"
        if op >= max(s, d) and not problems:
            problems.append(f"output_padding ({op}) must be smaller than the stride ({s}) or the dilation ({d}): "
                            "it only picks one of the sizes that the stride leaves ambiguous")
        out = (n - 1) * s - 2 * p + d * (k - 1) + op + 1
        if out < 1 and not problems:
            problems.append(f"the padding ({p}) removes more than the transposed convolution produces: the output "
                            f"size would be {out}")
        positions = [i * s - p for i in range(n)] if not problems else []
    else:
        formula = f"⌊(n + 2p − d·(k − 1) − 1) / s⌋ + 1 = ⌊({n} + 2·{p} − {d}·({k} − 1) − 1) / {s}⌋ + 1"
        if op and not problems:
            problems.append("output_padding applies only to a transposed convolution")
        if not problems and span > n + 2 * p:
            problems.append(f"the dilated kernel spans {span} cells (d·(k − 1) + 1 = {d}·({k} − 1) + 1) but the "
                            f"padded input has only n + 2p = {n + 2 * p}: no window fits")
        out = (n + 2 * p - span) // s + 1 if not problems else 0
        if not problems:
            rest = (n + 2 * p - span) % s
            if rest:
                notes.append(f"the stride does not fit: (n + 2p − d·(k − 1) − 1) = {n + 2 * p - span} is not a "
                             f"multiple of s = {s}, so the last {rest} padded input cell(s) are never covered by a "
                             f"window (the floor drops them); a padding or size that makes it divide evenly uses them "
                             "all")
            if p >= span:
                notes.append(f"the padding ({p}) is at least the kernel's span ({span}): some windows see only padding")
        positions = [i * s - p for i in range(out)] if not problems else []
    legal = not problems
    return {"out": out if legal else None, "formula": formula, "legal": legal, "problems": problems, "notes": notes,
            "positions": positions, "span": span, "transposed": transposed}
