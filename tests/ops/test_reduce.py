"""Reductions, scans and the softmax family against torch; gradcheck and gradgradcheck."""

import warnings

import numpy as np
import pytest
import torch

import lamina
from tests.helpers import Input, check_grads, oracle, random_shape

SEEDS = range(6)


def _dims(rng, ndim):
    """A random dim argument: None, an int, or a tuple (possibly negative)."""
    r = rng.random()
    if ndim == 0 or r < 0.2:
        return None
    if r < 0.6:
        return int(rng.integers(-ndim, ndim))
    k = int(rng.integers(1, ndim + 1))
    return tuple(int(d) - (ndim if rng.random() < 0.3 else 0) for d in rng.choice(ndim, k, replace=False))


REDUCTIONS = {
    "sum": lambda x, d, k: x.sum() if d is None else x.sum(d, keepdim=k),
    "mean": lambda x, d, k: x.mean() if d is None else x.mean(d, keepdim=k),
    "var": lambda x, d, k: x.var() if d is None else x.var(d, keepdim=k),
    "var_c0": lambda x, d, k: x.var(d, keepdim=k, correction=0),
    "var_c2": lambda x, d, k: x.var(d, keepdim=k, correction=2),
    "std": lambda x, d, k: x.std() if d is None else x.std(d, keepdim=k),
    "amax": lambda x, d, k: x.amax() if d is None else x.amax(d, keepdim=k),
    "amin": lambda x, d, k: x.amin() if d is None else x.amin(d, keepdim=k),
    "logsumexp": lambda x, d, k: x.logsumexp(d if d is not None else tuple(range(x.ndim)), keepdim=k),
    "norm": lambda x, d, k: x.norm(p=2, dim=d, keepdim=k),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_reduction_oracle(name, seed, dtype):
    rng = np.random.default_rng(seed)
    shape = random_shape(rng, 1, 4)
    if name.startswith("var") or name == "std":
        shape = tuple(s + 2 for s in shape)  # enough elements for any correction
    d = _dims(rng, len(shape))
    keep = bool(rng.random() < 0.5)
    spec = Input(shape, noncontig=seed % 2 == 1, distinct=name in ("amax", "amin"))
    oracle(lambda x: REDUCTIONS[name](x, d, keep), spec, dtype=dtype, seed=seed)


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reduction_gradcheck(name):
    fn = REDUCTIONS[name]
    check_grads(lambda x: fn(x, 1, False), Input((3, 4), distinct=name in ("amax", "amin")))
    check_grads(lambda x: fn(x, (0, 2), True), Input((3, 2, 4), distinct=name in ("amax", "amin")))


def test_prod_with_and_without_zeros():
    for arr in [np.array([[1.5, -2.0, 0.5], [0.7, 1.1, -0.9]]),
                np.array([[1.5, 0.0, 0.5], [0.0, 0.0, -0.9]]),
                np.array([[0.0, 2.0, 3.0], [1.0, 2.0, 0.0]])]:
        oracle(lambda x: x.prod(1), Input(array=arr))
        oracle(lambda x: x.prod(0, keepdim=True), Input(array=arr))
        oracle(lambda x: x.prod(), Input(array=arr))
        check_grads(lambda x: x.prod(1), Input(array=arr))
        check_grads(lambda x: x.prod(), Input(array=arr))
    # second derivatives with one and two zeros against torch's Hessian
    for arr in [np.array([2.0, 0.0, 3.0, 0.5]), np.array([0.0, 0.0, 3.0, 0.5]), np.array([1.0, 2.0, 3.0])]:
        h_t = torch.autograd.functional.hessian(lambda t: t.prod(), torch.from_numpy(arr)).numpy()
        x = lamina.tensor(arr, requires_grad=True)
        (g,) = lamina.autograd.grad(x.prod(), x, create_graph=True)
        rows = [lamina.autograd.grad(g[i], x, retain_graph=True)[0].array for i in range(len(arr))]
        np.testing.assert_allclose(np.stack(rows), h_t, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_max_min_with_dim_return_values_and_indices(seed):
    rng = np.random.default_rng(seed)
    shape = random_shape(rng, 1, 4)
    d = int(rng.integers(-len(shape), len(shape)))
    for f in [lambda x: x.max(d), lambda x: x.min(d, keepdim=True), lambda x: x.max(),
              lambda x: x.min(), lambda x: x.argmax(d), lambda x: x.argmin(), lambda x: x.argmax(d, keepdim=True)]:
        oracle(f, Input(shape, distinct=True), seed=seed)


def test_max_ties_gradient_like_torch():
    # max(dim) routes the gradient to the returned index; max()/amax share it among ties
    arr = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [0.0, -1.0, 0.0]])
    for f in [lambda x: x.max(1), lambda x: x.min(0), lambda x: x.max(), lambda x: x.amax(1),
              lambda x: x.amin(), lambda x: x.amax((0, 1))]:
        oracle(f, Input(array=arr))
    mx = lamina.tensor(arr).max(1)
    assert mx.values.tolist() == [3.0, 2.0, 0.0] and mx.indices.tolist() == [1, 0, 0]


