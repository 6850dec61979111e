"""``lamina.nn.init``: weight initializations with torch's names, formulas and defaults.

Every function fills its tensor in place (under ``no_grad``), draws from lamina's global
generator (``lamina.manual_seed``) unless ``generator`` is given, and returns the tensor.

Fan-in and fan-out of a weight of shape ``(out, in, *kernel)`` are ``in·∏kernel`` and
``out·∏kernel``. Xavier/Glorot keeps the variance of activations and gradients equal across
layers for linear/tanh units (``Var = 2/(fan_in + fan_out)``); Kaiming/He does it for ReLU
(``Var = gain²/fan``).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import warnings
from collections.abc import Iterator
from typing import Any

from .. import backend
from ..autograd.tensor import Tensor

__all__ = [
    "calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_", "eye_", "dirac_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "trunc_normal_",
    "orthogonal_", "uniform", "normal", "constant", "eye", "dirac", "xavier_uniform", "xavier_normal",
    "kaiming_uniform", "kaiming_normal", "orthogonal",
]

xp = backend.xp


# What a ``Linear`` or conv layer does with its parameters when it is built: "draw" (torch's
# default init), "skip" (leave the memory as allocated: the builder initializes it next) or "zeros".
# Trap: a context variable, not a module or class attribute, so that a model built with "skip" in
# one thread (or asyncio task) never leaves another thread's layers uninitialized.
_ON_BUILD: contextvars.ContextVar[str] = contextvars.ContextVar("lamina_init_on_build", default="draw")


@contextlib.contextmanager
def _on_build(mode: str) -> Iterator[None]:
    """Within the block, in this thread only, Linear and conv layers built do ``mode`` with their
    parameters instead of drawing them ("skip" inside a "zeros" block stays "zeros")."""
    if mode not in ("draw", "skip", "zeros"):
        raise ValueError(f"init: unknown build mode {mode!r}")
    if mode == "skip" and _ON_BUILD.get() == "zeros":
        mode = "zeros"
    token = _ON_BUILD.set(mode)
    try:
        yield
    finally:
        _ON_BUILD.reset(token)


def _build_mode() -> str:
    return _ON_BUILD.get()


def _init_built(layer: Any) -> None:
    """Called by a layer's ``__init__`` instead of ``reset_parameters()``."""
    mode = _ON_BUILD.get()
    if mode == "draw":
        layer.reset_parameters()
    elif mode == "zeros":
        for p in (layer.weight, getattr(layer, "bias", None)):
            if p is not None:
                p.array = xp.zeros(p.shape, dtype=p.array.dtype)  # calloc: no page touched


def _gen(generator: Any) -> Any:
    return generator if generator is not None else backend.generator()


