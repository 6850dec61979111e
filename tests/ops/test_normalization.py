"""Normalization ops against torch over random configurations (forward, every input gradient,
running statistics); gradcheck and gradgradcheck; local contrast norm against a SciPy reference."""

import warnings

import numpy as np
import pytest
import scipy.ndimage
import torch
import torch.nn.functional as TF

import lamina
import lamina.nn.functional as LF
from tests.helpers import Input, check_grads, oracle


def _shape(rng, min_nd=2, max_nd=5):
    nd = int(rng.integers(min_nd, max_nd + 1))
    return (int(rng.integers(2, 4)), int(rng.integers(1, 5))) + tuple(int(v) for v in rng.integers(1, 5, nd - 2))


def test_batch_norm_oracle_random(path):
    rng = np.random.default_rng(0 if path else 10)
    for i in range(70):
        shape = _shape(rng)
        c = shape[1]
        training = bool(rng.random() < 0.7)
        affine = bool(rng.random() < 0.7)
        running = not training or rng.random() < 0.7
        mom, eps = float(rng.uniform(0.05, 0.9)), float(10 ** rng.uniform(-6, -2))
        kept = {}

        def fn(x, w, b, rm, rv, tag, training=training, affine=affine, running=running, mom=mom, eps=eps):
            F = LF if tag == "l" else TF
            kept[tag] = (rm, rv)
            return F.batch_norm(x, rm if running else None, rv if running else None, w if affine else None,
                                b if affine else None, training, mom, eps)

        dtype = "float32" if i % 4 == 3 else "float64"
        specs = [Input(shape, noncontig=i % 5 == 1), Input((c,)), Input((c,)), Input((c,), grad=False),
                 Input((c,), low=0.5, high=2.0, grad=False)]
        oracle(lambda *a: fn(*a, "l"), *specs, torch_fn=lambda *a: fn(*a, "t"), dtype=dtype, seed=i,
               atol=1e-4 if dtype == "float32" else None)
        tol = 1e-5 if dtype == "float32" else 1e-12
        for lam, tor in zip(kept["l"], kept["t"]):
            np.testing.assert_allclose(lam.array, tor.numpy(), rtol=tol, atol=tol)


def test_instance_norm_oracle_random(path):  # numba and NumPy kernels
    rng = np.random.default_rng(1)
    for i in range(40):
        shape = _shape(rng, 3, 5)
        shape = shape[:2] + tuple(s + 1 for s in shape[2:])  # at least 2 positions per instance
        c = shape[1]
        use_stats = bool(rng.random() < 0.8)
        affine = bool(rng.random() < 0.5)
        running = not use_stats or rng.random() < 0.5
        kept = {}

        def fn(x, w, b, rm, rv, tag, use_stats=use_stats, affine=affine, running=running):
            F = LF if tag == "l" else TF
            kept[tag] = (rm, rv)
            return F.instance_norm(x, rm if running else None, rv if running else None, w if affine else None,
                                   b if affine else None, use_stats, 0.3, 1e-5)

        specs = [Input(shape), Input((c,)), Input((c,)), Input((c,), grad=False),
                 Input((c,), low=0.5, high=2.0, grad=False)]
        oracle(lambda *a: fn(*a, "l"), *specs, torch_fn=lambda *a: fn(*a, "t"), seed=i)
        for lam, tor in zip(kept["l"], kept["t"]):
            np.testing.assert_allclose(lam.array, tor.numpy(), rtol=1e-12, atol=1e-12)