@pytest.mark.parametrize("seed", SEEDS)
def test_cumsum_softmax_log_softmax(seed):
    rng = np.random.default_rng(seed)
    shape = random_shape(rng, 1, 4)
    d = int(rng.integers(-len(shape), len(shape)))
    for dtype in ("float64", "float32"):
        oracle(lambda x: x.cumsum(d), Input(shape, noncontig=True), dtype=dtype, seed=seed)
        oracle(lambda x: x.softmax(d), Input(shape), dtype=dtype, seed=seed)
        oracle(lambda x: x.log_softmax(d), Input(shape), dtype=dtype, seed=seed)
    check_grads(lambda x: x.cumsum(d), Input(shape))
    check_grads(lambda x: x.softmax(d), Input(shape))
    check_grads(lambda x: x.log_softmax(d), Input(shape))


def test_softmax_family_stable_up_to_1e4():
    arr = np.array([[1e4, -1e4, 0.0, 5.0], [-1e4, -1e4, -1e4, -1e4], [1e4, 1e4, 9999.0, -3.0]])
    for dtype in ("float32", "float64"):
        oracle(lambda x: x.softmax(1), Input(array=arr), dtype=dtype)
        oracle(lambda x: x.log_softmax(1), Input(array=arr), dtype=dtype)
        # torch's logsumexp backward is exp(x − result), which in float32 inherits the rounding
        # of result ≈ 1e4 (error ~1e-4); lamina's is exp(x − max)/Σ, so compare it with float64
        oracle(lambda x: x.logsumexp(1), Input(array=arr), dtype=dtype, grad=dtype == "float64")
        x = lamina.tensor(arr, dtype=dtype, requires_grad=True)
        x.logsumexp(1).sum().backward()
        e = np.exp(arr - arr.max(1, keepdims=True))
        np.testing.assert_allclose(x.grad.array, e / e.sum(1, keepdims=True), rtol=1e-6, atol=1e-7)
        x = lamina.tensor(arr, dtype=dtype, requires_grad=True)
        y = x.log_softmax(1)
        (y * lamina.randn(*arr.shape, dtype=dtype)).sum().backward()
        assert np.isfinite(y.array).all() and np.isfinite(x.grad.array).all()


