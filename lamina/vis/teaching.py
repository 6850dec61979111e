"""Teaching pictures: the decision regions of a 2-D classifier over the synthetic data sets
(the playground's heat map), and convolution-arithmetic animations for any configuration
(Dumoulin & Visin's conv_arithmetic figures, for the user's own layer), saved as GIF.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import Any

from .. import backend, nn
from ..autograd import Tensor, no_grad
from ..train.report import atomic_write_bytes
from ._common import pyplot, save_figure
from .attribution import evaluation_mode

__all__ = ["plot_decision_boundary", "conv_arithmetic_geometry", "conv_arithmetic_frames", "conv_arithmetic_gif"]

xp = backend.xp


def _probabilities(model: Any, pts: Any) -> Any:
    """Class probabilities ``(M, K)`` of ``model`` at the points ``pts`` ``(M, 2)`` (float64)."""
    if not isinstance(model, nn.Module) and hasattr(model, "predict_proba"):  # a scikit-learn-style classifier
        prob = xp.asarray(model.predict_proba(pts), dtype=backend.float64)
        if prob.ndim != 2 or prob.shape[0] != len(pts) or prob.shape[1] < 2:
            raise ValueError(f"plot_decision_boundary: {type(model).__name__}.predict_proba should give "
                             f"({len(pts)}, n_classes) probabilities, got shape {prob.shape}")
        return prob
    if not callable(model):
        raise TypeError("plot_decision_boundary: model must be an nn.Module, a callable giving logits, or a "
                        "classifier with predict_proba (such as lamina.linear_model.LogisticRegression or "
                        f"MLPClassifier), got {type(model).__name__}")
    dtype = next((p.dtype for p in model.parameters()), backend.float32) if isinstance(model, nn.Module) \
        else backend.float32
    with no_grad():
        out = model(Tensor._wrap(pts.astype(dtype)))
    z = xp.asarray(out.array if isinstance(out, Tensor) else out, dtype=backend.float64)
    if z.ndim == 1 or z.shape[1] == 1:
        p1 = 1 / (1 + xp.exp(-z.reshape(-1)))
        return xp.stack([1 - p1, p1], 1)
    e = xp.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _class_indices(model: Any, y: Any) -> Any:
    """The column of ``model``'s probabilities that each label of ``y`` names (its index in ``classes_``, if any)."""
    lab = xp.asarray(y.array if isinstance(y, Tensor) else y).reshape(-1)
    classes = getattr(model, "classes_", None) if not isinstance(model, nn.Module) else None
    if classes is None:
        return lab.astype(int)
    classes = xp.asarray(classes)
    idx = xp.clip(xp.searchsorted(classes, lab), 0, len(classes) - 1)
    unknown = classes[idx] != lab
    if unknown.any():
        raise ValueError(f"plot_decision_boundary: y holds labels the model was not fitted on: "
                         f"{sorted(set(lab[unknown].tolist()))[:5]} (its classes_: {classes.tolist()})")
    return idx


