"""Tensor construction, metadata, conversion, factories and seeding (compared with torch)."""

import numpy as np
import pytest
import torch

import lamina


def test_dtype_inference_matches_torch():
    for data in [[1.0, 2.0], [1, 2], [True, False], 3.5, 7, [[1, 2.5]], np.float64(2.0),
                 np.arange(3, dtype=np.int32), np.ones(2, dtype=np.float64)]:
        l, t = lamina.tensor(data), torch.tensor(data)
        assert str(l.dtype) == str(t.dtype).replace("torch.", ""), data
        assert l.shape == tuple(t.shape)
    assert lamina.tensor([1, 2], dtype=lamina.float64).dtype == lamina.float64
    assert lamina.tensor([1.0], dtype="float64").dtype == lamina.float64
    assert lamina.tensor([1.0], dtype=torch.float64).dtype == lamina.float64


def test_tensor_copies_its_data():
    a = np.ones(3)
    t = lamina.tensor(a)
    a[0] = 5
    assert t.tolist() == [1.0, 1.0, 1.0]
    s = lamina.from_numpy(a)
    a[1] = 7
    assert s.tolist() == [5.0, 7.0, 1.0]


def test_metadata_and_conversions():
    x = lamina.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    assert x.shape == (2, 3) and x.ndim == 2 and x.dim() == 2 and x.size() == (2, 3)
    assert x.size(1) == 3 and x.size(-1) == 3 and x.numel() == 6 and len(x) == 2
    assert x.dtype == lamina.float32 and x.is_leaf and x.requires_grad and x.grad_fn is None
    assert x.is_floating_point() and x.is_contiguous() and str(x.device) == "cpu"
    assert x.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    assert x[1, 2].item() == 6.0 and float(x[0, 0]) == 1.0
    with pytest.raises(RuntimeError, match="Can't call numpy\\(\\) on Tensor that requires grad"):
        x.numpy()
    assert isinstance(x.detach().numpy(), np.ndarray)
    with pytest.raises(RuntimeError, match="a Tensor with 6 elements cannot be converted to Scalar"):
        x.item()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(x)
    with pytest.raises(IndexError, match="dimension out of range"):
        x.size(2)
    assert [r.tolist() for r in x.detach()] == x.tolist()


