"""deform_conv2d / DeformConv2d: against the plain-loop reference, onnxruntime's DeformConv,
torch's conv2d (zero offsets), float64 gradcheck, and a case worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

import lamina
from lamina.autograd import gradcheck
from lamina.ops.kernels import deform as K
from lamina.ops.kernels import deform_numba
from lamina.ops.kernels.deform_reference import bilinear, reference_deform_conv2d
from lamina.vision.ops import DeformConv2d, deform_conv2d

KERNELS = ["numpy", "numba"] if deform_numba.AVAILABLE else ["numpy"]


@pytest.fixture(params=KERNELS)
def kernel(request):
    K.force_kernel(request.param)
    yield request.param
    K.force_kernel(None)


def t(a, grad=False):
    return None if a is None else lamina.tensor(np.asarray(a), requires_grad=grad)


def out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def draw(rng, n, c, hw, c_out, k, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1, offset_groups=1,
         mask=True, bias=True, spread=2.0, dtype=np.float64):
    """Random operands; offsets up to ``spread`` pixels (samples partly outside the image), kept
    at least 0.01 from integers, where the bilinear kernel has its kinks."""
    ho, wo = (out_size(hw[i], k[i], stride[i], padding[i], dilation[i]) for i in range(2))
    taps = k[0] * k[1]
    off = rng.uniform(-spread, spread, (n, 2 * offset_groups * taps, ho, wo))
    frac = off - np.round(off)
    off = np.where(np.abs(frac) < 0.01, off + 0.05, off)
    arrays = dict(
        x=rng.standard_normal((n, c, *hw)), offset=off,
        weight=rng.standard_normal((c_out, c // groups, *k)),
        mask=rng.uniform(0.1, 1.0, (n, offset_groups * taps, ho, wo)) if mask else None,
        bias=rng.standard_normal(c_out) if bias else None)
    return {key: None if v is None else v.astype(dtype) for key, v in arrays.items()}


def run(a, stride, padding, dilation, grad=False):
    return deform_conv2d(t(a["x"], grad), t(a["offset"], grad), t(a["weight"], grad), t(a["bias"], grad),
                         stride, padding, dilation, t(a["mask"], grad))


# ----------------------------------------------------------------------------- by hand

def test_half_pixel_shift_in_x_averages_two_neighbours(kernel):
    # one channel, 1×1 kernel of weight 1: the output is the input sampled at (y, x + 0.5)
    x = np.array([[1.0, 3.0, 7.0, 5.0], [2.0, 4.0, 6.0, 8.0]]).reshape(1, 1, 2, 4)
    offset = np.zeros((1, 2, 2, 4))
    offset[0, 1] = 0.5  # channel 1 is Δx of the one tap
    y = deform_conv2d(t(x), t(offset), t(np.ones((1, 1, 1, 1)))).numpy()
    # the last column's right neighbour lies outside the image and counts as zero
    expected = [[(1 + 3) / 2, (3 + 7) / 2, (7 + 5) / 2, 5 / 2], [(2 + 4) / 2, (4 + 6) / 2, (6 + 8) / 2, 8 / 2]]
    np.testing.assert_allclose(y[0, 0], expected)
    # Δy = +0.5 instead: the mean of the pixel and the one below (zero below the last row)
    offset = np.zeros((1, 2, 2, 4))
    offset[0, 0] = 0.5
    y = deform_conv2d(t(x), t(offset), t(np.ones((1, 1, 1, 1)))).numpy()
    np.testing.assert_allclose(y[0, 0], [[1.5, 3.5, 6.5, 6.5], [1.0, 2.0, 3.0, 4.0]])
    # the mask multiplies the sampled value; the bias is added after
    mask = np.full((1, 1, 2, 4), 0.25)
    y = deform_conv2d(t(x), t(offset), t(np.ones((1, 1, 1, 1))), t(np.array([10.0])), mask=t(mask)).numpy()
    np.testing.assert_allclose(y[0, 0], 10 + 0.25 * np.array([[1.5, 3.5, 6.5, 6.5], [1.0, 2.0, 3.0, 4.0]]))


def test_samples_beyond_one_pixel_outside_are_zero(kernel):
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    offset = np.zeros((1, 2, 3, 3))
    offset[0, 1] = [[-1.0, -1.5, -2.0], [3.0, 2.5, 2.0], [0.25, 0.25, 0.25]]
    y = deform_conv2d(t(x), t(offset), t(np.ones((1, 1, 1, 1)))).numpy()[0, 0]
    # row 0: x = -1, -0.5, 0 → 0 (exactly one pixel out), half of x[0, 0] = 1, x[0, 0];
    # row 1: x = 3, 3.5, 4 → 0, 0, 0 (W = 3)
    np.testing.assert_allclose(y[:2], [[0.0, 0.5, 1.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(y[2], [0.75 * 7 + 0.25 * 8, 0.75 * 8 + 0.25 * 9, 0.75 * 9])


def test_bilinear_reference_by_hand():
    plane = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert bilinear(plane, 0.5, 0.5) == pytest.approx(2.5)
    assert bilinear(plane, 0.25, 1.0) == pytest.approx(0.75 * 2 + 0.25 * 4)
    assert bilinear(plane, -0.5, 0.0) == pytest.approx(0.5 * 1)
    assert bilinear(plane, -1.0, 0.0) == 0.0 and bilinear(plane, 0.0, 2.0) == 0.0


# ----------------------------------------------------------------------------- the reference

REFERENCE_CASES = [
    dict(n=2, c=4, hw=(5, 6), c_out=4, k=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2,
         offset_groups=2),
    dict(n=1, c=3, hw=(7, 5), c_out=2, k=(3, 3), padding=(1, 1), mask=False, bias=False),
    dict(n=2, c=6, hw=(4, 4), c_out=6, k=(1, 3), stride=(1, 2), dilation=(2, 1), groups=3, offset_groups=3),
    dict(n=1, c=2, hw=(3, 9), c_out=3, k=(2, 2), padding=(2, 1), offset_groups=2, spread=4.0),
    # offset groups that straddle weight groups (2 channels each against 3)
    dict(n=2, c=6, hw=(5, 4), c_out=4, k=(2, 3), padding=(1, 1), groups=2, offset_groups=3),
]


@pytest.mark.parametrize("case", range(len(REFERENCE_CASES)))
def test_fast_path_matches_reference(case, kernel):
    cfg = dict(REFERENCE_CASES[case])
    rng = np.random.default_rng(case)
    geo = {key: cfg.get(key, default) for key, default in (("stride", (1, 1)), ("padding", (0, 0)),
                                                             ("dilation", (1, 1)))}
    a = draw(rng, **cfg)
    y = run(a, **geo).numpy()
    ref = reference_deform_conv2d(a["x"], a["offset"], a["weight"], a["bias"], mask=a["mask"], **geo)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_numba_and_numpy_gradients_agree():
    if not deform_numba.AVAILABLE:
        pytest.skip("numba is not installed: only the NumPy path exists")  # nothing to compare it with
    rng = np.random.default_rng(5)
    # large enough for the parallel builds of the numba loops (the small cases run the serial ones)
    a = draw(rng, 4, 16, (17, 33), 6, (3, 3), (1, 2), (1, 1), (2, 1), 2, 4, dtype=np.float32)
    assert a["mask"][:, :1].size * 16 * 9 >= deform_numba.PARALLEL_MIN_WORK
    grads = {}
    for name in KERNELS:
        K.force_kernel(name)
        try:
            ts = {key: t(v, True) for key, v in a.items()}
            y = deform_conv2d(ts["x"], ts["offset"], ts["weight"], ts["bias"], (1, 2), (1, 1), (2, 1), ts["mask"])
            (y * t(np.linspace(-1, 1, y.numel()).reshape(y.shape).astype(np.float32))).sum().backward()
            grads[name] = {key: v.grad.numpy() for key, v in ts.items()} | {"y": y.detach().numpy()}
        finally:
            K.force_kernel(None)
    for key in grads["numpy"]:
        np.testing.assert_allclose(grads["numba"][key], grads["numpy"][key], rtol=2e-4, atol=2e-4, err_msg=key)


# ----------------------------------------------------------------------------- onnxruntime

_SESSIONS: dict = {}


def ort_deform_conv(a, k, stride, padding, dilation, groups, offset_groups):
    has_b, has_m = a["bias"] is not None, a["mask"] is not None
    key = (k, stride, padding, dilation, groups, offset_groups, has_b, has_m)
    if key not in _SESSIONS:
        names = ["X", "W", "offset", "B" if has_b else "", "mask" if has_m else ""]
        while not names[-1]:
            names.pop()
        node = helper.make_node("DeformConv", names, ["Y"], dilations=list(dilation), group=groups,
                                kernel_shape=list(k), offset_group=offset_groups, pads=[*padding, *padding],
                                strides=list(stride))
        inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in names if name]
        graph = helper.make_graph([node], "deform", inputs, [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        _SESSIONS[key] = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feed = {"X": a["x"], "W": a["weight"], "offset": a["offset"]}
    if has_b:
        feed["B"] = a["bias"]
    if has_m:
        feed["mask"] = a["mask"]
    return _SESSIONS[key].run(None, feed)[0]


def test_matches_onnxruntime_on_random_configurations():
    rng = np.random.default_rng(2024)
    done = 0
    while done < 240:
        groups, offset_groups = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        c = groups * offset_groups * int(rng.integers(1, 3))
        c_out = groups * int(rng.integers(1, 3))
        k = tuple(int(v) for v in rng.integers(1, 4, 2))
        stride = tuple(int(v) for v in rng.integers(1, 3, 2))
        padding = tuple(int(v) for v in rng.integers(0, 3, 2))
        dilation = tuple(int(v) for v in rng.integers(1, 3, 2))
        hw = tuple(int(v) for v in rng.integers(2, 9, 2))
        if min(out_size(hw[i], k[i], stride[i], padding[i], dilation[i]) for i in range(2)) <= 0:
            continue
        a = draw(rng, int(rng.integers(1, 3)), c, hw, c_out, k, stride, padding, dilation, groups, offset_groups,
                 mask=bool(rng.integers(2)), bias=bool(rng.integers(2)), spread=3.0, dtype=np.float32)
        expected = ort_deform_conv(a, k, stride, padding, dilation, groups, offset_groups)
        kernel = KERNELS[done % len(KERNELS)]  # each config on one path, the paths in turn
        K.force_kernel(kernel)
        try:
            y = run(a, stride, padding, dilation).numpy()
        finally:
            K.force_kernel(None)
        assert y.shape == expected.shape
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4,
                                   err_msg=f"config {done} on {kernel}: k={k} s={stride} p={padding} d={dilation} "
                                           f"groups={groups} offset_groups={offset_groups}")
        done += 1


# ----------------------------------------------------------------------------- zero offsets = conv2d

@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", [0, 1, 2])
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("groups", [1, 2])
def test_zero_offsets_equal_conv2d(stride, padding, dilation, groups, kernel):
    rng = np.random.default_rng(stride * 100 + padding * 10 + dilation + groups * 1000)
    n, c, h, w, c_out, k = 2, 4, 7, 6, 6, (3, 2)
    x = rng.standard_normal((n, c, h, w))
    weight = rng.standard_normal((c_out, c // groups, *k))
    bias = rng.standard_normal(c_out)
    tx, tw, tb = (torch.tensor(v, requires_grad=True) for v in (x, weight, bias))
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride, padding, dilation, groups)
    gy = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(gy))
    ho, wo = ty.shape[2:]
    for offset_groups, with_mask in ((1, False), (2, True)):
        lx, lw, lb = t(x, True), t(weight, True), t(bias, True)
        offset = t(np.zeros((n, 2 * offset_groups * k[0] * k[1], ho, wo)))
        mask = t(np.ones((n, offset_groups * k[0] * k[1], ho, wo))) if with_mask else None
        y = deform_conv2d(lx, offset, lw, lb, stride, padding, dilation, mask)
        np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
        y.backward(t(gy))
        for mine, theirs in ((lx, tx), (lw, tw), (lb, tb)):
            np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy(), rtol=1e-10, atol=1e-10)


# ----------------------------------------------------------------------------- gradients

GRAD_CASES = [
    dict(n=2, c=4, hw=(5, 6), c_out=4, k=(3, 2), stride=(2, 1), padding=(1, 1), dilation=(1, 2), groups=2,
         offset_groups=2),
    dict(n=1, c=3, hw=(5, 3), c_out=2, k=(3, 3), padding=(1, 1), spread=3.5),
    dict(n=2, c=2, hw=(3, 5), c_out=3, k=(2, 1), stride=(1, 2), offset_groups=2, spread=2.5),
    dict(n=1, c=6, hw=(4, 3), c_out=2, k=(2, 2), padding=(1, 0), groups=2, offset_groups=3),
]


@pytest.mark.parametrize("seed", range(len(GRAD_CASES)))
@pytest.mark.parametrize("with_mask", [True, False])
def test_gradcheck_every_input(seed, with_mask, kernel):
    cfg = GRAD_CASES[seed]
    geo = tuple(cfg.get(key, default) for key, default in (("stride", (1, 1)), ("padding", (0, 0)),
                                                            ("dilation", (1, 1))))
    a = draw(np.random.default_rng(seed), **cfg, mask=with_mask, bias=True)
    inputs = tuple(t(a[key], True) for key in ("x", "offset", "weight", "bias")) + ((t(a["mask"], True),)
                                                                                    if with_mask else ())

    def fn(x, offset, weight, bias, mask=None):
        return deform_conv2d(x, offset, weight, bias, *geo, mask=mask)

    assert gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4, seed=seed)


def test_gradients_at_the_image_edge_match_finite_differences(kernel):
    # samples within a pixel of the border read one neighbour inside and one outside
    x = np.arange(1.0, 13.0).reshape(1, 1, 3, 4)
    offset = np.zeros((1, 2, 3, 4))
    offset[0, 0] = -0.7  # rows at y = -0.7, 0.3, 1.3
    offset[0, 1] = 0.6  # the last column at x = 3.6
    inputs = (t(x, True), t(offset, True), t(np.full((1, 1, 1, 1), 2.0), True))
    assert gradcheck(lambda a, b, c: deform_conv2d(a, b, c), inputs, eps=1e-6, atol=1e-7, rtol=1e-5)


def test_double_backward_raises():
    a = draw(np.random.default_rng(0), 1, 2, (4, 4), 2, (3, 3), padding=(1, 1))
    x, offset, weight = t(a["x"], True), t(a["offset"], True), t(a["weight"], True)
    y = deform_conv2d(x, offset, weight, padding=1)
    (gx,) = lamina.autograd.grad(y.sum(), (x,), create_graph=True)
    with pytest.raises(RuntimeError, match="deform_conv2d: double backward is not supported"):
        gx.sum().backward()


# ----------------------------------------------------------------------------- shapes and errors

def test_batch_of_zero(kernel):
    x, offset, weight, bias = (t(np.zeros(s), True) for s in ((0, 4, 5, 5), (0, 18, 5, 5), (6, 4, 3, 3), (6,)))
    mask = t(np.zeros((0, 9, 5, 5)), True)
    y = deform_conv2d(x, offset, weight, bias, padding=1, mask=mask)
    assert y.shape == (0, 6, 5, 5)
    y.sum().backward()
    assert x.grad.shape == (0, 4, 5, 5) and offset.grad.shape == (0, 18, 5, 5) and mask.grad.shape == (0, 9, 5, 5)
    assert not weight.grad.numpy().any() and not bias.grad.numpy().any()


def test_non_contiguous_operands(kernel):
    a = draw(np.random.default_rng(3), 2, 4, (6, 5), 4, (3, 3), padding=(1, 1), offset_groups=2)
    ref = run(a, (1, 1), (1, 1), (1, 1)).numpy()
    b = {key: np.ascontiguousarray(np.swapaxes(v, -1, -2)).swapaxes(-1, -2) if v.ndim == 4 else v
         for key, v in a.items()}
    assert not b["x"].flags.c_contiguous
    np.testing.assert_allclose(run(b, (1, 1), (1, 1), (1, 1)).numpy(), ref, rtol=1e-12, atol=1e-12)


def _operands(c=4, k=3, offset_channels=18, hw=5, out=3, mask_channels=None, weight_in=4, c_out=6):
    x = lamina.zeros(2, c, hw, hw)
    offset = lamina.zeros(2, offset_channels, out, out)
    weight = lamina.zeros(c_out, weight_in, k, k)
    mask = None if mask_channels is None else lamina.zeros(2, mask_channels, out, out)
    return x, offset, weight, mask


@pytest.mark.parametrize("kwargs, message", [
    (dict(offset_channels=17), r"offset.shape\[1\] must be a positive multiple of 2·kh·kw = 18.*\(2, 17, 3, 3\)"),
    (dict(offset_channels=0), r"offset.shape\[1\] must be a positive multiple"),
    (dict(out=4), r"expected offset of shape \(2, 18, 3, 3\).*got \(2, 18, 4, 4\)"),
    (dict(mask_channels=18), r"expected mask of shape \(2, 9, 3, 3\).*got \(2, 18, 3, 3\)"),
    (dict(weight_in=3), r"input has 4 channels, which is not a multiple of the weight's 3"),
    (dict(weight_in=2, c_out=3), r"the weight's 3 output channels are not divisible by groups=2"),
    (dict(c=3, weight_in=3, offset_channels=36), r"input has 3 channels, which is not divisible by offset_groups=2"),
    (dict(hw=1, out=1), r"the output would be -1×-1"),
])
def test_malformed_shapes_get_clear_errors(kwargs, message):
    x, offset, weight, mask = _operands(**kwargs)
    with pytest.raises(ValueError, match="deform_conv2d: " + message):
        deform_conv2d(x, offset, weight, mask=mask)


def test_bad_arguments_get_clear_errors():
    x, offset, weight, _ = _operands()
    with pytest.raises(ValueError, match=r"deform_conv2d: bias must have shape \(6,\), got \(5,\)"):
        deform_conv2d(x, offset, weight, lamina.zeros(5))
    with pytest.raises(TypeError, match="deform_conv2d: input, offset, weight, mask and bias must have one floating"):
        deform_conv2d(x, offset.double(), weight)
    with pytest.raises(ValueError, match="deform_conv2d: expected a 4-D input, got a 3-D input"):
        deform_conv2d(x[0], offset, weight)
    with pytest.raises(TypeError, match="deform_conv2d: expected offset to be a lamina Tensor"):
        deform_conv2d(x, np.zeros((2, 18, 3, 3)), weight)
    with pytest.raises(ValueError, match="deform_conv2d: stride and dilation must be positive"):
        deform_conv2d(x, offset, weight, stride=0)
    with pytest.raises(ValueError, match="deform_conv2d: kernel must be one of"):
        K.force_kernel("cuda")


def test_kernel_selection():
    assert K.select_kernel(np.float32) == ("numba" if deform_numba.AVAILABLE else "numpy")
    K.force_kernel("numpy")
    try:
        assert K.select_kernel(np.float32) == "numpy"
    finally:
        K.force_kernel(None)
    assert K.select_kernel(np.float16) == "numpy"
    if deform_numba.AVAILABLE:
        K.force_kernel("numba")
        try:  # the compiled loops serve float32 and float64; other dtypes stay on NumPy's path
            assert K.select_kernel(np.float64) == "numba" and K.select_kernel(np.float16) == "numpy"
        finally:
            K.force_kernel(None)


def test_float16_runs_on_the_numpy_path():
    a = draw(np.random.default_rng(7), 1, 2, (4, 5), 2, (3, 3), padding=(1, 1))
    y = run({key: v.astype(np.float16) for key, v in a.items()}, (1, 1), (1, 1), (1, 1))
    assert y.dtype == np.float16
    ref = reference_deform_conv2d(a["x"], a["offset"], a["weight"], a["bias"], (1, 1), (1, 1), (1, 1), a["mask"])
    np.testing.assert_allclose(y.numpy(), ref, rtol=2e-2, atol=5e-2)


# ----------------------------------------------------------------------------- the module

def test_module_forward_init_and_repr():
    lamina.manual_seed(0)
    layer = DeformConv2d(8, 16, 3, stride=2, padding=1, groups=2)
    assert layer.weight.shape == (16, 4, 3, 3) and layer.bias.shape == (16,)
    bound = 1 / math.sqrt(4 * 9)
    w, b = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.15)  # U(±bound), as torchvision's
    assert repr(layer) == "DeformConv2d(8, 16, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), groups=2)"
    assert repr(DeformConv2d(2, 3, (1, 2), dilation=2, bias=False)) == \
        "DeformConv2d(2, 3, kernel_size=(1, 2), stride=(1, 1), dilation=(2, 2), bias=False)"
    x = lamina.randn(2, 8, 7, 7)
    offset = lamina.randn(2, 2 * 9, 4, 4)
    mask = lamina.rand(2, 9, 4, 4)
    y = layer(x, offset, mask)
    np.testing.assert_allclose(y.detach().numpy(),
                               deform_conv2d(x, offset, layer.weight, layer.bias, 2, 1, 1, mask).detach().numpy())
    y.sum().backward()
    assert layer.weight.grad.shape == layer.weight.shape and layer.bias.grad.shape == (16,)
    with pytest.raises(ValueError, match="DeformConv2d: in_channels must be divisible by groups"):
        DeformConv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="DeformConv2d: out_channels must be divisible by groups"):
        DeformConv2d(4, 3, 3, groups=2)


def test_offset_gradient_on_the_edge_is_torchvisions(kernel):
    # torchvision's value is 0 at y = -1 and at y = H, but its offset gradient at y = -1 is the
    # derivative from inside the image (the row below weighs in) and 0 at y = H
    x = np.array([[2.0, 6.0], [4.0, 8.0]]).reshape(1, 1, 2, 2)
    offset = np.zeros((1, 2, 2, 2))
    offset[0, 0] = [[-1.0, -1.0], [1.0, 1.0]]  # row 0 samples at y = -1, row 1 at y = 2 = H
    offset[0, 1] = 0.5  # x halfway between columns (column 1 then halfway to the outside)
    off = t(offset, True)
    y = deform_conv2d(t(x), off, t(np.ones((1, 1, 1, 1))))
    np.testing.assert_array_equal(y.detach().numpy(), np.zeros((1, 1, 2, 2)))
    y.sum().backward()
    g = off.grad.numpy()[0]
    # d/dy at y = -1, x = 0.5: the value of row 0 at x = 0.5 (row -1 is zero); at x = 1.5: 6 / 2
    np.testing.assert_allclose(g[0], [[(2 + 6) / 2, 6 / 2], [0.0, 0.0]])
    # d/dx at y = -1: (1 - 0)·(row -1's difference) = 0; at y = H nothing
    np.testing.assert_allclose(g[1], np.zeros((2, 2)))


@pytest.mark.parametrize("wanted", [("offset",), ("mask",), ("x",), ("weight", "bias"), ("offset", "weight")])
def test_only_the_gradients_asked_for(wanted, kernel):
    # the kernels skip the gradients no input asks for; those asked for are unchanged
    a = draw(np.random.default_rng(11), 2, 4, (5, 6), 4, (3, 3), padding=(1, 1), groups=2, offset_groups=2)
    gy = np.random.default_rng(12).standard_normal((2, 4, 5, 6))
    every = {key: t(v, True) for key, v in a.items()}
    some = {key: t(v, key in wanted) for key, v in a.items()}
    for ts in (every, some):
        deform_conv2d(ts["x"], ts["offset"], ts["weight"], ts["bias"], padding=1, mask=ts["mask"]).backward(t(gy))
    for key in a:
        if key in wanted:
            np.testing.assert_allclose(some[key].grad.numpy(), every[key].grad.numpy(), rtol=1e-12, atol=1e-12)
        else:
            assert some[key].grad is None
