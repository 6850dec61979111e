"""RoI ops: both box formats, the modules, empty batches and boxes, kernel choice, and the
errors for malformed input."""

import numpy as np
import pytest

import lamina
from lamina.ops.kernels import im2col, roi_numba
from lamina.ops.kernels import roi_align as KA
from lamina.vision.ops import PSRoIAlign, PSRoIPool, RoIAlign, RoIPool, ps_roi_align, ps_roi_pool, roi_align, roi_pool

OPS = {"roi_align": roi_align, "roi_pool": roi_pool, "ps_roi_align": ps_roi_align, "ps_roi_pool": ps_roi_pool}


def _x(n=2, c=4, h=6, w=6):
    return lamina.tensor(np.random.default_rng(0).standard_normal((n, c, h, w)).astype(np.float32), requires_grad=True)


@pytest.mark.parametrize("name", list(OPS))
def test_list_of_boxes_equals_batch_indexed_tensor(name):
    x = _x()
    b0 = lamina.tensor([[0.5, 1.0, 4.0, 5.5], [2.0, 2.0, 3.0, 3.0]])
    b1 = lamina.tensor([[1.0, 0.0, 5.0, 4.0]])
    rois = lamina.tensor([[0, 0.5, 1.0, 4.0, 5.5], [0, 2.0, 2.0, 3.0, 3.0], [1, 1.0, 0.0, 5.0, 4.0]])
    fn = OPS[name]
    np.testing.assert_array_equal(fn(x, [b0, b1], 2).detach().numpy(), fn(x, rois, 2).detach().numpy())
    np.testing.assert_array_equal(fn(x, (b0, b1), 2).detach().numpy(), fn(x, rois, 2).detach().numpy())


def test_modules_call_their_functions_and_print_like_torchvision():
    x = _x()
    rois = lamina.tensor([[0, 0.5, 1.0, 4.0, 5.5], [1, 1.0, 0.0, 5.0, 4.0]])
    cases = [(RoIAlign((2, 2), 0.5, 2, aligned=True), lambda: roi_align(x, rois, (2, 2), 0.5, 2, True)),
             (RoIPool(2, 0.5), lambda: roi_pool(x, rois, 2, 0.5)),
             (PSRoIAlign(2, 0.5, -1), lambda: ps_roi_align(x, rois, 2, 0.5, -1)),
             (PSRoIPool(2, 0.5), lambda: ps_roi_pool(x, rois, 2, 0.5))]
    for module, fn in cases:
        np.testing.assert_array_equal(module(x, rois).detach().numpy(), fn().detach().numpy())
    assert repr(cases[0][0]) == "RoIAlign(output_size=(2, 2), spatial_scale=0.5, sampling_ratio=2, aligned=True)"
    assert repr(cases[1][0]) == "RoIPool(output_size=2, spatial_scale=0.5)"
    assert repr(cases[2][0]) == "PSRoIAlign(output_size=2, spatial_scale=0.5, sampling_ratio=-1)"


@pytest.mark.parametrize("name", list(OPS))
def test_no_boxes_and_an_empty_batch(name):
    fn = OPS[name]
    co = 1 if name.startswith("ps") else 4
    x = _x()
    for boxes in (lamina.zeros(0, 5), [lamina.zeros(0, 4), lamina.zeros(0, 4)], []):
        y = fn(x, boxes, (2, 2))
        assert y.shape == (0, co, 2, 2) and y.dtype == lamina.float32
        y.sum().backward()
        assert x.grad.shape == x.shape and not x.grad.numpy().any()
        x.grad = None


def test_empty_batch_shapes():
    for name, fn in OPS.items():
        c = 9 if name.startswith("ps") else 4
        y = fn(lamina.zeros(0, c, 6, 6, requires_grad=True), lamina.zeros(0, 5), 3)
        assert y.shape == (0, 1 if name.startswith("ps") else 4, 3, 3)


def test_float64_in_float64_out_and_a_channels_last_input():
    x = np.random.default_rng(1).standard_normal((2, 6, 5, 5))
    rois = lamina.tensor([[1, 0.3, 0.2, 4.1, 3.3]], dtype=lamina.float64)
    y = roi_align(lamina.tensor(x), rois, 2, sampling_ratio=2)
    assert y.dtype == lamina.float64
    x_cl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # NCHW view of NHWC memory
    np.testing.assert_array_equal(roi_align(lamina.tensor(x_cl), rois, 2, sampling_ratio=2).numpy(), y.numpy())


