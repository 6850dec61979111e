"""conv1d/2d/3d: hand-computed cases, torch oracle over 200+ random configurations, float64
gradcheck and gradgradcheck, errors."""

import numpy as np
import pytest
import torch

import lamina
import lamina.nn.functional as F
from lamina.ops.conv import explain_conv
from lamina.ops.kernels import conv_gemm
from lamina.ops.kernels import im2col as kernels
from tests.helpers import Input, check_grads, oracle

TF = torch.nn.functional

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")


def _fn(x):
    return F if isinstance(x, lamina.Tensor) else TF



# ----------------------------------------------------------------------------- by hand

def test_box_filter_1d_valid_and_same():
    # a 3-tap box filter (1/3, 1/3, 1/3) over [0, 3, 6, 3, 0]
    x = lamina.tensor([[[0.0, 3.0, 6.0, 3.0, 0.0]]])
    box = lamina.ones(1, 1, 3) / 3
    # valid: windows [0,3,6] [3,6,3] [6,3,0] -> 3, 4, 3
    np.testing.assert_allclose(F.conv1d(x, box).flatten().tolist(), [3.0, 4.0, 3.0], rtol=1e-6)
    # same: a zero on each side adds the windows [0,0,3] and [3,0,0] -> 1 at both ends
    np.testing.assert_allclose(F.conv1d(x, box, padding="same").flatten().tolist(), [1.0, 3.0, 4.0, 3.0, 1.0],
                               rtol=1e-6)
    # full: padding = k - 1 = 2 on each side -> 7 outputs
    np.testing.assert_allclose(F.conv1d(x, box, padding=2).flatten().tolist(),
                               [0.0, 1.0, 3.0, 4.0, 3.0, 1.0, 0.0], rtol=1e-6, atol=1e-7)


def test_3x3_kernel_on_binary_image():
    # a vertical-edge kernel over a 4x4 image whose right half is 1
    img = lamina.tensor([[[[0.0, 0.0, 1.0, 1.0],
                           [0.0, 0.0, 1.0, 1.0],
                           [0.0, 0.0, 1.0, 1.0],
                           [0.0, 0.0, 1.0, 1.0]]]])
    k = lamina.tensor([[[[-1.0, 0.0, 1.0],
                         [-1.0, 0.0, 1.0],
                         [-1.0, 0.0, 1.0]]]])
    # valid: output (0,0) sees columns 0..2: -(0+0+0) + (1+1+1) = 3; output (0,1) sees 1..3: -0 + 3 = 3
    assert F.conv2d(img, k).tolist() == [[[[3.0, 3.0], [3.0, 3.0]]]]
    # padding 1: output (r, c) = (rows of the window inside the image) x (img[:, c+1] - img[:, c-1]);
    # that row count is 2 on the top and bottom rows, 3 inside; the column difference is 0, 1, 1, -1
    out = F.conv2d(img, k, padding=1)[0, 0].tolist()
    assert out == [[0.0, 2.0, 2.0, -2.0],
                   [0.0, 3.0, 3.0, -3.0],
                   [0.0, 3.0, 3.0, -3.0],
                   [0.0, 2.0, 2.0, -2.0]]
    # a gradient by hand: d(sum of the valid output)/d img counts the windows each pixel meets
    x = img.clone().requires_grad_()
    F.conv2d(x, k).sum().backward()
    assert x.grad[0, 0].tolist() == [[-1.0, -1.0, 1.0, 1.0], [-2.0, -2.0, 2.0, 2.0],
                                     [-2.0, -2.0, 2.0, 2.0], [-1.0, -1.0, 1.0, 1.0]]


# ----------------------------------------------------------------------------- random configurations

