"""Pooling (max, avg, lp, unpool, adaptive) against torch over random configurations;
gradcheck and gradgradcheck; ties; hand-computed cases."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import lamina
import lamina.nn.functional as LF
from lamina.ops.kernels import im2col as kernels
from tests.helpers import Input, check_grads, oracle


def _pool_config(rng, nd, dilation=True, max_k=4):
    k = tuple(int(v) for v in rng.integers(1, max_k, nd))
    s = tuple(int(v) for v in rng.integers(1, 4, nd)) if rng.random() < 0.8 else None
    d = tuple(int(v) for v in rng.integers(1, 3, nd)) if dilation else (1,) * nd
    p = tuple(int(rng.integers(0, ki // 2 + 1)) for ki in k)
    ceil = bool(rng.random() < 0.5)
    size = tuple(di * (ki - 1) + 1 + int(rng.integers(0, 5)) for ki, di in zip(k, d))
    lead = (int(rng.integers(1, 3)), int(rng.integers(1, 3))) if rng.random() < 0.85 else (int(rng.integers(1, 3)),)
    return k, s, p, d, ceil, lead + size


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_pool_oracle_random(nd):
    """Against torch over random configurations; 2-D on both the numba kernels and NumPy."""
    old = kernels.use_numba()
    try:
        for numba in ((True, False) if nd == 2 else (old,)):
            kernels.use_numba(numba)
            rng = np.random.default_rng(nd + 10 * numba)
            name = f"max_pool{nd}d"
            for i in range(70 if nd < 3 else 60):
                k, s, p, d, ceil, shape = _pool_config(rng, nd)
                ri = bool(rng.random() < 0.4)

                def fn(F, k=k, s=s, p=p, d=d, ceil=ceil, ri=ri):
                    return lambda x: getattr(F, name)(x, k, s, p, d, ceil_mode=ceil, return_indices=ri)

                dtype = "float32" if i % 4 == 3 else "float64"
                oracle(fn(LF), Input(shape, distinct=True, noncontig=i % 5 == 1), torch_fn=fn(TF), dtype=dtype,
                       seed=i)
    finally:
        kernels.use_numba(old)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_avg_pool_oracle_random(nd):
    rng = np.random.default_rng(10 + nd)
    name = f"avg_pool{nd}d"
    for i in range(70 if nd < 3 else 60):
        k, s, p, _, ceil, shape = _pool_config(rng, nd, dilation=False)
        cip = bool(rng.random() < 0.5)
        kw = dict(ceil_mode=ceil, count_include_pad=cip)
        if nd > 1 and rng.random() < 0.25:
            kw["divisor_override"] = int(rng.integers(1, 6))

        def fn(F, k=k, s=s, p=p, kw=kw):
            return lambda x: getattr(F, name)(x, k, s, p, **kw)

        dtype = "float32" if i % 4 == 3 else "float64"
        oracle(fn(LF), Input(shape, noncontig=i % 5 == 1), torch_fn=fn(TF), dtype=dtype, seed=i)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_pool_indices_where_windows_hold_only_minus_inf_or_padding(nd, path):
    """Windows whose input elements are all −∞, and (with dilation) windows wholly in the
    padding: torch never picks a padding element — it takes the first element inside the
    input, and for a window with none its start moved right by the dilation. Indices as
    torch's everywhere; gradients where every window holds an input element (torch's backward
    writes the others to its out-of-window index, past the input when that is out of range)."""
    rng = np.random.default_rng(70 + nd)
    checked_empty = [0]
    for _ in range(40):
        k = tuple(int(v) for v in rng.integers(1, 4, nd))
        d = tuple(int(v) for v in rng.integers(1, 4, nd))
        p = tuple(int(rng.integers(0, ki // 2 + 1)) for ki in k)
        s = tuple(int(v) for v in rng.integers(1, 3, nd))
        size = tuple(max(1, di * (ki - 1) + 1 - 2 * pi + int(rng.integers(0, 3))) for ki, di, pi in zip(k, d, p))
        ceil = bool(rng.random() < 0.5)
        x = rng.standard_normal((2, 2, *size))
        x[rng.random(x.shape) < 0.6] = -np.inf
        args = (k, s, p, d, ceil)
        try:
            ty, ti = getattr(TF, f"max_pool{nd}d")(torch.tensor(x), *args, return_indices=True)
        except RuntimeError:
            continue  # a configuration torch rejects
        y, idx = getattr(LF, f"max_pool{nd}d")(lamina.tensor(x), *args, return_indices=True)
        np.testing.assert_array_equal(y.array, ty.numpy())
        np.testing.assert_array_equal(idx.array, ti.numpy(), err_msg=f"config {args} size {size}")
        if (ti.numpy() < int(np.prod(size))).all():
            lx, tx = lamina.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
            g = rng.standard_normal(ty.shape)
            getattr(LF, f"max_pool{nd}d")(lx, *args).backward(lamina.tensor(g))
            getattr(TF, f"max_pool{nd}d")(tx, *args).backward(torch.tensor(g))
            if _windows_with_input(size, *args).all():
                np.testing.assert_allclose(lx.grad.array, tx.grad.numpy(), rtol=1e-12)
            else:  # lamina: a window with no input element passes no gradient on
                checked_empty[0] += 1
    assert checked_empty[0] or nd == 1  # the wholly padded case was drawn


def _windows_with_input(size, k, s, p, d, ceil):
    """Per output position, whether its window holds an element inside the input."""
    from lamina.ops.kernels.pool import _first_inside, pool_geom
    return _first_inside(pool_geom(size, k, s, p, d, ceil))[1]


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_lp_pool_oracle_random(nd):
    rng = np.random.default_rng(20 + nd)
    name = f"lp_pool{nd}d"
    for i in range(70):  # 210 configurations over the three ranks
        k, s, _, _, ceil, shape = _pool_config(rng, nd, dilation=False)
        if nd == 1:  # torch's lp_pool1d takes plain ints only
            k, s = k[0], s[0] if s else None
        norm = [1.0, 2.0, 3.0, 1.5, float("inf")][i % 5]

        def fn(F, k=k, s=s, ceil=ceil, norm=norm):
            return lambda x: getattr(F, name)(x, norm, k, s, ceil)

        oracle(fn(LF), Input(shape, low=0.5, high=2.0) if norm != float("inf") else Input(shape, distinct=True),
               torch_fn=fn(TF), seed=i)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_unpool_oracle_random(nd):
    rng = np.random.default_rng(30 + nd)
    done = 0
    for i in range(1000):
        if done == 70:  # 210 configurations compared over the three ranks
            break
        k, s, p, _, _, shape = _pool_config(rng, nd, dilation=False)
        if len(shape) == nd + 1:
            shape = (1,) + shape
        x0 = torch.from_numpy(rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float64))
        y0, idx = getattr(TF, f"max_pool{nd}d")(x0, k, s, p, return_indices=True)
        st = s or k
        dflt = tuple((o - 1) * si - 2 * pi + ki for o, si, pi, ki in zip(y0.shape[2:], st, p, k))
        sz = tuple(int(n) for n in shape[2:])
        if rng.random() < 0.3 or not all(dl - si < n < dl + si for dl, si, n in zip(dflt, st, sz)):
            sz = None
        if idx.max() >= np.prod(sz or dflt):
            continue  # stride ≠ kernel: the maximum lies beyond the default unpooled size
        flat = idx.reshape(-1, int(np.prod(idx.shape[2:]))).numpy()
        if any(len(np.unique(r)) < len(r) for r in flat):
            continue  # one input picked by two windows: which write wins is unspecified (torch races)

        def fn(F, k=k, s=s, p=p, sz=sz):
            return lambda v, ix: getattr(F, f"max_unpool{nd}d")(v, ix, k, s, p, sz)

        oracle(fn(LF), Input(tuple(y0.shape)), Input(array=idx.numpy(), grad=False), torch_fn=fn(TF), seed=i)
        done += 1
    assert done == 70


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_adaptive_pool_oracle_random(nd):
    rng = np.random.default_rng(40 + nd)
    for i in range(70):
        size = tuple(int(v) for v in rng.integers(1, 9, nd))
        out = tuple(int(v) for v in rng.integers(1, 7, nd))
        if rng.random() < 0.2:
            out = out[0] if rng.random() < 0.5 or nd == 1 else tuple(None if rng.random() < 0.5 else o for o in out)
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 3))) + size
        ri = bool(rng.random() < 0.5)
        dtype = "float32" if i % 4 == 3 else "float64"

        def fa(F, out=out):
            return lambda x: getattr(F, f"adaptive_avg_pool{nd}d")(x, out)

        def fm(F, out=out, ri=ri):
            return lambda x: getattr(F, f"adaptive_max_pool{nd}d")(x, out, ri)

        oracle(fa(LF), Input(shape, noncontig=i % 3 == 0), torch_fn=fa(TF), dtype=dtype, seed=i)
        oracle(fm(LF), Input(shape, distinct=True), torch_fn=fm(TF), dtype=dtype, seed=i)


def test_max_pool_ties_and_kinks_as_torch(path):
    """Integer-valued inputs make many ties: the same index and the same gradient as torch."""
    rng = np.random.default_rng(5)
    for i in range(60):
        nd = 1 + i % 3
        k, s, p, d, ceil, shape = _pool_config(rng, nd)
        arr = rng.integers(0, 3, shape).astype(np.float64)
        args = (k, s, p, d, ceil, True)
        fn = f"max_pool{nd}d"
        oracle(lambda x: getattr(LF, fn)(x, *args), Input(array=arr), torch_fn=lambda x: getattr(TF, fn)(x, *args))
        out = tuple(int(v) for v in rng.integers(1, 5, nd))
        oracle(lambda x: getattr(LF, f"adaptive_max_pool{nd}d")(x, out, True), Input(array=arr),
               torch_fn=lambda x: getattr(TF, f"adaptive_max_pool{nd}d")(x, out, True))


def test_all_equal_window_sends_gradient_to_first(path):
    x = lamina.ones(1, 1, 2, 2, requires_grad=True)
    LF.max_pool2d(x, 2).sum().backward()
    assert x.grad.reshape(-1).tolist() == [1.0, 0.0, 0.0, 0.0]


CHECK_CASES = [
    ("max1d", (2, 2, 9), lambda x: LF.max_pool1d(x, 3, 2, 1, 2, ceil_mode=True)),
    ("max2d_overlap", (1, 2, 7, 6), lambda x: LF.max_pool2d(x, 3, 2, 1)),
    ("max2d_indices", (1, 2, 5, 5), lambda x: LF.max_pool2d(x, (2, 3), (1, 2), (1, 0), (2, 1), True, True)[0]),
    ("max3d", (1, 1, 4, 5, 3), lambda x: LF.max_pool3d(x, 2, 1, ceil_mode=True)),
    ("avg2d_pad", (1, 2, 5, 6), lambda x: LF.avg_pool2d(x, 3, 2, 1, True, False)),
    ("avg3d_div", (1, 1, 4, 3, 5), lambda x: LF.avg_pool3d(x, 2, 1, divisor_override=3)),
    ("avg1d", (2, 1, 7), lambda x: LF.avg_pool1d(x, 3, 2, 1, ceil_mode=True)),
    ("lp2d", (1, 2, 4, 5), lambda x: LF.lp_pool2d(x.abs() + 0.5, 2, 2, 1)),
    ("adaptive_avg2d", (1, 2, 5, 7), lambda x: LF.adaptive_avg_pool2d(x, (3, 4))),
    ("adaptive_max3d", (1, 1, 4, 5, 3), lambda x: LF.adaptive_max_pool3d(x, (3, 2, 2))),
    ("global_avg2d", (2, 3, 4, 5), lambda x: LF.adaptive_avg_pool2d(x, 1)),
    ("global_avg1d_unbatched", (3, 7), lambda x: LF.adaptive_avg_pool1d(x, 1)),
    ("unpool2d", (1, 2, 4, 4), lambda x: LF.max_unpool2d(*LF.max_pool2d(x, 2, return_indices=True), 2)),
]


@pytest.mark.parametrize("name,shape,fn", CHECK_CASES, ids=[c[0] for c in CHECK_CASES])
def test_gradcheck_and_gradgradcheck(name, shape, fn):
    check_grads(fn, Input(shape, distinct=True))


def test_hand_computed_2x2_pooling_of_4x4():
    x = lamina.tensor([[[[1., 2., 5., 3.],
                         [4., 0., 1., 1.],
                         [7., 8., 2., 2.],
                         [6., 9., 0., 4.]]]], requires_grad=True)
    y, idx = LF.max_pool2d(x, 2, return_indices=True)
    assert y.tolist() == [[[[4., 5.], [9., 4.]]]]
    assert idx.tolist() == [[[[4, 2], [13, 15]]]]  # flat positions in the 4×4 plane
    y.sum().backward()
    assert x.grad.tolist() == [[[[0., 0., 1., 0.], [1., 0., 0., 0.], [0., 0., 0., 0.], [0., 1., 0., 1.]]]]
    a = LF.avg_pool2d(x, 2)
    assert a.tolist() == [[[[7 / 4, 10 / 4], [30 / 4, 8 / 4]]]]
    x.grad = None
    a.sum().backward()
    assert x.grad.tolist() == [[[[0.25] * 4] * 4]]


def test_hand_computed_max_unpool():
    y = lamina.tensor([[[[4., 5.], [9., 4.]]]])
    idx = lamina.tensor([[[[4, 2], [13, 15]]]])
    out = LF.max_unpool2d(y, idx, 2)
    assert out.tolist() == [[[[0., 0., 5., 0.], [4., 0., 0., 0.], [0., 0., 0., 0.], [0., 9., 0., 4.]]]]
    # 1-D, with output_size restoring an odd length
    y1, i1 = LF.max_pool1d(lamina.tensor([[[3., 1., 2., 7., 5.]]]), 2, return_indices=True)
    assert LF.max_unpool1d(y1, i1, 2, output_size=[5]).tolist() == [[[3., 0., 0., 7., 0.]]]


def test_unbatched_inputs():
    x = lamina.randn(3, 6, 7)
    assert LF.max_pool2d(x, 2).shape == (3, 3, 3)
    assert LF.avg_pool1d(lamina.randn(2, 9), 3).shape == (2, 3)
    y, i = LF.max_pool3d(lamina.randn(2, 4, 4, 4), 2, return_indices=True)
    assert y.shape == i.shape == (2, 2, 2, 2)
    assert LF.adaptive_max_pool2d(x, 2, True)[1].shape == (3, 2, 2)


def test_errors_name_the_op_and_the_numbers():
    x = lamina.randn(1, 1, 4, 4)
    with pytest.raises(ValueError, match=r"max_pool2d: .*larger than the padded input"):
        LF.max_pool2d(x, 5)
    with pytest.raises(ValueError, match=r"max_pool2d: stride must be positive"):
        LF.max_pool2d(x, 2, stride=0)
    with pytest.raises(ValueError, match=r"max_pool2d: dilation must be positive"):
        LF.max_pool2d(x, 2, dilation=-1)
    with pytest.raises(ValueError, match=r"avg_pool2d: padding should be at most half"):
        LF.avg_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match=r"avg_pool3d: input image \(T: 2 H: 2 W: 2\) smaller than kernel size "
                                         r"\(kT: 3 kH: 3 kW: 3\)"):
        LF.avg_pool3d(lamina.randn(1, 1, 2, 2, 2), 3, 1, 1)  # torch: the same error, padding or not
    with pytest.raises(RuntimeError, match="smaller than kernel size"):
        TF.avg_pool3d(torch.randn(1, 1, 2, 2, 2), 3, 1, 1)
    with pytest.raises(ValueError, match=r"max_pool1d: expected a 2-D .* or 3-D .*got a 4-D"):
        LF.max_pool1d(x, 2)
    with pytest.raises(ValueError, match=r"max_unpool2d: invalid output_size"):
        LF.max_unpool2d(*LF.max_pool2d(x, 2, return_indices=True), 2, output_size=(9, 9))
    with pytest.raises(ValueError, match=r"adaptive_avg_pool2d: output_size must be"):
        LF.adaptive_avg_pool2d(x, (1, 2, 3))


def test_max_pool_float32_large_matches_torch(path):
    """The benchmark shapes' fast paths (disjoint 2×2 windows; overlapping 3×3/2) in float32."""
    rng = np.random.default_rng(7)
    a = rng.standard_normal((4, 8, 32, 32)).astype(np.float32)
    for args in [(2,), (3, 2), (3, 2, 1)]:
        oracle(lambda x: LF.max_pool2d(x, *args), Input(array=a), torch_fn=lambda x: TF.max_pool2d(x, *args),
               dtype="float32")


