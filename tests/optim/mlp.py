"""A small float64 MLP built twice — in lamina and in torch — from identical weights and data,
for trajectory comparisons of optimizers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import lamina
from lamina import nn


class Tanh(nn.Module):
    def forward(self, x):
        return x.tanh()


def make_pair(seed: int = 0, sizes: tuple[int, ...] = (5, 4, 3), n: int = 8):
    """(lamina model, torch model, x, y as numpy): a tanh MLP with identical float64 weights."""
    torch.manual_seed(seed)
    layers_t, layers_l = [], []
    for i in range(len(sizes) - 1):
        layers_t.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        layers_l.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers_t.append(torch.nn.Tanh())
            layers_l.append(Tanh())
    tmodel = torch.nn.Sequential(*layers_t).double()
    lmodel = nn.Sequential(*layers_l).double()
    lmodel.load_state_dict(tmodel.state_dict())
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, sizes[0]))
    y = rng.standard_normal((n, sizes[-1]))
    return lmodel, tmodel, x, y


def lamina_loss(model: Any, x: np.ndarray, y: np.ndarray) -> Any:
    out = model(lamina.tensor(x))
    return ((out - lamina.tensor(y)) ** 2).mean()


def torch_loss(model: Any, x: np.ndarray, y: np.ndarray) -> Any:
    out = model(torch.from_numpy(x))
    return ((out - torch.from_numpy(y)) ** 2).mean()


def train(model: Any, opt: Any, loss_fn: Callable[..., Any], x: np.ndarray, y: np.ndarray, steps: int,
          closure: bool = False) -> list[float]:
    """``steps`` optimizer steps on full-batch (x, y); returns the losses."""
    losses = []
    for _ in range(steps):
        def fn():
            opt.zero_grad()
            loss = loss_fn(model, x, y)
            loss.backward()
            return loss

        if closure:
            losses.append(float(opt.step(fn).detach()))
        else:
            losses.append(float(fn().detach()))
            opt.step()
    return losses


def params_of(model: Any) -> list[np.ndarray]:
    return [np.array(p.detach().numpy() if isinstance(p, torch.Tensor) else p.array) for p in model.parameters()]


def assert_same_params(lmodel: Any, tmodel: Any, rtol: float = 1e-10, atol: float = 1e-10) -> None:
    for i, (a, b) in enumerate(zip(params_of(lmodel), params_of(tmodel))):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"parameter {i}")
