"""LeNet-5 by hand: the parameter, multiply-add and activation figures a student computes on paper,
checked against ``lamina.train.summary`` and against a torch.nn twin."""

from __future__ import annotations

import numpy as np
import torch

import lamina
from lamina import models
from lamina.train.summary import summary

# layer: (output shape for one 32×32 grey image, parameters, multiply-adds)
#   C1: 6 maps of 5×5 over 1 channel:   6·(1·25 + 1) = 156 weights, 6·28·28 outputs × 25 = 117,600
#   C3: 16 maps of 5×5 over 6 channels: 16·(6·25 + 1) = 2,416,      16·10·10 × 150 = 240,000
#   C5: 120 maps of 5×5 over 16:        120·(16·25 + 1) = 48,120,   120·1·1 × 400 = 48,000
#   F6: 120 → 84:                       84·121 = 10,164,             84 × 120 = 10,080
#   output: 84 → 10:                    10·85 = 850,                 10 × 84 = 840
HAND = {
    "features.0": ((1, 6, 28, 28), 156, 117_600),
    "features.2": ((1, 6, 14, 14), 0, 0),
    "features.3": ((1, 16, 10, 10), 2_416, 240_000),
    "features.5": ((1, 16, 5, 5), 0, 0),
    "features.6": ((1, 120, 1, 1), 48_120, 48_000),
    "classifier.1": ((1, 84), 10_164, 10_080),
    "classifier.3": ((1, 10), 850, 840),
}


def test_lenet5_summary_matches_hand_computation() -> None:
    s = summary(models.lenet5(), (1, 1, 32, 32))
    rows = {r.name: r for r in s.layers}
    for name, (shape, params, madds) in HAND.items():
        r = rows[name]
        assert (r.output_shape, r.params, r.mult_adds) == (shape, params, madds), name
    assert s.total_params == s.trainable_params == 156 + 2_416 + 48_120 + 10_164 + 850 == 61_706
    assert s.total_mult_adds == 117_600 + 240_000 + 48_000 + 10_080 + 840 == 416_520
    # float32 activations of the leaf layers: conv, tanh, pool (and flatten, linear …) outputs
    floats = 2 * 6 * 28 * 28 + 6 * 14 * 14 + 2 * 16 * 10 * 10 + 16 * 5 * 5 + 2 * 120 + 120 + 2 * 84 + 10
    assert s.activation_bytes == 4 * floats == 58_888
    assert s.param_bytes == 4 * 61_706
    assert s.input_bytes == 4 * 32 * 32


def test_lenet5_matches_a_torch_twin() -> None:
    t = torch.nn.Module()
    t.features = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 5), torch.nn.Tanh(), torch.nn.AvgPool2d(2), torch.nn.Conv2d(6, 16, 5), torch.nn.Tanh(),
        torch.nn.AvgPool2d(2), torch.nn.Conv2d(16, 120, 5), torch.nn.Tanh())
    t.classifier = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(120, 84), torch.nn.Tanh(),
                                       torch.nn.Linear(84, 10))
    m = models.lenet5()
    m.load_state_dict(t.state_dict(), strict=True)
    x = np.random.default_rng(0).standard_normal((3, 1, 32, 32)).astype(np.float32)
    expected = t.classifier(t.features(torch.from_numpy(x))).detach().numpy()
    np.testing.assert_allclose(m(lamina.tensor(x)).detach().numpy(), expected, rtol=1e-5, atol=1e-6)