def _config(rng, nd):
    g = int(rng.choice([1, 1, 2, 3]))
    cg, kg = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    depthwise = rng.random() < 0.15
    if depthwise:
        g, cg, kg = int(rng.integers(2, 5)), 1, 1
    k = tuple(int(v) for v in rng.integers(1, 4, nd))
    d = tuple(int(v) for v in rng.integers(1, 3, nd))
    s = tuple(int(v) for v in rng.integers(1, 4, nd))
    r = rng.random()
    mode = "zeros"
    if r < 0.15:
        padding = "same"
        s = (1,) * nd
    elif r < 0.25:
        padding = "valid"
    elif r < 0.6:
        padding = int(rng.integers(0, 3))
    else:
        padding = tuple(int(v) for v in rng.integers(0, 3, nd))
    if rng.random() < 0.3:
        mode = str(rng.choice(["reflect", "replicate", "circular"]))
    # input large enough for the dilated kernel (and for reflect padding)
    size = tuple(int(d_ * (k_ - 1) + 1 + rng.integers(0, 4)) + 2 for k_, d_ in zip(k, d))
    n = int(rng.integers(1, 3))
    bias = rng.random() < 0.6
    unbatched = rng.random() < 0.1
    shape_x = (g * cg, *size) if unbatched else (n, g * cg, *size)
    return dict(g=g, k=k, s=s, d=d, padding=padding, mode=mode, bias=bias, shape_x=shape_x,
                shape_w=(g * kg, cg, *k), nd=nd)


