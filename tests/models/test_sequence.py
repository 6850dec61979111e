"""The series classifiers: the paper's 1-D CNN, the TCN (causality, receptive field), GRU / LSTM heads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lamina
from lamina import models


def test_cnn1d_is_the_papers_convbase() -> None:
    m = models.cnn1d()
    # conv1 1→25 ×5, conv2/conv3 25→25 ×3, linear 125→10 (40 → 19 → 10 → 5 steps)
    assert [tuple(p.shape) for p in m.parameters()] == [(25, 1, 5), (25,), (25, 25, 3), (25,), (25, 25, 3), (25,),
                                                        (10, 125), (10,)]
    ref = torch.nn.Sequential(torch.nn.Conv1d(1, 25, 5, 2, 1), torch.nn.ReLU(), torch.nn.Conv1d(25, 25, 3, 2, 1),
                              torch.nn.ReLU(), torch.nn.Conv1d(25, 25, 3, 2, 1), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(125, 10))
    with torch.no_grad():
        for p, q in zip(ref.parameters(), m.parameters()):
            p.copy_(torch.tensor(q.array))
    x = np.random.default_rng(0).standard_normal((3, 1, 40)).astype(np.float32)
    np.testing.assert_allclose(m(lamina.tensor(x)).array, ref(torch.tensor(x)).detach().numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="CNN1d: expected series \\(N, 1, 40\\), got \\(2, 1, 30\\)"):
        m(lamina.randn(2, 1, 30))


def test_tcn_is_causal_and_reports_its_receptive_field() -> None:
    lamina.manual_seed(0)
    m = models.TCN(num_classes=3, channels=4, levels=3, kernel_size=3)
    assert m.receptive_field == 1 + 2 * 2 * (1 + 2 + 4) == models.receptive_field(m.blocks)
    x = lamina.randn(1, 1, 40, requires_grad=True)
    h = m.blocks(x)
    h[0, :, 35].sum().backward()
    g = np.abs(x.grad.array[0, 0])
    first = 35 - m.receptive_field + 1  # step 35 sees steps 7..35
    assert np.all(g[36:] == 0)  # nothing from the future
    assert np.all(g[:first] == 0) and g[first:36].any()
    assert tuple(m(lamina.randn(2, 1, 40)).shape) == (2, 3)


@pytest.mark.parametrize("name", ["gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_recurrent_classifier_reads_the_final_states(name: str, bidirectional: bool) -> None:
    lamina.manual_seed(0)
    m = models.get_model(name, num_classes=4, in_channels=2, hidden_size=5, bidirectional=bidirectional)
    x = lamina.randn(3, 2, 7)
    out = m(x)
    assert tuple(out.shape) == (3, 4)
    seq, state = m.rnn(x.transpose(1, 2))
    h = (state[0] if name == "lstm" else state).array
    feats = np.concatenate([h[0], h[1]], -1) if bidirectional else h[0]
    # the forward direction's final state is its output at the last step
    np.testing.assert_allclose(seq.array[:, -1, :5], h[0], atol=1e-6)
    np.testing.assert_allclose(out.array, feats @ m.head.weight.array.T + m.head.bias.array, atol=1e-5)
