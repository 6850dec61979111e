"""What did the network learn? First-layer filters, activation maps of any layer, the images
and image patches that most excite a unit (each patch cropped to the unit's receptive field,
as R-CNN's "individual neuron activation" figure), and 2-D projections (PCA, t-SNE) of the
penultimate layer's features.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .. import backend, nn
from ..autograd import no_grad
from ..nn.utils.conv_arithmetic import receptive_fields
from ._common import as_batch, capture, find_layers, get_layer, model_dtype
from .attribution import evaluation_mode

__all__ = ["first_conv", "activations", "layer_receptive_field", "TopActivations", "top_activations",
           "penultimate_features", "pca", "tsne", "embed_features"]

xp = backend.xp


def first_conv(model: nn.Module) -> nn.Module:
    """The model's first convolution layer (raises if it has none)."""
    convs = find_layers(model, (nn.Conv1d, nn.Conv2d, nn.Conv3d))
    if not convs:
        raise ValueError("first_conv: the model has no convolution layer")
    return convs[0][1]


def activations(model: nn.Module, x: Any, layer: Any, batch_size: int = 256) -> Any:
    """The output of ``layer`` (name or module) for the input(s) ``x``, as an array.

    Shape:
        ``x`` ``(C, H, W)`` or ``(N, C, H, W)`` → the layer's output, e.g. ``(N, C', H', W')``.
    """
    xb = as_batch(x, "activations", model_dtype(model))
    mod = get_layer(model, layer, "activations")
    outs = []
    with evaluation_mode(model), no_grad(), capture(mod) as box:
        for i in range(0, xb.shape[0], batch_size):
            model(xb[i:i + batch_size])
            if "value" not in box:
                raise ValueError(f"activations: layer {layer!r} was not called during the forward pass")
            outs.append(box.pop("value").array)
    return xp.concatenate(outs)


def layer_receptive_field(model: nn.Module, layer: Any) -> tuple[int, int, float]:
    """``(size, jump, start)`` of a unit of ``layer``: the conv and pooling layers registered
    before it (inclusive) taken as a chain — exact for sequential CNNs such as LeNet."""
    mod = get_layer(model, layer, "layer_receptive_field")
    chain = []
    for _, m in model.named_modules():
        if hasattr(m, "kernel_size"):
            chain.append(m)
        if m is mod:
            break
    fields = receptive_fields(chain)
    return tuple(fields[-1]) if fields else (1, 1, 0.0)  # type: ignore[return-value]


class TopActivations(NamedTuple):
    """The ``k`` images that excite a unit most: their ``indices`` into the data, the unit's
    peak ``values``, the peak ``positions`` ``(row, col)`` in its feature map, ``patches`` (a
    list of ``(C, h, w)`` arrays: the receptive field of the peak, clipped to the image),
    ``boxes`` (the patches' ``(row0, col0, row1, col1)`` in the image, ends exclusive) and the
    whole ``images``."""

    indices: Any
    values: Any
    positions: list[tuple[int, int]]
    patches: list[Any]
    boxes: list[tuple[int, int, int, int]]
    images: Any


def top_activations(model: nn.Module, images: Any, layer: Any, unit: int, k: int = 9,
                    batch_size: int = 256) -> TopActivations:
    """The top-``k`` images and image patches for channel ``unit`` of ``layer``.

    Args:
        model: the network.
        images: a batch ``(N, C, H, W)`` (e.g. a test set's images).
        layer: a conv layer (or any layer with ``(N, C, H, W)`` or ``(N, F)`` output).
        unit: the channel (or feature) index.
        k: how many images.

    Returns:
        :class:`TopActivations`, strongest first.
    """
    xb = as_batch(images, "top_activations", model_dtype(model))
    act = activations(model, xb, layer, batch_size)
    if not 0 <= int(unit) < act.shape[1]:
        raise ValueError(f"top_activations: unit must lie in 0..{act.shape[1] - 1}, got {unit}")
    a = act[:, int(unit)]
    n = a.shape[0]
    flat = a.reshape(n, -1)
    peak = flat.argmax(1)
    vals = flat[xp.arange(n), peak]
    order = xp.argsort(-vals, kind="stable")[:k]
    size, jump, start = layer_receptive_field(model, layer)
    h, w = xb.shape[2:]
    positions, patches, boxes = [], [], []
    for i in order:
        if a.ndim == 3:
            r, c = divmod(int(peak[i]), a.shape[2])
        else:
            r = c = 0
        positions.append((r, c))
        if a.ndim == 3:
            cy, cx = start + r * jump, start + c * jump
            y0, x0 = int(xp.ceil(cy - (size - 1) / 2)), int(xp.ceil(cx - (size - 1) / 2))
            box = (max(y0, 0), max(x0, 0), min(y0 + size, h), min(x0 + size, w))
        else:
            box = (0, 0, h, w)
        boxes.append(box)
        patches.append(xb.array[i, :, box[0]:box[2], box[1]:box[3]].copy())
    return TopActivations(order, vals[order], positions, patches, boxes, xb.array[order].copy())


