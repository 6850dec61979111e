"""F.affine_grid and F.grid_sample: torch's values and the gradients w.r.t. input, grid and theta for every
mode, padding mode and align_corners; float64 gradcheck; a hand case; torch's errors."""

import numpy as np
import pytest
import torch

import lamina
import lamina.nn.functional as F
from tests.helpers import Input, check_grads, oracle


def fn(x):
    return F if isinstance(x, lamina.Tensor) else torch.nn.functional


def grid_input(n, ho, wo, seed=0, spread=1.3):
    """A grid reaching beyond [-1, 1] (to exercise padding), no point on a pixel edge."""
    g = np.random.default_rng(seed).uniform(-spread, spread, (n, ho, wo, 2))
    return Input(array=g)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_grid_sample_matches_torch(mode, padding, align, dtype):
    oracle(lambda x, g: fn(x).grid_sample(x, g, mode=mode, padding_mode=padding, align_corners=align),
           (2, 3, 4, 5), grid_input(2, 3, 6), dtype=dtype)


@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align", [False, True])
def test_grid_sample_gradcheck(padding, align):
    check_grads(lambda x, g: F.grid_sample(x, g, padding_mode=padding, align_corners=align), (1, 2, 3, 4),
                grid_input(1, 2, 3, seed=1), second=False)
    check_grads(lambda x, g: F.grid_sample(x, g, mode="nearest", padding_mode=padding, align_corners=align),
                (1, 2, 3, 4), grid_input(1, 2, 3, seed=2), second=False)


@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize("size", [(2, 3, 4, 5), (2, 1, 1, 3), (2, 3, 2, 3, 4)])
def test_affine_grid_matches_torch(align, size):
    theta = (2, 2, 3) if len(size) == 4 else (2, 3, 4)
    oracle(lambda t: fn(t).affine_grid(t, size, align_corners=align), theta)
    check_grads(lambda t: F.affine_grid(t, size, align_corners=align), theta)


def test_spatial_transformer_end_to_end_and_identity():
    x = np.random.default_rng(3).standard_normal((2, 3, 5, 6))

    def stn(inp, theta):
        f = fn(inp)
        return f.grid_sample(inp, f.affine_grid(theta, inp.shape, align_corners=False), align_corners=False)

    theta = np.array([[[0.9, 0.1, 0.05], [-0.1, 1.1, 0.0]]] * 2)
    oracle(stn, Input(array=x), Input(array=theta))
    eye = lamina.tensor(np.array([[[1.0, 0, 0], [0, 1.0, 0]]] * 2))
    out = F.grid_sample(lamina.tensor(x), F.affine_grid(eye, (2, 3, 5, 6), align_corners=False), align_corners=False)
    np.testing.assert_allclose(out.numpy(), x, atol=1e-12)  # the identity map samples each pixel centre


def test_hand_case_and_errors():
    img = lamina.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    centre = lamina.zeros(1, 1, 1, 2)  # the image centre: the mean of the four pixels
    assert F.grid_sample(img, centre, align_corners=True).item() == 1.5
    with pytest.raises(ValueError, match="padding_mode"):
        F.grid_sample(img, centre, padding_mode="wrap")
    with pytest.raises(NotImplementedError, match="bicubic"):
        F.grid_sample(img, centre, mode="bicubic")
    with pytest.raises(RuntimeError, match="same batch size"):
        F.grid_sample(img, lamina.zeros(2, 1, 1, 2))
    with pytest.raises(ValueError, match="Nx2x3"):
        F.affine_grid(lamina.zeros(1, 3, 3), (1, 1, 2, 2))
    with pytest.raises(ValueError):
        torch.nn.functional.affine_grid(torch.zeros(1, 3, 3), (1, 1, 2, 2))
