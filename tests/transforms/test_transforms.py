"""Transform classes: seeding, parameter draws, input types, standardization and whitening."""

import numpy as np
import pytest

import lamina
from lamina import transforms as T
from lamina.transforms import functional as F


def img(seed=0, shape=(3, 8, 10)):
    return lamina.tensor(np.random.default_rng(seed).random(shape).astype(np.float32))


def same(a, b):
    return np.array_equal(np.asarray(a), np.asarray(b))


def test_to_tensor_matches_torchvision_rules():
    hwc = np.array([[[0, 128, 255], [1, 2, 3]]], dtype=np.uint8)  # 1 x 2 x 3
    t = T.ToTensor()(hwc)
    assert t.shape == (3, 1, 2) and t.dtype == lamina.float32
    np.testing.assert_allclose(t.numpy()[:, 0, 0], [0, 128 / 255, 1], rtol=1e-6)
    assert T.ToTensor()(np.zeros((4, 5), dtype=np.uint8)).shape == (1, 4, 5)
    f = np.full((2, 2, 1), 3.0)  # float arrays keep their values
    assert T.ToTensor()(f).tolist() == [[[3.0, 3.0], [3.0, 3.0]]]
    x = img()
    assert T.ToTensor()(x) is x
    with pytest.raises(TypeError, match="ToTensor"):
        T.ToTensor()([1, 2])


@pytest.mark.parametrize("make", [
    lambda g: T.RandomCrop(6, padding=2, generator=g),
    lambda g: T.RandomResizedCrop((5, 7), generator=g),
    lambda g: T.RandomHorizontalFlip(generator=g),
    lambda g: T.RandomRotation(30, generator=g),
    lambda g: T.RandomAffine(20, translate=(0.2, 0.1), scale=(0.8, 1.2), shear=10, generator=g),
    lambda g: T.ColorJitter(0.4, 0.4, 0.4, 0.1, generator=g),
    lambda g: T.RandomErasing(p=1.0, generator=g),
    lambda g: T.GaussianBlur(3, generator=g),
])
def test_random_transforms_are_seeded(make):
    x = img()
    a = [make(np.random.default_rng(5))(x).numpy() for _ in range(2)]
    t = make(np.random.default_rng(5))
    b = [t(x).numpy(), t(x).numpy()]
    assert same(a[0], b[0])  # same seed, same first draw
    # the global generator path: manual_seed makes it reproducible
    lamina.manual_seed(3)
    c = make(None)(x).numpy()
    lamina.manual_seed(3)
    d = make(None)(x).numpy()
    assert same(c, d)


def test_random_crop_draws_and_padding():
    x = lamina.tensor(np.arange(16.0).reshape(1, 4, 4))
    g = np.random.default_rng(0)
    out = T.RandomCrop(2, generator=g)(x).numpy()
    g2 = np.random.default_rng(0)
    i, j = int(g2.integers(0, 3)), int(g2.integers(0, 3))
    assert same(out, x.numpy()[:, i:i + 2, j:j + 2])
    padded = T.RandomCrop(8, padding=2, generator=g)(x).numpy()
    assert padded.shape == (1, 8, 8) and padded[0, 0].sum() == 0 and padded.sum() == x.numpy().sum()
    reflect = T.RandomCrop(6, padding=1, padding_mode="reflect", generator=g)(x).numpy()
    assert same(reflect, np.pad(x.numpy(), [(0, 0), (1, 1), (1, 1)], mode="reflect"))
    grown = T.RandomCrop((5, 6), pad_if_needed=True, generator=g)(x)
    assert grown.shape == (1, 5, 6)
    with pytest.raises(ValueError, match="larger than input image"):
        T.RandomCrop(5)(x)


def test_flip_probabilities():
    x = img()
    assert same(T.RandomHorizontalFlip(p=1.0)(x).numpy(), x.numpy()[..., ::-1])
    assert same(T.RandomVerticalFlip(p=1.0)(x).numpy(), x.numpy()[..., ::-1, :])
    assert same(T.RandomHorizontalFlip(p=0.0)(x).numpy(), x.numpy())
    g = np.random.default_rng(0)
    flips = sum(not same(T.RandomHorizontalFlip(generator=g)(x).numpy(), x.numpy()) for _ in range(400))
    assert 150 < flips < 250


def test_random_resized_crop_params_inside_image():
    g = np.random.default_rng(1)
    t = T.RandomResizedCrop(4, scale=(0.2, 0.9), generator=g)
    x = img(shape=(3, 20, 30))
    for _ in range(50):
        i, j, h, w = t.get_params(x)
        assert 0 <= i and i + h <= 20 and 0 <= j and j + w <= 30
        assert 0.2 * 600 * 0.5 <= h * w <= 0.9 * 600 * 1.5
    assert t(x).shape == (3, 4, 4)


def test_color_jitter_zero_is_identity_and_ranges():
    x = img()
    assert same(T.ColorJitter()(x).numpy(), x.numpy())
    cj = T.ColorJitter(brightness=0.5, hue=0.2, generator=np.random.default_rng(0))
    assert cj.brightness == (0.5, 1.5) and cj.hue == (-0.2, 0.2) and cj.contrast is None
    order, b, c, s, h = cj.get_params()
    assert sorted(order.tolist()) == [0, 1, 2, 3] and c is None and s is None and 0.5 <= b <= 1.5
    with pytest.raises(ValueError, match="hue"):
        T.ColorJitter(hue=0.7)
    out = T.ColorJitter(0.5, 0.5, 0.5, 0.2)(x).numpy()
    assert out.min() >= 0 and out.max() <= 1


