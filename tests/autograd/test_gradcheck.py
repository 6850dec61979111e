"""gradcheck and gradgradcheck: they pass correct gradients and catch wrong ones."""

import pytest

import lamina
from lamina.autograd import Function, GradcheckError, gradcheck, gradgradcheck


class WrongCube(Function):
    """x³ with a deliberately wrong derivative 2x² (instead of 3x²)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy * 2 * x * x


class CubeConstantBackward(Function):
    """x³ whose backward is right, but written on a constant: second derivatives are lost."""

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return x ** 3

    @staticmethod
    def backward(ctx, gy):
        return gy * lamina.tensor(3 * ctx.x * ctx.x)


def test_gradcheck_passes_correct_gradients():
    x = lamina.randn(3, 2, dtype=lamina.float64, requires_grad=True)
    y = lamina.randn(2, dtype=lamina.float64, requires_grad=True)
    assert gradcheck(lambda a, b: (a * b).tanh().sum(0), (x, y))
    assert gradgradcheck(lambda a, b: (a * b).tanh().sum(0), (x, y))


def test_gradcheck_names_input_element_and_values():
    x = lamina.tensor([1.0, 2.0], dtype=lamina.float64, requires_grad=True)
    with pytest.raises(GradcheckError, match=r"input 0 \(shape \(2,\)\) at element \(0,\): numerical .* vs analytical"):
        gradcheck(WrongCube.apply, (x,))
    assert gradcheck(WrongCube.apply, (x,), raise_exception=False) is False


def test_gradgradcheck_catches_a_backward_that_is_not_differentiable():
    x = lamina.tensor([1.0, 2.0], dtype=lamina.float64, requires_grad=True)
    assert gradcheck(CubeConstantBackward.apply, (x,))
    with pytest.raises(GradcheckError):
        gradgradcheck(CubeConstantBackward.apply, (x,))


def test_gradcheck_requires_a_differentiable_input_and_warns_on_float32():
    with pytest.raises(ValueError, match="at least one input tensor with requires_grad=True"):
        gradcheck(lambda a: a * 2, (lamina.ones(2, dtype=lamina.float64),))
    with pytest.warns(UserWarning, match="float64"):
        gradcheck(lambda a: a * 2, (lamina.ones(2, requires_grad=True),), atol=1e-2, rtol=1e-2, eps=1e-3)
