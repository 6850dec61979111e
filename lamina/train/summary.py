"""``summary(model, input_size)``: a per-layer table like torchinfo's — output shape, parameter
count, multiply-adds and activation memory — found by running one forward pass with hooks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import backend
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor

__all__ = ["summary", "LayerInfo", "ModelSummary"]

xp = backend.xp


@dataclass
class LayerInfo:
    name: str
    kind: str
    depth: int
    output_shape: tuple[int, ...]
    params: int
    mult_adds: int
    output_bytes: int


@dataclass
class ModelSummary:
    layers: list[LayerInfo]
    total_params: int
    trainable_params: int
    total_mult_adds: int
    input_bytes: int
    activation_bytes: int
    param_bytes: int

    def __str__(self) -> str:
        rows = [("Layer (type)", "Output shape", "Param #", "Mult-adds")]
        for layer in self.layers:
            rows.append(("  " * layer.depth + f"{layer.name} ({layer.kind})", str(list(layer.output_shape)),
                         f"{layer.params:,}", f"{layer.mult_adds:,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        line = "=" * (sum(widths) + 6)
        out = [line, "  ".join(c.ljust(w) for c, w in zip(rows[0], widths)), line]
        out += ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                for r in rows[1:]]
        mb = 1024 * 1024
        out += [line, f"Total params: {self.total_params:,}", f"Trainable params: {self.trainable_params:,}",
                f"Non-trainable params: {self.total_params - self.trainable_params:,}",
                f"Total mult-adds: {self.total_mult_adds:,}", line,
                f"Input size (MB): {self.input_bytes / mb:.2f}",
                f"Forward pass activations (MB): {self.activation_bytes / mb:.2f}",
                f"Params size (MB): {self.param_bytes / mb:.2f}",
                f"Estimated total size (MB): {(self.input_bytes + self.activation_bytes + self.param_bytes) / mb:.2f}",
                line]
        return "\n".join(out)


def _mult_adds(module: Any, inp: Any, out: Tensor) -> int:
    kind = type(module).__name__
    w = getattr(module, "weight", None)
    if not isinstance(w, Tensor) or w.ndim == 0:
        return 0
    per_out = w.numel() // w.shape[0]
    if kind in ("Linear", "Bilinear") or (kind.startswith("Conv") and not kind.startswith("ConvTranspose")):
        return int(out.numel() * per_out)  # each output element: one dot product with a weight row
    if kind.startswith("ConvTranspose") and isinstance(inp, Tensor):
        return int(inp.numel() * per_out)  # each input element is scattered through (C_out/g)·∏k weights
    return 0


def summary(model: Any, input_size: Sequence[int] | None = None, input_data: Any = None, dtype: Any = None,
            depth: int = 3) -> ModelSummary:
    """Run ``model`` once on zeros of ``input_size`` (batch included) or on ``input_data`` and
    report each submodule (up to ``depth`` levels) with its output shape, parameters and
    multiply-adds, plus totals and memory estimates.

    Example:
        >>> from lamina import nn
        >>> from lamina.train import summary
        >>> s = summary(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), (2, 4))
        >>> s.total_params, s.layers[0].output_shape, s.total_mult_adds
        (15, (2, 3), 24)
    """
    if input_data is None:
        if input_size is None:
            raise ValueError("summary: give input_size (with the batch dim) or input_data")
        input_data = Tensor._wrap(xp.zeros(tuple(input_size), dtype=backend.to_dtype(dtype)))
    records: list[LayerInfo] = []
    handles = []
    names = {id(m): n for n, m in model.named_modules()}

    slots: dict[int, list[int]] = {}

    def pre_hook(module: Any, args: Any) -> None:  # keeps call order: parents before children
        slots.setdefault(id(module), []).append(len(records))
        records.append(None)  # type: ignore[arg-type]

    def hook(module: Any, args: Any, out: Any) -> None:
        i = slots[id(module)].pop()
        o = out[0] if isinstance(out, (tuple, list)) else out
        if not isinstance(o, Tensor):
            return
        name = names.get(id(module), "")
        own = sum(p.numel() for p in module.parameters(recurse=False))
        records[i] = LayerInfo(name or type(module).__name__, type(module).__name__, name.count("."),
                               tuple(o.shape), own,
                               _mult_adds(module, args[0] if args else None, o), o.numel() * o.element_size())

    single = not list(model.children())  # a bare layer: report the layer itself
    for n, m in model.named_modules():
        if (n or single) and n.count(".") < depth:
            handles.append(m.register_forward_pre_hook(pre_hook))
            handles.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            model(input_data)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    records = [r for r in records if r is not None]
    params = list(model.parameters())
    leaves = [r for r in records if not any(o.name.startswith(r.name + ".") for o in records)]
    return ModelSummary(
        layers=records,
        total_params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        total_mult_adds=sum(r.mult_adds for r in records),
        input_bytes=input_data.numel() * input_data.element_size(),
        activation_bytes=sum(r.output_bytes for r in leaves),
        param_bytes=sum(p.numel() * p.element_size() for p in params),
    )
