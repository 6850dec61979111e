"""The CNN explainer's server side: a run folder's model on one image, layer by layer.

Run folders are read only through ``lamina.train.run.load_run`` (lamina's own file format, no
pickle), and only folders directly inside the explainer's runs folder (a name, not a path). An
uploaded image is decoded by ``lamina.datasets.read_image`` (Pillow, pixel count checked from
the header first). Grad-CAM and saliency are ``lamina.vis.grad_cam`` and ``lamina.vis.saliency``.
"""

from __future__ import annotations

import io
import json
import os
import threading
from typing import Any

import numpy as np

__all__ = ["Explainer", "read_upload", "MAX_CHANNELS"]

MAX_CHANNELS = 64  # activation maps sent per layer: wider layers show their first ones


def read_upload(data: bytes) -> bytes:
    """Check that ``data`` is an image that lamina can read; returns it unchanged."""
    from ..datasets import read_image

    read_image(io.BytesIO(data), 1, (8, 8), "CNN explainer: image upload")
    return data


def _r(a: Any, digits: int = 4) -> Any:
    return np.round(np.asarray(a, dtype=np.float64), digits).tolist()


class Explainer:
    """The run folders of ``runs_dir`` and what their models do to one image."""

    def __init__(self, runs_dir: str) -> None:
        self.runs_dir = os.path.abspath(runs_dir)
        self.cache: dict[str, Any] = {}
        self.lock = threading.Lock()

    def list_runs(self) -> list[dict[str, Any]]:
        """Run folders (with a checkpoint) of image classifiers, newest name last."""
        from ..train.run_config import IMAGE_SETS

        if not os.path.isdir(self.runs_dir):
            return []
        runs = []
        for name in sorted(os.listdir(self.runs_dir)):
            folder = os.path.join(self.runs_dir, name)
            if not os.path.isfile(os.path.join(folder, "checkpoint.lamina")):
                continue
            try:
                with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
                    config = json.load(f)
            except (OSError, json.JSONDecodeError, UnicodeDecodeError):
                continue  # not a readable run folder: not offered
            if isinstance(config, dict) and config.get("data") in IMAGE_SETS:
                runs.append({"name": name, "model": config.get("model"), "data": config.get("data")})
        return runs

    def _run(self, name: Any) -> dict[str, Any]:
        from ..train.run import build_data, load_run

        if not isinstance(name, str) or not name or name != os.path.basename(name) or name in (".", ".."):
            raise ValueError(f"CNN explainer: a run is named by its folder's name in the runs folder, got {name!r}")
        folder = os.path.join(self.runs_dir, name)
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"CNN explainer: no run folder {name!r} in {self.runs_dir}")
        with self.lock:
            if name not in self.cache:
                config, model, _ = load_run(folder)
                self.cache[name] = {"config": config, "model": model, "test": build_data(config, train=False)}
            return self.cache[name]

    def _image(self, run: dict[str, Any], image: Any) -> tuple[np.ndarray, int | None]:
        """``(x (C, H, W) float32, label or None)`` for a test-set index or uploaded image bytes."""
        from ..datasets import read_image
        from ..train.run_config import data_info, model_input_size

        if isinstance(image, bytes):
            info = data_info(run["config"])
            size = model_input_size(run["config"], info["size"])
            return read_image(io.BytesIO(image), info["channels"], (size, size), "CNN explainer: image upload"), None
        ds = run["test"]
        if not isinstance(image, int) or isinstance(image, bool) or not 0 <= image < len(ds):
            raise ValueError(f"CNN explainer: the test image index must be an integer in [0, {len(ds) - 1}], "
                             f"got {image!r}")
        x, y = ds[image]
        return np.asarray(x.numpy() if hasattr(x, "numpy") else x, dtype=np.float32), int(y)

    def _trace(self, model: Any, x: np.ndarray, keep_graph: bool = False) -> tuple[Any, list[dict[str, Any]]]:
        """Run ``model`` on ``x`` recording every leaf module's input and output in call order."""
        import lamina

        leaves = [(n, m) for n, m in model.named_modules() if n and not list(m.children())]
        trace: list[dict[str, Any]] = []
        handles = []
        for name, mod in leaves:
            def hook(m: Any, args: tuple[Any, ...], out: Any, name: str = name) -> None:
                trace.append({"name": name, "module": m, "input": args[0] if args else None,
                              "output": out[0] if isinstance(out, tuple) else out})
            handles.append(mod.register_forward_hook(hook))
        model.eval()
        try:
            xt = lamina.tensor(x[None])
            if keep_graph:
                xt.requires_grad_()
                out = model(xt)
            else:
                with lamina.no_grad():
                    out = model(xt)
        finally:
            for h in handles:
                h.remove()
        return out, trace

    def forward(self, name: Any, image: Any) -> dict[str, Any]:
        """The input, every layer's activation maps (or values) and the class probabilities."""
        run = self._run(name)
        x, label = self._image(run, image)
        out, trace = self._trace(run["model"], x)
        layers = []
        for t in trace:
            a = t["output"].numpy()[0]
            entry = {"name": t["name"], "type": type(t["module"]).__name__, "shape": list(a.shape)}
            if a.ndim == 3:
                entry["maps"] = _r(a[:MAX_CHANNELS], 3)
            else:
                entry["values"] = _r(a.reshape(-1)[:1024], 4)
            layers.append(entry)
        logits = out.numpy()[0].astype(np.float64)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        classes = run["config"].get("classes") or [str(i) for i in range(len(p))]
        return {"input": _r(x, 3), "label": label, "layers": layers, "logits": _r(logits), "probs": _r(p),
                "pred": int(p.argmax()), "classes": classes, "config": {k: run["config"].get(k) for k in
                                                                       ("model", "data", "epochs")}}

    def unit(self, name: Any, image: Any, layer: Any, channel: Any, y: Any, x_: Any) -> dict[str, Any]:
        """One unit's arithmetic: a conv's patch × kernel + bias (→ the following ReLU), a pooling
        window, a linear unit's largest products, or the softmax over the logits."""
        from .. import nn

        run = self._run(name)
        x, _ = self._image(run, image)
        out, trace = self._trace(run["model"], x)
        names = [t["name"] for t in trace]
        if layer not in names:
            raise ValueError(f"CNN explainer: unknown layer {layer!r}; layers: {', '.join(names)}")
        i = names.index(layer)
        t = trace[i]
        mod, inp, res = t["module"], t["input"].numpy()[0], t["output"].numpy()[0]
        for key, v in (("channel", channel), ("y", y), ("x", x_)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"CNN explainer: {key} must be a non-negative integer, got {v!r}")
        info: dict[str, Any] = {"layer": layer, "type": type(mod).__name__}
        if res.ndim == 3:
            if channel >= res.shape[0] or y >= res.shape[1] or x_ >= res.shape[2]:
                raise ValueError(f"CNN explainer: unit ({channel}, {y}, {x_}) is outside {layer}'s output "
                                 f"{tuple(res.shape)}")
            info["output"] = float(res[channel, y, x_])
        if isinstance(mod, nn.Conv2d) and mod.groups == 1 and isinstance(mod.padding, tuple):
            (sh, sw), (ph, pw), (dh, dw) = mod.stride, mod.padding, mod.dilation
            kh, kw = mod.kernel_size
            padded = np.pad(inp, ((0, 0), (ph, ph), (pw, pw)))
            rows = y * sh + dh * np.arange(kh)
            cols = x_ * sw + dw * np.arange(kw)
            patch = padded[:, rows][:, :, cols]
            kernel = mod.weight.detach().numpy()[channel]
            bias = float(mod.bias.detach().numpy()[channel]) if mod.bias is not None else 0.0
            total = float((patch.astype(np.float64) * kernel).sum() + bias)
            info.update(kind="conv", patch=_r(patch), kernel=_r(kernel), bias=bias, sum=total,
                        rows=(rows - ph).tolist(), cols=(cols - pw).tolist())
            info["then"] = self._then(trace, i, channel, y, x_)
        elif isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d)):
            k = mod.kernel_size if isinstance(mod.kernel_size, tuple) else (mod.kernel_size,) * 2
            s = mod.stride if isinstance(mod.stride, tuple) else (mod.stride,) * 2
            p = mod.padding if isinstance(mod.padding, tuple) else (mod.padding,) * 2
            r0, c0 = y * s[0] - p[0], x_ * s[1] - p[1]
            window = inp[channel, max(r0, 0):r0 + k[0], max(c0, 0):c0 + k[1]]
            info.update(kind="maxpool" if isinstance(mod, nn.MaxPool2d) else "avgpool", window=_r(window),
                        rows=[max(r0, 0), r0 + k[0]], cols=[max(c0, 0), c0 + k[1]],
                        value=float(window.max() if isinstance(mod, nn.MaxPool2d) else window.mean()))
        elif isinstance(mod, nn.Linear) and i == len(trace) - 1:
            z = out.numpy()[0].astype(np.float64)
            e = np.exp(z - z.max())
            info.update(kind="softmax", logits=_r(z), exp=_r(e), probs=_r(e / e.sum()), max_logit=float(z.max()))
        elif isinstance(mod, nn.Linear):
            if channel >= res.shape[0]:
                raise ValueError(f"CNN explainer: unit {channel} is outside {layer}'s {res.shape[0]} outputs")
            w = mod.weight.detach().numpy()[channel].astype(np.float64)
            flat = inp.reshape(-1)
            prod = w * flat
            bias = float(mod.bias.detach().numpy()[channel]) if mod.bias is not None else 0.0
            top = [{"input": int(j), "x": float(flat[j]), "w": float(w[j]), "product": float(prod[j])}
                   for j in np.argsort(-np.abs(prod))[:10]]
            info.update(kind="linear", output=float(res[channel]), top=top, bias=bias, sum=float(prod.sum() + bias))
        else:
            info["kind"] = "other"
        return info

    @staticmethod
    def _then(trace: list[dict[str, Any]], i: int, channel: int, y: int, x: int) -> list[dict[str, Any]]:
        """The element-wise layers right after layer ``i`` (batch norm, activations) at one unit:
        what each makes of the value (batch norm with its running statistics and affine numbers)."""
        from .. import nn

        steps = []
        for t in trace[i + 1:]:
            mod = t["module"]
            if not isinstance(mod, (nn.BatchNorm2d, nn.ReLU, nn.LeakyReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.Tanh,
                                    nn.Sigmoid, nn.ELU, nn.Mish, nn.Hardswish)):
                break
            step = {"layer": t["name"], "type": type(mod).__name__,
                    "input": float(t["input"].numpy()[0, channel, y, x]),
                    "value": float(t["output"].numpy()[0, channel, y, x])}
            if isinstance(mod, nn.BatchNorm2d):
                step.update(mean=float(mod.running_mean.numpy()[channel]), var=float(mod.running_var.numpy()[channel]),
                            eps=mod.eps, gamma=float(mod.weight.detach().numpy()[channel]) if mod.affine else 1.0,
                            beta=float(mod.bias.detach().numpy()[channel]) if mod.affine else 0.0)
            steps.append(step)
        return steps

    def explain(self, name: Any, image: Any, target: Any = None) -> dict[str, Any]:
        """Grad-CAM and saliency (``lamina.vis``) and the gradient of the target's score with
        respect to every layer's output (the backward view)."""
        import lamina

        from .. import vis

        run = self._run(name)
        x, _ = self._image(run, image)
        model = run["model"]
        out, trace = self._trace(model, x, keep_graph=True)
        k = out.shape[1]
        tgt = int(out.detach().numpy()[0].argmax()) if target is None else target
        if not isinstance(tgt, int) or isinstance(tgt, bool) or not 0 <= tgt < k:
            raise ValueError(f"CNN explainer: target must be a class index in [0, {k - 1}], got {target!r}")
        acts = [t["output"] for t in trace]
        grads = lamina.autograd.grad(out[0, tgt], acts, allow_unused=True)
        layers = []
        for t, g in zip(trace, grads):
            if g is None:
                continue
            a = g.numpy()[0]
            entry = {"name": t["name"], "shape": list(a.shape)}
            if a.ndim == 3:
                entry["maps"] = _r(a[:MAX_CHANNELS], 5)
            else:
                entry["values"] = _r(a.reshape(-1)[:1024], 5)
            layers.append(entry)
        return {"target": tgt, "grad_cam": _r(vis.grad_cam(model, x, tgt)[0], 4),
                "saliency": _r(vis.saliency(model, x, tgt)[0], 5), "gradients": layers}
