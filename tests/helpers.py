"""The torch-oracle harness: one line per case.

``oracle(fn, (3, 4), (4,))`` draws inputs of those shapes, runs ``fn`` on lamina tensors and on
torch tensors (the APIs match, so one ``fn`` usually serves both; pass ``torch_fn`` where they
differ), and compares the forward values and the gradient of every floating input after a
backward with the same random upstream gradient.

``check_grads(fn, (3, 4))`` runs lamina's float64 gradcheck and gradgradcheck on the same fn.

With ``LAMINA_TEST_ARRAY=seam`` the oracle's lamina inputs and upstream gradients are
:class:`tests.seam_backend.SeamArray` s (an array type that is not an ndarray, on lamina's
device seam), and the oracle checks that every output and gradient stays one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

import lamina
from lamina.autograd import gradcheck, gradgradcheck

from . import seam_backend

SEAM = seam_backend.enabled()

TOL = {"float64": dict(rtol=1e-10, atol=1e-10), "float32": dict(rtol=1e-5, atol=1e-5)}


class Input:
    """An input spec: a shape plus how to draw it (or a fixed array)."""

    def __init__(self, shape: Sequence[int] = (), low: float | None = None, high: float | None = None,
                 array: Any = None, grad: bool = True, noncontig: bool = False,
                 distinct: bool = False) -> None:
        self.shape, self.low, self.high = tuple(shape), low, high
        self.array, self.grad, self.noncontig, self.distinct = array, grad, noncontig, distinct

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        if self.array is not None:
            return np.asarray(self.array)
        if self.distinct:  # well-separated values: no ties, no kinks within finite-difference reach
            n = int(np.prod(self.shape)) if self.shape else 1
            a = (rng.permutation(n) - n / 2) * 0.37 + rng.uniform(-0.05, 0.05, n)
            return a.reshape(self.shape)
        if self.low is not None:
            return rng.uniform(self.low, self.high, self.shape)
        return rng.standard_normal(self.shape)


def _spec(s: Any) -> Input:
    if isinstance(s, Input):
        return s
    if isinstance(s, np.ndarray):
        return Input(array=s, grad=s.dtype.kind == "f")
    return Input(tuple(s))


def _noncontig(a: np.ndarray) -> np.ndarray:
    """The same values in a non-contiguous (strided) array."""
    if a.ndim == 0:
        return a
    big = np.empty(a.shape[:-1] + (a.shape[-1] * 2,), dtype=a.dtype)
    big[..., ::2] = a
    view = big[..., ::2]
    assert not view.flags.c_contiguous or a.shape[-1] <= 1
    return view


def _flat_outputs(out: Any) -> list[Any]:
    if isinstance(out, (tuple, list)):
        res = []
        for o in out:
            res.extend(_flat_outputs(o))
        return res
    return [out]


def make_inputs(specs: Sequence[Any], dtype: str, seed: int,
                seam: bool = False) -> tuple[list[Any], list[Any], list[Input]]:
    rng = np.random.default_rng(seed)
    specs = [_spec(s) for s in specs]
    lam, tor = [], []
    for s in specs:
        a = s.draw(rng)
        if a.dtype.kind == "f":
            a = a.astype(dtype)
        if s.noncontig:
            a = _noncontig(a)
        t = torch.from_numpy(np.array(a))
        l_arr = a if s.noncontig else np.array(a)
        lt = lamina.Tensor._wrap(seam_backend.SeamArray(l_arr) if seam else l_arr)
        if s.grad and a.dtype.kind == "f":
            t.requires_grad_()
            lt.requires_grad_()
        lam.append(lt)
        tor.append(t)
    return lam, tor, specs


def oracle(fn: Callable[..., Any], *specs: Any, torch_fn: Callable[..., Any] | None = None,
           dtype: str = "float64", seed: int = 0, grad: bool = True, rtol: float | None = None,
           atol: float | None = None) -> None:
    """Compare ``fn`` on lamina with ``torch_fn`` (default ``fn``) on torch: outputs and the
    gradient of every input that requires grad."""
    tol = dict(TOL[dtype])
    if rtol is not None:
        tol["rtol"] = rtol
    if atol is not None:
        tol["atol"] = atol
    lam, tor, _ = make_inputs(specs, dtype, seed, seam=SEAM)
    out_l = _flat_outputs(fn(*lam))
    out_t = _flat_outputs((torch_fn or fn)(*tor))
    assert len(out_l) == len(out_t), f"{len(out_l)} outputs vs torch's {len(out_t)}"
    rng = np.random.default_rng(seed + 1000)
    roots_l, roots_t, ups = [], [], []
    for i, (ol, ot) in enumerate(zip(out_l, out_t)):
        if isinstance(ot, torch.Tensor):
            assert isinstance(ol, lamina.Tensor), f"output {i}: {type(ol)} vs a torch tensor"
            expected = ot.detach().numpy()
            assert tuple(ol.shape) == tuple(expected.shape), f"output {i}: shape {ol.shape} vs {expected.shape}"
            assert ol.dtype == expected.dtype, f"output {i}: dtype {ol.dtype} vs {expected.dtype}"
            if SEAM:
                assert type(ol.array) is seam_backend.SeamArray, f"output {i}: a {type(ol.array).__name__}"
            np.testing.assert_allclose(ol.detach().array, expected, **tol, err_msg=f"output {i}")
            if grad and ot.requires_grad:
                assert ol.requires_grad, f"output {i} should require grad"
                up = rng.standard_normal(expected.shape).astype(expected.dtype)
                roots_l.append(ol)
                roots_t.append(ot)
                ups.append(up)
        else:
            assert ol == ot, f"output {i}: {ol!r} vs {ot!r}"
    if not roots_l:
        return
    lamina.autograd.engine.run_backward(roots_l, [lamina.Tensor._wrap(seam_backend.SeamArray(u) if SEAM else u)
                                                  for u in ups])
    torch.autograd.backward(roots_t, [torch.from_numpy(u) for u in ups])
    for k, (il, it) in enumerate(zip(lam, tor)):
        if not it.requires_grad:
            continue
        if it.grad is None:
            assert il.grad is None or not np.any(il.grad.array), f"input {k}: torch has no grad"
            continue
        assert il.grad is not None, f"input {k}: lamina produced no gradient"
        assert il.grad.shape == il.shape
        if SEAM:
            assert type(il.grad.array) is seam_backend.SeamArray, f"grad of input {k}: a {type(il.grad.array)}"
        np.testing.assert_allclose(il.grad.array, it.grad.numpy(), **tol, err_msg=f"grad of input {k}")


def check_grads(fn: Callable[..., Any], *specs: Any, seed: int = 0, second: bool = True,
                atol: float = 1e-5, rtol: float = 1e-3) -> None:
    """float64 gradcheck (and gradgradcheck) of ``fn`` on inputs drawn from ``specs``."""
    lam, _, _ = make_inputs(specs, "float64", seed)
    assert gradcheck(fn, tuple(lam), atol=atol, rtol=rtol)
    if second:
        assert gradgradcheck(fn, tuple(lam), atol=atol, rtol=rtol)


def random_shape(rng: np.random.Generator, min_dims: int = 0, max_dims: int = 4, max_size: int = 5) -> tuple[int, ...]:
    return tuple(int(s) for s in rng.integers(1, max_size + 1, size=rng.integers(min_dims, max_dims + 1)))


def broadcast_pair(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Two shapes that broadcast together (some dims 1, some leading dims missing)."""
    full = random_shape(rng, 1, 4)
    a = tuple(1 if rng.random() < 0.3 else s for s in full)
    b = tuple(1 if rng.random() < 0.3 else s for s in full)
    b = b[int(rng.integers(0, len(b) + 1)):]
    return (a, b) if rng.random() < 0.5 else (b, a)