def test_channels_last_inputs_keep_their_layout(path):
    """Activations stored channels-last under an NCHW shape (as lamina's conv returns them):
    same values and gradients as torch, and the output stays channels-last."""
    rng = np.random.default_rng(8)
    a = rng.standard_normal((2, 6, 7, 5)).transpose(0, 3, 1, 2)  # shape (2, 5, 6, 7), NHWC in memory
    for args in [(2,), (3, 2, 1), (3, 1, 1, 2, True)]:
        oracle(lambda x: LF.max_pool2d(x, *args), Input(array=a), torch_fn=lambda x: TF.max_pool2d(x, *args))
        oracle(lambda x: LF.avg_pool2d(x, *args[:3]), Input(array=a), torch_fn=lambda x: TF.avg_pool2d(x, *args[:3]))
    y = LF.max_pool2d(lamina.Tensor._wrap(a), 2)
    assert y.array.strides[1] < y.array.strides[3]  # channels remain the fastest-varying dim
    # a window wholly in the padding (dilation allows it): −∞, as torch (once uninitialised memory)
    c = np.arange(24.0).reshape(2, 2, 2, 3).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(LF.max_pool2d(lamina.Tensor._wrap(c), 2, 1, 1, 3).numpy(),
                                  TF.max_pool2d(torch.tensor(np.ascontiguousarray(c)), 2, 1, 1, 3).numpy())
    # a 1×1 output is contiguous in both memory orders (a case that once wrote past a buffer)
    b = rng.standard_normal((3, 2, 2, 6)).transpose(0, 3, 1, 2)
    oracle(lambda x: LF.max_pool2d(x, 2), Input(array=b), torch_fn=lambda x: TF.max_pool2d(x, 2))
    oracle(lambda x: LF.max_pool2d(x, 3, 2, 1), Input(array=b), torch_fn=lambda x: TF.max_pool2d(x, 3, 2, 1))


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_global_average_pool_oracle(nd):
    for i, shape in enumerate([(2, 3) + (5, 4, 3)[:nd], (4,) + (2, 7, 1)[:nd]]):
        fn = f"adaptive_avg_pool{nd}d"
        for dtype in ("float64", "float32"):
            oracle(lambda x: getattr(LF, fn)(x, 1), Input(shape, noncontig=i == 0), torch_fn=lambda x: getattr(TF, fn)(x, 1),
                   dtype=dtype, seed=i)


