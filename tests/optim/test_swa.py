"""Stochastic Weight Averaging against torch: averaged weights (SWA, EMA, with and without
buffers), update_bn statistics (a duck-typed batch norm and lamina's BatchNorm1d), SWALR."""

import warnings

import numpy as np
import pytest
import torch
from torch.optim import swa_utils as TS

import lamina
from lamina import nn
from lamina.optim import swa_utils as LS
from tests.optim.mlp import Tanh, lamina_loss, torch_loss


class DuckBatchNorm(nn.Module):
    """A minimal batch norm following the protocol update_bn relies on (running_mean,
    running_var, momentum, reset_running_stats), with torch's update rule."""

    def __init__(self, n, momentum=0.1, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(lamina.ones(n))
        self.bias = nn.Parameter(lamina.zeros(n))
        self.register_buffer("running_mean", lamina.zeros(n))
        self.register_buffer("running_var", lamina.ones(n))
        self.register_buffer("num_batches_tracked", lamina.tensor(0))
        self.momentum, self.eps = momentum, eps

    def reset_running_stats(self):
        self.running_mean.array[...] = 0
        self.running_var.array[...] = 1
        self.num_batches_tracked.array[...] = 0

    def forward(self, x):
        if self.training:
            mean, var = x.mean(0), x.var(0, correction=0)
            with lamina.no_grad():
                self.num_batches_tracked.array += 1
                f = 1.0 / int(self.num_batches_tracked.item()) if self.momentum is None else self.momentum
                n = x.shape[0]
                self.running_mean.array[...] = f * mean.array + (1 - f) * self.running_mean.array
                self.running_var.array[...] = f * var.array * n / (n - 1) + (1 - f) * self.running_var.array
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) / (var + self.eps).sqrt() * self.weight + self.bias


def _bn_pair(bn_cls, seed=0):
    torch.manual_seed(seed)
    tmodel = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.BatchNorm1d(4), torch.nn.Tanh(),
                                 torch.nn.Linear(4, 3)).double()
    lmodel = nn.Sequential(nn.Linear(5, 4), bn_cls(4), Tanh(), nn.Linear(4, 3)).double()
    with torch.no_grad():
        tmodel[1].weight.uniform_(0.5, 1.5)
        tmodel[1].bias.uniform_(-0.5, 0.5)
    lmodel.load_state_dict(tmodel.state_dict())
    return lmodel, tmodel


def _train_and_average(lmodel, tmodel, x, y, make_avg, steps=20, start=5):
    lopt = lamina.optim.SGD(lmodel.parameters(), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.1, momentum=0.9)
    lavg, tavg = make_avg(LS, lmodel), make_avg(TS, tmodel)
    for i in range(steps):
        for model, opt, loss_fn in ((lmodel, lopt, lamina_loss), (tmodel, topt, torch_loss)):
            opt.zero_grad()
            loss_fn(model, x, y).backward()
            opt.step()
        if i >= start:
            lavg.update_parameters(lmodel)
            tavg.update_parameters(tmodel)
    return lavg, tavg


def _assert_state_equal(lmod, tmod, rtol=1e-10):
    ls, ts = lmod.state_dict(), tmod.state_dict()
    assert list(ls) == list(ts)
    for k in ls:
        np.testing.assert_allclose(np.asarray(ls[k].array, dtype=float), ts[k].double().numpy(), rtol=rtol,
                                   atol=1e-12, err_msg=k)


AVERAGES = {
    "swa": lambda M, m: M.AveragedModel(m),
    "swa-buffers": lambda M, m: M.AveragedModel(m, use_buffers=True),
    "swa-multi": lambda M, m: M.AveragedModel(m, multi_avg_fn=M.get_swa_multi_avg_fn()),
    "ema": lambda M, m: M.AveragedModel(m, multi_avg_fn=M.get_ema_multi_avg_fn(0.9)),
    "ema-avg_fn": lambda M, m: M.AveragedModel(m, avg_fn=M.get_ema_avg_fn(0.8), use_buffers=True),
    "custom": lambda M, m: M.AveragedModel(m, avg_fn=lambda a, c, n: 0.5 * a + 0.5 * c),
}