def test_layer_norm_oracle_random(path):  # numba and NumPy kernels
    rng = np.random.default_rng(2)
    for i in range(50):
        shape = tuple(int(v) for v in rng.integers(1, 5, int(rng.integers(1, 5))))
        k = int(rng.integers(1, len(shape) + 1))
        ns = shape[len(shape) - k:]
        if np.prod(ns) == 1:
            ns, shape = (2,) + ns[1:], shape[:len(shape) - k] + (2,) + ns[1:]
        w_on, b_on = bool(rng.random() < 0.7), bool(rng.random() < 0.7)

        def fn(F, ns=ns, w_on=w_on, b_on=b_on):
            return lambda x, w, b: F.layer_norm(x, ns, w if w_on else None, b if b_on else None, 1e-5)

        dtype = "float32" if i % 4 == 3 else "float64"
        # float32: two nearly equal values normalize ill-conditioned; rounding differs from torch's
        oracle(fn(LF), Input(shape, noncontig=i % 3 == 0), Input(ns), Input(ns), torch_fn=fn(TF), dtype=dtype,
               seed=i, atol=1e-4 if dtype == "float32" else None, rtol=1e-3 if dtype == "float32" else None)


def test_group_norm_oracle_random(path):  # numba and NumPy kernels
    rng = np.random.default_rng(3)
    for i in range(50):
        groups = int(rng.integers(1, 4))
        shape = (int(rng.integers(1, 4)), groups * int(rng.integers(1, 3))) + tuple(
            int(v) for v in rng.integers(1, 5, int(rng.integers(0, 3))))
        if np.prod(shape[1:]) // groups < 2:
            shape = shape[:2] + (2,)
        affine = bool(rng.random() < 0.7)

        def fn(F, groups=groups, affine=affine):
            return lambda x, w, b: F.group_norm(x, groups, w if affine else None, b if affine else None)

        oracle(fn(LF), Input(shape), Input(shape[1:2]), Input(shape[1:2]), torch_fn=fn(TF), seed=i)


def test_local_response_norm_oracle_random(path):  # numba and NumPy kernels
    rng = np.random.default_rng(4)
    for i in range(40):
        shape = _shape(rng, 3, 5)
        size = int(rng.integers(1, 6))
        alpha, beta, k = float(rng.uniform(1e-4, 1.0)), float(rng.uniform(0.3, 1.0)), float(rng.uniform(0.5, 2.0))

        def fn(F, size=size, alpha=alpha, beta=beta, k=k):
            return lambda x: F.local_response_norm(x, size, alpha, beta, k)

        oracle(fn(LF), Input(shape), torch_fn=fn(TF), seed=i)


CHECK_CASES = [
    ("batch_norm_train", [(4, 3, 2), (3,), (3,)], lambda x, w, b: LF.batch_norm(x, None, None, w, b, True)),
    ("batch_norm_train_plain", [(3, 2, 2, 2), (1,), (1,)],
     lambda x, w, b: LF.batch_norm(x, None, None, training=True) * w + b),
    ("batch_norm_eval", [(4, 3), (3,), (3,)],
     lambda x, w, b: LF.batch_norm(x, lamina.tensor([0.1, -0.2, 0.3], dtype=lamina.float64),
                                   lamina.tensor([1.5, 0.5, 2.0], dtype=lamina.float64), w, b, False)),
    ("layer_norm", [(3, 2, 4), (2, 4), (2, 4)], lambda x, w, b: LF.layer_norm(x, (2, 4), w, b)),
    ("group_norm", [(2, 4, 3), (4,), (4,)], lambda x, w, b: LF.group_norm(x, 2, w, b)),
    ("instance_norm", [(2, 3, 4), (3,), (3,)], lambda x, w, b: LF.instance_norm(x, weight=w, bias=b)),
    ("lrn", [(2, 4, 3), (1,), (1,)], lambda x, w, b: LF.local_response_norm(x, 3, 0.5, 0.75, 1.0) * w + b),
    ("lcn", [(1, 2, 6, 5), (1,), (1,)], lambda x, w, b: LF.local_contrast_norm(x, 3, 1.0) * w + b),
]


@pytest.mark.parametrize("name,shapes,fn", CHECK_CASES, ids=[c[0] for c in CHECK_CASES])
def test_gradcheck_and_gradgradcheck(name, shapes, fn):
    check_grads(fn, *[Input(s) for s in shapes])


