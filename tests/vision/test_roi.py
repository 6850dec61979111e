"""RoI pooling ops (lamina.vision.ops.roi_align, roi_pool, ps_roi_align, ps_roi_pool): the fast
kernels against the plain-loop references, hand-computed cases, gradients, boxes and errors."""

import numpy as np
import pytest

import lamina
from lamina.autograd import gradcheck, gradgradcheck
from lamina.ops.kernels import roi_align as KA
from lamina.ops.kernels import roi_numba
from lamina.ops.kernels import roi_reference as R
from lamina.vision.ops import ps_roi_align, ps_roi_pool, roi_align, roi_pool

KERNELS = ["numpy"] + (["numba"] if roi_numba.AVAILABLE else [])


@pytest.fixture(params=KERNELS)
def kernel(request):
    with KA.force_impl(request.param):
        yield request.param


def _case(rng, dtype, ps=False, hw_max=9):
    """A random map and boxes: partly or wholly outside the map, tiny, reversed, half-integers."""
    n = int(rng.integers(1, 3))
    h, w = (int(v) for v in rng.integers(1, hw_max + 1, 2))
    ph, pw = (int(v) for v in rng.integers(1, 4, 2))
    c = int(rng.integers(1, 4)) * (ph * pw if ps else 1)
    k = int(rng.integers(0, 6))
    scale = float(rng.choice([1.0, 0.5, 0.75]))
    xy = rng.uniform(-3, max(h, w) / scale + 2, (k, 2))
    wh = rng.uniform(-1.5, 10, (k, 2))
    if rng.random() < 0.3:  # on the half-pixel grid: exact bin edges, C's round of .5
        xy, wh = np.round(xy * 2) / 2, np.round(wh * 2) / 2
    rois = np.concatenate([rng.integers(0, n, (k, 1)), xy, xy + wh], 1).astype(dtype)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    return x, rois, (ph, pw), scale


def _tol(dtype):
    return dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)


