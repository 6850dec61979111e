"""In-place ops and the version counter."""

import numpy as np
import pytest
import torch

import lamina


def test_inplace_ops_values_match_torch():
    for lib in (lamina, torch):
        x = lib.tensor([1.0, -2.0, 3.0])
        x.add_(lib.tensor([1.0, 1.0, 1.0])).mul_(2.0).sub_(1.0, alpha=2.0).div_(2.0)
        x.clamp_(-1.0, 2.5)
        if lib is lamina:
            got = x.tolist()
        else:
            assert got == x.tolist()
    z = lamina.ones(2, 2)
    assert z.zero_().tolist() == [[0.0, 0.0], [0.0, 0.0]]
    assert z.fill_(3.0).tolist() == [[3.0, 3.0], [3.0, 3.0]]
    assert z.copy_(lamina.tensor([1.0, 2.0])).tolist() == [[1.0, 2.0], [1.0, 2.0]]
    z += 1
    z *= 2
    assert z.tolist() == [[4.0, 6.0], [4.0, 6.0]]


def test_inplace_bumps_the_version_shared_with_views():
    x = lamina.ones(4)
    v = x[1:3]
    assert x._version == 0
    v.add_(1.0)
    assert x.tolist() == [1.0, 2.0, 2.0, 1.0]
    assert x._version == 1 and v._version == 1
    x.mul_(2.0)
    assert v._version == 2


def test_modifying_a_tensor_saved_for_backward_raises():
    x = lamina.ones(3, requires_grad=True)
    y = x * 2
    z = y * y  # saves y
    with lamina.no_grad():
        y.add_(1.0)
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation: \[Tensor of shape \(3,\)\] is at version 1; expected version 0"):
        z.sum().backward()


def test_modifying_an_exp_output_raises():
    x = lamina.ones(3, requires_grad=True)
    y = x.exp()  # saves its output
    y.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_inplace_on_leaf_requiring_grad_raises_but_works_under_no_grad():
    w = lamina.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place operation"):
        w.add_(1.0)
    with lamina.no_grad():
        w.sub_(0.5)
    assert w.tolist() == [0.5, 0.5, 0.5] and w.requires_grad and w.is_leaf


def test_inplace_on_non_leaf_is_recorded_like_torch():
    for lib in (lamina, torch):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * 2
        y.add_(x * x)  # y = 2x + x²
        y.exp_() if lib is torch else y.exp_()
        y.sum().backward()
        if lib is lamina:
            got = x.grad.array.copy()
        else:
            np.testing.assert_allclose(got, x.grad.numpy(), rtol=1e-6)


def test_inplace_on_a_read_only_broadcast_view_is_a_clear_error():
    e = lamina.ones(1, 3).expand(2, 3)
    with pytest.raises(RuntimeError, match="read-only view"):
        e.add_(1.0)


def test_inplace_shape_and_dtype_errors():
    with pytest.raises(RuntimeError, match=r"add_: output with shape \(3,\) doesn't match the broadcast shape"):
        lamina.ones(3).add_(lamina.ones(2, 3))
    with pytest.raises(RuntimeError, match="can't be cast"):
        lamina.ones(3, dtype=lamina.int64).add_(lamina.ones(3))


@pytest.mark.parametrize("op,args", [("mul_", (3.0,)), ("div_", (2.0,)), ("pow_", (2,)), ("clamp_", (0.0, 3.0)),
                                     ("zero_", ()), ("fill_", (1.0,)), ("add_", (1.0,)), ("sub_", (0.5,)),
                                     ("exp_", ()), ("sigmoid_", ()), ("neg_", ())])
def test_every_inplace_op_on_a_non_leaf_backpropagates_like_torch(op, args):
    grads = []
    for lib in (lamina, torch):
        x = lib.tensor([1.0, 2.0, -0.5], dtype=lib.float64, requires_grad=True)
        y = x * 2
        getattr(y, op)(*args)
        (y * lib.tensor([1.0, 3.0, -2.0], dtype=lib.float64)).sum().backward()
        grads.append(np.asarray(x.grad.tolist()))
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)


def test_augmented_assignment_inside_a_forward():
    x = lamina.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y *= 3
    y.sum().backward()
    assert x.grad.tolist() == [6.0, 6.0]
