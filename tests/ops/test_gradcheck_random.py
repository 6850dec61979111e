"""float64 gradcheck and gradgradcheck over random configurations for the pooling,
unpooling, resampling, normalization and channel-dropout ops (the conv family draws its own
in ``test_conv.py`` / ``test_conv_transpose.py``). Each seed draws a configuration per op:
kernel, stride, padding, dilation, ceil_mode, sizes and ranks; inputs have well-separated
values, so no max-pool tie or kink lies within finite-difference reach."""

from __future__ import annotations

import numpy as np
import pytest

import lamina
import lamina.nn.functional as LF
from tests.helpers import Input, check_grads

SEEDS = range(4)


def _pool_config(rng: np.random.Generator, nd: int) -> tuple:
    """(input shape, kernel, stride, padding, dilation, ceil_mode) that torch accepts."""
    k = tuple(int(v) for v in rng.integers(1, 4, nd))
    s = tuple(int(v) for v in rng.integers(1, 3, nd))
    d = tuple(int(v) for v in rng.integers(1, 3, nd))
    p = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k)
    size = tuple(int(d_ * (k_ - 1) + 1 + rng.integers(0, 3)) for k_, d_ in zip(k, d))
    return (int(rng.integers(1, 3)), int(rng.integers(1, 3)), *size), k, s, p, d, bool(rng.integers(0, 2))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_pool_with_indices_and_unpool(seed, nd):
    rng = np.random.default_rng(100 * nd + seed)
    shape, k, s, p, d, ceil = _pool_config(rng, nd)
    pool = getattr(LF, f"max_pool{nd}d")
    unpool = getattr(LF, f"max_unpool{nd}d")
    check_grads(lambda x: pool(x, k, s, p, d, ceil, True)[0], Input(shape, distinct=True))
    # unpooling puts the maxima back; its gradient reads the unpooled gradient at the indices.
    # Windows that do not overlap (stride ≥ kernel): where two windows share their maximum both
    # write it to one place, and the composition's derivative (1) is no longer the chain
    # rule's (2), in torch as here; no dilation or ceil_mode, as unpooling's output size
    # inverts the pool's
    su = tuple(max(a, b) for a, b in zip(k, s))
    check_grads(lambda x: unpool(*pool(x, k, su, p, 1, False, True), k, su, p, shape[2:]),
                Input(shape, distinct=True))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_avg_and_lp_pool(seed, nd):
    rng = np.random.default_rng(200 * nd + seed)
    shape, k, s, p, _, ceil = _pool_config(rng, nd)
    include = bool(rng.integers(0, 2))
    divisor = None if rng.random() < 0.7 else int(rng.integers(1, 5))
    avg = getattr(LF, f"avg_pool{nd}d")
    check_grads(lambda x: avg(x, k, s, p, ceil, include, divisor) if nd > 1 else avg(x, k, s, p, ceil, include),
                Input(shape, distinct=True))
    norm = [1.0, 2.0, 3.0, 2.5][int(rng.integers(0, 4))]
    lp = getattr(LF, f"lp_pool{nd}d")
    # positive inputs away from 0: |x|^p is smooth there
    check_grads(lambda x: lp(x, norm, k, s, ceil), Input(shape, low=0.5, high=2.0))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_adaptive_pools(seed, nd):
    rng = np.random.default_rng(300 * nd + seed)
    size = tuple(int(v) for v in rng.integers(1, 7, nd))
    out = tuple(int(v) for v in rng.integers(1, 6, nd))  # larger than the input too
    shape = (int(rng.integers(1, 3)), int(rng.integers(1, 3)), *size)
    check_grads(lambda x: getattr(LF, f"adaptive_avg_pool{nd}d")(x, out), Input(shape))
    check_grads(lambda x: getattr(LF, f"adaptive_max_pool{nd}d")(x, out, True)[0], Input(shape, distinct=True))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_interpolate_modes(seed, nd):
    rng = np.random.default_rng(400 * nd + seed)
    size = tuple(int(v) for v in rng.integers(1, 5, nd))
    shape = (1, int(rng.integers(1, 3)), *size)
    linear = {1: "linear", 2: "bilinear", 3: "trilinear"}[nd]
    modes = ["nearest", "nearest-exact", "area", linear] + (["bicubic"] if nd == 2 else [])
    for mode in modes:
        if rng.random() < 0.5:
            kw = {"size": tuple(int(v) for v in rng.integers(1, 7, nd))}
        else:
            kw = {"scale_factor": float(rng.choice([0.5, 1.5, 1.7, 2.0])),
                  "recompute_scale_factor": bool(rng.integers(0, 2))}
        if mode in (linear, "bicubic"):
            kw["align_corners"] = bool(rng.integers(0, 2))
        if "scale_factor" in kw and any(int(s * kw["scale_factor"]) < 1 for s in size):  # torch: an error
            kw = {"size": tuple(max(1, s // 2) for s in size)}
        check_grads(lambda x: LF.interpolate(x, mode=mode, **kw), Input(shape))


@pytest.mark.parametrize("seed", SEEDS)
def test_pixel_shuffle_and_unshuffle(seed):
    rng = np.random.default_rng(500 + seed)
    r = int(rng.integers(1, 4))
    c, h, w = int(rng.integers(1, 3)), int(rng.integers(1, 3)), int(rng.integers(1, 3))
    check_grads(lambda x: LF.pixel_shuffle(x, r), Input((2, c * r * r, h, w)))
    check_grads(lambda x: LF.pixel_unshuffle(x, r), Input((2, c, h * r, w * r)))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_normalizations(seed, nd):
    rng = np.random.default_rng(600 * nd + seed)
    c = int(rng.integers(1, 4)) * 2
    shape = (int(rng.integers(2, 4)), c, *(int(v) for v in rng.integers(1, 4, nd)))
    mean = lamina.tensor(rng.standard_normal(c))
    var = lamina.tensor(rng.uniform(0.5, 2.0, c))
    momentum = float(rng.choice([0.1, 0.5]))
    # training mode with running statistics (updated in place: fresh buffers for every call)
    check_grads(lambda x, w, b: LF.batch_norm(x, mean.clone(), var.clone(), w, b, True, momentum),
                Input(shape), Input((c,)), Input((c,)))
    check_grads(lambda x, w, b: LF.batch_norm(x, mean, var, w, b, False), Input(shape), Input((c,)), Input((c,)))
    check_grads(lambda x: LF.instance_norm(x, mean, var, use_input_stats=False), Input(shape))
    if int(np.prod(shape[2:])) > 1:
        check_grads(lambda x, w, b: LF.instance_norm(x, weight=w, bias=b), Input(shape), Input((c,)), Input((c,)))
    check_grads(lambda x, w, b: LF.group_norm(x, 2, w, b), Input(shape), Input((c,)), Input((c,)))
    check_grads(lambda x: LF.layer_norm(x, shape[-1:]), Input(shape))
    size = int(rng.integers(1, 4))
    check_grads(lambda x: LF.local_response_norm(x, size), Input(shape))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_channel_dropout(seed, nd):
    """The same mask in every evaluation (the generator reseeded), so the function is linear."""
    rng = np.random.default_rng(700 * nd + seed)
    shape = (int(rng.integers(1, 3)), int(rng.integers(2, 5)), *(int(v) for v in rng.integers(1, 4, nd)))
    p = float(rng.choice([0.2, 0.5]))
    drop = getattr(LF, f"dropout{nd}d")

    def fn(x):
        lamina.manual_seed(seed)
        return drop(x, p)

    check_grads(fn, Input(shape))
