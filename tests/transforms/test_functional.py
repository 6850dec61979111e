"""lamina.transforms.functional against hand-computed values and torch (interpolate, grid_sample, conv2d)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as tF

import lamina
from lamina.transforms import functional as F


def T(a):
    return lamina.tensor(np.asarray(a, dtype=np.float64), dtype="float64")


def arr(t):
    return t.numpy() if isinstance(t, lamina.Tensor) else np.asarray(t)


# --- flips, crops, padding: hand-computed ---------------------------------------------------

def test_flips_hand_computed():
    x = T([[[1, 2, 3], [4, 5, 6]]])
    assert arr(F.hflip(x)).tolist() == [[[3, 2, 1], [6, 5, 4]]]
    assert arr(F.vflip(x)).tolist() == [[[4, 5, 6], [1, 2, 3]]]


def test_crop_and_center_crop_hand_computed():
    x = T(np.arange(25).reshape(1, 5, 5))
    assert arr(F.crop(x, 1, 2, 2, 3)).tolist() == [[[7, 8, 9], [12, 13, 14]]]
    # out of bounds: zero padding
    assert arr(F.crop(x, -1, 3, 2, 3)).tolist() == [[[0, 0, 0], [3, 4, 0]]]
    # (5 - 2) / 2 = 1.5 rounds to 2 (half to even), (5 - 3) / 2 = 1
    assert arr(F.center_crop(x, (2, 3))).tolist() == [[[11, 12, 13], [16, 17, 18]]]
    assert arr(F.center_crop(x, 3)).tolist() == [[[6, 7, 8], [11, 12, 13], [16, 17, 18]]]
    big = arr(F.center_crop(T([[[1.0]]]), 3))
    assert big.tolist() == [[[0, 0, 0], [0, 1, 0], [0, 0, 0]]]


@pytest.mark.parametrize("mode,np_mode", [("constant", "constant"), ("edge", "edge"), ("reflect", "reflect"),
                                          ("symmetric", "symmetric")])
def test_pad_modes(mode, np_mode):
    x = np.random.default_rng(0).random((2, 4, 5))
    out = arr(F.pad(T(x), (1, 2, 3, 1), padding_mode=mode))  # left, top, right, bottom
    assert np.array_equal(out, np.pad(x, [(0, 0), (2, 1), (1, 3)], mode=np_mode))
    if mode in ("constant", "reflect"):
        tmode = "replicate" if mode == "edge" else mode
        ref = tF.pad(torch.tensor(x)[None], (1, 3, 2, 1), mode=tmode)[0].numpy()
        assert np.array_equal(out, ref)


def test_pad_fill_per_channel():
    out = arr(F.pad(T(np.zeros((2, 1, 1))), 1, fill=(3.0, 7.0)))
    assert out[0].tolist() == [[3, 3, 3], [3, 0, 3], [3, 3, 3]]
    assert out[1].sum() == 7 * 8


# --- resize against torch.nn.functional.interpolate --------------------------------------------

@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("antialias", [False, True])
def test_resize_bilinear_matches_torch(seed, antialias):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(3, 20, size=2)
    oh, ow = rng.integers(2, 25, size=2)
    x = rng.random((2, 3, h, w))
    out = arr(F.resize(T(x), [int(oh), int(ow)], antialias=antialias))
    ref = tF.interpolate(torch.tensor(x), size=(int(oh), int(ow)), mode="bilinear", align_corners=False,
                         antialias=antialias).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("seed", range(4))
def test_resize_nearest_matches_torch(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(2, 20, size=2)
    oh, ow = rng.integers(2, 25, size=2)
    x = rng.random((1, 2, h, w))
    out = arr(F.resize(T(x), [int(oh), int(ow)], interpolation="nearest"))
    ref = tF.interpolate(torch.tensor(x), size=(int(oh), int(ow)), mode="nearest").numpy()
    assert np.array_equal(out, ref)


def test_resize_hand_computed_and_smaller_edge():
    x = T([[[0.0, 4.0]]])  # 1 x 2 → 1 x 4: source coordinates -0.25, 0.25, 0.75, 1.25
    assert arr(F.resize(x, [1, 4])).tolist() == [[[0.0, 1.0, 3.0, 4.0]]]
    img = lamina.zeros(3, 10, 20)
    assert F.resize(img, 5).shape == (3, 5, 10)  # smaller edge 5, longer int(5 * 20 / 10)
    assert F.resize(lamina.zeros(3, 30, 20), 8).shape == (3, 12, 8)
    assert F.resize(img, 5, max_size=8).shape == (3, 4, 8)


# --- affine and rotation against grid_sample with torchvision's matrix --------------------------

def torchvision_affine(x, matrix, mode, fill):
    """torchvision's tensor affine: its base grid, grid_sample(align_corners=False) and mask blending."""
    n, c, h, w = x.shape
    theta = torch.tensor(matrix, dtype=x.dtype).reshape(1, 2, 3)
    base = torch.empty(1, h, w, 3, dtype=x.dtype)
    base[..., 0].copy_(torch.linspace(-w * 0.5 + 0.5, w * 0.5 + 0.5 - 1, steps=w, dtype=x.dtype))
    base[..., 1].copy_(torch.linspace(-h * 0.5 + 0.5, h * 0.5 + 0.5 - 1, steps=h, dtype=x.dtype).unsqueeze(-1))
    base[..., 2].fill_(1)
    grid = base.view(1, h * w, 3).bmm(theta.transpose(1, 2) / torch.tensor([0.5 * w, 0.5 * h], dtype=x.dtype))
    grid = grid.view(1, h, w, 2).expand(n, h, w, 2)
    if fill is None:
        return tF.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)
    xm = torch.cat([x, torch.ones(n, 1, h, w, dtype=x.dtype)], dim=1)
    out = tF.grid_sample(xm, grid, mode=mode, padding_mode="zeros", align_corners=False)
    img, mask = out[:, :-1], out[:, -1:].expand(n, c, h, w)
    fill_img = torch.tensor(fill, dtype=x.dtype).view(1, -1, 1, 1).expand_as(img)
    if mode == "nearest":
        img = torch.where(mask < 0.5, fill_img, img)
    else:
        img = img * mask + (1.0 - mask) * fill_img
    return img


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_affine_matches_torchvision_formula(seed, mode):
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(4, 12, size=2))
    x = rng.random((2, 3, h, w))
    angle, scale = float(rng.uniform(-180, 180)), float(rng.uniform(0.6, 1.5))
    translate = [int(v) for v in rng.integers(-3, 4, size=2)]
    shear = [float(v) for v in rng.uniform(-30, 30, size=2)]
    fill = None if seed % 2 else [0.25, 0.5, 0.75]
    out = arr(F.affine(T(x), angle, translate, scale, shear, interpolation=mode, fill=fill))
    m = F.inverse_affine_matrix([0.0, 0.0], angle, translate, scale, shear)
    ref = torchvision_affine(torch.tensor(x), m, mode, fill).numpy()
    if mode == "bilinear":
        np.testing.assert_allclose(out, ref, atol=1e-10)
    else:  # nearest: a pixel may sit exactly on a rounding tie, compare all but a few
        assert np.mean(np.abs(out - ref) < 1e-12) > 0.97


