"""Random sampling: ``multinomial``, ``bernoulli`` (and ``Tensor.bernoulli_``), ``normal``.

All draw from lamina's global generator (``lamina.manual_seed``) or the ``generator`` given; the
streams are NumPy's, so the samples differ from torch's for the same seed (their distributions are
the same). Samples carry no gradient; ``normal`` of tensors, as torch's, is in the graph of ``mean``
and ``std`` with a zero gradient (for a reparameterized sample write ``mean + std * randn_like(std)``).
"""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd.tensor import Tensor, register
from .common import check_tensor, const, to_tensor
from .inplace import apply_inplace
from .selection import where

__all__ = ["multinomial", "bernoulli", "normal"]

xp = backend.xp


def _gen(generator: Any) -> Any:
    return generator if generator is not None else backend.generator()


@register("multinomial")
def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *, generator: Any = None) -> Tensor:
    """``num_samples`` category indices per row, drawn with probabilities proportional to the
    (non-negative, not necessarily normalized) weights in ``input`` (1-D or 2-D); without
    ``replacement`` each index at most once per row."""
    check_tensor(input, "multinomial")
    if input.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim, got {input.ndim}")
    if input.dtype.kind != "f":
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got: {input.dtype}")
    w = input.array.reshape(-1, input.shape[-1]).astype(xp.float64)
    n = w.shape[-1]
    if num_samples <= 0:
        raise RuntimeError(f"multinomial: cannot sample n_sample <= 0 samples, got {num_samples}")
    if not replacement and num_samples > n:
        raise RuntimeError("multinomial: cannot sample n_sample > prob_dist.size(-1) samples without replacement")
    if not xp.isfinite(w).all() or (w < 0).any():
        raise RuntimeError("multinomial: probability tensor contains either `inf`, `nan` or element < 0")
    totals = w.sum(-1)
    if (totals <= 0).any():
        raise RuntimeError("multinomial: invalid multinomial distribution (sum of probabilities <= 0)")
    if not replacement and ((w > 0).sum(-1) < num_samples).any():
        raise RuntimeError("multinomial: invalid multinomial distribution (with replacement=False, not enough "
                           "non-negative category to sample)")
    g = _gen(generator)
    p = w / totals[:, None]
    if replacement:
        cdf = xp.cumsum(p, -1)
        u = g.random((w.shape[0], num_samples)) * cdf[:, -1:]
        out = xp.stack([xp.searchsorted(c, r, side="right") for c, r in zip(cdf, u)]).clip(0, n - 1)
    else:  # Gumbel-top-k: the k largest log p + Gumbel noise are a draw without replacement
        with xp.errstate(divide="ignore"):
            keys = xp.log(p) - xp.log(-xp.log(g.random(p.shape)))
        out = xp.argsort(-keys, axis=-1, kind="stable")[:, :num_samples]
    out = out.astype(backend.int64)
    return const(out.reshape(num_samples) if input.ndim == 1 else out)


@register("bernoulli")
def bernoulli(input: Tensor, p: float | None = None, *, generator: Any = None) -> Tensor:
    """1 with probability ``input`` (or ``p``) elementwise, else 0, in ``input``'s dtype."""
    check_tensor(input, "bernoulli")
    prob = input.array if p is None else xp.full(input.shape, p)
    if p is None and input.dtype.kind != "f":
        raise RuntimeError(f"bernoulli: expected a floating point input of probabilities, got {input.dtype}")
    if ((prob < 0) | (prob > 1)).any() or xp.isnan(prob).any():
        raise RuntimeError("bernoulli: all elements of input should be between 0 and 1")
    draws = _gen(generator).random(input.shape) < prob
    return const(draws.astype(input.dtype))


@register("bernoulli_")
def bernoulli_(self: Tensor, p: Any = 0.5, *, generator: Any = None) -> Tensor:
    """Fill in place with 1 (probability ``p``, a number or a tensor broadcast to self) or 0."""
    prob = p.array if isinstance(p, Tensor) else xp.asarray(p, dtype=xp.float64)
    if ((prob < 0) | (prob > 1)).any():
        raise RuntimeError(f"bernoulli_ expects p to be in [0, 1], but got p={p}")
    values = (_gen(generator).random(self.shape) < xp.broadcast_to(prob, self.shape)).astype(self.dtype)
    return apply_inplace(self, "bernoulli_", lambda src: where(const(xp.ones(self.shape, dtype=bool)), const(values),
                                                               src),
                         lambda: self.array.__setitem__(Ellipsis, values))


def normal(mean: Any = 0.0, std: Any = 1.0, size: Any = None, *, generator: Any = None, dtype: Any = None) -> Tensor:
    """Samples of ``N(mean, std²)``: ``mean`` and ``std`` tensors (broadcast) or numbers (then ``size``
    gives the shape)."""
    if isinstance(std, (int, float)) and std < 0 or isinstance(std, Tensor) and (std.array < 0).any():
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std if not isinstance(std, Tensor) else '< 0'}")
    if not isinstance(mean, Tensor) and not isinstance(std, Tensor):
        if size is None:
            raise TypeError("normal: with a number mean and std, give the size")
        shape = (size,) if isinstance(size, int) else tuple(size)
        d = backend.to_dtype(dtype) if dtype is not None else backend.get_default_dtype()
        z = _gen(generator).standard_normal(shape).astype(d)
        return const(z * d.type(std) + d.type(mean))
    like = mean if isinstance(mean, Tensor) else std
    m, s = to_tensor(mean, like), to_tensor(std, like)
    shape = xp.broadcast_shapes(m.shape, s.shape)
    z = _gen(generator).standard_normal(shape).astype(like.dtype)
    sample = xp.asarray(m.array + s.array * z, dtype=like.dtype)
    # in the graph of mean and std with torch's zero gradient (not (m + s) * 0: nan where one is inf)
    return where(const(xp.ones(shape, dtype=bool)), const(sample), m + s)
