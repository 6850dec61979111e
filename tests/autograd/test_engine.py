"""Backward semantics: the textbook examples by hand, accumulation, multi-use, broadcasting,
freed graphs, deep chains, higher-order derivatives, autograd.grad, hooks, grad modes."""

import gc
import math

import numpy as np
import pytest
import torch

import lamina
from lamina.autograd import Function

# --- textbook examples, gradients worked by hand -------------------------------------------

def test_product_node_swaps_its_inputs():
    # f = x·y: ∂f/∂x = y, ∂f/∂y = x — the "gradient switch" of a multiply gate
    x = lamina.tensor(3.0, requires_grad=True)
    y = lamina.tensor(-4.0, requires_grad=True)
    (x * y).backward()
    assert x.grad.item() == -4.0 and y.grad.item() == 3.0


def test_sum_then_product_classic_circuit():
    # f = (x + y)·z at x=−2, y=5, z=−4: q = 3, f = −12; ∂f/∂x = ∂f/∂y = z = −4, ∂f/∂z = q = 3
    x = lamina.tensor(-2.0, requires_grad=True)
    y = lamina.tensor(5.0, requires_grad=True)
    z = lamina.tensor(-4.0, requires_grad=True)
    f = (x + y) * z
    f.backward()
    assert f.item() == -12.0
    assert (x.grad.item(), y.grad.item(), z.grad.item()) == (-4.0, -4.0, 3.0)


def test_sigmoid_neuron_by_hand():
    # f = σ(w0·x0 + w1·x1 + w2) with w = (2, −3, −3), x = (−1, −2): the dot product is 1,
    # σ(1) = 0.7311, and σ'(1) = σ(1)(1 − σ(1)) = 0.1966: ∂f/∂w = 0.1966·(x0, x1, 1)
    w = lamina.tensor([2.0, -3.0, -3.0], dtype=lamina.float64, requires_grad=True)
    x = lamina.tensor([-1.0, -2.0], dtype=lamina.float64, requires_grad=True)
    f = (w[0] * x[0] + w[1] * x[1] + w[2]).sigmoid()
    f.backward()
    s = 1 / (1 + math.exp(-1.0))
    ds = s * (1 - s)
    assert abs(f.item() - s) < 1e-15
    np.testing.assert_allclose(w.grad.array, [ds * -1.0, ds * -2.0, ds], rtol=1e-14)
    np.testing.assert_allclose(x.grad.array, [ds * 2.0, ds * -3.0], rtol=1e-14)


# --- accumulation, multi-use, broadcasting -------------------------------------------------

def test_leaf_gradients_accumulate_across_backward_calls():
    x = lamina.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    assert x.grad.tolist() == [3.0 + 2.0, 3.0 + 4.0]
    x.grad = None
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_node_used_several_times_gets_the_sum():
    x = lamina.tensor(2.0, requires_grad=True)
    y = x * x + x * 3 + x  # dy/dx = 2x + 4 = 8
    y.backward()
    assert x.grad.item() == 8.0
    # a shared intermediate: a = x², f = a·a + a  → df/dx = (2a + 1)·2x = 9·4 = 36
    x.grad = None
    a = x * x
    (a * a + a).backward()
    assert x.grad.item() == 36.0


def test_broadcast_gradients_reduce_to_input_shapes():
    a = lamina.randn(3, 1, 4, dtype=lamina.float64, requires_grad=True)
    b = lamina.randn(5, 1, dtype=lamina.float64, requires_grad=True)
    c = lamina.randn(dtype=lamina.float64, requires_grad=True)
    (a * b + c).sum().backward()
    assert a.grad.shape == (3, 1, 4) and b.grad.shape == (5, 1) and c.grad.shape == ()
    np.testing.assert_allclose(a.grad.array, np.broadcast_to(b.array.sum(), (3, 1, 4)))
    np.testing.assert_allclose(b.grad.array, np.full((5, 1), a.array.sum() * 1.0))
    assert c.grad.item() == 3 * 5 * 4


def test_gradients_do_not_alias_each_other():
    x = lamina.ones(3, requires_grad=True)
    y = lamina.ones(3, requires_grad=True)
    (x + y).sum().backward()
    with lamina.no_grad():
        x.grad.add_(1.0)
    assert y.grad.tolist() == [1.0, 1.0, 1.0]