def _torch_pads(cfg):
    """torch.nn.ConvNd's ``_reversed_padding_repeated_twice``: (left, right) per dim, last dim first."""
    nd, p = cfg["nd"], cfg["padding"]
    if p == "same":
        tot = [d * (k - 1) for d, k in zip(cfg["d"], cfg["k"])]
        lo_hi = [(t // 2, t - t // 2) for t in tot]
    elif p == "valid":
        lo_hi = [(0, 0)] * nd
    else:
        p = (p,) * nd if isinstance(p, int) else p
        lo_hi = [(v, v) for v in p]
    return [v for pair in reversed(lo_hi) for v in pair]


def _conv_call(cfg):
    nd, mode = cfg["nd"], cfg["mode"]

    def lam(x, w, b=None):
        return getattr(F, f"conv{nd}d")(x, w, b, cfg["s"], cfg["padding"], cfg["d"], cfg["g"], padding_mode=mode)

    def tor(x, w, b=None):
        if mode != "zeros":  # torch has padding_mode on the module only: pad as the module does, then convolve
            x = TF.pad(x, _torch_pads(cfg), mode=mode)
            return getattr(TF, f"conv{nd}d")(x, w, b, cfg["s"], 0, cfg["d"], cfg["g"])
        return getattr(TF, f"conv{nd}d")(x, w, b, cfg["s"], cfg["padding"], cfg["d"], cfg["g"])

    return lam, tor


def test_conv_oracle_random_configs():
    """Forward and every input gradient against torch, 240 random configurations (1-, 2-, 3-D),
    alternating the numba and NumPy kernels."""
    rng = np.random.default_rng(1234)
    old = kernels.use_numba()
    try:
        for i in range(240):
            cfg = _config(rng, (1, 2, 3)[i % 3] if i % 5 else 2)
            kernels.use_numba(i % 2 == 0)
            lam, tor = _conv_call(cfg)
            specs = [Input(cfg["shape_x"], noncontig=i % 7 == 0), Input(cfg["shape_w"])]
            if cfg["bias"]:
                specs.append(Input((cfg["shape_w"][0],)))
            oracle(lam, *specs, torch_fn=tor, seed=i)
    finally:
        kernels.use_numba(old)


def test_conv_oracle_float32():
    rng = np.random.default_rng(7)
    for i in range(12):
        cfg = _config(rng, 2)
        lam, tor = _conv_call(cfg)
        oracle(lam, Input(cfg["shape_x"]), Input(cfg["shape_w"]), Input((cfg["shape_w"][0],)), torch_fn=tor,
               dtype="float32", seed=i, rtol=1e-4, atol=1e-5)


def test_conv_oracle_larger_float32(path):
    # a realistic layer: 3x3, 16 -> 8 channels, batch 4, 12x12, padding 1 and a stride-2 one
    oracle(lambda x, w, b: _fn(x).conv2d(x, w, b, padding=1), Input((4, 16, 12, 12)), Input((8, 16, 3, 3)),
           Input((8,)), dtype="float32", rtol=1e-4, atol=1e-4)
    oracle(lambda x, w, b: _fn(x).conv2d(x, w, b, stride=2), Input((4, 16, 12, 12)), Input((8, 16, 3, 3)),
           Input((8,)), dtype="float32", rtol=1e-4, atol=1e-4)
    # 1x1 (plain GEMM path) and depthwise paths
    oracle(lambda x, w: _fn(x).conv2d(x, w), Input((3, 16, 5, 5)), Input((8, 16, 1, 1)), dtype="float32",
           rtol=1e-4, atol=1e-4)
    oracle(lambda x, w: _fn(x).conv2d(x, w, padding=1, groups=16), Input((3, 16, 6, 6)), Input((16, 1, 3, 3)),
           dtype="float32", rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed", range(6))
def test_conv_gradcheck_and_gradgradcheck(seed, path):
    rng = np.random.default_rng(100 + seed)
    cfg = _config(rng, (1, 2, 3, 2, 1, 2)[seed])
    lam, _ = _conv_call(cfg)
    shape_x = tuple(min(v, 5) if j >= len(cfg["shape_x"]) - cfg["nd"] else v for j, v in enumerate(cfg["shape_x"]))
    size_ok = all(sz >= d * (k - 1) + 1 + 1 for sz, d, k in zip(shape_x[-cfg["nd"]:], cfg["d"], cfg["k"]))
    if not size_ok:
        shape_x = cfg["shape_x"]
    check_grads(lambda x, w, b: lam(x, w, b) * 1.0, Input(shape_x), Input(cfg["shape_w"]),
                Input((cfg["shape_w"][0],)), seed=seed)


def test_conv_special_paths_gradgradcheck(path):
    # 1x1 GEMM path, depthwise path, strided + dilated, double backward through all three primitives
    check_grads(lambda x, w: F.conv2d(x, w), Input((2, 4, 3, 3)), Input((6, 4, 1, 1)))
    check_grads(lambda x, w: F.conv2d(x, w, padding=1, groups=3), Input((2, 3, 4, 4)), Input((3, 1, 3, 3)))
    check_grads(lambda x, w: F.conv1d(x, w, stride=2, dilation=2, padding=1), Input((2, 2, 9)), Input((3, 2, 3)))


def _channels_last(a):
    """The same values laid out channels-last underneath (as the output of a lamina conv)."""
    perm = (0, *range(2, a.ndim), 1)
    return np.ascontiguousarray(a.transpose(perm)).transpose(np.argsort(perm))


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_depthwise_layouts_match_torch(nd, path):
    """Depthwise convs read NCHW inputs directly and channels-last ones without a transpose (two
    sets of kernels): forward, input and weight gradients against torch for both layouts of the
    input and of the output gradient, with strides, dilations and paddings."""
    rng = np.random.default_rng(40 + nd)
    for i in range(16):
        c = int(rng.integers(1, 6))
        k = tuple(int(v) for v in rng.integers(1, 4, nd))
        s = tuple(int(v) for v in rng.integers(1, 3, nd))
        d = tuple(int(v) for v in rng.integers(1, 3, nd))
        p = tuple(int(v) for v in rng.integers(0, 3, nd))
        size = tuple(int(d_ * (k_ - 1) + 1 + rng.integers(0, 5)) for k_, d_ in zip(k, d))
        xs = rng.standard_normal((2, c, *size))
        ws = rng.standard_normal((c, 1, *k))
        tx, tw = torch.tensor(xs, requires_grad=True), torch.tensor(ws, requires_grad=True)
        ty = getattr(TF, f"conv{nd}d")(tx, tw, None, s, p, d, c)
        gys = rng.standard_normal(tuple(ty.shape))
        ty.backward(torch.tensor(gys))
        x_arr = _channels_last(xs) if i % 2 else xs
        gy_arr = _channels_last(gys) if i % 3 == 1 else gys
        x, w = lamina.tensor(x_arr, requires_grad=True), lamina.tensor(ws, requires_grad=True)
        y = getattr(F, f"conv{nd}d")(x, w, None, s, p, d, c)
        y.backward(lamina.tensor(gy_arr))
        np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-10, atol=1e-12)
    # float32 at a realistic size (the compiled kernels sum rows in vector lanes)
    xs = rng.standard_normal((3, 16, *(9,) * nd)).astype(np.float32)
    ws = rng.standard_normal((16, 1, *(3,) * nd)).astype(np.float32)
    tx, tw = torch.tensor(xs, requires_grad=True), torch.tensor(ws, requires_grad=True)
    getattr(TF, f"conv{nd}d")(tx, tw, None, 1, 1, 1, 16).sum().backward()
    x, w = lamina.tensor(xs, requires_grad=True), lamina.tensor(ws, requires_grad=True)
    getattr(F, f"conv{nd}d")(x, w, None, 1, 1, 1, 16).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("cfg", [
    dict(x=(3, 1, 11, 9), w=(6, 1, 5, 5), s=1, p=2, d=1, g=1),  # a 1-channel first layer (LeNet's c1)
    dict(x=(2, 3, 10, 9), w=(5, 3, 3, 3), s=1, p=(1, 2), d=(2, 1), g=1),  # an RGB first layer, dilated
    dict(x=(2, 2, 12), w=(4, 2, 5), s=1, p=3, d=2, g=1),  # 1-D, stride 1
    dict(x=(2, 6, 9, 8), w=(6, 2, 3, 3), s=1, p=1, d=1, g=3),  # grouped, stride 1
    dict(x=(2, 8, 9, 10), w=(12, 2, 3, 3), s=2, p=1, d=2, g=4),  # grouped, 2 in / 3 out per group
    dict(x=(2, 6, 13), w=(6, 3, 4), s=3, p=2, d=1, g=2),  # grouped 1-D
    dict(x=(2, 4, 7, 7), w=(8, 1, 3, 2), s=(1, 2), p=(2, 0), d=(1, 2), g=4),  # depthwise with multiplier 2
    dict(x=(3, 5, 9, 11), w=(5, 1, 3, 3), s=1, p=1, d=1, g=5),  # depthwise, stride 1 (flat planes)
    dict(x=(2, 4, 10, 7), w=(4, 1, 4, 3), s=1, p=(3, 0), d=(2, 3), g=4),  # depthwise, dilated, uneven
    dict(x=(3, 3, 13), w=(3, 1, 4), s=1, p=5, d=2, g=3),  # depthwise 1-D, padding past the window
])
@pytest.mark.parametrize("build", ["serial", "parallel"])
def test_direct_kernels_match_torch(cfg, build, path, monkeypatch):
    """The direct NCHW kernels (grouped convs with short windows, 1-channel-per-group convs, and the
    flat-plane kernels of stride-1 convs with short windows) against torch, forward (with a bias)
    and all gradients, in their serial and parallel builds; on the numba path they must be the
    ones running."""
    from lamina.ops.kernels import conv_direct

    if build == "parallel":
        monkeypatch.setattr(conv_direct, "PARALLEL_MIN_WORK", 0)
    rng = np.random.default_rng(len(cfg["x"]) + cfg["g"] + cfg["w"][0])
    xs, ws, bs = rng.standard_normal(cfg["x"]), rng.standard_normal(cfg["w"]), rng.standard_normal(cfg["w"][0])
    nd = len(cfg["x"]) - 2
    chosen = explain_conv(xs, ws, stride=cfg["s"], padding=cfg["p"], dilation=cfg["d"], groups=cfg["g"])
    assert chosen == {p: "direct" for p in chosen} if path else "direct" not in chosen.values()
    args = (cfg["s"], cfg["p"], cfg["d"], cfg["g"])
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (xs, ws, bs))
    ty = getattr(TF, f"conv{nd}d")(tx, tw, tb, *args)
    gys = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(gys))
    x, w, b = (lamina.tensor(a, requires_grad=True) for a in (xs, ws, bs))
    y = getattr(F, f"conv{nd}d")(x, w, b, *args)
    y.backward(lamina.tensor(gys))
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    for got, want in ((x, tx), (w, tw), (b, tb)):
        np.testing.assert_allclose(got.grad.numpy(), want.grad.numpy(), rtol=1e-10, atol=1e-12)
    if build == "serial":
        check_grads(lambda a, b: getattr(F, f"conv{nd}d")(a, b, None, *args), Input(cfg["x"]), Input(cfg["w"]))


