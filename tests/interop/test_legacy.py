"""The legacy PyTorch API still in circulation behaves as torch's."""

import copy
import warnings

import numpy as np
import pytest
import torch

import lamina

TYPED = ["FloatTensor", "DoubleTensor", "HalfTensor", "LongTensor", "IntTensor", "ShortTensor", "CharTensor",
         "ByteTensor", "BoolTensor"]


def _dt(t):
    return str(t.dtype).replace("torch.", "")


@pytest.mark.parametrize("args", [(2, 3), (4,), (), ([1, 2, 3],), ((2, 3),), ([[1.5, 2]],),
                                  (np.arange(6.0).reshape(2, 3),), (np.arange(4),), (np.array([True, False]),)])
def test_tensor_constructor_as_torch(args):
    ours, theirs = lamina.Tensor(*args), torch.Tensor(*args)
    assert ours.shape == tuple(theirs.shape) and _dt(ours) == _dt(theirs) == "float32"
    if args and not all(isinstance(a, int) for a in args):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_tensor_constructor_follows_the_default_dtype_and_copies():
    a = np.ones(3)
    t = lamina.Tensor(a)
    a[0] = 5
    assert t.tolist() == [1.0, 1.0, 1.0]
    lamina.set_default_dtype(lamina.float64)
    try:
        assert lamina.Tensor(2).dtype == lamina.float64
    finally:
        lamina.set_default_dtype(lamina.float32)
    with pytest.raises(TypeError, match="Tensor"):
        lamina.Tensor(2.5)
    with pytest.raises(TypeError, match="Tensor"):
        lamina.Tensor([1.0], 2)


def test_lamina_tensor_and_parameters_still_infer_dtypes():
    assert lamina.tensor(np.ones(2)).dtype == lamina.float64 and lamina.tensor([1, 2]).dtype == lamina.int64
    assert lamina.nn.Parameter(lamina.ones(2, dtype=lamina.float64)).dtype == lamina.float64
    assert copy.deepcopy(lamina.nn.Linear(2, 2).double()).weight.dtype == lamina.float64


@pytest.mark.parametrize("name", TYPED)
def test_typed_tensor_classes_as_torch(name):
    ours, theirs = getattr(lamina, name), getattr(torch, name)
    for args in [(2, 3), ([1, 0, 2],), (np.array([1.7, 0.0]),)]:
        a, b = ours(*args), theirs(*args)
        assert a.shape == tuple(b.shape) and _dt(a) == _dt(b)
        if not isinstance(args[0], int):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert isinstance(a, ours) and isinstance(a, lamina.Tensor)
    other = "DoubleTensor" if name != "DoubleTensor" else "FloatTensor"
    assert not isinstance(a, getattr(lamina, other))
    with pytest.raises(TypeError, match=name):
        ours(2, dtype=lamina.float64)
    with pytest.raises(RuntimeError, match="no GPU backend"):
        getattr(lamina.cuda, name)(2)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int32", "uint8", "bool", "int8", "int16"])
def test_tensor_type_names_and_conversions_as_torch(dtype):
    ours, theirs = lamina.zeros(2, dtype=getattr(lamina, dtype)), torch.zeros(2, dtype=getattr(torch, dtype))
    assert ours.type() == theirs.type().replace("torch.", "lamina.")
    for target in ("torch.DoubleTensor", "torch.LongTensor", "torch.BoolTensor"):
        assert _dt(ours.type(target)) == _dt(theirs.type(target))
    assert ours.type(lamina.IntTensor).dtype == lamina.int32 and ours.type(lamina.float16).dtype == lamina.float16
    with pytest.raises(ValueError, match="invalid type"):
        ours.type("torch.NoSuchTensor")


def test_type_keeps_the_graph():
    x = lamina.ones(2, requires_grad=True)
    x.type(lamina.DoubleTensor).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0] and x.grad.dtype == lamina.float32


def test_variable_as_torch():
    t = lamina.ones(2)
    v = lamina.autograd.Variable(t)
    tv = torch.autograd.Variable(torch.ones(2))
    assert v is not t and v.requires_grad is tv.requires_grad is False
    v = lamina.autograd.Variable(t, requires_grad=True)
    assert v.requires_grad and v.is_leaf and not t.requires_grad
    assert isinstance(t, lamina.autograd.Variable) and not isinstance(np.ones(2), lamina.autograd.Variable)
    v.sum().backward()
    assert v.grad.tolist() == [1.0, 1.0]
    t.array[0] = 7  # shares the values
    assert v.tolist()[0] == 7
    with pytest.warns(UserWarning, match="volatile"):
        lamina.autograd.Variable(t, volatile=True)
    with pytest.raises(TypeError, match="has to be a tensor"):
        lamina.autograd.Variable([1.0])


def test_bare_no_grad_and_enable_grad_decorators():
    x = lamina.ones(2, requires_grad=True)

    @lamina.no_grad
    def f(t):
        return t * 2

    @lamina.enable_grad
    def g(t):
        return t * 2

    assert not f(x).requires_grad and f.__name__ == "f" and lamina.is_grad_enabled()
    with lamina.no_grad():
        assert g(x).requires_grad
    with pytest.raises(TypeError, match="no_grad"):
        lamina.no_grad(3)


def test_grad_only_inputs_is_accepted_as_torch():
    x = lamina.tensor([1.0, 2.0], requires_grad=True)
    (g,) = lamina.autograd.grad((x * x).sum(), x, only_inputs=True)
    assert g.tolist() == [2.0, 4.0]
    with pytest.warns(FutureWarning, match="only_inputs"):
        lamina.autograd.grad((x * x).sum(), x, only_inputs=False)


@pytest.mark.parametrize("name,args", [("normal", (0.0, 1.0)), ("uniform", (-1.0, 1.0)), ("constant", (0.3,)),
                                       ("xavier_uniform", ()), ("xavier_normal", ()), ("kaiming_uniform", ()),
                                       ("kaiming_normal", ()), ("orthogonal", ()), ("eye", ())])
def test_deprecated_init_aliases_warn_and_fill(name, args):
    w = lamina.zeros(4, 4)
    with pytest.warns(FutureWarning, match=f"nn.init.{name}` is now deprecated"):
        out = getattr(lamina.nn.init, name)(w, *args)
    assert out is w and bool((w.numpy() != 0).any())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lamina.manual_seed(3)
        a = getattr(lamina.nn.init, name)(lamina.zeros(4, 4), *args).numpy()
    lamina.manual_seed(3)
    b = getattr(lamina.nn.init, name + "_")(lamina.zeros(4, 4), *args).numpy()
    np.testing.assert_array_equal(a, b)