# --- freed graphs, errors ------------------------------------------------------------------

def test_second_backward_through_freed_graph_raises():
    x = lamina.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = lamina.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [4.0, 8.0]


def test_saved_buffers_are_released_after_backward():
    x = lamina.randn(1000, requires_grad=True)
    y = x.exp()
    ctx = y.grad_fn.ctx
    y.sum().backward()
    assert ctx._saved is None


def test_backward_on_non_scalar_needs_a_gradient():
    x = lamina.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"grad can be implicitly created only for scalar outputs \(output 0 has shape \(2, 3\)\)"):
        (x * 2).backward()
    (x * 2).backward(lamina.ones(2, 3))
    assert x.grad.tolist() == [[2.0] * 3] * 2
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (x * 2).backward(lamina.ones(3))


def test_backward_without_graph_raises():
    with pytest.raises(RuntimeError, match="does not require grad and does not have a grad_fn"):
        lamina.ones(2).sum().backward()


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(RuntimeError, match=r"only Tensors of floating point dtype can require gradients \(got int64\)"):
        lamina.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="floating point"):
        lamina.arange(3).requires_grad_()


def test_requires_grad_of_non_leaf_cannot_be_cleared():
    y = lamina.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="only change requires_grad flags of leaf variables"):
        y.requires_grad = False


# --- deep chains -----------------------------------------------------------------------------

def test_chain_100000_ops_deep_backward_and_free():
    x = lamina.tensor(1.0, dtype=lamina.float64, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0000001
    y.backward()
    np.testing.assert_allclose(x.grad.item(), 1.0000001 ** 100_000, rtol=1e-9)
    del y
    gc.collect()  # tearing the chain down must not overflow the stack either


def test_deep_chain_kept_alive_then_dropped():
    x = lamina.ones(2, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y + 1.0
    del y  # a 100,000-node graph freed without backward
    gc.collect()


# --- higher order ----------------------------------------------------------------------------

def test_second_derivative_of_a_cubic():
    x = lamina.tensor(2.0, dtype=lamina.float64, requires_grad=True)
    y = x ** 3
    (g,) = lamina.autograd.grad(y, x, create_graph=True)
    assert g.item() == 12.0 and g.requires_grad
    g.backward()
    assert x.grad.item() == 12.0  # d²/dx² x³ = 6x


def test_hessian_vector_product_matches_torch():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 4))
    x0, v0 = rng.standard_normal(4), rng.standard_normal(4)

    def f(lib, x):
        A = lib.tensor(a) if lib is lamina else torch.from_numpy(a)
        return ((A @ x).tanh() * x).sum() + (x * x * x).sum().sigmoid()

    x = lamina.tensor(x0, requires_grad=True)
    (g,) = lamina.autograd.grad(f(lamina, x), x, create_graph=True)
    (hv,) = lamina.autograd.grad((g * lamina.tensor(v0)).sum(), x)
    xt = torch.tensor(x0, requires_grad=True)
    _, hv_t = torch.autograd.functional.hvp(lambda t: f(torch, t), xt, torch.from_numpy(v0))
    np.testing.assert_allclose(hv.array, hv_t.numpy(), rtol=1e-10, atol=1e-12)