# --- fast kernels against the references ------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_roi_align_matches_reference_forward_and_backward(kernel, dtype):
    rng = np.random.default_rng(1)
    for _ in range(40):
        x, rois, size, scale = _case(rng, dtype)
        sr, aligned = int(rng.integers(-1, 4)), bool(rng.integers(0, 2))
        xt = lamina.tensor(x, requires_grad=True)
        y = roi_align(xt, lamina.tensor(rois), size, scale, sr, aligned)
        np.testing.assert_allclose(y.detach().numpy(), R.roi_align_reference(x, rois, size, scale, sr, aligned), **_tol(dtype))
        gy = rng.standard_normal(y.shape).astype(dtype)
        y.backward(lamina.tensor(gy))
        np.testing.assert_allclose(xt.grad.numpy(), R.roi_align_backward_reference(gy, rois, x.shape, scale, sr, aligned),
                                   **_tol(dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ps_roi_align_matches_reference(kernel, dtype):
    rng = np.random.default_rng(2)
    for _ in range(30):
        x, rois, size, scale = _case(rng, dtype, ps=True)
        sr = int(rng.integers(-1, 4))
        y = ps_roi_align(lamina.tensor(x), lamina.tensor(rois), size, scale, sr)
        np.testing.assert_allclose(y.detach().numpy(), R.ps_roi_align_reference(x, rois, size, scale, sr), **_tol(dtype))


def test_numba_and_numpy_kernels_agree_on_a_larger_float32_case():
    if not roi_numba.AVAILABLE:
        pytest.skip("numba is not installed: only the NumPy kernel exists")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 16, 20, 20)).astype(np.float32)
    xy = rng.uniform(-2, 18, (64, 2))
    rois = np.concatenate([rng.integers(0, 2, (64, 1)), xy, xy + rng.uniform(0, 12, (64, 2))], 1).astype(np.float32)
    gy = rng.standard_normal((64, 16, 7, 7)).astype(np.float32)
    res = {}
    for impl in ("numpy", "numba"):
        with KA.force_impl(impl):
            for sr in (2, 0):
                xt = lamina.tensor(x, requires_grad=True)
                y = roi_align(xt, lamina.tensor(rois), 7, 1.0, sr)
                y.backward(lamina.tensor(gy))
                res[impl, sr] = (y.detach().numpy(), xt.grad.numpy())
    for sr in (2, 0):
        for a, b in zip(res["numpy", sr], res["numba", sr]):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_roi_pool_matches_reference_values_and_argmax(dtype):
    rng = np.random.default_rng(4)
    for i in range(60):
        x, rois, size, scale = _case(rng, dtype)
        if i % 3 == 0:
            x = np.round(x)  # ties: the first in row-major order wins
        if i % 4 == 0:
            x[x > 1] = np.nan  # never chosen
        if i % 5 == 0 and dtype == np.float64:
            x[x < -1] = -1e300  # below -FLT_MAX: never chosen either
        xt = lamina.tensor(x, requires_grad=True)
        y = roi_pool(xt, lamina.tensor(rois), size, scale)
        ref, arg = R.roi_pool_reference(x, rois, size, scale)
        np.testing.assert_array_equal(y.detach().numpy(), ref)
        gy = rng.standard_normal(y.shape).astype(dtype)
        y.backward(lamina.tensor(gy))
        expect = np.zeros_like(x)
        for k, c, p, q in zip(*np.nonzero(arg >= 0)):
            b = int(rois[k, 0])
            expect[b, c].reshape(-1)[arg[k, c, p, q]] += gy[k, c, p, q]
        np.testing.assert_allclose(xt.grad.numpy(), expect, **_tol(dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ps_roi_pool_matches_reference(dtype):
    rng = np.random.default_rng(5)
    for _ in range(40):
        x, rois, size, scale = _case(rng, dtype, ps=True)
        y = ps_roi_pool(lamina.tensor(x), lamina.tensor(rois), size, scale)
        np.testing.assert_allclose(y.detach().numpy(), R.ps_roi_pool_reference(x, rois, size, scale), **_tol(dtype))


# --- hand-computed cases ------------------------------------------------------------------------

MAP = np.array([[4, 9, 2, 7],
                [3, 5, 8, 1],
                [6, 0, 15, 11],
                [12, 10, 13, 14]], np.float64)


def test_roi_pool_hand_computed():
    x = lamina.tensor(MAP[None, None], requires_grad=True)
    # box (0, 0)–(2, 2) holds pixels 0..2 (both ends): 3 pixels cut into 2 bins of 1.5, widened to
    # whole pixels: rows/cols [0, 2) and [1, 3), overlapping in the middle
    y = roi_pool(x, lamina.tensor([[0.0, 0.0, 0.0, 2.0, 2.0]], dtype=lamina.float64), 2)
    assert y.tolist() == [[[[9.0, 9.0], [6.0, 15.0]]]]
    y.sum().backward()
    grad = np.zeros((4, 4))
    grad[0, 1], grad[2, 0], grad[2, 2] = 2, 1, 1  # the 9 wins two bins
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], grad)
    # spatial_scale 0.5: box (0, 0)–(6, 6) is (0, 0)–(3, 3) on the map, its four quadrants
    y = roi_pool(x, lamina.tensor([[0.0, 0.0, 0.0, 6.0, 6.0]], dtype=lamina.float64), 2, spatial_scale=0.5)
    assert y.tolist() == [[[[9.0, 8.0], [12.0, 15.0]]]]
    # box (2, 2)–(5, 5): bins [2, 4) and [4, 6); the second lies outside the map: empty, 0
    y = roi_pool(x, lamina.tensor([[0.0, 2.0, 2.0, 5.0, 5.0]], dtype=lamina.float64), 2)
    assert y.tolist() == [[[[15.0, 0.0], [0.0, 0.0]]]]


def test_roi_align_hand_computed():
    # x[r, c] = 4r + c is linear, so bilinear interpolation is exact: the value at (y, x) is 4y + x
    x = lamina.tensor((4 * np.arange(4)[:, None] + np.arange(4)).astype(np.float64)[None, None])

    def one(box, **kw):
        return roi_align(x, lamina.tensor([[0.0, *box]], dtype=lamina.float64), 1, **kw).item()

    # not aligned: box (0.5, 0.5)–(2.5, 2.5), 2×2 samples at 1.0 and 2.0: mean of 5, 6, 9, 10
    assert one((0.5, 0.5, 2.5, 2.5), sampling_ratio=2) == 7.5
    # aligned: the box moves by −0.5, samples at 0.5 and 1.5: 4·1 + 1
    assert one((0.5, 0.5, 2.5, 2.5), sampling_ratio=2, aligned=True) == 5.0
    # adaptive grid: ceil(2 / 1) = 2 samples per axis, the same as above
    assert one((0.5, 0.5, 2.5, 2.5), aligned=True) == 5.0
    # rows −2..0: samples at y = −1.5 (more than a pixel out: 0) and −0.5 (clamped to row 0);
    # columns 0..1 at x = 0.25, 0.75: mean of 0, 0, 0.25, 0.75
    assert one((0.0, -2.0, 1.0, 0.0), sampling_ratio=2) == 0.25
    # a sample at y = 3.5 (past the last row, within a pixel) reads row 3: 4·3 + 1
    assert one((0.5, 3.0, 1.5, 4.0), sampling_ratio=1) == 13.0
    # not aligned, a box of size 0 is widened to 1 pixel: one sample at (2.5, 1.5) → 11.5
    assert one((1.0, 2.0, 1.0, 2.0), sampling_ratio=1) == 11.5
    # aligned, a box of size 0 with an adaptive grid has no samples: 0
    assert one((1.0, 2.0, 1.0, 2.0), aligned=True) == 0.0