@pytest.mark.parametrize("shape,k_out,pad,cl", [
    ((2, 16, 8, 8), 16, 1, False),
    ((3, 17, 11, 12), 20, 0, True),  # odd output sizes: the last tiles are cropped
    ((2, 16, 11, 9), 24, 2, False),
    ((2, 32, 10, 10), 16, (1, 2), True),
])
def test_3x3_convs_match_torch(shape, k_out, pad, cl, path):
    """Stride-1 3×3 convs with 16+ channels on the implementations the selector chooses (with
    and without numba), NCHW and channels-last input: forward and both gradients against torch,
    float64 and float32."""
    rng = np.random.default_rng(shape[1] + k_out)
    for dtype, tol in (("float64", 1e-10), ("float32", 1e-4)):
        xs = rng.standard_normal(shape).astype(dtype)
        ws = (rng.standard_normal((k_out, shape[1], 3, 3)) / 10).astype(dtype)
        tx, tw = torch.tensor(xs, requires_grad=True), torch.tensor(ws, requires_grad=True)
        ty = TF.conv2d(tx, tw, padding=pad)
        gys = rng.standard_normal(tuple(ty.shape)).astype(dtype)
        ty.backward(torch.tensor(gys))
        x_arr = np.ascontiguousarray(xs.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2) if cl else xs
        x, w = lamina.tensor(x_arr, requires_grad=True), lamina.tensor(ws, requires_grad=True)
        y = F.conv2d(x, w, padding=pad)
        y.backward(lamina.tensor(gys))
        np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=tol, atol=tol)


