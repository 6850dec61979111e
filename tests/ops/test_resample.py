"""interpolate (nearest, nearest-exact, linear, bilinear, trilinear, area) and pixel_shuffle
against torch over random configurations; gradcheck; hand-computed cases."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import lamina
import lamina.nn.functional as LF
from tests.helpers import Input, check_grads, oracle

LINEAR = {1: "linear", 2: "bilinear", 3: "trilinear"}


def _config(rng, nd):
    mode = ["nearest", "nearest-exact", LINEAR[nd], "area"][int(rng.integers(0, 4))]
    if mode == LINEAR[nd] and rng.random() < 0.2:
        mode = "nearest"
    size = tuple(int(v) for v in rng.integers(1, 8, nd))
    kw = {"mode": mode}
    if rng.random() < 0.5:
        kw["size"] = tuple(int(v) for v in rng.integers(1, 12, nd))
        if rng.random() < 0.3:
            kw["size"] = kw["size"][0]
    else:
        choices = [0.5, 1.0, 1.5, 2.0, 3.0, 2.5, 0.7, 1.3]
        sf = tuple(float(rng.choice(choices)) for _ in range(nd))
        sf = tuple(max(s, 1.0 / n + 1e-3) if n * s < 1 else s for s, n in zip(sf, size))
        kw["scale_factor"] = sf if rng.random() < 0.7 else sf[0]
        if isinstance(kw["scale_factor"], float) and any(n * kw["scale_factor"] < 1 for n in size):
            kw["scale_factor"] = 2.0
        if mode != "area" and rng.random() < 0.3:
            kw["recompute_scale_factor"] = True
    if mode == LINEAR[nd] and rng.random() < 0.5:
        kw["align_corners"] = bool(rng.random() < 0.5)
    sf = kw.get("scale_factor")
    if mode == "nearest" and nd != 2 and sf is not None:
        sf = sf if isinstance(sf, tuple) else (sf,) * nd
        if any(int(n * f) == n and f != 1 for n, f in zip(size, sf)):
            # torch's 1-D/3-D nearest backward takes a same-size shortcut its forward does not
            # (its gradient is not the adjoint of its output there); lamina's gradient is
            kw["recompute_scale_factor"] = True
    return (int(rng.integers(1, 3)), int(rng.integers(1, 3))) + size, kw


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_interpolate_oracle_random(nd):
    rng = np.random.default_rng(nd)
    for i in range(70):
        shape, kw = _config(rng, nd)

        def fn(F, kw=kw):
            return lambda x: F.interpolate(x, **kw)

        dtype = "float32" if i % 3 == 2 else "float64"
        oracle(fn(LF), Input(shape, noncontig=i % 4 == 1), torch_fn=fn(TF), dtype=dtype, seed=i)


def test_pixel_shuffle_oracle_random():
    rng = np.random.default_rng(9)
    for i in range(30):
        r = int(rng.integers(1, 4))
        lead = tuple(int(v) for v in rng.integers(1, 3, int(rng.integers(0, 3))))
        c, h, w = int(rng.integers(1, 3)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
        oracle(lambda x: LF.pixel_shuffle(x, r), Input(lead + (c * r * r, h, w)),
               torch_fn=lambda x: TF.pixel_shuffle(x, r), seed=i)
        oracle(lambda x: LF.pixel_unshuffle(x, r), Input(lead + (c, h * r, w * r)),
               torch_fn=lambda x: TF.pixel_unshuffle(x, r), seed=i)


CHECK_CASES = [
    ("nearest2d", (1, 2, 3, 4), lambda x: LF.interpolate(x, size=(5, 7))),
    ("linear", (2, 1, 5), lambda x: LF.interpolate(x, scale_factor=1.7, mode="linear")),
    ("bilinear_ac", (1, 2, 3, 4), lambda x: LF.interpolate(x, size=(6, 3), mode="bilinear", align_corners=True)),
    ("trilinear", (1, 1, 2, 3, 2), lambda x: LF.interpolate(x, scale_factor=2, mode="trilinear")),
    ("area", (1, 2, 5, 7), lambda x: LF.interpolate(x, size=(3, 2), mode="area")),
    ("pixel_shuffle", (1, 8, 2, 3), lambda x: LF.pixel_shuffle(x, 2)),
]


@pytest.mark.parametrize("name,shape,fn", CHECK_CASES, ids=[c[0] for c in CHECK_CASES])
def test_gradcheck_and_gradgradcheck(name, shape, fn):
    check_grads(fn, Input(shape))


def test_hand_computed():
    x = lamina.tensor([[[1., 3.]]])
    assert LF.interpolate(x, scale_factor=2).tolist() == [[[1., 1., 3., 3.]]]
    # edges-aligned: sources at (o + ½)/2 − ½ = −¼ → clamped 0, ¼, ¾, 1¼ → clamped 1
    assert LF.interpolate(x, size=4, mode="linear").tolist() == [[[1., 1.5, 2.5, 3.]]]
    # corners-aligned: sources at 0, ⅓, ⅔, 1
    y = LF.interpolate(x, size=4, mode="linear", align_corners=True)
    np.testing.assert_allclose(y.array, [[[1., 5 / 3, 7 / 3, 3.]]], rtol=1e-6)
    img = lamina.tensor([[[[0., 2.], [4., 6.]]]])
    assert LF.interpolate(img, size=(3, 3), mode="bilinear", align_corners=True).tolist() == \
        [[[[0., 1., 2.], [2., 3., 4.], [4., 5., 6.]]]]


def test_errors():
    x = lamina.randn(1, 1, 4, 4)
    with pytest.raises(ValueError, match="exactly one of size or scale_factor"):
        LF.interpolate(x)
    with pytest.raises(ValueError, match="mode 'linear' expects a 3-D input"):
        LF.interpolate(x, size=3, mode="linear")
    with pytest.raises(ValueError, match="align_corners option can only be set"):
        LF.interpolate(x, size=3, align_corners=True)
    with pytest.raises(ValueError, match=r"pixel_shuffle: the number of input channels \(3\)"):
        LF.pixel_shuffle(lamina.randn(1, 3, 2, 2), 2)
    with pytest.raises(ValueError, match=r"pixel_unshuffle: the spatial size \(3, 4\)"):
        LF.pixel_unshuffle(lamina.randn(1, 1, 3, 4), 2)


def test_nearest_gradient_is_the_adjoint_of_the_forward():
    """1-D nearest with scale 1.3 on 3 samples reads rows 0, 0, 1 (as torch's forward); the
    gradient sends each output's gradient back to the row it read (torch's backward does not)."""
    x = lamina.tensor([[[0., 1., 2.]]], requires_grad=True)
    y = LF.interpolate(x, scale_factor=1.3)
    assert y.tolist() == [[[0., 0., 1.]]]
    y.backward(lamina.tensor([[[1., 10., 100.]]]))
    assert x.grad.tolist() == [[[11., 100., 0.]]]


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "nearest-exact"])
def test_long_axes_take_the_blocked_path(mode):
    """Outputs longer than two blocks (128) are computed block by block; same values and grads."""
    kw = dict(size=(301, 7), mode=mode)
    if mode == "bilinear":
        kw["align_corners"] = True
    oracle(lambda x: LF.interpolate(x, **kw), Input((1, 2, 140, 9)), torch_fn=lambda x: TF.interpolate(x, **kw))
    oracle(lambda x: LF.interpolate(x, scale_factor=(0.45, 1.0), mode=mode), Input((1, 1, 300, 2)),
           torch_fn=lambda x: TF.interpolate(x, scale_factor=(0.45, 1.0), mode=mode))


def test_bicubic_oracle_random():
    rng = np.random.default_rng(11)
    for i in range(60):
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 3)), int(rng.integers(1, 8)), int(rng.integers(1, 8)))
        kw = {"mode": "bicubic"}
        if rng.random() < 0.5:
            kw["size"] = tuple(int(v) for v in rng.integers(1, 12, 2))
        else:
            kw["scale_factor"] = tuple(float(rng.choice([0.5, 1.0, 1.3, 2.0, 2.5])) for _ in range(2))
            if any(n * f < 1 for n, f in zip(shape[2:], kw["scale_factor"])):
                kw["scale_factor"] = 2.0
        if rng.random() < 0.5:
            kw["align_corners"] = bool(rng.random() < 0.5)
        dtype = "float32" if i % 3 == 2 else "float64"
        oracle(lambda x: LF.interpolate(x, **kw), Input(shape), torch_fn=lambda x: TF.interpolate(x, **kw),
               dtype=dtype, seed=i)
    check_grads(lambda x: LF.interpolate(x, size=(5, 3), mode="bicubic"), Input((1, 2, 3, 4)))


def test_interpolate_antialias_oracle_random():
    """``antialias=True`` (bilinear and bicubic, 4-D) against torch: values and input gradients
    over random sizes, scale factors and align_corners, down- and upsampling. Where the output
    width is 1, torch 2.13's forward is wrong (every row takes the first row's value) while its
    gradient is the right linear map: there the gradients are compared, and the values against
    torch resizing one dim at a time."""
    rng = np.random.default_rng(11)
    compared = 0
    for i in range(240):
        h, w = (int(v) for v in rng.integers(1, 20, 2))
        mode = ("bilinear", "bicubic")[i % 2]
        kw = {"mode": mode, "align_corners": bool(rng.integers(0, 2)), "antialias": True}
        if rng.random() < 0.5:
            kw["size"] = tuple(int(v) for v in rng.integers(1, 25, 2))
        else:
            kw["scale_factor"] = float(rng.choice([0.25, 0.3, 0.5, 0.7, 1.5, 2.0]))
            kw["recompute_scale_factor"] = bool(rng.integers(0, 2))
            if min(h, w) * kw["scale_factor"] < 1:
                continue
        x = rng.standard_normal((2, 2, h, w))
        lx, tx = lamina.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        ly, ty = LF.interpolate(lx, **kw), TF.interpolate(tx, **kw)
        g = rng.standard_normal(tuple(ty.shape))
        ly.backward(lamina.tensor(g))
        ty.backward(torch.tensor(g))
        np.testing.assert_allclose(lx.grad.array, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
        if ty.shape[-1] == 1:  # torch's one-column bug: resize one dim at a time instead
            common = {k: kw[k] for k in ("mode", "align_corners", "antialias")}
            if "size" in kw:
                first, second = {"size": (ty.shape[2], w)}, {"size": (ty.shape[2], 1)}
            else:
                sf, rc = kw["scale_factor"], kw["recompute_scale_factor"]
                first = {"scale_factor": (sf, 1.0), "recompute_scale_factor": rc}
                second = {"scale_factor": (1.0, sf), "recompute_scale_factor": rc}
            want = TF.interpolate(TF.interpolate(torch.tensor(x), **common, **first), **common, **second)
            np.testing.assert_allclose(ly.array, want.numpy(), rtol=1e-10, atol=1e-12)
        else:
            np.testing.assert_allclose(ly.array, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
        compared += 1
    assert compared >= 200


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_interpolate_antialias_gradcheck_and_errors(mode):
    check_grads(lambda x: LF.interpolate(x, size=(3, 5), mode=mode, antialias=True), Input((1, 2, 7, 4)))
    with pytest.raises(ValueError, match="anti-alias option is restricted to bilinear and bicubic modes"):
        LF.interpolate(lamina.randn(1, 1, 4, 4), size=2, mode="nearest", antialias=True)
    with pytest.raises(ValueError, match="requires a 4-D tensor"):
        LF.interpolate(lamina.randn(1, 1, 4), size=2, mode="linear", antialias=True)