def test_batch_norm_hand_computed():
    # one channel, values 1, 2, 3, 6: mean 3, biased variance (4 + 1 + 0 + 9)/4 = 3.5
    x = lamina.tensor([[1.], [2.], [3.], [6.]], dtype=lamina.float64)
    rm, rv = lamina.zeros(1, dtype=lamina.float64), lamina.ones(1, dtype=lamina.float64)
    y = LF.batch_norm(x, rm, rv, training=True, momentum=0.5, eps=0.0)
    np.testing.assert_allclose(y.reshape(-1).array, np.array([-2., -1., 0., 3.]) / np.sqrt(3.5))
    assert rm.tolist() == [1.5]  # 0.5·0 + 0.5·3
    np.testing.assert_allclose(rv.array, [0.5 + 0.5 * 14 / 3])  # unbiased variance 14/3


def test_fused_and_composite_backward_agree():
    """Plain backward uses the fused kernel; create_graph=True the composite formula."""
    rng = np.random.default_rng(5)
    a = rng.standard_normal((5, 3, 4))
    g = lamina.tensor(rng.standard_normal((5, 3, 4)))
    grads = []
    for create in (False, True):
        x = lamina.tensor(a, requires_grad=True)
        (gx,) = lamina.autograd.grad(LF.batch_norm(x, None, None, training=True), (x,), g, create_graph=create)
        grads.append(gx.detach().array)
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12, atol=1e-12)


def _lcn_reference(x, size, sigma, eps):
    """Direct SciPy version of local contrast normalization, written from the definition."""
    t = np.arange(size) - (size - 1) / 2
    g1 = np.exp(-0.5 * (t / sigma) ** 2)
    g = np.outer(g1, g1) / g1.sum() ** 2
    out = np.empty_like(x)
    for n in range(x.shape[0]):
        mass = scipy.ndimage.correlate(np.ones(x.shape[2:]), g, mode="constant", cval=0.0)
        mean = scipy.ndimage.correlate(x[n].mean(0), g, mode="constant", cval=0.0) / mass
        v = x[n] - mean
        var = scipy.ndimage.correlate((v ** 2).mean(0), g, mode="constant", cval=0.0) / mass
        sd = np.sqrt(var)
        out[n] = v / np.maximum(np.maximum(sd, sd.mean()), eps)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_local_contrast_norm_against_scipy(seed):
    rng = np.random.default_rng(seed)
    shape = (2, int(rng.integers(1, 4)), int(rng.integers(5, 12)), int(rng.integers(5, 12)))
    size, sigma = [(9, 2.0), (5, 1.0), (3, 0.7), (7, 1.5)][seed]
    x = rng.standard_normal(shape) * 3 + 1
    y = LF.local_contrast_norm(lamina.tensor(x), size, sigma)
    np.testing.assert_allclose(y.array, _lcn_reference(x, size, sigma, 1e-4), rtol=1e-10, atol=1e-10)


def test_local_contrast_norm_properties():
    x = lamina.tensor(np.random.default_rng(0).standard_normal((1, 1, 16, 16)) * 10 + 50)
    y = LF.local_contrast_norm(x, 9, 2.0)
    assert abs(y.mean().item()) < 0.2  # the local mean is removed
    # contrast normalization makes the output scale-invariant (away from the eps floor)
    np.testing.assert_allclose(LF.local_contrast_norm(x * 7.0, 9, 2.0).array, y.array, rtol=1e-9)


def test_errors():
    x = lamina.randn(2, 3, 4)
    with pytest.raises(ValueError, match=r"batch_norm: weight should have shape \(3,\)"):
        LF.batch_norm(x, None, None, lamina.ones(4), training=True)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        LF.batch_norm(lamina.randn(1, 3), None, None, training=True)
    with pytest.raises(ValueError, match=r"group_norm: the number of channels \(3\) must be divisible by num_groups \(2\)"):
        LF.group_norm(x, 2)
    with pytest.raises(ValueError, match="does not end in normalized_shape"):
        LF.layer_norm(x, (3,))
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        LF.local_contrast_norm(lamina.randn(1, 1, 5, 5), 4)


