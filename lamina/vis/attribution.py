"""Why did the network decide? Pixel attributions for a class score: vanilla gradient saliency
(Simonyan et al., 2014), SmoothGrad (Smilkov et al., 2017), integrated gradients (Sundararajan
et al., 2017), Grad-CAM (Selvaraju et al., 2017) and occlusion sensitivity (Zeiler & Fergus, 2014).

Every function takes a model, an image ``(C, H, W)`` or a batch ``(N, C, H, W)`` and a
``target`` (None: the predicted class; an int: that class for every image; a sequence: one
class per image) and returns NumPy arrays. The model is put in eval mode for the call and
restored afterwards; its parameters receive no gradient.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

from .. import backend, nn
from ..autograd import Tensor, grad, no_grad
from ..nn import functional as F
from ._common import (
    as_batch,
    forward_capture,
    get_layer,
    model_dtype,
    predict,
    resolve_targets,
    select_scores,
)

__all__ = ["input_gradient", "saliency", "smoothgrad", "integrated_gradients", "grad_cam", "conv_block_layer",
           "occlusion", "evaluation_mode"]

xp = backend.xp


@contextmanager
def evaluation_mode(model: nn.Module) -> Any:
    """``model.eval()`` inside, with its parameters frozen (no ``.grad`` is written); restores both."""
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, f in flags:
            p.requires_grad_(f)
        model.train(was_training)


def _input_grad(model: nn.Module, x: Tensor, target: Any) -> tuple[Any, Any, Any]:
    """``(d score / d x, targets, logits)`` for one batch."""
    x = x.detach().requires_grad_()
    out = model(x)
    t = resolve_targets(target, out.detach().array, "input_gradient")
    (g,) = grad(select_scores(out, t), x)
    return g.array, t, out.detach().array


def input_gradient(model: nn.Module, x: Any, target: Any = None) -> Any:
    """The gradient of the target class logit with respect to the input pixels.

    Args:
        model: a classifier returning logits ``(N, classes)``.
        x: an image ``(C, H, W)`` or a batch ``(N, C, H, W)``.
        target: the class(es) to explain (default: the predicted class).

    Returns:
        An array ``(N, C, H, W)``.

    Example:
        >>> import lamina
        >>> net = lamina.nn.Sequential(lamina.nn.Flatten(), lamina.nn.Linear(4, 2))
        >>> input_gradient(net, lamina.ones(1, 1, 2, 2), target=1).shape
        (1, 1, 2, 2)
    """
    with evaluation_mode(model):
        return _input_grad(model, as_batch(x, "input_gradient", model_dtype(model)), target)[0]


def saliency(model: nn.Module, x: Any, target: Any = None) -> Any:
    """Vanilla gradient saliency (Simonyan, Vedaldi & Zisserman, 2014): ``max_c |∂S_t/∂x_c|``.

    Args:
        model: a classifier returning logits.
        x: an image ``(C, H, W)`` or a batch ``(N, C, H, W)``.
        target: the class(es) to explain (default: the predicted class).

    Shape:
        Returns ``(N, H, W)``: the largest absolute input gradient over the channels.
    """
    return xp.abs(input_gradient(model, x, target)).max(axis=1)


def smoothgrad(model: nn.Module, x: Any, target: Any = None, n_samples: int = 25, noise_level: float = 0.15,
               seed: int = 0, magnitude: bool = False) -> Any:
    """SmoothGrad: the input gradient averaged over noisy copies ``x + N(0, σ²)``, with
    ``σ = noise_level · (max(x) − min(x))`` per image.

    Args:
        n_samples: noisy copies per image.
        noise_level: σ as a fraction of each image's value range.
        seed: seed of the noise (results are reproducible).
        magnitude: average ``|gradient|`` (SmoothGrad's "absolute" variant) instead of the gradient.

    Shape:
        Returns ``(N, H, W)``: ``max_c`` of the absolute averaged gradient. The target class is
        fixed from the clean image.
    """
    if n_samples < 1 or noise_level < 0:
        raise ValueError(f"smoothgrad: need n_samples >= 1 and noise_level >= 0, got {n_samples}, {noise_level}")
    xb = as_batch(x, "smoothgrad", model_dtype(model))
    rng = xp.random.default_rng(seed)
    with evaluation_mode(model):
        t = resolve_targets(target, predict(model, xb), "smoothgrad")
        a = xb.array
        span = (a.reshape(len(a), -1).max(1) - a.reshape(len(a), -1).min(1)).reshape(-1, 1, 1, 1)
        total = xp.zeros(a.shape, dtype=backend.float64)
        for _ in range(n_samples):
            noisy = a + (noise_level * span * rng.standard_normal(a.shape)).astype(a.dtype)
            g = _input_grad(model, Tensor._wrap(noisy), t)[0]
            total += xp.abs(g) if magnitude else g
    return xp.abs(total / n_samples).max(axis=1)


def integrated_gradients(model: nn.Module, x: Any, target: Any = None, baseline: Any = None, steps: int = 32,
                         batch_size: int = 64) -> Any:
    """Integrated gradients: ``(x − x′) ⊙ ∫₀¹ ∂S_t/∂x (x′ + α(x − x′)) dα`` by the trapezoid rule.

    By completeness the attributions sum to ``S_t(x) − S_t(x′)`` up to the quadrature error.

    Args:
        baseline: ``x′`` (default: a black image, zeros), broadcastable to ``x``.
        steps: intervals of the trapezoid rule (``steps + 1`` gradient evaluations per image).
        batch_size: interpolated images per forward pass.

    Shape:
        Returns ``(N, C, H, W)`` signed attributions; take ``abs().sum(1)`` for a heat map.
    """
    if steps < 1:
        raise ValueError(f"integrated_gradients: steps must be >= 1, got {steps}")
    xb = as_batch(x, "integrated_gradients", model_dtype(model))
    a = xb.array
    base = xp.zeros_like(a) if baseline is None else xp.broadcast_to(
        xp.asarray(baseline.array if isinstance(baseline, Tensor) else baseline, dtype=a.dtype), a.shape)
    alphas = xp.linspace(0.0, 1.0, steps + 1)
    w = xp.full(steps + 1, 1.0 / steps)
    w[0] = w[-1] = 0.5 / steps
    out = xp.zeros(a.shape, dtype=backend.float64)
    with evaluation_mode(model):
        t = resolve_targets(target, predict(model, xb), "integrated_gradients")
        for i in range(len(a)):
            path = (base[i][None] + alphas.reshape(-1, 1, 1, 1) * (a[i] - base[i])[None]).astype(a.dtype)
            total = xp.zeros(a.shape[1:], dtype=backend.float64)
            for j in range(0, len(path), batch_size):
                g = _input_grad(model, Tensor._wrap(path[j:j + batch_size]), int(t[i]))[0]
                total += (g * w[j:j + batch_size].reshape(-1, 1, 1, 1)).sum(0)
            out[i] = (a[i] - base[i]) * total
    return out


_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def conv_block_layer(model: nn.Module, x: Any, first: bool = False) -> str:
    """The name of the module whose output is the last (``first``: the first) convolution
    block's output *after* its normalization and activation — the default layer of Grad-CAM
    and ``lamina explain``.

    One forward pass on ``x`` is traced: from the convolution's output, each following leaf
    module that takes exactly that tensor and keeps its shape (batch norm, ReLU, dropout …)
    extends the block; then an enclosing module (a residual block, say) whose output has the
    block's shape but is another tensor (``relu(F(x) + x)``) stands for the block. A raw
    convolution is a poor default: before BN and ReLU its maps are centred on zero and the
    Grad-CAM sum ``Σ_k α_k A^k`` is often negative everywhere, a blank map.

    Args:
        model: a CNN.
        x: an image ``(C, H, W)`` or a batch ``(N, C, H, W)`` the model accepts (only its
            first sample is used).
        first: take the first convolution instead of the last.

    Returns:
        A name as in ``model.named_modules()`` (``'features.8'`` for ``lenet_small``'s last
        conv → BatchNorm → ReLU).
    """
    names = {id(m): n for n, m in reversed(list(model.named_modules()))}  # a shared module: its first name
    calls: list[tuple[nn.Module, Any, Any]] = []

    def record(mod: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        calls.append((mod, args[0] if args else None, out[0] if isinstance(out, tuple) else out))

    handles = [m.register_forward_hook(record) for m in dict.fromkeys(model.modules())]
    try:
        with evaluation_mode(model), no_grad():
            model(as_batch(x, "conv_block_layer", model_dtype(model))[:1])
    finally:
        for h in handles:
            h.remove()
    convs = [i for i, (m, _, _) in enumerate(calls) if isinstance(m, _CONVS)]
    if not convs:
        raise ValueError("conv_block_layer: the model has no convolution layer called in its forward pass; "
                         "pass layer=")
    start = convs[0 if first else -1]
    mod, cur = calls[start][0], calls[start][2]
    name = names[id(mod)]
    for m, inp, out in calls[start + 1:]:
        leaf = next(iter(m.children()), None) is None
        if (inp is cur and leaf and not isinstance(m, (*_CONVS, nn.Linear)) and isinstance(out, Tensor)
                and out.shape == cur.shape):
            name, cur = names[id(m)], out
    # enclosing blocks, innermost first, each judged by its first call that ends after the conv
    # (and before any other conv)
    parts = names[id(calls[start][0])].split(".")
    stop = next((i for i in convs if i > start), len(calls))
    for k in range(len(parts) - 1, 0, -1):
        outer = ".".join(parts[:k])
        out = next((o for m, _, o in calls[start + 1:stop] if names.get(id(m)) == outer), None)
        if not isinstance(out, Tensor) or out.shape != cur.shape:
            break
        if out is not cur:
            name, cur = outer, out
    return name


def grad_cam(model: nn.Module, x: Any, target: Any = None, layer: Any = None, upsample: bool = True,
             relu: bool = True) -> Any:
    """Grad-CAM: the feature maps ``A^k`` of a conv layer weighted by their average gradient,
    ``ReLU(Σ_k α_k A^k)`` with ``α_k = mean_ij ∂S_t/∂A^k_ij``.

    Args:
        layer: the layer (name or module) whose output is used; default the last conv block's
            output after its normalization and activation (:func:`conv_block_layer`).
        upsample: resize the map bilinearly (``align_corners=False``) to the input's size.
        relu: apply the final ReLU (False gives the signed map).

    Shape:
        Returns ``(N, H, W)`` (input size if ``upsample``, else the layer's map size).
    """
    xb = as_batch(x, "grad_cam", model_dtype(model))
    mod = get_layer(model, conv_block_layer(model, xb) if layer is None else layer, "grad_cam")
    with evaluation_mode(model):
        # The gradient must reach the layer's output: feed an input that requires grad.
        out, act = forward_capture(model, xb.requires_grad_(), mod, "grad_cam")
        if act.ndim != 4:
            raise ValueError(f"grad_cam: layer output must be feature maps (N, C, H, W), got {tuple(act.shape)}")
        t = resolve_targets(target, out.detach().array, "grad_cam")
        (g,) = grad(select_scores(out, t), act)
    alpha = g.array.mean(axis=(2, 3), keepdims=True)
    cam = (alpha * act.detach().array).sum(axis=1, keepdims=True)
    if relu:
        cam = xp.maximum(cam, 0)
    if upsample and cam.shape[2:] != xb.shape[2:]:
        with no_grad():
            cam = F.interpolate(Tensor._wrap(cam), size=tuple(xb.shape[2:]), mode="bilinear",
                                align_corners=False).array
    return cam[:, 0]


def occlusion(model: nn.Module, x: Any, target: Any = None, size: int = 4, stride: int = 2, fill: float = 0.0,
              batch_size: int = 128) -> Any:
    """Occlusion sensitivity (Zeiler & Fergus, 2014): slide a ``size × size`` square of value
    ``fill`` over the image with ``stride``; a pixel's sensitivity is the drop of the target
    class probability, averaged over the occluder positions that cover it.

    Args:
        size: side of the occluding square (pixels).
        stride: step between occluder positions (the last position touches the border).
        fill: the occluder's value.

    Shape:
        Returns ``(N, H, W)``: positive where hiding the pixel lowers the class probability.
    """
    xb = as_batch(x, "occlusion", model_dtype(model))
    n, c, h, w = xb.shape
    if not (0 < size <= min(h, w)) or stride < 1:
        raise ValueError(f"occlusion: need 0 < size <= min(H, W) = {min(h, w)} and stride >= 1, "
                         f"got size={size}, stride={stride}")
    ys = sorted(set(list(range(0, h - size + 1, stride)) + [h - size]))
    xs = sorted(set(list(range(0, w - size + 1, stride)) + [w - size]))
    with evaluation_mode(model):
        logits = predict(model, xb)
        t = resolve_targets(target, logits, "occlusion")
        p0 = _softmax(logits)[xp.arange(n), t]
        res = xp.zeros((n, h, w))
        for i in range(n):
            batch = xp.repeat(xb.array[i][None], len(ys) * len(xs), axis=0)
            for k, (y0, x0) in enumerate((y0, x0) for y0 in ys for x0 in xs):
                batch[k, :, y0:y0 + size, x0:x0 + size] = fill
            p = _softmax(predict(model, Tensor._wrap(batch), batch_size))[:, t[i]]
            total, count = xp.zeros((h, w)), xp.zeros((h, w))
            for k, (y0, x0) in enumerate((y0, x0) for y0 in ys for x0 in xs):
                total[y0:y0 + size, x0:x0 + size] += p0[i] - p[k]
                count[y0:y0 + size, x0:x0 + size] += 1
            res[i] = total / xp.maximum(count, 1)
    return res


def _softmax(z: Any) -> Any:
    z = z.astype(backend.float64)
    e = xp.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