def test_backward_create_graph_populates_grad_with_graph():
    x = lamina.tensor([1.0, 2.0], dtype=lamina.float64, requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    gx = x.grad
    x.grad = None
    gx.sum().backward()
    assert x.grad.tolist() == [6.0, 12.0]


# --- autograd.grad ---------------------------------------------------------------------------

def test_autograd_grad_does_not_touch_dot_grad():
    x = lamina.tensor([1.0, 2.0], requires_grad=True)
    w = lamina.tensor([3.0, 4.0], requires_grad=True)
    (gx,) = lamina.autograd.grad((x * w).sum(), x)
    assert gx.tolist() == [3.0, 4.0] and x.grad is None and w.grad is None


def test_autograd_grad_non_leaf_inputs_and_unused():
    x = lamina.tensor(2.0, requires_grad=True)
    h = x * 3
    y = h * h
    z = lamina.tensor(1.0, requires_grad=True)
    gh, gx = lamina.autograd.grad(y, (h, x), retain_graph=True)
    assert gh.item() == 12.0 and gx.item() == 36.0
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
        lamina.autograd.grad(y, z, retain_graph=True)
    assert lamina.autograd.grad(y, (x, z), allow_unused=True)[1] is None
    assert lamina.autograd.grad(y, z, materialize_grads=True, allow_unused=True)[0].item() == 0.0


def test_autograd_grad_with_grad_outputs():
    x = lamina.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (g,) = lamina.autograd.grad(x * x, x, grad_outputs=lamina.tensor([1.0, 0.0, 2.0]))
    assert g.tolist() == [2.0, 0.0, 12.0]


def test_backward_inputs_argument_limits_accumulation():
    x = lamina.tensor(1.0, requires_grad=True)
    w = lamina.tensor(2.0, requires_grad=True)
    (x * w).backward(inputs=[w])
    assert x.grad is None and w.grad.item() == 1.0


# --- hooks and retain_grad -------------------------------------------------------------------

def test_retain_grad_on_intermediate():
    x = lamina.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    h.retain_grad()
    (h * h).sum().backward()
    assert h.grad.tolist() == [4.0, 8.0] and h.retains_grad


def test_tensor_hooks_see_and_replace_gradients():
    x = lamina.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    h = x * 2
    handle = h.register_hook(lambda g: seen.append(g.tolist()) or g * 10)
    x.register_hook(lambda g: g + 1)
    h.sum().backward()
    assert seen == [[1.0, 1.0]]
    assert x.grad.tolist() == [21.0, 21.0]
    handle.remove()
    x.grad = None
    h2 = x * 2
    h2.sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


# --- grad modes ----------------------------------------------------------------------------

def test_no_grad_enable_grad_set_grad_enabled():
    x = lamina.ones(2, requires_grad=True)
    with lamina.no_grad():
        assert not (x * 2).requires_grad
        with lamina.enable_grad():
            assert (x * 2).requires_grad
    with lamina.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert lamina.is_grad_enabled()
    lamina.set_grad_enabled(False)
    assert not lamina.is_grad_enabled()
    lamina.set_grad_enabled(True)

    @lamina.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad and lamina.is_grad_enabled()


def test_detach_cuts_the_graph_and_shares_data():
    x = lamina.ones(3, requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    y = x * 2
    dd = y.detach()
    with lamina.no_grad():
        dd.add_(1.0)
    assert y.tolist() == [3.0, 3.0, 3.0]


# --- custom Function and engine checks --------------------------------------------------------

def test_custom_function_with_wrong_gradient_shape_is_caught():
    class Bad(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, gy):
            return gy.sum()

    x = lamina.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="BadBackward returned an invalid gradient at index 0"):
        Bad.apply(x).sum().backward()


def test_graph_repr_and_names():
    x = lamina.ones(2, requires_grad=True)
    y = (x * 2).sum()
    assert "grad_fn=<SumBackward0>" in repr(y)
    assert y.grad_fn.next_functions[0][0].name() == "MulBackward0"
    assert y.grad_fn.next_functions[0][0].next_functions[0][0].name() == "AccumulateGrad"


def test_post_accumulate_grad_hook_sees_the_accumulated_grad_like_torch():
    import torch

    def run(mod, w, x):
        seen = []
        w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
        for _ in range(2):  # the second pass sees the sum of both
            (w * x).sum().backward()
        return seen

    ours = run(lamina, lamina.tensor([1.0, 2.0], requires_grad=True), lamina.tensor([3.0, 4.0]))
    theirs = run(torch, torch.tensor([1.0, 2.0], requires_grad=True), torch.tensor([3.0, 4.0]))
    assert ours == theirs == [[3.0, 4.0], [6.0, 8.0]]


def test_post_accumulate_grad_hook_only_on_leaves_and_removable():
    w = lamina.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="non-leaf"):
        (w * 2).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        lamina.tensor([1.0]).register_post_accumulate_grad_hook(lambda t: None)
    calls = []
    h = w.register_post_accumulate_grad_hook(calls.append)
    (w * 2).sum().backward()
    h.remove()
    (w * 2).sum().backward()
    assert len(calls) == 1 and calls[0] is w
