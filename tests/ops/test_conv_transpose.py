"""conv_transpose1d/2d/3d and fold/unfold: torch oracle over 200+ random configurations each,
float64 gradcheck and gradgradcheck, hand-computed cases, errors."""

import numpy as np
import pytest
import torch

import lamina
import lamina.nn.functional as F
from lamina.ops.kernels import im2col as kernels
from tests.helpers import SEAM, Input, check_grads, oracle

TF = torch.nn.functional


def _tconfig(rng, nd):
    g = int(rng.choice([1, 1, 2, 3]))
    cg_in, cg_out = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    k = tuple(int(v) for v in rng.integers(1, 4, nd))
    s = tuple(int(v) for v in rng.integers(1, 4, nd))
    d = tuple(int(v) for v in rng.integers(1, 3, nd))
    p = tuple(int(rng.integers(0, (d_ * (k_ - 1)) // 2 + 2)) for k_, d_ in zip(k, d))
    op = tuple(int(rng.integers(0, max(s_, d_))) for s_, d_ in zip(s, d))
    size = tuple(int(v) for v in rng.integers(2, 5, nd))
    # torch needs a positive output size
    out = [(i - 1) * s_ - 2 * p_ + d_ * (k_ - 1) + o_ + 1 for i, s_, p_, d_, k_, o_ in zip(size, s, p, d, k, op)]
    if min(out) <= 0:
        p = (0,) * nd
    n = int(rng.integers(1, 3))
    unbatched = rng.random() < 0.1
    shape_x = (g * cg_in, *size) if unbatched else (n, g * cg_in, *size)
    return dict(nd=nd, g=g, k=k, s=s, d=d, p=p, op=op, shape_x=shape_x, shape_w=(g * cg_in, cg_out, *k),
                bias=rng.random() < 0.6, n_out=g * cg_out)


def _tcall(cfg):
    nd = cfg["nd"]

    def fn(x, w, b=None):
        mod = F if isinstance(x, lamina.Tensor) else TF
        return getattr(mod, f"conv_transpose{nd}d")(x, w, b, cfg["s"], cfg["p"], cfg["op"], cfg["g"], cfg["d"])

    return fn


def test_conv_transpose_by_hand():
    # stride 2 "upsampling" of [1, 2] with the kernel [1, 1, 1]: each input stamps the kernel
    # at 2·i, and the overlaps add up: [1, 1, 1+2, 2, 2]
    y = F.conv_transpose1d(lamina.tensor([[[1.0, 2.0]]]), lamina.ones(1, 1, 3), stride=2)
    assert y.tolist() == [[[1.0, 1.0, 3.0, 2.0, 2.0]]]
    # padding=1 crops one from each end; output_padding=1 adds one at the end
    y = F.conv_transpose1d(lamina.tensor([[[1.0, 2.0]]]), lamina.ones(1, 1, 3), stride=2, padding=1,
                           output_padding=1)
    assert y.tolist() == [[[1.0, 3.0, 2.0, 2.0]]]


def test_conv_transpose_oracle_random_configs():
    rng = np.random.default_rng(4321)
    old = kernels.use_numba()
    try:
        for i in range(210):
            cfg = _tconfig(rng, (1, 2, 3)[i % 3])
            kernels.use_numba(i % 2 == 0)
            specs = [Input(cfg["shape_x"], noncontig=i % 7 == 0), Input(cfg["shape_w"])]
            if cfg["bias"]:
                specs.append(Input((cfg["n_out"],)))
            oracle(_tcall(cfg), *specs, seed=i)
    finally:
        kernels.use_numba(old)


def test_conv_transpose_oracle_float32():
    fn = lambda x, w, b: (F if isinstance(x, lamina.Tensor) else TF).conv_transpose2d(x, w, b, stride=2, padding=1)
    oracle(fn, Input((4, 16, 8, 8)), Input((16, 8, 4, 4)), Input((8,)), dtype="float32", rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed", range(5))
def test_conv_transpose_gradcheck_and_gradgradcheck(seed):
    rng = np.random.default_rng(50 + seed)
    cfg = _tconfig(rng, (1, 2, 3, 2, 1)[seed])
    fn = _tcall(cfg)
    # one image, at most 2 input channels per group: gradgradcheck's cost grows with every element
    shape_x = (1, *cfg["shape_x"][-cfg["nd"] - 1:]) if len(cfg["shape_x"]) == cfg["nd"] + 2 else cfg["shape_x"]
    check_grads(lambda x, w, b: fn(x, w, b), Input(shape_x), Input(cfg["shape_w"]), Input((cfg["n_out"],)),
                seed=seed)


@pytest.mark.parametrize("kw", [dict(dilation=2, output_padding=1), dict(dilation=3, output_padding=(2, 0)),
                                dict(dilation=(1, 2), output_padding=(0, 1), groups=2)])
def test_conv_transpose_output_padding_past_the_padding(kw, path):
    """Stride 1 with output_padding > padding: input rows lie past the last window (the flat
    kernels once sized their planes by the windows alone)."""
    rng = np.random.default_rng(3)
    xs, ws = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((2, 3, 3, 3))
    oracle(lambda x, w: (F if isinstance(x, lamina.Tensor) else TF).conv_transpose2d(x, w, stride=1, **kw),
           Input(array=xs), Input(array=ws))


def test_conv_transpose_output_size():
    x, w = lamina.randn(1, 2, 5, 5), lamina.randn(2, 3, 3, 3)
    # stride 2: (5 - 1)·2 + 3 = 11 and 12 are both reachable; output_size picks 12 (output_padding 1)
    assert F.conv_transpose2d(x, w, stride=2, output_size=(12, 12)).shape == (1, 3, 12, 12)
    assert F.conv_transpose2d(x, w, stride=2, output_size=(1, 3, 11, 12)).shape == (1, 3, 11, 12)
    with pytest.raises(ValueError, match=r"conv_transpose2d: requested output size \(13, 13\) is not reachable"):
        F.conv_transpose2d(x, w, stride=2, output_size=(13, 13))


def test_conv_transpose_is_the_adjoint_of_conv():
    # <conv(x, w), y> == <x, conv_transpose(y, w)> for the same stride/padding/dilation/groups
    rng = np.random.default_rng(3)
    x = lamina.tensor(rng.standard_normal((2, 4, 9, 8)))
    w = lamina.tensor(rng.standard_normal((6, 2, 3, 2)))
    y = F.conv2d(x, w, stride=2, padding=1, dilation=(1, 2), groups=2)
    g = lamina.tensor(rng.standard_normal(y.shape))
    xt = F.conv_transpose2d(g, w, stride=2, padding=1, dilation=(1, 2), groups=2, output_size=x.shape[2:])
    np.testing.assert_allclose((y * g).sum().item(), (x * xt).sum().item(), rtol=1e-10)


def test_conv_transpose_errors_are_clear():
    x = lamina.randn(1, 2, 4, 4)
    with pytest.raises(ValueError, match=r"conv_transpose2d: input has 2 channels but weight expects 3"):
        F.conv_transpose2d(x, lamina.randn(3, 1, 3, 3))
    with pytest.raises(ValueError, match="output_padding must be non-negative and smaller than either stride or dilation"):
        F.conv_transpose2d(x, lamina.randn(2, 1, 3, 3), stride=2, output_padding=2)
    with pytest.raises(ValueError, match="stride must be positive"):
        F.conv_transpose2d(x, lamina.randn(2, 1, 3, 3), stride=0)
    with pytest.raises(ValueError, match=r"expected a 3-D \(unbatched\) or 4-D \(batched\) input"):
        F.conv_transpose2d(lamina.randn(2, 4), lamina.randn(2, 1, 3, 3))
    with pytest.raises(ValueError, match="not divisible by groups=4"):
        F.conv_transpose2d(x, lamina.randn(2, 1, 3, 3), groups=4)


# ----------------------------------------------------------------------------- fold / unfold

def test_unfold_fold_by_hand():
    x = lamina.arange(16.0).reshape(1, 1, 4, 4)
    cols = F.unfold(x, 2, stride=2)  # four disjoint 2x2 blocks, each a column
    assert cols[0].tolist() == [[0.0, 2.0, 8.0, 10.0], [1.0, 3.0, 9.0, 11.0],
                                [4.0, 6.0, 12.0, 14.0], [5.0, 7.0, 13.0, 15.0]]
    # disjoint blocks: fold puts every value back
    assert F.fold(cols, (4, 4), 2, stride=2).tolist() == x.tolist()
    # overlapping 3x3 blocks of ones: fold(unfold) counts how many blocks hold each pixel
    ones = lamina.ones(1, 1, 4, 4)
    assert F.fold(F.unfold(ones, 3), (4, 4), 3)[0, 0].tolist() == [[1.0, 2.0, 2.0, 1.0], [2.0, 4.0, 4.0, 2.0],
                                                                   [2.0, 4.0, 4.0, 2.0], [1.0, 2.0, 2.0, 1.0]]


def _fconfig(rng):
    k = tuple(int(v) for v in rng.integers(1, 4, 2))
    d = tuple(int(v) for v in rng.integers(1, 3, 2))
    p = tuple(int(v) for v in rng.integers(0, 3, 2))
    s = tuple(int(v) for v in rng.integers(1, 4, 2))
    size = tuple(int(d_ * (k_ - 1) + 1 + rng.integers(0, 5)) for k_, d_ in zip(k, d))
    n, c = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    out = [(sz + 2 * p_ - d_ * (k_ - 1) - 1) // s_ + 1 for sz, p_, d_, k_, s_ in zip(size, p, d, k, s)]
    return k, d, p, s, size, n, c, out


@pytest.mark.skipif(SEAM, reason="unfold/fold run lamina's im2col kernels, NumPy arrays only (not on the seam)")
def test_unfold_fold_oracle_random_configs():
    rng = np.random.default_rng(99)
    old = kernels.use_numba()
    try:
        for i in range(220):
            k, d, p, s, size, n, c, out = _fconfig(rng)
            kernels.use_numba(i % 2 == 0)
            kw = dict(kernel_size=k, dilation=d, padding=p, stride=s)
            mod = lambda t: F if isinstance(t, lamina.Tensor) else TF
            shape = (c, *size) if i % 10 == 0 else (n, c, *size)
            oracle(lambda x: mod(x).unfold(x, **kw), Input(shape, noncontig=i % 5 == 0), seed=i)
            cols_shape = (c * k[0] * k[1], out[0] * out[1])
            oracle(lambda x: mod(x).fold(x, size, **kw), Input(cols_shape if i % 10 == 0 else (n, *cols_shape)),
                   seed=i)
    finally:
        kernels.use_numba(old)


@pytest.mark.parametrize("seed", range(3))
def test_unfold_fold_gradgradcheck(seed):
    k, d, p, s, size, n, c, out = _fconfig(np.random.default_rng(seed))
    kw = dict(kernel_size=k, dilation=d, padding=p, stride=s)
    check_grads(lambda x: F.unfold(x, **kw) * F.unfold(x, **kw), Input((1, 2, *size)), seed=seed)
    check_grads(lambda x: F.fold(x * x, size, **kw), Input((1, 2 * k[0] * k[1], out[0] * out[1])), seed=seed)


def test_fold_unfold_errors_are_clear():
    with pytest.raises(ValueError, match=r"unfold: expected a 3-D \(unbatched\) or 4-D \(batched\) input"):
        F.unfold(lamina.randn(2, 3), 2)
    with pytest.raises(ValueError, match="divisible by the product of kernel_size"):
        F.fold(lamina.randn(1, 5, 4), (3, 3), 2)
    with pytest.raises(ValueError, match="match the calculated number of sliding blocks 2 \\* 2 = 4"):
        F.fold(lamina.randn(1, 4, 5), (3, 3), 2)
    with pytest.raises(ValueError, match="kernel_size must be positive"):
        F.unfold(lamina.randn(1, 1, 3, 3), 0)