def test_softmax_family_of_infinite_slices_as_torch():
    """An all −inf slice gives NaN, a −inf entry among finite ones 0 (log: −inf), as torch,
    without NumPy warnings; each is one graph node whose gradient on the finite slices is torch's."""
    import warnings

    import torch

    arr = np.array([[-np.inf, -np.inf, -np.inf], [-np.inf, 0.0, 1.0], [2.0, -1.0, 0.5]])
    g = np.arange(9.0).reshape(3, 3)
    for name in ("softmax", "log_softmax"):
        x = lamina.tensor(arr, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            y = getattr(x, name)(1)
        tx = torch.tensor(arr, requires_grad=True)
        ty = getattr(tx, name)(1)
        assert y.grad_fn.name() == ty.grad_fn.name() == f"{name.title().replace('_', '')}Backward0"  # one node
        np.testing.assert_allclose(y.array, ty.detach().numpy(), rtol=1e-12, equal_nan=True)
        y[1:].backward(lamina.tensor(g[1:]))
        ty[1:].backward(torch.tensor(g[1:]))
        np.testing.assert_allclose(x.grad.array, tx.grad.numpy(), rtol=1e-12, atol=1e-12, equal_nan=True)


def test_logsumexp_of_all_minus_inf_is_minus_inf():
    x = lamina.tensor([[-np.inf, -np.inf], [0.0, -np.inf]])
    assert x.logsumexp(1).tolist() == [-np.inf, 0.0]


def test_integer_sums_and_mean_errors():
    i = lamina.tensor([[1, 2], [3, 4]])
    assert i.sum().item() == 10 and i.sum().dtype == lamina.int64
    assert lamina.tensor([True, True, False]).sum().item() == 2
    with pytest.raises(RuntimeError, match="mean"):
        i.mean()
    with pytest.raises(IndexError, match=r"sum: dimension out of range"):
        lamina.ones(2, 3).sum(2)
    with pytest.raises(RuntimeError, match="multiple times"):
        lamina.ones(2, 3).sum((1, -1))


def test_hand_computed_mean_and_unbiased_variance():
    x = lamina.tensor([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0], dtype=lamina.float64, requires_grad=True)
    assert x.mean().item() == 5.0
    assert x.var(correction=0).item() == 4.0  # the textbook population variance
    assert abs(x.var().item() - 32.0 / 7.0) < 1e-12  # Bessel's correction: divide by n − 1
    x.var(correction=0).backward()
    # d/dx_i (1/n) Σ (x_j − μ)² = 2 (x_i − μ) / n
    np.testing.assert_allclose(x.grad.array, 2 * (x.array - 5.0) / 8)


def test_max_min_with_dim_gradcheck():
    check_grads(lambda x: x.max(1).values, Input((3, 4), distinct=True))
    check_grads(lambda x: x.min(0, keepdim=True).values, Input((3, 4), distinct=True))
    check_grads(lambda x: x.max(), Input((3, 4), distinct=True))
    check_grads(lambda a, b: a.max(b), Input((3, 4), distinct=True), Input((4,), distinct=True))


def test_sort_argsort_topk_nonzero_like_torch():
    for f in [lambda t: t.sort(), lambda t: t.sort(0, descending=True), lambda t: t.topk(2), lambda t: t.topk(2, 0, largest=False),
              lambda t: t.argsort(1), lambda t: t.argsort(0, descending=True)]:
        oracle(f, Input((4, 5), distinct=True))
    check_grads(lambda t: t.sort(1).values * 1.0, Input((3, 4), distinct=True))
    check_grads(lambda t: t.topk(2, 0).values * 1.0, Input((3, 4), distinct=True))
    arr = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, -1.0]])
    assert lamina.tensor(arr).nonzero().tolist() == torch.tensor(arr).nonzero().tolist()
    assert [t.tolist() for t in lamina.tensor(arr).nonzero(as_tuple=True)] == \
        [t.tolist() for t in torch.tensor(arr).nonzero(as_tuple=True)]
    with pytest.raises(RuntimeError, match="topk: selected index k=6 out of range"):
        lamina.ones(5).topk(6)


