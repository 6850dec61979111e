"""Elementwise arithmetic and unary functions against torch, gradcheck and gradgradcheck."""

import numpy as np
import pytest
import torch

import lamina
from tests.helpers import Input, broadcast_pair, check_grads, oracle

SEEDS = range(6)

BINARY = {
    "add": lambda a, b: a + b,
    "add_alpha": lambda a, b: a.add(b, alpha=2.5),
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "maximum": lambda a, b: a.maximum(b),
    "minimum": lambda a, b: a.minimum(b),
    "pow_tensor": lambda a, b: a.abs() ** b,
    "where": lambda a, b: a.where(a > 0.2, b),
    "lerp": lambda a, b: a.lerp(b, 0.3),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_binary_oracle_broadcast(name, seed, dtype):
    rng = np.random.default_rng(seed)
    sa, sb = broadcast_pair(rng)
    a, b = Input(sa, noncontig=seed % 2 == 1), Input(sb, low=0.5, high=2.0) if name == "div" else Input(sb)
    if name in ("maximum", "minimum"):  # well-separated values: ties are tested separately
        a, b = Input(sa, distinct=True), Input(sb, distinct=True)
    oracle(BINARY[name], a, b, dtype=dtype, seed=seed)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_gradcheck(name):
    rng = np.random.default_rng(7)
    sa, sb = broadcast_pair(rng)
    if name in ("maximum", "minimum", "where"):
        a, b = Input((3, 4), distinct=True), Input((4,), distinct=True)
        b.low = None
    elif name == "div":
        a, b = Input(sa), Input(sb, low=0.5, high=2.0)
    elif name == "pow_tensor":
        a, b = Input(sa, low=0.5, high=2.0), Input(sb)
    else:
        a, b = Input(sa), Input(sb)
    fn = BINARY[name]
    if name == "pow_tensor":
        fn = lambda a, b: a ** b  # noqa: E731  (a > 0: |.| has a kink at 0)
    check_grads(fn, a, b)


def test_scalar_operands_and_reflected_ops():
    for f in [lambda x: 2 + x, lambda x: 2 - x, lambda x: 3 * x, lambda x: 1.5 / x, lambda x: x / 4,
              lambda x: x ** 3, lambda x: x ** -1.5, lambda x: 2.0 ** x, lambda x: -x, lambda x: x - 1,
              lambda x: x ** 0, lambda x: x ** 1, lambda x: x ** 0.5]:
        oracle(f, Input((3, 4), low=0.5, high=2.0))
        oracle(f, Input((3, 4), low=0.5, high=2.0), dtype="float32")
        check_grads(f, Input((2, 3), low=0.5, high=2.0))


UNARY = {
    "exp": (lambda x: x.exp(), None),
    "log": (lambda x: x.log(), (0.2, 3.0)),
    "log1p": (lambda x: x.log1p(), (-0.5, 3.0)),
    "expm1": (lambda x: x.expm1(), None),
    "sqrt": (lambda x: x.sqrt(), (0.2, 3.0)),
    "rsqrt": (lambda x: x.rsqrt(), (0.2, 3.0)),
    "sigmoid": (lambda x: x.sigmoid(), None),
    "tanh": (lambda x: x.tanh(), None),
    "relu": (lambda x: x.relu(), None),
    "abs": (lambda x: x.abs(), None),
    "sin": (lambda x: x.sin(), None),
    "cos": (lambda x: x.cos(), None),
    "atan": (lambda x: x.atan(), None),
    "square": (lambda x: x.square(), None),
    "reciprocal": (lambda x: x.reciprocal(), (0.5, 2.0)),
    "clamp": (lambda x: x.clamp(-0.5, 0.7), None),
    "clamp_min": (lambda x: x.clamp(min=-0.1), None),
    "clamp_max": (lambda x: x.clamp(max=0.3), None),
    "log2": (lambda x: x.log2(), (0.2, 3.0)),
    "log10": (lambda x: x.log10(), (0.2, 3.0)),
    "sign": (lambda x: x.sign() * x, None),
    "floor": (lambda x: x.floor() + x, None),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_unary_oracle(name, seed, dtype):
    fn, rng_range = UNARY[name]
    shape = tuple(np.random.default_rng(seed).integers(1, 5, size=seed % 4))
    lo, hi = rng_range or (None, None)
    spec = Input(shape, low=lo, high=hi, noncontig=seed % 2 == 1)
    if name in ("relu", "abs", "clamp", "clamp_min", "clamp_max", "sign", "floor"):
        spec = Input(shape, distinct=True, noncontig=seed % 2 == 1)
    oracle(fn, spec, dtype=dtype, seed=seed)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_gradcheck(name):
    fn, rng_range = UNARY[name]
    lo, hi = rng_range or (None, None)
    spec = Input((3, 4), low=lo, high=hi)
    if name in ("relu", "abs", "clamp", "clamp_min", "clamp_max", "sign", "floor"):
        spec = Input((3, 4), distinct=True)
    check_grads(fn, spec)


def test_clamp_with_tensor_bounds():
    oracle(lambda x, lo, hi: x.clamp(lo, hi), Input((3, 4), distinct=True), Input((4,), distinct=True),
           Input((3, 1), distinct=True))
    check_grads(lambda x, lo, hi: x.clamp(lo, hi), Input((3, 4), distinct=True),
                Input((4,), distinct=True), Input((3, 1), distinct=True))


def test_kinks_and_ties_follow_torch():
    # relu, abs and clamp at their kinks; maximum/minimum at ties (half the gradient each)
    x = np.array([-1.0, 0.0, 0.0, 1.0, 2.0])
    y = np.array([0.0, 0.0, -1.0, 1.0, 3.0])
    for f in [lambda a: a.relu(), lambda a: a.abs(), lambda a: a.clamp(0.0, 1.0), lambda a: a.sign()]:
        oracle(f, Input(array=x))
    for f in [lambda a, b: a.maximum(b), lambda a, b: a.minimum(b), lambda a, b: a.max(b)]:
        oracle(f, Input(array=x), Input(array=y))
    # 0 ** p and its gradients (pow with tensor exponent at base 0)
    oracle(lambda a, b: a ** b, Input(array=np.array([0.0, 0.0, 2.0])), Input(array=np.array([2.0, 0.0, 0.5])))


def test_sigmoid_tanh_softplus_stable_at_extremes():
    x = np.array([-1e4, -100.0, -20.0, 0.0, 20.0, 100.0, 1e4])
    for dtype in ("float32", "float64"):
        oracle(lambda a: a.sigmoid(), Input(array=x), dtype=dtype)
        oracle(lambda a: a.tanh(), Input(array=x), dtype=dtype)
        t = lamina.tensor(x, dtype=dtype, requires_grad=True)
        s = t.sigmoid()
        s.sum().backward()
        assert np.all(np.isfinite(s.array)) and np.all(np.isfinite(t.grad.array))


def test_integer_and_bool_operands_promote_like_torch():
    i = lamina.tensor([1, 2, 3])
    f = lamina.tensor([0.5, 0.5, 0.5])
    b = lamina.tensor([True, False, True])
    assert (i * 2).dtype == lamina.int64 and (i * 2).tolist() == [2, 4, 6]
    assert (i * 1.5).dtype == lamina.float32
    assert (i / 2).dtype == lamina.float32 and (i / 2).tolist() == [0.5, 1.0, 1.5]
    assert (f * b).tolist() == [0.5, 0.0, 0.5] and (f * b).dtype == lamina.float32
    assert (f + i).dtype == lamina.float32
    assert (i // 2).tolist() == [0, 1, 1]
    assert (lamina.tensor([-3.0, 3.0]) % 2).tolist() == [1.0, 1.0]
    x = lamina.tensor([1.0, 2.0], dtype=lamina.float64, requires_grad=True)
    y = x * np.float32(3.0)  # a NumPy scalar never changes the tensor's dtype
    assert y.dtype == lamina.float64


def test_float_dtypes_promote_as_torch_but_matmul_refuses():
    a = lamina.ones(3)
    b = lamina.ones(3, dtype=lamina.float64)
    assert (a + b).dtype == lamina.float64 and (a + lamina.tensor(1.0, dtype=lamina.float64)).dtype == lamina.float32
    with pytest.raises(TypeError, match=r"matmul: expected both operands to have the same dtype"):
        lamina.ones(2, 2) @ lamina.ones(2, 2, dtype=lamina.float64)
    assert (a + b.float()).dtype == lamina.float32


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(RuntimeError, match=r"mul: shapes \(3, 4\), \(5,\) cannot be broadcast"):
        lamina.ones(3, 4) * lamina.ones(5)


def test_cast_is_differentiable():
    oracle(lambda x: (x.float() * 2).double() if isinstance(x, lamina.Tensor) else (x.float() * 2).double(),
           (3, 2), rtol=1e-6, atol=1e-6)
    x = lamina.ones(2, dtype=lamina.float64, requires_grad=True)
    y = x.to(lamina.float32)
    assert y.dtype == lamina.float32
    y.sum().backward()
    assert x.grad.dtype == lamina.float64 and x.grad.tolist() == [1.0, 1.0]
    assert not x.long().requires_grad


def test_cast_and_clone_gradcheck():
    check_grads(lambda x: (x.float().double() * x).clone(), Input((2, 3)), atol=1e-3, rtol=1e-2)
    check_grads(lambda x: x.to(lamina.float64).clone() * 2, Input((2, 3)))


def test_int_and_float_mixing_follows_torch():
    pairs = [
        (lambda m: m.tensor([1, 5]).clamp(max=2.5)),
        (lambda m: m.cat([m.tensor([1]), m.tensor([1.5])])),
        (lambda m: m.stack([m.tensor([1]), m.tensor([1.5])])),
        (lambda m: m.tensor([1, 2]).masked_fill(m.tensor([True, False]), 0.5)),
        (lambda m: m.where(m.tensor([True, False]), 1.0, 0.0)),
        (lambda m: m.tensor([1, 2], dtype=m.uint8).sum()),
    ]
    for f in pairs:
        lt, tt = f(lamina), f(torch)
        assert str(lt.dtype) == str(tt.dtype).replace("torch.", "")
        np.testing.assert_array_equal(lt.array, tt.numpy())
    with pytest.raises(RuntimeError, match="Integers to negative integer powers"):
        lamina.tensor([2]) ** -1
    with pytest.raises(RuntimeError, match="zero-dimensional tensor"):
        lamina.cat([lamina.tensor(1.0), lamina.tensor(2.0)])


def test_scalar_tensor_conveniences():
    assert f"{lamina.tensor(0.123456):.3f}" == "0.123"
    assert (lamina.ones(2) == None) is False and (lamina.ones(2) != None) is True  # noqa: E711
    p = lamina.nn.Parameter(lamina.ones(2))
    y = (p * 2).sum()
    with lamina.no_grad():
        p.data.add_(1)  # .data escapes version tracking, as in torch
    y.backward()
    assert p.grad.tolist() == [2.0, 2.0]