def test_position_sensitive_ops_read_one_channel_group_per_bin():
    # constant planes x[c] = c: bin (i, j) of output channel 0 reads input channel 2i + j
    x = lamina.tensor(np.broadcast_to(np.arange(8.0)[:, None, None], (8, 6, 6))[None].copy())
    box = lamina.tensor([[0.0, 1.0, 1.0, 5.0, 5.0]], dtype=lamina.float64)
    np.testing.assert_array_equal(ps_roi_pool(x, box, 2).numpy(), [[[[0, 1], [2, 3]], [[4, 5], [6, 7]]]])
    np.testing.assert_array_equal(ps_roi_align(x, box, 2, sampling_ratio=2).numpy(), [[[[0, 1], [2, 3]], [[4, 5], [6, 7]]]])


def test_ps_roi_pool_never_pools_the_last_row_and_column():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 3, :] = x[0, 0, :, 3] = 100.0  # the last row and column
    x[0, 0, :3, :3] = 1.0
    # box (0, 0)–(4, 4) covers the whole map; torchvision's forward clips bins to rows/cols < 3
    y = ps_roi_pool(lamina.tensor(x), lamina.tensor([[0.0, 0.0, 0.0, 4.0, 4.0]], dtype=lamina.float64), 1)
    assert y.item() == 1.0


# --- gradients -------------------------------------------------------------------------------------

def _grad_case(seed, ps=False):
    rng = np.random.default_rng(seed)
    c = 4 if ps else 3
    x = lamina.tensor(rng.standard_normal((2, c, 5, 7)), requires_grad=True)
    boxes = lamina.tensor([[0, -1.3, -0.7, 3.2, 2.9],   # partly outside, top-left
                           [1, 4.1, 2.2, 8.9, 6.3],     # partly outside, bottom-right
                           [1, 0.6, 1.4, 2.1, 3.7],
                           [0, 2.5, 1.5, 2.5, 1.5]], dtype=lamina.float64)  # size 0
    return x, boxes


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 2])
def test_roi_align_gradcheck(kernel, seed, aligned, sampling_ratio):
    x, boxes = _grad_case(seed)
    assert gradcheck(lambda t: roi_align(t, boxes, (3, 2), 0.9, sampling_ratio, aligned), (x,))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("sampling_ratio", [-1, 3])
def test_ps_roi_align_gradcheck(kernel, seed, sampling_ratio):
    x, boxes = _grad_case(seed, ps=True)
    assert gradcheck(lambda t: ps_roi_align(t, boxes, 2, 0.9, sampling_ratio), (x,))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roi_pool_and_ps_roi_pool_gradcheck(seed):
    x, boxes = _grad_case(seed)
    assert gradcheck(lambda t: roi_pool(t, boxes, (3, 2), 0.9), (x,))
    x, boxes = _grad_case(seed, ps=True)
    assert gradcheck(lambda t: ps_roi_pool(t, boxes, 2, 0.9), (x,))


def test_second_derivatives(kernel):
    x, boxes = _grad_case(0)
    assert gradgradcheck(lambda t: roi_align(t, boxes, 2, 1.0, 2, True), (x,))
    assert gradgradcheck(lambda t: roi_pool(t, boxes, 2), (x,))
    x, boxes = _grad_case(0, ps=True)
    assert gradgradcheck(lambda t: ps_roi_align(t, boxes, 2), (x,))
    assert gradgradcheck(lambda t: ps_roi_pool(t, boxes, 2), (x,))


def test_boxes_get_no_gradient():
    x, boxes = _grad_case(0)
    boxes.requires_grad_()
    roi_align(x, boxes, 2).sum().backward()
    assert x.grad is not None and boxes.grad is None