def test_adaptive_pools_and_area_interpolation_to_an_empty_size_as_torch():
    """An output size of 0 gives an empty result, as torch's adaptive pools and ``'area'``
    interpolation do (its gradient: zeros); the other interpolation modes refuse it, as torch's."""
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    cases = [(lambda F, t: F.adaptive_avg_pool2d(t, (0, 2)), True),
             (lambda F, t: F.adaptive_max_pool2d(t, (2, 0)), True),
             (lambda F, t: F.adaptive_max_pool2d(t, (0, 0), True)[1], False),
             (lambda F, t: F.interpolate(t, scale_factor=0.2, mode="area"), True),
             (lambda F, t: F.adaptive_avg_pool1d(t[0], 0), True)]
    for fn, grad in cases:
        lx = lamina.tensor(x, requires_grad=True)
        y, ty = fn(LF, lx), fn(TF, torch.tensor(x))
        assert y.shape == tuple(ty.shape) and y.numel() == 0 and y.dtype.name == str(ty.dtype).split(".")[-1]
        if grad:
            y.sum().backward()
            assert lx.grad.shape == x.shape and not lx.grad.array.any()
    for out in (0, 2):  # an empty batch, as torch's
        for name in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
            assert getattr(LF, name)(lamina.zeros(0, 3, 4, 4), out).shape == \
                tuple(getattr(TF, name)(torch.zeros(0, 3, 4, 4), out).shape)
    with pytest.raises(ValueError, match="output_size must be non-negative"):
        LF.adaptive_avg_pool2d(lamina.tensor(x), (-1, 2))
    with pytest.raises(ValueError, match=r"interpolate: output size \(0, 2\) must be positive"):
        LF.interpolate(lamina.tensor(x), size=(0, 2), mode="bilinear")
    with pytest.raises(RuntimeError, match="should be greater than 0"):
        TF.interpolate(torch.tensor(x), size=(0, 2), mode="bilinear")
