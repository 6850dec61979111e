"""Shared plumbing of ``lamina.vis``: inputs as batches, layers by name, capturing activations,
choosing targets, and writing matplotlib figures atomically (matplotlib is imported lazily)."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from typing import Any

from .. import backend, nn
from ..autograd import Tensor, no_grad
from ..train.report import atomic_write_bytes

__all__ = ["as_batch", "model_dtype", "get_layer", "find_layers", "capture", "forward_capture", "resolve_targets",
           "select_scores", "unit_score", "predict", "pyplot", "save_figure", "normalize01", "image_hwc",
           "grid_shape", "callable_name", "as_list", "DPI"]

xp = backend.xp
DPI = 100  # every picture is figsize × DPI pixels: figures are saved without a tight bounding box


def as_batch(x: Any, op: str, dtype: Any = None) -> Tensor:
    """``x`` (Tensor or array, ``(C, H, W)`` or ``(N, C, H, W)``) as a detached ``(N, C, H, W)``
    floating Tensor (a copy: callers may modify it)."""
    a = x.detach().array if isinstance(x, Tensor) else xp.asarray(x)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise ValueError(f"{op}: expected an image (C, H, W) or a batch (N, C, H, W), got shape {tuple(a.shape)}")
    if a.dtype.kind != "f":
        a = a.astype(backend.float32)
    if dtype is not None:
        a = a.astype(dtype)
    return Tensor._wrap(xp.array(a))


def model_dtype(model: Any) -> Any:
    """The floating dtype of the model's first parameter (float32 for a parameterless model):
    inputs are cast to it, since lamina never promotes floating dtypes implicitly."""
    params = model.parameters() if isinstance(model, nn.Module) else ()
    return next((p.dtype for p in params if p.dtype.kind == "f"), backend.get_default_dtype())


def get_layer(model: nn.Module, layer: str | nn.Module, op: str) -> nn.Module:
    """A submodule by dotted name (``'features.3'``) or the module itself."""
    if isinstance(layer, nn.Module):
        return layer
    try:
        return model.get_submodule(layer)
    except (AttributeError, KeyError, ValueError):
        names = [n for n, _ in model.named_modules() if n]
        raise ValueError(f"{op}: model has no layer {layer!r}; layers: {', '.join(names)}") from None


def find_layers(model: nn.Module, kind: type | tuple[type, ...]) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every submodule of type ``kind``, in registration order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, kind)]


@contextmanager
def capture(layer: nn.Module, inputs: bool = False) -> Any:
    """Record the output (or the first input) of ``layer`` in ``box['value']`` while active."""
    box: dict[str, Any] = {}
    if inputs:
        def pre(mod: nn.Module, args: tuple[Any, ...]) -> None:
            box["value"] = args[0]
        handle = layer.register_forward_pre_hook(pre)
    else:
        def hook(mod: nn.Module, args: tuple[Any, ...], out: Any) -> None:
            box["value"] = out[0] if isinstance(out, tuple) else out
        handle = layer.register_forward_hook(hook)
    try:
        yield box
    finally:
        handle.remove()


def forward_capture(model: nn.Module, x: Tensor, layer: str | nn.Module, op: str,
                    inputs: bool = False) -> tuple[Tensor, Tensor]:
    """Run ``model(x)``; return ``(output, the layer's output or first input)``."""
    mod = get_layer(model, layer, op)
    with capture(mod, inputs=inputs) as box:
        out = model(x)
    if "value" not in box:
        raise ValueError(f"{op}: layer {layer!r} was not called during the forward pass")
    return out, box["value"]


def predict(model: nn.Module, x: Tensor, batch_size: int = 256) -> Any:
    """Logits of ``model`` on ``x`` in batches, without a graph, as an array."""
    outs = []
    with no_grad():
        for i in range(0, x.shape[0], batch_size):
            outs.append(model(x[i:i + batch_size]).array)
    return xp.concatenate(outs)


def resolve_targets(target: Any, logits: Any, op: str) -> Any:
    """Class indices ``(N,)``: ``target`` (None → the predicted class; an int → that class for
    every sample; a sequence → one per sample)."""
    n, k = logits.shape
    if target is None:
        t = xp.argmax(logits, axis=1)
    elif isinstance(target, Tensor):
        t = target.array.reshape(-1)
    else:
        t = xp.asarray(target).reshape(-1)
    if t.size == 1 and n > 1:
        t = xp.full(n, int(t[0]))
    t = t.astype(xp.int64)
    if t.shape != (n,):
        raise ValueError(f"{op}: target must be one class or one per sample ({n}), got {t.size}")
    if (t < 0).any() or (t >= k).any():
        raise ValueError(f"{op}: target classes must lie in 0..{k - 1}, got {t.tolist()}")
    return t


def select_scores(out: Tensor, idx: Any) -> Tensor:
    """``out[i, idx[i]]`` summed over the batch (one scalar whose gradient gives every sample's)."""
    if out.ndim != 2:
        raise ValueError(f"select_scores: expected logits (N, classes), got shape {tuple(out.shape)}")
    mask = xp.zeros(out.shape, dtype=out.dtype)
    mask[xp.arange(out.shape[0]), idx] = 1
    return (out * Tensor._wrap(mask)).sum()


def unit_score(act: Tensor, unit: int | None, op: str) -> tuple[Tensor, Any]:
    """The score of a unit of a layer: channel ``unit`` of a ``(N, C, H, W)`` map at its
    strongest position per sample (Zeiler & Fergus), or feature ``unit`` of a ``(N, F)`` layer;
    ``unit=None`` uses the whole layer's sum. Returns ``(scalar, mask)``."""
    if unit is not None and not 0 <= int(unit) < act.shape[1]:
        raise ValueError(f"{op}: unit must lie in 0..{act.shape[1] - 1}, got {unit}")
    mask = xp.zeros(act.shape, dtype=act.dtype)
    if unit is None:
        mask[...] = 1
    elif act.ndim == 2:
        mask[:, int(unit)] = 1
    else:
        a = act.array[:, int(unit)].reshape(act.shape[0], -1)
        pos = xp.argmax(a, axis=1)
        flat = mask[:, int(unit)].reshape(act.shape[0], -1)
        flat[xp.arange(act.shape[0]), pos] = 1
        mask[:, int(unit)] = flat.reshape(mask[:, int(unit)].shape)
    return (act * Tensor._wrap(mask)).sum(), mask


# --- pictures -----------------------------------------------------------------------------
def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (the optional ``plot`` extra)."""
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("lamina.vis: pictures need matplotlib (pip install 'lamina[plot]')") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """Save ``fig`` (PNG unless the path ends in ``.svg``) atomically at :data:`DPI`; close it."""
    path = os.fspath(path)
    fmt = fmt or ("svg" if path.lower().endswith(".svg") else "png")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=DPI)
    pyplot().close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def normalize01(a: Any) -> Any:
    """``a`` scaled to [0, 1] (a constant array becomes 0.5)."""
    a = xp.asarray(a, dtype=backend.float64)
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else xp.full_like(a, 0.5)


def image_hwc(img: Any) -> tuple[Any, str | None]:
    """A ``(C, H, W)`` image as something ``imshow`` shows: RGB ``(H, W, 3)`` or grey ``(H, W)``
    scaled to [0, 1], and the colormap to use."""
    img = xp.asarray(img)
    if img.ndim == 2:
        return normalize01(img), "gray"
    if img.shape[0] == 3:
        return normalize01(xp.moveaxis(img, 0, -1)), None
    return normalize01(img[0]), "gray"


def grid_shape(n: int, cols: int | None = None) -> tuple[int, int]:
    """``(rows, cols)`` for ``n`` panels, at most ``cols`` (default 8) per row."""
    c = max(1, min(n, cols or 8))
    return max(1, -(-n // c)), c


def callable_name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def as_list(v: Any) -> list[Any]:
    return list(v) if isinstance(v, Sequence) and not isinstance(v, str) else [v]