def test_repr_is_readable():
    assert repr(lamina.tensor([1.0, 2.5])) == "tensor([1.0000, 2.5000])" == repr(torch.tensor([1.0, 2.5]))
    assert repr(lamina.tensor([1.0, 2.0])) == "tensor([1., 2.])" == repr(torch.tensor([1.0, 2.0]))
    assert repr(lamina.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(lamina.tensor([1.0], requires_grad=True)) == "tensor([1.], requires_grad=True)"
    assert repr(lamina.tensor([1.0], dtype=lamina.float64)) == "tensor([1.], dtype=lamina.float64)"
    assert "grad_fn=<MulBackward0>" in repr(lamina.tensor([1.0], requires_grad=True) * 2)


@pytest.mark.parametrize("name", ["zeros", "ones", "empty"])
def test_shape_factories(name):
    f = getattr(lamina, name)
    for args in [(2, 3), ((2, 3),), ([4],), ((),)]:
        t, r = f(*args), getattr(torch, name)(*args)
        assert t.shape == tuple(r.shape) and t.dtype == lamina.float32
    assert f(2, dtype=lamina.int64).dtype == lamina.int64
    assert f(2, requires_grad=True).requires_grad
    with pytest.raises(ValueError, match=f"{name}: size must be non-negative integers"):
        f(-1)


def test_value_factories_match_torch():
    cases = [
        (lambda m: m.full((2, 2), 3.5), None), (lambda m: m.full((2,), 7), None),
        (lambda m: m.arange(5), None), (lambda m: m.arange(1, 4, 0.5), None),
        (lambda m: m.arange(0, 1, 0.1), None), (lambda m: m.arange(10, 0, -3), None),
        (lambda m: m.linspace(0, 1, 5), None), (lambda m: m.eye(3), None), (lambda m: m.eye(2, 4), None),
        (lambda m: m.zeros_like(m.ones(2, 3, dtype=m.float64)), None),
        (lambda m: m.ones_like(m.ones(2, dtype=m.int64)), None),
        (lambda m: m.full_like(m.ones(2), 4.0), None),
    ]
    for f, _ in cases:
        l, t = f(lamina), f(torch)
        assert str(l.dtype) == str(t.dtype).replace("torch.", "")
        np.testing.assert_allclose(l.array, t.numpy(), rtol=1e-6)


def test_random_factories_are_seeded_and_distributed():
    lamina.manual_seed(123)
    a = lamina.randn(1000)
    lamina.manual_seed(123)
    b = lamina.randn(1000)
    assert lamina.equal(a, b)
    assert abs(a.mean().item()) < 0.15 and abs(a.std().item() - 1) < 0.1
    u = lamina.rand(2000)
    assert 0 <= u.min().item() and u.max().item() < 1 and abs(u.mean().item() - 0.5) < 0.05
    r = lamina.randint(3, 7, (500,))
    assert r.dtype == lamina.int64 and set(r.tolist()) == {3, 4, 5, 6}
    assert lamina.randint(5, (3,)).max().item() < 5
    p = lamina.randperm(10)
    assert sorted(p.tolist()) == list(range(10))
    assert lamina.randn(2, 3, dtype=lamina.float64).dtype == lamina.float64
    assert lamina.rand_like(lamina.ones(2, 2)).shape == (2, 2)
    assert lamina.randn_like(lamina.ones(3)).shape == (3,)
    with pytest.raises(TypeError, match="randn: expected a floating dtype"):
        lamina.randn(2, dtype=lamina.int64)


def test_default_dtype_switch():
    lamina.set_default_dtype(lamina.float64)
    try:
        assert lamina.tensor([1.0]).dtype == lamina.float64 and lamina.zeros(1).dtype == lamina.float64
    finally:
        lamina.set_default_dtype(lamina.float32)
    assert lamina.tensor([1.0]).dtype == lamina.float32


def test_to_and_casts():
    x = lamina.tensor([1.7, -2.2])
    assert x.to(lamina.float64).dtype == lamina.float64
    assert x.double().dtype == lamina.float64 and x.long().tolist() == [1, -2]
    assert x.to("cpu") is x and x.int().dtype == lamina.int32 and x.bool().tolist() == [True, True]
    with pytest.raises(RuntimeError, match="no GPU backend"):
        x.to("cuda")


def test_deepcopy_of_leaves_and_modules():
    import copy

    from lamina import nn

    x = lamina.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    y = copy.deepcopy(x)
    assert y is not x and y.requires_grad and y.is_leaf and y.grad.tolist() == [2.0, 4.0]
    y.array[0] = 9.0
    assert x.tolist() == [1.0, 2.0]
    m = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    m2 = copy.deepcopy(m)
    assert isinstance(m2[0].weight, nn.Parameter) and m2[0].weight is not m[0].weight
    assert lamina.equal(m2[0].weight.detach(), m[0].weight.detach())
    with pytest.raises(RuntimeError, match="graph leaves"):
        copy.deepcopy(x * 2)


def test_top_level_functional_aliases_like_torch():
    x = lamina.randn(2, 3, 8, 8)
    w = lamina.randn(4, 3, 3, 3)
    assert lamina.conv2d(x, w, padding=1).shape == tuple(torch.conv2d(torch.zeros(2, 3, 8, 8), torch.zeros(4, 3, 3, 3), padding=1).shape)
    assert lamina.max_pool2d(x, 2).shape == (2, 3, 4, 4)
    assert lamina.layer_norm(x, (8,)).shape == x.shape
    assert lamina.summary(lamina.nn.Linear(3, 2), (1, 3)).total_params == 8