def penultimate_features(model: nn.Module, images: Any, layer: Any = None, batch_size: int = 256) -> Any:
    """The features fed to the last ``nn.Linear`` (the classifier's input), or the output of
    ``layer`` when given, flattened to ``(N, D)``."""
    xb = as_batch(images, "penultimate_features", model_dtype(model))
    if layer is not None:
        return activations(model, xb, layer, batch_size).reshape(xb.shape[0], -1)
    linears = find_layers(model, nn.Linear)
    if not linears:
        raise ValueError("penultimate_features: the model has no nn.Linear layer; pass layer=")
    mod = linears[-1][1]
    outs = []
    with evaluation_mode(model), no_grad(), capture(mod, inputs=True) as box:
        for i in range(0, xb.shape[0], batch_size):
            model(xb[i:i + batch_size])
            outs.append(box.pop("value").array.reshape(min(batch_size, xb.shape[0] - i), -1))
    return xp.concatenate(outs)


def pca(features: Any, dim: int = 2) -> Any:
    """Project ``(N, D)`` features on their ``dim`` leading principal components (by SVD of the
    centred data; each component's sign fixed so its largest loading is positive)."""
    f = xp.asarray(features, dtype=backend.float64)
    f = f - f.mean(0)
    _, _, vt = xp.linalg.svd(f, full_matrices=False)
    vt = vt[:dim]
    signs = xp.sign(vt[xp.arange(len(vt)), xp.abs(vt).argmax(1)])
    return f @ (vt * signs[:, None]).T


def _affinities(d2: Any, perplexity: float) -> Any:
    """Conditional Gaussian affinities with per-point bandwidths matching ``perplexity``."""
    n = len(d2)
    p = xp.zeros((n, n))
    target = xp.log(perplexity)
    for i in range(n):
        lo, hi, beta = 0.0, xp.inf, 1.0
        di = xp.delete(d2[i], i)
        for _ in range(64):  # binary search on the precision beta
            e = xp.exp(-(di - di.min()) * beta)
            s = e.sum()
            h = xp.log(s) + beta * ((di - di.min()) * e).sum() / s
            if abs(h - target) < 1e-5:
                break
            if h > target:
                lo, beta = beta, beta * 2 if hi == xp.inf else (beta + hi) / 2
            else:
                hi, beta = beta, (beta + lo) / 2
        p[i, xp.arange(n) != i] = e / s
    return p


def tsne(features: Any, dim: int = 2, perplexity: float = 30.0, steps: int = 300, lr: float = 100.0,
         seed: int = 0) -> Any:
    """Exact t-SNE (van der Maaten & Hinton, 2008): O(N²), for a few hundred points.

    Early exaggeration (×12) for the first quarter of the steps, momentum 0.5 then 0.8,
    initialization from the scaled PCA projection.
    """
    f = xp.asarray(features, dtype=backend.float64)
    n = len(f)
    if n < 4:
        raise ValueError(f"tsne: need at least 4 points, got {n}")
    perplexity = min(perplexity, (n - 1) / 3)
    sq = (f * f).sum(1)
    d2 = xp.maximum(sq[:, None] + sq[None] - 2 * f @ f.T, 0)
    p = _affinities(d2, perplexity)
    p = xp.maximum((p + p.T) / (2 * n), 1e-12)
    y = pca(f, dim)
    y = y / (y[:, 0].std() + 1e-12) * 1e-4 + 1e-4 * xp.random.default_rng(seed).standard_normal(y.shape)
    vel = xp.zeros_like(y)
    for it in range(steps):
        exag = 12.0 if it < steps // 4 else 1.0
        sy = (y * y).sum(1)
        num = 1.0 / (1.0 + xp.maximum(sy[:, None] + sy[None] - 2 * y @ y.T, 0))
        xp.fill_diagonal(num, 0)
        q = xp.maximum(num / num.sum(), 1e-12)
        pq = (exag * p - q) * num
        g = 4 * ((xp.diag(pq.sum(1)) - pq) @ y)
        vel = (0.5 if it < steps // 4 else 0.8) * vel - lr * g
        y = y + vel
        y = y - y.mean(0)
    return y


def embed_features(model: nn.Module, images: Any, method: str = "pca", layer: Any = None, **kwargs: Any) -> Any:
    """Penultimate-layer features of ``images`` projected to 2-D by ``'pca'`` or ``'tsne'``.

    Shape:
        ``(N, C, H, W)`` → ``(N, 2)``.
    """
    feats = penultimate_features(model, images, layer)
    if method == "pca":
        return pca(feats, **kwargs)
    if method == "tsne":
        return tsne(feats, **kwargs)
    raise ValueError(f"embed_features: method must be 'pca' or 'tsne', got {method!r}")
