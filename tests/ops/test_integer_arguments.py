"""Integer arguments (sizes, strides, kernel sizes, shapes) are ints: a float is refused as
torch refuses it, never truncated (``(2.5, 2)`` once became ``(2, 2)`` without a word)."""

import numpy as np
import pytest
import torch

import lamina
import lamina.nn.functional as F


def _both(call):
    """``call(lib, F)`` raises in torch and in lamina, lamina with a TypeError naming the op."""
    with pytest.raises((TypeError, RuntimeError, ValueError)):
        call(torch, torch.nn.functional)
    with pytest.raises(TypeError) as err:
        call(lamina, F)
    return str(err.value)


CASES = {
    "conv2d stride": (lambda t, f: f.conv2d(t.ones(1, 1, 6, 6), t.ones(1, 1, 2, 2), stride=(1.5, 1)), "conv2d"),
    "max_pool2d kernel": (lambda t, f: f.max_pool2d(t.ones(1, 1, 6, 6), (2.5, 2)), "max_pool2d"),
    "avg_pool2d stride": (lambda t, f: f.avg_pool2d(t.ones(1, 1, 6, 6), 2, stride=(2.0, 1.5)), "avg_pool2d"),
    "Conv2d kernel": (lambda t, f: t.nn.Conv2d(1, 1, (2.5, 2)), "Conv2d"),
    "reshape": (lambda t, f: t.ones(6).reshape(2.5, -1), "reshape"),
    "view": (lambda t, f: t.ones(6).view(3, 2.0), "view"),
    "repeat": (lambda t, f: t.ones(2).repeat(1.5), "repeat"),
    "expand": (lambda t, f: t.ones(1).expand(2.5), "expand"),
    "new_zeros": (lambda t, f: t.ones(2).new_zeros((2.5, 1)), "new_zeros"),
    "split sizes": (lambda t, f: t.ones(4).split([1.5, 2.5]), "split"),
    "interpolate size": (lambda t, f: f.interpolate(t.ones(1, 1, 4, 4), size=(8.5, 8)), "interpolate"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_float_where_an_int_belongs_is_refused(name):
    call, op = CASES[name]
    msg = _both(call)
    assert op.split()[0] in msg or op.lower() in msg.lower(), msg


def test_numpy_and_tensor_integers_are_ints():
    x = lamina.ones(1, 1, 6, 6)
    w = lamina.ones(1, 1, 2, 2)
    assert F.conv2d(x, w, stride=(np.int64(2), lamina.tensor(1))).shape == (1, 1, 3, 5)
    assert F.max_pool2d(x, (np.int32(2), 2)).shape == (1, 1, 3, 3)
    assert lamina.ones(6).reshape(np.int64(2), -1).shape == (2, 3)
    assert lamina.nn.Conv2d(1, 1, (np.int64(2), 2)).kernel_size == (2, 2)


@pytest.mark.parametrize("shape", [(0, 6, 4, 4), (0, 6), (0, 4, 3)])
def test_group_norm_of_an_empty_batch(shape):
    groups = 2 if shape[1] == 4 else 3
    x = lamina.randn(*shape, requires_grad=True)
    w = lamina.ones(shape[1], requires_grad=True)
    y = F.group_norm(x, groups, w)
    ty = torch.nn.functional.group_norm(torch.zeros(shape), groups, torch.ones(shape[1]))
    assert y.shape == tuple(ty.shape)
    y.sum().backward()
    assert x.grad.shape == shape and np.all(w.grad.numpy() == 0)