def test_batch_norm_channels_last_input(path):
    """A channels-last activation under an NCHW shape (as lamina's conv returns them), with the
    output gradient in either memory order; the output keeps the input's order."""
    rng = np.random.default_rng(6)
    for dtype, tol in (("float64", 1e-10), ("float32", 1e-4)):
        a = rng.standard_normal((4, 5, 6, 3)).astype(dtype).transpose(0, 3, 1, 2)
        oracle(lambda x, w, b: LF.batch_norm(x, None, None, w, b, True), Input(array=a), Input((3,)), Input((3,)),
               torch_fn=lambda x, w, b: TF.batch_norm(x, None, None, w, b, True), dtype=dtype, rtol=tol, atol=tol)
        for gy_cl in (False, True):
            x = lamina.tensor(a, requires_grad=True)
            y = LF.batch_norm(x, None, None, None, None, True)
            assert y.array.transpose(0, 2, 3, 1).flags.c_contiguous
            g = rng.standard_normal(a.shape).astype(dtype)
            g = np.ascontiguousarray(g.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2) if gy_cl else g
            y.backward(lamina.tensor(g))
            tx = torch.tensor(np.ascontiguousarray(a), requires_grad=True)
            TF.batch_norm(tx, None, None, None, None, True).backward(torch.tensor(np.ascontiguousarray(g)))
            np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=tol, atol=tol)


def test_local_contrast_norm_flat_regions_have_finite_gradients():
    """An MNIST-like image: a zero background around a bright patch."""
    a = np.zeros((1, 1, 12, 12))
    a[0, 0, 5:8, 4:9] = np.random.default_rng(0).uniform(0.5, 1.0, (3, 5))
    x = lamina.tensor(a, requires_grad=True)
    LF.local_contrast_norm(x, 5, 1.0).sum().backward()
    assert np.isfinite(x.grad.array).all()
    np.testing.assert_allclose(LF.local_contrast_norm(lamina.tensor(a), 5, 1.0).array,
                               _lcn_reference(a, 5, 1.0, 1e-4), rtol=1e-10, atol=1e-12)


def test_in_place_change_of_a_saved_output_is_caught():
    x = lamina.randn(3, 4, requires_grad=True)
    y = LF.layer_norm(x, (4,))
    y.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


@pytest.mark.parametrize("shape", [(0, 3, 4, 4), (0, 3), (2, 3, 0)])
def test_batch_norm_training_on_an_empty_batch_follows_torch(shape):
    """No values per channel: an empty output, zero gradients for γ and β, running statistics
    untouched — as torch (a single value per channel still raises)."""
    rm, rv = np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])
    out = {}
    for lib, fn in (("lamina", LF.batch_norm), ("torch", TF.batch_norm)):
        mk = lamina.tensor if lib == "lamina" else torch.tensor
        x = mk(np.zeros(shape), requires_grad=True)
        w, b = mk(np.ones(3), requires_grad=True), mk(np.zeros(3), requires_grad=True)
        m, v = mk(rm.copy()), mk(rv.copy())
        y = fn(x, m, v, w, b, training=True)
        y.sum().backward()
        out[lib] = (tuple(y.shape), np.asarray(m.tolist()), np.asarray(v.tolist()), x.grad.shape,
                    np.asarray(w.grad.tolist()), np.asarray(b.grad.tolist()))
    lam, tor = out["lamina"], out["torch"]
    assert lam[0] == tor[0] == shape and tuple(lam[3]) == tuple(tor[3])
    for a, b in zip(lam[1:3] + lam[4:], tor[1:3] + tor[4:]):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        LF.batch_norm(lamina.zeros(1, 3), None, None, training=True)