def plot_decision_boundary(model: nn.Module | Callable[[Tensor], Tensor] | Any, x: Any, y: Any,
                           path: str | os.PathLike[str], resolution: int = 150, margin: float = 0.5,
                           title: str = "decision regions") -> str:
    """The regions a 2-D classifier assigns to each class, shaded by its confidence, with the
    data on top (5 × 5 inches). Binary models (one logit, or two classes) show the probability
    of class 1 as a red–blue heat map with the 0.5 contour; more classes get one color each,
    faded where the model is unsure.

    Args:
        model: an ``nn.Module`` or a callable mapping ``(M, 2)`` points (a Tensor) to logits ``(M, K)``
            (or ``(M,)``/``(M, 1)`` for binary); or a fitted classifier with ``predict_proba`` taking a
            ``(M, 2)`` array, such as ``lamina.linear_model.LogisticRegression`` or ``MLPClassifier``
            (scikit-learn's classifiers too), whose ``classes_`` then map ``y`` to its columns.
        x: points ``(N, 2)``; y: their classes ``(N,)``.
        resolution: grid points per axis.
        margin: space around the data's bounding box.

    Returns:
        The path written.
    """
    pts = xp.asarray(x.array if isinstance(x, Tensor) else x, dtype=backend.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"plot_decision_boundary: expected points (N, 2), got shape {pts.shape}")
    lab = _class_indices(model, y)
    lo, hi = pts.min(0) - margin, pts.max(0) + margin
    gx, gy = xp.meshgrid(xp.linspace(lo[0], hi[0], resolution), xp.linspace(lo[1], hi[1], resolution))
    grid = xp.stack([gx.ravel(), gy.ravel()], 1)
    ctx = evaluation_mode(model) if isinstance(model, nn.Module) else None
    if ctx is not None:
        with ctx:
            prob = _probabilities(model, grid)
    else:
        prob = _probabilities(model, grid)
    plt = pyplot()
    from matplotlib.colors import ListedColormap

    fig = plt.figure(figsize=(5, 5))
    ax = fig.add_axes((0.1, 0.08, 0.86, 0.84))
    k = prob.shape[1]
    cmap = plt.get_cmap("tab10")
    if k == 2:
        p1 = prob[:, 1].reshape(gx.shape)
        ax.contourf(gx, gy, p1, levels=20, cmap="RdBu", vmin=0, vmax=1, alpha=0.8)
        ax.contour(gx, gy, p1, levels=[0.5], colors="k", linewidths=1)
        point_colors = ListedColormap(["#b2182b", "#2166ac"])
        ax.scatter(pts[:, 0], pts[:, 1], c=lab, cmap=point_colors, vmin=0, vmax=1, s=10, edgecolors="w", lw=0.4)
    else:
        cls = prob.argmax(1)
        conf = (prob.max(1) - 1 / k) / (1 - 1 / k)
        rgb = xp.array([cmap(int(c) % 10)[:3] for c in cls])
        img = 1 - (1 - rgb) * (0.25 + 0.5 * conf[:, None])  # fade towards white where unsure
        ax.imshow(img.reshape(resolution, resolution, 3), origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]),
                  aspect="auto", interpolation="bilinear")
        ax.scatter(pts[:, 0], pts[:, 1], c=[cmap(int(c) % 10) for c in lab], s=10, edgecolors="k", lw=0.3)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path)


def _pair(v: Any, name: str) -> tuple[int, int]:
    t = tuple(int(a) for a in v) if isinstance(v, (tuple, list)) else (int(v), int(v))
    if len(t) != 2:
        raise ValueError(f"conv_arithmetic: {name} must be an int or a pair, got {v!r}")
    return t  # type: ignore[return-value]


def conv_arithmetic_geometry(input_size: Any, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                             dilation: Any = 1, transposed: bool = False, output_padding: Any = 0) -> dict[str, Any]:
    """The picture's geometry per spatial axis: the grid the kernel slides over (``grid``),
    which of its cells hold input values (``is_input``, boolean arrays ``(gh, gw)``), the
    kernel's ``step`` on that grid, its effective ``dilation`` and the ``output`` size.

    A convolution slides over the zero-padded input with its stride. A transposed convolution
    is drawn as Dumoulin & Visin do: a stride-1 convolution over the input with ``stride − 1``
    zeros inserted between pixels, padded by ``dilation·(kernel − 1) − padding`` (plus
    ``output_padding`` at the bottom/right). Output sizes equal torch's formulas.

    Example:
        >>> conv_arithmetic_geometry(5, 3, stride=2, padding=1)["output"]
        (3, 3)
        >>> conv_arithmetic_geometry(3, 3, stride=2, padding=1, transposed=True)["output"]
        (5, 5)
    """
    i, k, s, p, d, op = (_pair(v, n) for v, n in ((input_size, "input_size"), (kernel_size, "kernel_size"),
                                                  (stride, "stride"), (padding, "padding"),
                                                  (dilation, "dilation"), (output_padding, "output_padding")))
    masks, outs, steps = [], [], []
    for a in range(2):
        if min(i[a], k[a], s[a], d[a]) < 1 or p[a] < 0 or op[a] < 0:
            raise ValueError(f"conv_arithmetic: sizes, kernel, stride and dilation must be >= 1 and padding >= 0, "
                             f"got input {i}, kernel {k}, stride {s}, padding {p}, dilation {d}")
        span = d[a] * (k[a] - 1)
        if not transposed:
            g = i[a] + 2 * p[a]
            m = xp.zeros(g, dtype=bool)
            m[p[a]:p[a] + i[a]] = True
            o = (g - span - 1) // s[a] + 1
            step = s[a]
        else:
            if p[a] > span or op[a] >= max(s[a], d[a]):
                raise ValueError(f"conv_arithmetic: a transposed conv needs padding <= dilation·(kernel−1) = {span} "
                                 f"and output_padding < max(stride, dilation), got {p[a]} and {op[a]}")
            q = span - p[a]
            g = (i[a] - 1) * s[a] + 1 + 2 * q + op[a]
            m = xp.zeros(g, dtype=bool)
            m[q:q + (i[a] - 1) * s[a] + 1:s[a]] = True
            o = g - span
            step = 1
        if o < 1:
            raise ValueError(f"conv_arithmetic: the kernel (span {span + 1}) does not fit the padded input ({g})")
        masks.append(m)
        outs.append(o)
        steps.append(step)
    return dict(grid=(len(masks[0]), len(masks[1])), is_input=masks[0][:, None] & masks[1][None, :],
                step=tuple(steps), dilation=d, kernel=k, output=tuple(outs), transposed=transposed)