@pytest.mark.parametrize("name", sorted(AVERAGES))
def test_averaged_weights_match_torch(name):
    lmodel, tmodel = _bn_pair(DuckBatchNorm)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((16, 5)), rng.standard_normal((16, 3))
    lavg, tavg = _train_and_average(lmodel, tmodel, x, y, AVERAGES[name])
    assert lavg.n_averaged.item() == tavg.n_averaged.item() == 15
    _assert_state_equal(lavg, tavg)
    # the copy is independent of the model, and forward runs the averaged module
    assert not np.shares_memory(lavg.module[0].weight.array, lmodel[0].weight.array)
    lavg.eval()
    tavg.eval()
    np.testing.assert_allclose(lavg(lamina.tensor(x)).array, tavg(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-10, atol=1e-12)


def test_swa_hand_computed_mean():
    """SWA of weights 1, 2, 6 is their mean 3; EMA(0.5) of them is (0.5·1 + 0.5·2)·0.5 + 0.5·6 = 3.75."""
    lin = nn.Linear(1, 1, bias=False)
    swa, ema = LS.AveragedModel(lin), LS.AveragedModel(lin, multi_avg_fn=LS.get_ema_multi_avg_fn(0.5))
    for v in [1.0, 2.0, 6.0]:
        lin.weight.array[...] = v
        swa.update_parameters(lin)
        ema.update_parameters(lin)
    assert swa.module.weight.item() == 3.0 and ema.module.weight.item() == 3.75


def _update_bn_case(bn_cls):
    lmodel, tmodel = _bn_pair(bn_cls, seed=3)
    rng = np.random.default_rng(2)
    batches = [rng.standard_normal((n, 5)) * 2 + 1 for n in (8, 8, 5, 12)]
    lavg, tavg = LS.AveragedModel(lmodel), TS.AveragedModel(tmodel)
    lavg.eval()
    tavg.eval()
    LS.update_bn([(lamina.tensor(b), None) for b in batches], lavg)
    TS.update_bn([(torch.from_numpy(b), None) for b in batches], tavg)
    assert not lavg.training and not tavg.training
    assert lavg.module[1].momentum == tavg.module[1].momentum == 0.1
    _assert_state_equal(lavg, tavg)


def test_update_bn_matches_torch_with_duck_typed_batch_norm():
    _update_bn_case(DuckBatchNorm)


def test_update_bn_matches_torch_with_lamina_batchnorm1d():
    if not hasattr(nn, "BatchNorm1d"):
        pytest.skip("lamina.nn.BatchNorm1d does not exist yet (written concurrently in normalization.py)")
    _update_bn_case(nn.BatchNorm1d)


def test_update_bn_without_batch_norm_is_a_no_op():
    lin = nn.Linear(3, 2)
    before = lin.weight.array.copy()
    LS.update_bn([lamina.randn(4, 3)], lin)
    np.testing.assert_array_equal(before, lin.weight.array)


SWALR_CASES = [dict(swa_lr=0.05), dict(swa_lr=[0.01, 0.2], anneal_epochs=5, anneal_strategy="linear"),
               dict(swa_lr=0.02, anneal_epochs=0), dict(swa_lr=0.5, anneal_epochs=37, anneal_strategy="cos")]


@pytest.mark.parametrize("i", range(len(SWALR_CASES)))
def test_swalr_matches_torch(i):
    lp, tp = [nn.Parameter(lamina.zeros(2)), nn.Parameter(lamina.zeros(2))], [torch.zeros(2, requires_grad=True),
                                                                             torch.zeros(2, requires_grad=True)]
    lopt = lamina.optim.SGD([{"params": lp[:1]}, {"params": lp[1:], "lr": 0.3}], lr=0.1)
    topt = torch.optim.SGD([{"params": tp[:1]}, {"params": tp[1:], "lr": 0.3}], lr=0.1)
    ls, ts = LS.SWALR(lopt, **SWALR_CASES[i]), TS.SWALR(topt, **SWALR_CASES[i])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(100):
            assert ls.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-12)
            lopt.step()
            topt.step()
            ls.step()
            ts.step()


def test_errors():
    lin = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="only one of"):
        LS.AveragedModel(lin, avg_fn=LS.get_swa_avg_fn(), multi_avg_fn=LS.get_swa_multi_avg_fn())
    with pytest.raises(ValueError, match="decay"):
        LS.get_ema_multi_avg_fn(1.5)
    with pytest.raises(ValueError, match="anneal_strategy"):
        LS.SWALR(lamina.optim.SGD(lin.parameters(), lr=0.1), 0.1, anneal_strategy="step")