# At the ends of the dtype's range each group has a known answer: an ordinary group its
# standardized values; a constant group (even of 3e38) exactly 0; a group whose variance
# overflows the dtype (|x − mean| beyond √max) NaN — not the zeros that 1/√inf gives, which
# lamina returned before; a group holding inf or NaN NaN. torch agrees on the ordinary groups
# and on inf/NaN, but not consistently elsewhere (float32 layer_norm at 1e30 is NaN for some row
# lengths and zeros for others; float32 batch_norm of a constant 1e30 channel gives ±1e25), so
# the rule is checked against values derived by hand and torch on the groups it gets right.
def _extreme_groups(dtype, length=12):
    rng = np.random.default_rng(0)
    f32 = dtype == np.float32
    big, huge = (1e30, 3e38) if f32 else (1e200, 1.7e308)
    ordinary = [rng.standard_normal(length), rng.standard_normal(length) * 1e-30, 5 + rng.standard_normal(length)]
    constant = [np.full(length, v) for v in (1e30, -huge, huge)]
    one_big = rng.standard_normal(length)
    one_big[3] = big
    spread = rng.standard_normal(length) * (1e20 if f32 else 1e160)
    overflow = [one_big, spread, np.where(np.arange(length) % 2, huge, -huge)]
    special = []
    for v in (np.inf, -np.inf, np.nan):
        g = rng.standard_normal(length)
        g[5] = v
        special.append(g)
    groups = ordinary + constant + overflow + special
    kinds = ["ordinary"] * len(ordinary) + ["constant"] * 3 + ["nan"] * (len(overflow) + len(special))
    return np.stack(groups).astype(dtype), kinds


def _standardized(g, eps):
    g = g.astype(np.float64)
    d = g - g.mean()
    return d / np.sqrt((d * d).mean() + eps)


NORM_LAYOUTS = {  # the op on (G, L) groups, and the op's output back as (G, L)
    "layer_norm": (lambda F, x: F.layer_norm(x, (x.shape[-1],)), lambda y: y),
    "group_norm": (lambda F, x: F.group_norm(x.reshape(x.shape[0], 3, -1), 1), lambda y: y.reshape(y.shape[0], -1)),
    "instance_norm": (lambda F, x: F.instance_norm(x[:, None]), lambda y: y[:, 0]),
    "batch_norm": (lambda F, x: F.batch_norm(x.T, None, None, training=True), lambda y: y.T),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(NORM_LAYOUTS))
def test_norms_at_the_dtypes_extremes(path, name, dtype):
    groups, kinds = _extreme_groups(dtype)
    run, back = NORM_LAYOUTS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no NumPy overflow warning escapes either
        got = back(run(LF, lamina.tensor(groups)).numpy())
    ref = back(run(TF, torch.from_numpy(groups)).numpy())
    tol = 2e-3 if dtype == np.float32 else 1e-9
    for i, kind in enumerate(kinds):
        if kind == "ordinary":
            want = _standardized(groups[i], 1e-5)
            np.testing.assert_allclose(got[i], want, rtol=tol, atol=tol, err_msg=f"group {i}")
            np.testing.assert_allclose(got[i], ref[i], rtol=tol, atol=tol, err_msg=f"group {i}")
        elif kind == "constant":
            assert np.all(got[i] == 0), f"group {i}: a constant group standardizes to 0, got {got[i]}"
        else:
            assert np.isnan(got[i]).all(), f"group {i} ({groups[i][:4]}...): expected NaN, got {got[i]}"


def test_batch_norm_constant_channel_far_from_zero_gives_the_bias(path):
    # y = x·scale + shift cancels catastrophically for a constant channel of 1e30: the bias exactly
    x = np.full((4, 2, 3), 1e30, np.float32)
    x[:, 1] = np.arange(12, dtype=np.float32).reshape(4, 3)
    w, b = lamina.tensor([2.0, 3.0]), lamina.tensor([0.25, -1.0])
    y = LF.batch_norm(lamina.tensor(x), None, None, w, b, training=True).numpy()
    assert np.all(y[:, 0] == 0.25)
    t = TF.batch_norm(torch.from_numpy(x[:, 1:]), None, None, torch.tensor([3.0]), torch.tensor([-1.0]), training=True)
    np.testing.assert_allclose(y[:, 1:], t.numpy(), rtol=1e-5, atol=1e-5)