def _fill(tensor: Tensor, values: Any) -> Tensor:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"init: expected a lamina Tensor, got {type(tensor).__name__}")
    if values is not tensor.array:
        tensor.array[...] = values
    tensor._bump_version()
    return tensor


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for ``nonlinearity`` (torch's table): 1 for linear, conv and
    sigmoid; 5/3 for tanh; √2 for relu; √(2/(1+slope²)) for leaky_relu; 3/4 for selu."""
    linear = {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid"}
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    if tensor.ndim < 2:
        raise ValueError(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions "
            f"(got shape {tuple(tensor.shape)})"
        )
    receptive = 1
    for s in tensor.shape[2:]:
        receptive *= s
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _float_draw(tensor: Tensor, draw: Any) -> Any:
    """Samples drawn straight into the tensor's own float32/float64 array when it is contiguous
    (no float64 temporary, no copy), else into a new array."""
    a = tensor.array
    if a.dtype in (backend.float32, backend.float64) and a.flags.c_contiguous and a.flags.writeable:
        draw(a)
        return a
    out = xp.empty(a.shape, dtype=a.dtype if a.dtype in (backend.float32, backend.float64) else backend.float64)
    draw(out)
    return out


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: Any = None) -> Tensor:
    """Fill with samples from U(a, b)."""
    g = _gen(generator)
    u = _float_draw(tensor, lambda out: g.random(out=out, dtype=out.dtype))
    u *= b - a
    u += a
    return _fill(tensor, u)


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: Any = None) -> Tensor:
    """Fill with samples from N(mean, std²)."""
    g = _gen(generator)
    z = _float_draw(tensor, lambda out: g.standard_normal(out=out, dtype=out.dtype))
    z *= std
    z += mean
    return _fill(tensor, z)


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator: Any = None) -> Tensor:
    """Fill with N(mean, std²) samples truncated to [a, b] (exact, by rejection)."""
    if not a < b:
        raise ValueError(f"trunc_normal_: expected a < b, got a={a}, b={b}")
    g = _gen(generator)
    out = g.normal(mean, std, tensor.shape)
    bad = (out < a) | (out > b)
    for _ in range(1000):
        if not bad.any():
            break
        out[bad] = g.normal(mean, std, int(bad.sum()))
        bad = (out < a) | (out > b)
    return _fill(tensor, xp.clip(out, a, b))


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``."""
    return _fill(tensor, val)


def ones_(tensor: Tensor) -> Tensor:
    return _fill(tensor, 1)


def zeros_(tensor: Tensor) -> Tensor:
    return _fill(tensor, 0)


def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-D tensor with the identity matrix."""
    if tensor.ndim != 2:
        raise ValueError(f"eye_: only tensors with 2 dimensions are supported (got {tensor.ndim})")
    return _fill(tensor, xp.eye(*tensor.shape))


def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    """Fill a 3/4/5-D conv weight with the Dirac delta: the conv then passes its input through
    (as many input channels as possible, per group)."""
    if tensor.ndim not in (3, 4, 5):
        raise ValueError(f"dirac_: only tensors with 3, 4, or 5 dimensions are supported (got {tensor.ndim})")
    out_per_group = tensor.shape[0] // groups
    if tensor.shape[0] % groups:
        raise ValueError("dim 0 must be divisible by groups")
    w = xp.zeros(tensor.shape)
    centre = tuple(k // 2 for k in tensor.shape[2:])
    for g in range(groups):
        for d in range(min(out_per_group, tensor.shape[1])):
            w[(g * out_per_group + d, d) + centre] = 1
    return _fill(tensor, w)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """U(−a, a) with ``a = gain·√(6/(fan_in + fan_out))`` (Glorot & Bengio, 2010)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    a = gain * math.sqrt(6.0 / float(fan_in + fan_out))
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """N(0, std²) with ``std = gain·√(2/(fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)), generator)


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator: Any = None) -> Tensor:
    """U(−bound, bound) with ``bound = gain·√(3/fan)`` (He et al., 2015)."""
    if 0 in tensor.shape:
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator: Any = None) -> Tensor:
    """N(0, std²) with ``std = gain/√fan``."""
    if 0 in tensor.shape:
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std, generator)


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """A (semi-)orthogonal matrix from the QR decomposition of a Gaussian one (Saxe et al.)."""
    if tensor.ndim < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    flat = _gen(generator).standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = xp.linalg.qr(flat)
    q = q * xp.sign(xp.diag(r))
    if rows < cols:
        q = q.T
    return _fill(tensor, gain * q.reshape(tensor.shape))


def _make_deprecated(meth: Any) -> Any:
    new_name = meth.__name__
    old_name = new_name[:-1]

    def deprecated_init(*args: Any, **kwargs: Any) -> Any:
        warnings.warn(f"`nn.init.{old_name}` is now deprecated in favor of `nn.init.{new_name}`.",
                      FutureWarning, stacklevel=2)
        return meth(*args, **kwargs)

    deprecated_init.__name__ = old_name
    deprecated_init.__doc__ = f"Deprecated alias of :func:`{new_name}` (warns, as torch's)."
    return deprecated_init


# torch's deprecated spellings without the trailing underscore, still in older scripts
uniform = _make_deprecated(uniform_)
normal = _make_deprecated(normal_)
constant = _make_deprecated(constant_)
eye = _make_deprecated(eye_)
dirac = _make_deprecated(dirac_)
xavier_uniform = _make_deprecated(xavier_uniform_)
xavier_normal = _make_deprecated(xavier_normal_)
kaiming_uniform = _make_deprecated(kaiming_uniform_)
kaiming_normal = _make_deprecated(kaiming_normal_)
orthogonal = _make_deprecated(orthogonal_)