def _paint(canvas: Any, colors: Any, top: int, left: int, px: int) -> None:
    """Paint a grid of cell colors ``(h, w, 3)`` in [0, 1] onto ``canvas`` with 1-pixel grey lines."""
    h, w = colors.shape[:2]
    block = xp.repeat(xp.repeat(colors, px, axis=0), px, axis=1)
    block[::px], block[:, ::px] = 0.4, 0.4
    canvas[top:top + h * px, left:left + w * px] = block
    canvas[top + h * px, left:left + w * px + 1] = 0.4
    canvas[top:top + h * px + 1, left + w * px] = 0.4


def conv_arithmetic_frames(input_size: Any, kernel_size: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
                           transposed: bool = False, output_padding: Any = 0, cell: int = 24) -> list[Any]:
    """One RGB frame ``(H, W, 3)`` uint8 per output pixel: the input grid (blue: input values,
    white: padding or inserted zeros) with the kernel's taps in dark blue (grey on zeros), and
    beside it the output grid (cyan: computed so far, dark teal: the current pixel). Cells are
    ``cell`` pixels wide; every frame is ``(max(gh, oh) + 2)·cell + 1`` by
    ``(gw + ow + 3)·cell + 1`` pixels for a ``gh × gw`` grid and an ``oh × ow`` output."""
    geo = conv_arithmetic_geometry(input_size, kernel_size, stride, padding, dilation, transposed, output_padding)
    (gh, gw), (oh, ow) = geo["grid"], geo["output"]
    (kh, kw), (dh, dw), (sh, sw) = geo["kernel"], geo["dilation"], geo["step"]
    height, width = (max(gh, oh) + 2) * cell + 1, (gw + ow + 3) * cell + 1
    base = xp.where(geo["is_input"][..., None], xp.array([0.42, 0.68, 0.87]), xp.array([1.0, 1.0, 1.0]))
    out_top = cell + (max(gh, oh) - oh) // 2 * cell
    in_top = cell + (max(gh, oh) - gh) // 2 * cell
    frames = []
    for n in range(oh * ow):
        r, c = divmod(n, ow)
        grid = base.copy()
        for a in range(kh):
            for b in range(kw):
                y, x = r * sh + a * dh, c * sw + b * dw
                grid[y, x] = [0.03, 0.19, 0.42] if geo["is_input"][y, x] else [0.55, 0.55, 0.6]
        out = xp.ones((oh, ow, 3))
        out.reshape(-1, 3)[:n] = [0.6, 0.9, 0.9]
        out[r, c] = [0.0, 0.4, 0.4]
        canvas = xp.ones((height, width, 3))
        _paint(canvas, grid, in_top, cell, cell)
        _paint(canvas, out, out_top, (gw + 2) * cell, cell)
        frames.append((canvas * 255).round().astype(xp.uint8))
    return frames


def conv_arithmetic_gif(path: str | os.PathLike[str], input_size: Any = 5, kernel_size: Any = 3, stride: Any = 1,
                        padding: Any = 0, dilation: Any = 1, transposed: bool = False, output_padding: Any = 0,
                        duration_ms: int = 400) -> str:
    """Animate a 2-D (transposed) convolution's sliding window as a looping GIF (via Pillow);
    see :func:`conv_arithmetic_geometry` for what is drawn. Returns the path.

    Example:
        >>> import tempfile, os
        >>> p = conv_arithmetic_gif(os.path.join(tempfile.mkdtemp(), "c.gif"), 4, 3, stride=1, padding=1)
        >>> open(p, "rb").read(3)
        b'GIF'
    """
    from PIL import Image

    frames = [Image.fromarray(f) for f in conv_arithmetic_frames(input_size, kernel_size, stride, padding, dilation,
                                                                  transposed, output_padding)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=duration_ms, loop=0)
    return atomic_write_bytes(path, buf.getvalue())
