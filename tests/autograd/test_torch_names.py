"""grad_fn names and next_functions as torch's: the node class names of the common ops, and the
structure of ``next_functions`` (``(node, index)`` pairs, ``(None, 0)`` where no gradient flows,
``AccumulateGrad`` at the leaves holding ``.variable``) on the same small graphs under both."""

import numpy as np
import pytest
import torch

import lamina
import lamina.nn.functional as F
from lamina.autograd import Function

TF = torch.nn.functional


def _pair(shape, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return lamina.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def _walk(fn, leaves):
    """The graph below ``fn`` as nested (name, index, children) tuples; a leaf's accumulator reads
    as ("AccumulateGrad", position of its variable among ``leaves``) (its ``name()`` is
    ``torch::autograd::AccumulateGrad`` in torch, the C++ class; lamina's says ``AccumulateGrad``)."""
    if fn is None:
        return None
    if type(fn).__name__ == "AccumulateGrad":
        return ("AccumulateGrad", next(i for i, v in enumerate(leaves) if v is fn.variable))
    return (fn.name(), type(fn).__name__,
            tuple((_walk(n, leaves), i) for n, i in fn.next_functions))


CASES = {
    "add": lambda m, x, w: x + x,
    "add_scalar": lambda m, x, w: x + 2,
    "sub": lambda m, x, w: x - w[:2],
    "mul_scalar": lambda m, x, w: 2 * x,
    "div": lambda m, x, w: x / (x * x + 1),
    "sum": lambda m, x, w: x.sum(),
    "sum_dim": lambda m, x, w: x.sum(1),
    "mean": lambda m, x, w: x.mean(),
    "mean_dim": lambda m, x, w: x.mean(dim=0, keepdim=True),
    "mm": lambda m, x, w: x.mm(w),
    "matmul_2d": lambda m, x, w: x @ w,
    "relu": lambda m, x, w: m.relu(x),
    "view": lambda m, x, w: x.view(6),
    "reshape": lambda m, x, w: x.reshape(3, 2),
    "exp_tanh_sigmoid": lambda m, x, w: x.exp().tanh().sigmoid(),
    "pow": lambda m, x, w: x ** 2,
    "neg_abs": lambda m, x, w: (-x).abs(),
    "cat": lambda m, x, w: m.cat([x, x.log1p()]),
    "max": lambda m, x, w: x.max(),
    "softmax": lambda m, x, w: x.softmax(1).log_softmax(0),
    "select": lambda m, x, w: x[1] + w[..., 0].sum(),
    "slice": lambda m, x, w: x[:, 1:].sum() * w[:2].sum(),
    "index": lambda m, x, w: x[[1, 0]].sum(0) + x[None].sum(),
    "expand_clone": lambda m, x, w: x.sum(0).expand(4, 3).clone(),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_grad_fn_names_and_next_functions_as_torchs(case):
    (lx, tx), (lw, tw) = _pair((2, 3)), _pair((3, 3), 1)
    ours = CASES[case](lamina, lx, lw).grad_fn
    theirs = CASES[case](torch, tx, tw).grad_fn
    assert _walk(ours, [lx, lw]) == _walk(theirs, [tx, tw])


def test_network_nodes_as_torchs():
    """conv -> batch norm -> relu -> max pool -> view -> sum, node by node."""
    (lx, tx), (lk, tk) = _pair((2, 1, 6, 6)), _pair((3, 1, 3, 3), 1)
    (lg, tg), (lb, tb) = _pair((3,), 2), _pair((3,), 3)

    def net(f, x, k, g, b):
        y = f.conv2d(x, k, padding=1)
        y = f.batch_norm(y, None, None, weight=g, bias=b, training=True)
        y = f.max_pool2d(f.relu(y), 2)
        return y.view(2, -1).sum(1).mean()

    ours = _walk(net(F, lx, lk, lg, lb).grad_fn, [lx, lk, lg, lb])
    assert ours == _walk(net(TF, tx, tk, tg, tb).grad_fn, [tx, tk, tg, tb])
    assert "ConvolutionBackward0" in repr(ours) and "NativeBatchNormBackward0" in repr(ours)


def test_an_index_of_several_steps_is_one_node():
    """torch chains a node per step (``x[0, 1:]``: SliceBackward0 over SelectBackward0); lamina's one
    node for the whole index keeps lamina's name rather than claim either."""
    x, tx = _pair((3, 4))
    assert x[0, 1:].grad_fn.name() == "GetItemBackward"
    assert x[0, 1:].grad_fn.next_functions[0][0].variable is x
    assert tx[0, 1:].grad_fn.name() == "SliceBackward0"


def test_leaves_and_inputs_without_grad():
    x, tx = _pair((3,))
    for m, v in ((lamina, x), (torch, tx)):
        y = v * m.ones(3)
        (acc, i), (none, j) = y.grad_fn.next_functions
        assert type(acc).__name__ == "AccumulateGrad" and acc.variable is v and i == 0
        assert none is None and j == 0 and acc.next_functions == ()
    assert repr((x * 2).grad_fn) == "<MulBackward0>"


def test_a_user_defined_function_is_named_as_in_torch():
    class Cube(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, gy):
            (x,) = ctx.saved_tensors
            return gy * 3 * x * x

    class TCube(torch.autograd.Function):
        forward, backward = Cube.forward, Cube.backward

    x, tx = _pair((2,))
    assert Cube.apply(x).grad_fn.name() == "CubeBackward"
    assert TCube.apply(tx).grad_fn.name() == "TCubeBackward"