def test_random_erasing_rectangle():
    x = lamina.ones(3, 10, 10)
    out = T.RandomErasing(p=1.0, value=0, generator=np.random.default_rng(0))(x).numpy()
    zeros = np.argwhere(out[0] == 0)
    (i0, j0), (i1, j1) = zeros.min(0), zeros.max(0)
    assert len(zeros) == (i1 - i0 + 1) * (j1 - j0 + 1)  # one rectangle
    assert 0.02 * 100 * 0.5 <= len(zeros) <= 0.33 * 100 * 1.5
    assert same(out[0], out[2])
    assert same(x.numpy(), np.ones((3, 10, 10)))  # not in place by default


def test_batch_gets_one_draw():
    x = lamina.tensor(np.stack([img(1).numpy(), img(1).numpy()]))
    out = T.RandomAffine(30, translate=(0.2, 0.2), generator=np.random.default_rng(0))(x).numpy()
    assert out.shape == (2, 3, 8, 10) and same(out[0], out[1])


def test_compose_repr_lambda_and_choice():
    t = T.Compose([T.Lambda(lambda v: v * 2), T.Normalize([1.0], [1.0])])
    assert t(lamina.ones(1, 2, 2)).tolist() == [[[1.0, 1.0], [1.0, 1.0]]]
    assert "Normalize" in repr(t)
    g = np.random.default_rng(0)
    picks = {T.RandomChoice([T.Lambda(lambda v: 1), T.Lambda(lambda v: 2)], generator=g)(0) for _ in range(20)}
    assert picks == {1, 2}


def test_pil_images_round_trip():
    Image = pytest.importorskip("PIL.Image", reason="Pillow is not installed (pip install 'lamina[image]')")
    a = np.random.default_rng(0).integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    pic = Image.fromarray(a)
    flipped = F.hflip(pic)
    assert isinstance(flipped, Image.Image) and np.array_equal(np.asarray(flipped), a[:, ::-1])
    assert T.Grayscale()(pic).mode == "L"
    t = T.Compose([T.Resize((3, 4)), T.ToTensor()])(pic)
    assert t.shape == (3, 3, 4) and t.dtype == lamina.float32
    assert np.array_equal(T.ToTensor()(pic).numpy(), a.transpose(2, 0, 1) / np.float32(255))


# --- standardization and whitening -------------------------------------------------------------

def test_compute_mean_std_matches_numpy():
    rng = np.random.default_rng(0)
    data = rng.normal([1.0, -2.0, 0.5], [0.5, 2.0, 1.0], size=(40, 6, 5, 3)).transpose(0, 3, 1, 2)
    ds = [(lamina.tensor(d.astype(np.float32)), 0) for d in data]
    norm = T.compute_mean_std(ds)
    np.testing.assert_allclose(norm.mean, data.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(norm.std, data.std(axis=(0, 2, 3)), rtol=1e-5)
    z = np.stack([norm(x).numpy() for x, _ in ds])
    np.testing.assert_allclose(z.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=(0, 2, 3)), 1, atol=1e-5)
    norm2 = T.compute_mean_std(data)  # an (N, C, H, W) array works too
    np.testing.assert_allclose(norm2.std, norm.std, rtol=1e-5)
    hwc = [np.full((2, 2, 3), 10, dtype=np.uint8), np.full((2, 2, 3), 30, dtype=np.uint8)]
    assert T.compute_mean_std(hwc).mean == [20.0, 20.0, 20.0]


@pytest.mark.parametrize("method", ["zca", "pca"])
def test_whitening_gives_identity_covariance(method):
    rng = np.random.default_rng(1)
    mix = rng.normal(size=(12, 12))
    x = (rng.normal(size=(600, 12)) @ mix).reshape(600, 3, 2, 2) + 5.0
    w = T.ZCAWhitening(eps=0.0, method=method).fit(x)
    z = w.transform(lamina.tensor(x, dtype="float64")).numpy().reshape(600, -1)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-10)
    np.testing.assert_allclose(np.cov(z.T, bias=True), np.eye(12), atol=1e-8)
    single = w(lamina.tensor(x[0], dtype="float64")).numpy()
    assert np.allclose(single.reshape(-1), z[0])
    back = w.inverse_transform(z if method == "pca" else z.reshape(600, 3, 2, 2)).numpy()
    np.testing.assert_allclose(back.reshape(600, -1), x.reshape(600, -1), rtol=1e-4, atol=1e-4)


def test_zca_is_symmetric_and_pca_truncates():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5))
    zca = T.ZCAWhitening(eps=1e-8).fit(x)
    assert np.allclose(zca.matrix, zca.matrix.T)
    pca = T.ZCAWhitening(method="pca", n_components=2).fit(x)
    assert pca.transform(x).shape == (300, 2)
    with pytest.raises(RuntimeError, match="fit"):
        T.ZCAWhitening().transform(x)
    with pytest.raises(ValueError, match="singular"):
        T.ZCAWhitening(eps=0.0).fit(rng.normal(size=(3, 5)))