def test_rotate_90_is_rot90():
    x = np.random.default_rng(1).random((2, 6, 6))
    out = arr(F.rotate(T(x), 90.0))  # counter-clockwise
    assert np.allclose(out, np.rot90(x, 1, axes=(1, 2)))
    assert np.allclose(arr(F.rotate(T(x), -90.0)), np.rot90(x, -1, axes=(1, 2)))
    # affine's angle is clockwise, as torchvision's
    assert np.allclose(arr(F.affine(T(x), 90.0, [0, 0], 1.0, 0.0)), np.rot90(x, -1, axes=(1, 2)))


def test_translate_hand_computed():
    x = T(np.arange(9.0).reshape(1, 3, 3))
    out = arr(F.affine(x, 0.0, [1, 0], 1.0, 0.0))  # one pixel to the right, zeros come in
    assert out.tolist() == [[[0, 0, 1], [0, 3, 4], [0, 6, 7]]]


def test_rotate_expand_size():
    out = F.rotate(lamina.ones(1, 4, 8), 90.0, expand=True)
    assert out.shape == (1, 8, 4)
    assert F.rotate(lamina.ones(1, 10, 10), 45.0, expand=True).shape == (1, 16, 16)  # ceil(7.07) - floor(-7.07)


# --- colour ------------------------------------------------------------------------------

