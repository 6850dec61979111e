"""Small networks shared by the vis tests: a LeNet-style CNN in lamina and its torch twin with
the same weights, and the same CNN trained for a few seconds on a synthetic task where only one
patch of the image is informative (a bright 3×3 square on noise: class 1; noise alone: class 0).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lamina
from lamina import nn


def small_cnn(classes: int = 10, in_channels: int = 1, width: int = 6, size: int = 8) -> nn.Module:
    """conv-ReLU-pool-conv-ReLU-pool-flatten-linear-ReLU-linear, named ``features`` / ``classifier``."""
    m = nn.Module()
    m.features = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                               nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    m.classifier = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * (size // 4) ** 2, 16), nn.ReLU(),
                                 nn.Linear(16, classes))
    m.forward = lambda x: m.classifier(m.features(x))  # type: ignore[method-assign]
    return m


class _TorchCNN(torch.nn.Module):
    def __init__(self, classes: int, in_channels: int, width: int, size: int) -> None:
        super().__init__()
        tn = torch.nn
        self.features = tn.Sequential(tn.Conv2d(in_channels, width, 3, padding=1), tn.ReLU(), tn.MaxPool2d(2),
                                      tn.Conv2d(width, 2 * width, 3, padding=1), tn.ReLU(), tn.MaxPool2d(2))
        self.classifier = tn.Sequential(tn.Flatten(), tn.Linear(2 * width * (size // 4) ** 2, 16), tn.ReLU(),
                                        tn.Linear(16, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def torch_twin(model: nn.Module, classes: int = 10, in_channels: int = 1, width: int = 6, size: int = 8,
               dtype: torch.dtype = torch.float64) -> torch.nn.Module:
    """The torch network of :func:`small_cnn` holding ``model``'s weights."""
    t = _TorchCNN(classes, in_channels, width, size).to(dtype)
    t.load_state_dict({k: torch.from_numpy(np.array(v.array)).to(dtype) for k, v in model.state_dict().items()})
    return t.eval()


def square_images(n: int, seed: int, size: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images (n, 1, size, size) of noise in [0, 0.5]; class 1 has a 3×3 square of 0.75 at a random
    place. Returns images, labels and the squares' top-left corners (-1 for class 0)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.5, (n, 1, size, size)).astype(np.float32)
    y = (np.arange(n) % 2).astype(np.int64)
    corners = np.full((n, 2), -1)
    for i in np.flatnonzero(y):
        r, c = rng.integers(0, size - 2, 2)
        x[i, 0, r:r + 3, c:c + 3] = 0.75
        corners[i] = (r, c)
    return x, y, corners


@pytest.fixture(scope="session")
def trained_square_cnn() -> nn.Module:
    """The small CNN trained (Adam, 70 steps, a few seconds) to tell the square from noise."""
    lamina.manual_seed(0)
    model = small_cnn(classes=2)
    x, y, _ = square_images(512, seed=1)
    opt = lamina.optim.Adam(model.parameters(), lr=0.01)
    rng = np.random.default_rng(0)
    for _ in range(70):
        idx = rng.choice(len(x), 64, replace=False)
        loss = nn.functional.cross_entropy(model(lamina.Tensor._wrap(x[idx])), lamina.Tensor._wrap(y[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    xt, yt, _ = square_images(200, seed=2)
    acc = (lamina.vis._common.predict(model, lamina.Tensor._wrap(xt)).argmax(1) == yt).mean()
    assert acc > 0.95, f"the fixture model did not learn the task (test accuracy {acc:.3f})"
    return model