def test_softmax_family_saves_only_its_output_and_follows_torchs_edge_rules():
    """The input may change in place after the forward (only the output is saved, as torch);
    ``dim=None`` is torch's implicit choice with its warning; a +∞ entry makes its slice NaN;
    a 0-d input takes dim 0 or −1 only; integer inputs give the default float dtype."""
    import warnings

    import torch

    for name in ("softmax", "log_softmax"):
        x = lamina.randn(2, 3, 4, requires_grad=True)
        h = x * 1.0
        y = getattr(h, name)(1)
        h.add_(1.0)
        (y * y).sum().backward()
        tx = torch.tensor(x.array, requires_grad=True)
        th = tx * 1.0
        ty = getattr(th, name)(1)
        th.add_(1.0)
        (ty * ty).sum().backward()
        np.testing.assert_allclose(x.grad.array, tx.grad.numpy(), rtol=1e-5, atol=1e-6)
        arr = np.random.default_rng(1).standard_normal((2, 3, 4))
        fn = getattr(lamina.nn.functional, name)
        with pytest.warns(UserWarning, match=f"Implicit dimension choice for {name} has been deprecated"):
            got = fn(lamina.tensor(arr))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = getattr(torch.nn.functional, name)(torch.tensor(arr))
        np.testing.assert_allclose(got.array, want.numpy(), rtol=1e-12)
        inf = np.array([np.inf, 1.0])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            np.testing.assert_array_equal(np.isnan(fn(lamina.tensor(inf), 0).array),
                                          np.isnan(getattr(torch.nn.functional, name)(torch.tensor(inf), 0).numpy()))
        with pytest.raises(IndexError, match=r"expected to be in range of \[-1, 0\], but got 1"):
            fn(lamina.tensor(2.0), 1)
        assert fn(lamina.tensor(2.0), -1).shape == ()
        assert fn(lamina.tensor([1, 2, 3]), 0).dtype == lamina.get_default_dtype()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_var_std_at_the_dtypes_extremes(dtype):
    """Hand-computed: for [a, 1, 2, 3] with a huge, mean ≈ a/4 and the deviations ≈ (3a/4, −a/4, −a/4, −a/4),
    so Σd² = 3a²/4, the unbiased variance a²/4 (overflowing once a > 2·√max) and the std a/2 — finite.
    A constant row has variance exactly 0, however large its value (its mean's rounding is corrected)."""
    f32 = dtype == np.float32
    a = 1e30 if f32 else 1e200
    huge = 3e38 if f32 else 1.7e308
    x = np.array([[a, 1, 2, 3], [1e30] * 4, [-huge] * 4, [huge, huge, -huge, 1.0], [np.inf, 1, 2, 3],
                  [np.nan, 1, 2, 3]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        v = lamina.var(lamina.tensor(x), -1).numpy()
        s = lamina.std(lamina.tensor(x), -1).numpy()
    assert np.isinf(v[0]) and np.isinf(v[3])  # the variance overflows the dtype (torch: inf too)
    np.testing.assert_allclose(s[0], a / 2, rtol=1e-6)  # torch's float32 std agrees; its float64 std gives inf
    assert v[1] == 0 and v[2] == 0 and s[1] == 0 and s[2] == 0
    exact = np.std(x[3].astype(np.longdouble), ddof=1)  # about 3e38·1.2: finite in float64, not in float32
    assert (np.isinf(s[3]) if exact > np.finfo(dtype).max else abs(s[3] / exact - 1) < 1e-6)
    assert np.isnan(v[4:]).all() and np.isnan(s[4:]).all()
    t = torch.from_numpy(x[:3] if f32 else x[1:3])
    np.testing.assert_allclose(s[:3] if f32 else s[1:3], torch.std(t, -1).numpy(), rtol=1e-6)
    # the gradient of the rescued std is the ordinary one: d std/dx = d / ((n − 1)·std) = (1/2, −1/6, −1/6, −1/6)
    w = lamina.tensor(x[0], requires_grad=True)
    lamina.std(w).backward()
    np.testing.assert_allclose(w.grad.numpy(), [0.5, -1 / 6, -1 / 6, -1 / 6], rtol=1e-6)
    assert w.grad.dtype == w.dtype