def test_conv_double_backward_matches_torch():
    rng = np.random.default_rng(0)
    xs, ws = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    x, w = lamina.tensor(xs, requires_grad=True), lamina.tensor(ws, requires_grad=True)
    tx, tw = torch.tensor(xs, requires_grad=True), torch.tensor(ws, requires_grad=True)
    (gx,) = lamina.autograd.grad(F.conv2d(x, w, stride=2, padding=1).pow(2).sum(), [x], create_graph=True)
    (tgx,) = torch.autograd.grad(TF.conv2d(tx, tw, stride=2, padding=1).pow(2).sum(), [tx], create_graph=True)
    (gx * gx).sum().backward()
    (tgx * tgx).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-10, atol=1e-10)


# ----------------------------------------------------------------------------- errors

def test_conv_errors_are_clear():
    x = lamina.randn(1, 1, 8, 8)
    with pytest.raises(ValueError, match=r"conv2d: input has 1 channel but weight expects 3 \(weight shape \(10, 3, 5, 5\)\)"):
        F.conv2d(x, lamina.randn(10, 3, 5, 5))
    with pytest.raises(ValueError, match=r"conv2d: input has 4 channels but weight expects 6 \(3 per group × 2 groups\)"):
        F.conv2d(lamina.randn(1, 4, 8, 8), lamina.randn(4, 3, 3, 3), groups=2)
    with pytest.raises(ValueError, match="not divisible by groups=2"):
        F.conv2d(lamina.randn(1, 4, 8, 8), lamina.randn(5, 2, 3, 3), groups=2)
    with pytest.raises(ValueError, match=r"conv2d: kernel size \(5, 5\) .* larger than the padded input \(3, 3\)"):
        F.conv2d(lamina.randn(1, 1, 3, 3), lamina.randn(1, 1, 5, 5))
    with pytest.raises(ValueError, match=r"conv2d: stride must be positive, got \(0, 1\)"):
        F.conv2d(x, lamina.randn(1, 1, 3, 3), stride=(0, 1))
    with pytest.raises(ValueError, match=r"conv1d: dilation must be positive"):
        F.conv1d(lamina.randn(1, 1, 8), lamina.randn(1, 1, 3), dilation=-1)
    with pytest.raises(ValueError, match=r"conv2d: expected a 3-D \(unbatched\) or 4-D \(batched\) input, got a 5-D"):
        F.conv2d(lamina.randn(1, 1, 1, 8, 8), lamina.randn(1, 1, 3, 3))
    with pytest.raises(ValueError, match=r"conv3d: expected a 5-D weight"):
        F.conv3d(lamina.randn(1, 1, 4, 4, 4), lamina.randn(1, 1, 3, 3))
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        F.conv2d(x, lamina.randn(1, 1, 3, 3), stride=2, padding="same")
    with pytest.raises(ValueError, match="bias must have shape"):
        F.conv2d(x, lamina.randn(2, 1, 3, 3), lamina.randn(3))
    with pytest.raises(TypeError, match="same floating dtype"):
        F.conv2d(x.double(), lamina.randn(1, 1, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: expected a weight with at least 1 output channel, got weight "
                                         r"of shape \(0, 1, 3, 3\)"):
        F.conv2d(x, lamina.randn(0, 1, 3, 3))
    with pytest.raises(ValueError, match=r"conv1d with padding_mode='reflect': pad: padding size should be less "
                                         r"than the corresponding input dimension, but got: padding \(3, 3\)"):
        lamina.nn.Conv1d(1, 1, 3, padding=3, padding_mode="reflect")(lamina.randn(1, 1, 3))


def test_conv_empty_batch_and_half():
    # an empty batch gives an empty output and zero weight gradient, as torch (every kernel
    # path: 1×1 GEMM, im2col, and Winograd at 16 channels)
    for k, c in ((1, 4), (3, 4), (3, 16)):
        x, w = lamina.randn(0, c, 8, 8, requires_grad=True), lamina.randn(c, c, k, k, requires_grad=True)
        y = F.conv2d(x, w, padding=1)
        assert y.shape == tuple(TF.conv2d(torch.randn(0, c, 8, 8), torch.randn(c, c, k, k), padding=1).shape)
        y.sum().backward()
        assert x.grad.shape == x.shape and not w.grad.numpy().any()
        assert F.conv_transpose2d(x.detach(), w.detach(), padding=1).shape == \
            tuple(TF.conv_transpose2d(torch.randn(0, c, 8, 8), torch.randn(c, c, k, k), padding=1).shape)
    # float16 keeps its dtype (NumPy path)
    xs, ws = np.random.default_rng(0).standard_normal((1, 3, 6, 6)), np.random.default_rng(1).standard_normal((2, 3, 3, 3))
    y = F.conv2d(lamina.tensor(xs).half(), lamina.tensor(ws).half())
    assert y.dtype == np.float16
    np.testing.assert_allclose(y.numpy().astype(np.float64), TF.conv2d(torch.tensor(xs), torch.tensor(ws)).numpy(),
                               rtol=2e-2, atol=5e-2)


def test_im2col_view_is_every_window_and_checks_its_bounds():
    """The strided column view against windows cut by hand (1-, 2-, 3-D, strides, dilations),
    and a ValueError, not a view past the buffer's end, where windows overrun the input."""
    import itertools

    rng = np.random.default_rng(5)
    for nd in (1, 2, 3):
        for _ in range(10):
            k, s, d, o = (rng.integers(1, 4, nd), rng.integers(1, 3, nd), rng.integers(1, 3, nd),
                          rng.integers(1, 4, nd))
            e = [(oo - 1) * ss + dd * (kk - 1) + 1 + int(rng.integers(0, 2)) for oo, ss, dd, kk in zip(o, s, d, k)]
            x = rng.standard_normal((2, *e, 3))
            view = kernels.im2col_view(x, k, s, d, o)
            for idx in itertools.product(*[range(a) for a in o]):
                for tap in itertools.product(*[range(a) for a in k]):
                    src = tuple(i * ss + j * dd for i, j, ss, dd in zip(idx, tap, s, d))
                    np.testing.assert_array_equal(view[(slice(None), *idx, *tap)], x[(slice(None), *src)])
            np.testing.assert_array_equal(kernels.im2col_cl(x, k, s, d, o), view)
    with pytest.raises(ValueError, match=r"im2col: windows \(4 outputs, stride 2, kernel 3, dilation 1\) "
                                         r"overrun the padded input of extent 8"):
        kernels.im2col_view(np.zeros((1, 8, 2)), (3,), (2,), (1,), (4,))


def test_backward_layout_of_the_output_gradient():
    """The output gradient is laid out channels-last for the backward only where its kernels read
    it so: im2col and Winograd convs, not 1×1 convs (NCHW products) nor the direct kernels."""
    x = np.zeros((2, 48, 6, 6), np.float32)
    w1 = np.zeros((4, 48, 1, 1), np.float32)
    one = (1, 1)
    assert not conv_gemm.wants_channels_last(x, w1, 1, one, one, (0, 0), (6, 6))  # a plain product
    for w, stride, pad, out in ((w1, (2, 2), (0, 0), (3, 3)), (w1, one, one, (8, 8)),
                                (np.zeros((4, 48, 3, 3), np.float32), (2, 2), one, (3, 3))):
        assert explain_conv(x, w, stride=stride, padding=pad)["input_grad"] in ("im2col", "colgemm")
        assert conv_gemm.wants_channels_last(x, w, 1, stride, one, pad, out)
    wd = np.zeros((48, 1, 3, 3), np.float32)  # depthwise: the direct kernels (numba) read NCHW
    direct = explain_conv(x, wd, padding=1, groups=48)["input_grad"] == "direct"
    assert direct == kernels.use_numba()
    assert conv_gemm.wants_channels_last(x, wd, 48, one, one, one, (6, 6)) == (not direct)
