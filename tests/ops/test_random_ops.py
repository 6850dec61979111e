"""multinomial, bernoulli, bernoulli_, normal: shapes and dtypes as torch's, the distributions checked
statistically (fixed seeds, tolerances of several standard errors), torch's errors."""

import numpy as np
import pytest
import torch

import lamina


def test_multinomial_with_replacement_follows_the_weights():
    lamina.manual_seed(0)
    w = lamina.tensor([[1.0, 2.0, 7.0], [0.0, 1.0, 1.0]])
    s = lamina.multinomial(w, 4000, replacement=True)
    assert s.shape == torch.multinomial(torch.tensor(w.numpy()), 4000, True).shape and s.dtype == lamina.int64
    freq = np.stack([np.bincount(r, minlength=3) / 4000 for r in s.numpy()])
    np.testing.assert_allclose(freq, [[0.1, 0.2, 0.7], [0.0, 0.5, 0.5]], atol=0.03)


def test_multinomial_without_replacement_draws_distinct_indices_by_weight():
    g = lamina.Generator().manual_seed(1)
    out = lamina.multinomial(lamina.tensor([0.5, 0.0, 3.0, 1.0]), 3, generator=g)
    assert sorted(out.tolist()) == [0, 2, 3]  # the zero-weight index is never drawn
    firsts = [lamina.multinomial(lamina.tensor([1.0, 3.0]), 1, generator=g).item() for _ in range(2000)]
    assert abs(np.mean(firsts) - 0.75) < 0.04
    with pytest.raises(RuntimeError, match="without replacement"):
        lamina.multinomial(lamina.tensor([1.0, 1.0]), 3)
    with pytest.raises(RuntimeError):
        torch.multinomial(torch.tensor([1.0, 1.0]), 3)
    with pytest.raises(RuntimeError, match="element < 0"):
        lamina.multinomial(lamina.tensor([1.0, -1.0]), 1)
    with pytest.raises(RuntimeError, match="not enough"):
        lamina.multinomial(lamina.tensor([1.0, 0.0]), 2)


def test_bernoulli_and_bernoulli_():
    lamina.manual_seed(0)
    p = lamina.full((20000,), 0.3, dtype=lamina.float64)
    b = lamina.bernoulli(p)
    assert b.dtype == lamina.float64 and set(np.unique(b.numpy())) <= {0.0, 1.0}
    assert abs(b.mean().item() - 0.3) < 0.015
    assert lamina.bernoulli(lamina.tensor([0.0, 1.0])).tolist() == [0.0, 1.0]
    x = lamina.zeros(10000)
    assert x.bernoulli_(0.8) is x and abs(x.mean().item() - 0.8) < 0.02
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        lamina.bernoulli(lamina.tensor([1.5]))


def test_normal_forms_and_moments():
    lamina.manual_seed(0)
    z = lamina.normal(2.0, 3.0, size=(20000,))
    assert z.dtype == lamina.float32 and z.shape == (20000,)
    assert abs(z.mean().item() - 2.0) < 0.1 and abs(z.std().item() - 3.0) < 0.1
    mean = lamina.tensor([0.0, 100.0], requires_grad=True)
    std = lamina.tensor([1e-6, 1e-6], requires_grad=True)
    s = lamina.normal(mean, std)
    np.testing.assert_allclose(s.detach().numpy(), [0.0, 100.0], atol=1e-4)
    s.sum().backward()  # torch's normal has a zero gradient for mean and std
    tm, ts = torch.tensor([0.0, 100.0], requires_grad=True), torch.tensor([1e-6, 1e-6], requires_grad=True)
    torch.normal(tm, ts).sum().backward()
    assert mean.grad.tolist() == tm.grad.tolist() and std.grad.tolist() == ts.grad.tolist()
    assert lamina.normal(lamina.zeros(2, 3), 1.0).shape == (2, 3)
    with pytest.raises(RuntimeError, match="std >= 0"):
        lamina.normal(0.0, -1.0, size=(2,))
