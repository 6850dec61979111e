"""Type promotion equals torch's result_type over every dtype pair, n-d and 0-d, and Python numbers."""

import itertools

import numpy as np
import pytest
import torch

import lamina

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]
SCALARS = [True, 3, 2.5]


def _pair(name, ndim):
    base = np.array([[1, 0, 2], [3, 1, 1]]) if ndim else np.array(2)
    arr = (base > 0) if name == "bool" else base.astype(name)
    return lamina.tensor(arr), torch.tensor(arr)


def _name(dtype):
    return str(dtype).replace("torch.", "")


CASES = list(itertools.product(DTYPES, DTYPES, [(1, 1), (1, 0), (0, 1), (0, 0)]))


@pytest.mark.parametrize("d1,d2,ranks", CASES)
def test_result_type_and_ops_equal_torch_for_every_pair(d1, d2, ranks):
    (a, ta), (b, tb) = _pair(d1, ranks[0]), _pair(d2, ranks[1])
    expected = _name(torch.result_type(ta, tb))
    assert str(lamina.result_type(a, b)) == expected
    ours, theirs = a * b, ta * tb
    assert str(ours.dtype) == _name(theirs.dtype) == expected
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert str((a == b).dtype) == "bool" and (a == b).tolist() == (ta == tb).tolist()
    assert str((a + b).dtype) == _name((ta + tb).dtype)
    if "bool" not in (d1, d2):  # torch refuses - with a bool operand
        np.testing.assert_array_equal((a - b).numpy(), (ta - tb).numpy())
    assert str(lamina.promote_types(a.dtype, b.dtype)) == _name(torch.promote_types(ta.dtype, tb.dtype))
    assert lamina.can_cast(a.dtype, b.dtype) == torch.can_cast(ta.dtype, tb.dtype)


@pytest.mark.parametrize("d,ndim,scalar", list(itertools.product(DTYPES, [1, 0], SCALARS)))
def test_python_numbers_promote_as_torch(d, ndim, scalar):
    a, ta = _pair(d, ndim)
    expected = _name(torch.result_type(ta, scalar))
    assert str(lamina.result_type(a, scalar)) == expected
    for ours, theirs in ((a * scalar, ta * scalar), (scalar * a, scalar * ta)):
        assert str(ours.dtype) == _name(theirs.dtype) == expected
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    numpy_scalar = np.float32(scalar) if isinstance(scalar, float) else np.int16(scalar)
    assert str((a * numpy_scalar).dtype) == _name((ta * numpy_scalar).dtype)  # NumPy scalars count as numbers


@pytest.mark.parametrize("d1,d2", list(itertools.product(DTYPES, DTYPES)))
def test_inplace_ops_cast_into_self_or_refuse_as_torch(d1, d2):
    (a, ta), (b, tb) = _pair(d1, 1), _pair(d2, 1)
    try:
        ta.mul_(tb)
    except RuntimeError:
        with pytest.raises(RuntimeError, match="can't be cast"):
            a.mul_(b)
        return
    a.mul_(b)
    assert str(a.dtype) == _name(ta.dtype) == d1
    np.testing.assert_array_equal(a.numpy(), ta.numpy())


@pytest.mark.parametrize("d1,d2", list(itertools.product(DTYPES, DTYPES)))
def test_cat_promotes_as_torch(d1, d2):
    (a, ta), (b, tb) = _pair(d1, 1), _pair(d2, 1)
    ours, theirs = lamina.cat([a, b]), torch.cat([ta, tb])
    assert str(ours.dtype) == _name(theirs.dtype)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_hand_computed_rules():
    f32, f64 = lamina.ones(2), lamina.ones(2, dtype=lamina.float64)
    assert (f32 + f64).dtype == lamina.float64  # two n-d tensors: the wider float
    assert (f32 + lamina.tensor(1.0, dtype=lamina.float64)).dtype == lamina.float32  # a 0-d does not widen
    assert (f32 * 2.5).dtype == lamina.float32 and (lamina.tensor([1, 2]) * 2.5).dtype == lamina.float32
    assert (lamina.tensor([1], dtype=lamina.int32) + lamina.tensor(1.0, dtype=lamina.float64)).dtype == lamina.float64
    assert (lamina.ones(2, dtype=lamina.uint8) - 1).tolist() == [0, 0]
    assert (lamina.zeros(1, dtype=lamina.uint8) - 1).tolist() == [255]  # wraps, as torch


def test_mixed_float_ops_are_differentiable_with_torchs_gradients():
    rng = np.random.default_rng(0)
    xa, ya = rng.standard_normal(3).astype("float32"), rng.standard_normal(3)
    x, y = lamina.tensor(xa, requires_grad=True), lamina.tensor(ya, requires_grad=True)
    tx, ty = torch.tensor(xa, requires_grad=True), torch.tensor(ya, requires_grad=True)
    (x * y + x).sum().backward()
    (tx * ty + tx).sum().backward()
    assert x.grad.dtype == lamina.float32 and y.grad.dtype == lamina.float64
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(y.grad.numpy(), ty.grad.numpy(), rtol=1e-6)
    x.grad = None
    lamina.cat([x, y]).sum().backward()
    assert x.grad.dtype == lamina.float32 and x.grad.tolist() == [1.0, 1.0, 1.0]


def test_matmul_refuses_mixed_floats_as_torch():
    with pytest.raises(RuntimeError):
        torch.ones(2, 2) @ torch.ones(2, 2, dtype=torch.float64)
    with pytest.raises(TypeError, match="matmul: expected both operands to have the same dtype"):
        lamina.ones(2, 2) @ lamina.ones(2, 2, dtype=lamina.float64)


@pytest.mark.parametrize("d,bound", [("float32", np.zeros(3)), ("float32", np.float64(0.5)), ("int64", 0.5),
                                     ("int64", np.zeros(3, dtype="float32")), ("float64", np.zeros(3, "float32")),
                                     ("int32", 1)])
def test_clamp_promotes_input_and_bounds_as_torch(d, bound):
    x = np.array([-1.0, 0.7, 2.0]).astype(d)
    lb = lamina.tensor(bound) if isinstance(bound, np.ndarray) else bound
    tb = torch.tensor(bound) if isinstance(bound, np.ndarray) else bound
    ours, theirs = lamina.clamp(lamina.tensor(x), min=lb), torch.clamp(torch.tensor(x), min=tb)
    assert str(ours.dtype) == _name(theirs.dtype)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