def test_grayscale_weights_hand_computed():
    x = T([[[1.0, 0.0]], [[0.0, 1.0]], [[0.5, 1.0]]])
    g = arr(F.rgb_to_grayscale(x))
    np.testing.assert_allclose(g, [[[0.2989 + 0.057, 0.587 + 0.114]]], rtol=1e-12)
    g3 = arr(F.rgb_to_grayscale(x, 3))
    assert g3.shape == (3, 1, 2) and np.allclose(g3[0], g3[2])


def test_brightness_contrast_saturation_hand_computed():
    x = T([[[0.2, 0.6]], [[0.4, 0.4]], [[0.0, 0.8]]])
    np.testing.assert_allclose(arr(F.adjust_brightness(x, 2.0)), np.clip(2 * arr(x), 0, 1))
    gray = 0.2989 * arr(x)[0] + 0.587 * arr(x)[1] + 0.114 * arr(x)[2]
    mean = gray.mean()
    np.testing.assert_allclose(arr(F.adjust_contrast(x, 0.5)), 0.5 * arr(x) + 0.5 * mean, rtol=1e-12)
    np.testing.assert_allclose(arr(F.adjust_saturation(x, 0.0)), np.broadcast_to(gray, (3, 1, 2)), rtol=1e-12)
    np.testing.assert_allclose(arr(F.adjust_saturation(x, 1.0)), arr(x))


def test_hue_hand_computed():
    red = T([[[1.0]], [[0.0]], [[0.0]]])
    np.testing.assert_allclose(arr(F.adjust_hue(red, 1 / 3)).ravel(), [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(arr(F.adjust_hue(red, -1 / 3)).ravel(), [0, 0, 1], atol=1e-12)
    x = np.random.default_rng(0).random((3, 4, 5))
    np.testing.assert_allclose(arr(F.adjust_hue(T(x), 0.0)), x, atol=1e-12)
    hsv = F.rgb_to_hsv(x)
    np.testing.assert_allclose(F.hsv_to_rgb(hsv), x, atol=1e-12)


@pytest.mark.parametrize("k,sigma", [(3, 0.8), (5, 1.5), ((3, 7), (0.5, 2.0))])
def test_gaussian_blur_matches_conv2d(k, sigma):
    x = np.random.default_rng(2).random((2, 9, 11))
    out = arr(F.gaussian_blur(T(x), k, sigma))
    kx, ky = (k, k) if isinstance(k, int) else k
    sx, sy = (sigma, sigma) if isinstance(sigma, float) else sigma
    g = lambda n, s: np.exp(-0.5 * (np.linspace(-(n - 1) / 2, (n - 1) / 2, n) / s) ** 2)
    kern = np.outer(g(ky, sy) / g(ky, sy).sum(), g(kx, sx) / g(kx, sx).sum())
    xt = tF.pad(torch.tensor(x)[:, None], (kx // 2, kx // 2, ky // 2, ky // 2), mode="reflect")
    ref = tF.conv2d(xt, torch.tensor(kern)[None, None])[:, 0].numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)


def test_normalize_and_errors():
    x = T(np.ones((2, 2, 2)))
    np.testing.assert_allclose(arr(F.normalize(x, [0.5, 1.0], [0.5, 2.0]))[:, 0, 0], [1.0, 0.0])
    with pytest.raises(ValueError, match="division by zero"):
        F.normalize(x, [0.0, 0.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="channels"):
        F.normalize(x, [0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="interpolation"):
        F.resize(x, 3, interpolation="bicubic")
    with pytest.raises(TypeError, match="expected a lamina Tensor"):
        F.hflip([1, 2])


def test_uint8_numpy_roundtrip_types():
    img = np.random.default_rng(0).integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    out = F.hflip(img)
    assert out.dtype == np.uint8 and np.array_equal(out, img[:, ::-1])
    out = F.adjust_brightness(img, 2.0)
    assert out.dtype == np.uint8 and np.array_equal(out, np.clip(img.astype(int) * 2, 0, 255))
    r = F.resize(img, [3, 4], antialias=False)
    ref = tF.interpolate(torch.tensor(img.transpose(2, 0, 1)[None].astype(np.float64)), size=(3, 4),
                         mode="bilinear", align_corners=False)[0].numpy().transpose(1, 2, 0)
    assert r.shape == (3, 4, 3) and np.abs(r.astype(float) - ref).max() <= 0.5 + 1e-9
    assert F.rgb_to_grayscale(img).shape == (6, 8, 1)