def test_kernel_choice_is_made_in_one_place():
    old = im2col.use_numba()
    try:
        im2col.use_numba(True)
        assert KA.align_impl(np.float32) == ("numba" if roi_numba.AVAILABLE else "numpy")
        assert KA.align_impl(np.float16) == "numpy"
        im2col.use_numba(False)
        assert KA.align_impl(np.float32) == "numpy"
    finally:
        im2col.use_numba(old)
    with KA.force_impl("numpy"):
        assert KA.align_impl(np.float32) == "numpy"
    with pytest.raises(ValueError, match="roi_align: unknown kernel 'fast'"):
        with KA.force_impl("fast"):
            pass


# --- malformed input --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(OPS))
def test_malformed_boxes_get_an_error_naming_the_op(name):
    fn = OPS[name]
    x = _x()
    bad = [
        (lamina.tensor([[0.0, 0.0, 3.0, 3.0]]), ValueError, r"boxes must be a Tensor\[K, 5\].*shape \(1, 4\)"),
        (lamina.tensor([0.0, 0.0, 0.0, 3.0, 3.0]), ValueError, r"got a tensor of shape \(5,\)"),
        ([lamina.tensor([[0.0, 0.0, 3.0]])], ValueError, r"boxes\[0\] has shape \(1, 3\)"),
        ([np.zeros((1, 4), np.float32)], TypeError, r"boxes\[0\] is a ndarray"),
        (np.zeros((1, 5), np.float32), TypeError, "got ndarray"),
        (lamina.tensor([[2, 0.0, 0.0, 3.0, 3.0]]), ValueError, r"box 0 has batch index 2, but the input holds 2 images"),
        (lamina.tensor([[0, 0, 0, 1, 1], [-1, 0.0, 0.0, 3.0, 3.0]]), ValueError, "box 1 has batch index -1"),
        (lamina.tensor([[0.5, 0.0, 0.0, 3.0, 3.0]]), ValueError, "box 0 has batch index 0.5, which is not a whole"),
        (lamina.tensor([[0, 0.0, float("nan"), 3.0, 3.0]]), ValueError, "box 0 holds NaN or infinity"),
        (lamina.tensor([[0, 0.0, 0.0, float("inf"), 3.0]]), ValueError, "box 0 holds NaN or infinity"),
        ([lamina.zeros(0, 4), lamina.zeros(0, 4), lamina.ones(1, 4)], ValueError,
         r"boxes\[2\] holds 1 boxes for image 2, but the input holds 2 images"),
        (lamina.tensor([[0, 0.0, 0.0, 3.0, 3.0]], dtype=lamina.float64), TypeError,
         r"boxes must have the input's dtype \(float32\), got float64"),
    ]
    for boxes, err, msg in bad:
        with pytest.raises(err, match=f"^{name}: .*{msg}"):
            fn(x, boxes, 2)


@pytest.mark.parametrize("name", list(OPS))
def test_bad_input_and_options_get_an_error_naming_the_op(name):
    fn = OPS[name]
    rois = lamina.tensor([[0, 0.0, 0.0, 3.0, 3.0]])
    with pytest.raises(ValueError, match=rf"^{name}: expected a 4-D input \(N, C, H, W\), got a 3-D"):
        fn(lamina.zeros(4, 6, 6), rois, 2)
    with pytest.raises(TypeError, match=f"^{name}: expected a floating-point input, got int64"):
        fn(lamina.zeros(1, 4, 6, 6, dtype=lamina.int64), rois, 2)
    with pytest.raises(TypeError, match=f"^{name}: expected input to be a lamina Tensor"):
        fn(np.zeros((1, 4, 6, 6), np.float32), rois, 2)
    with pytest.raises(ValueError, match=f"^{name}: output_size must be positive"):
        fn(_x(), rois, (0, 2))
    with pytest.raises(ValueError, match=f"^{name}: spatial_scale must be a positive finite number"):
        fn(_x(), rois, 2, 0.0)
    with pytest.raises(ValueError, match=f"^{name}: the input's maps are empty"):
        fn(lamina.zeros(1, 4, 0, 6), rois, 2)


def test_position_sensitive_ops_need_a_multiple_of_the_bins_in_channels():
    rois = lamina.tensor([[0, 0.0, 0.0, 3.0, 3.0]])
    for name in ("ps_roi_align", "ps_roi_pool"):
        with pytest.raises(ValueError, match=rf"^{name}: the input's channels \(10\) must be a multiple of "
                                             r"output_size\[0\]·output_size\[1\] = 2·2 = 4"):
            OPS[name](lamina.zeros(1, 10, 6, 6), rois, 2)


def test_sampling_ratio_must_be_an_int():
    rois = lamina.tensor([[0, 0.0, 0.0, 3.0, 3.0]])
    with pytest.raises(TypeError, match="^roi_align: sampling_ratio must be an int"):
        roi_align(_x(), rois, 2, 1.0, 2.5)
    with pytest.raises(TypeError, match="^ps_roi_align: sampling_ratio must be an int"):
        ps_roi_align(_x(), rois, 2, 1.0, True)
