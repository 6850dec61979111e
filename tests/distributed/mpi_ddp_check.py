"""Run under ``mpiexec -n N``: DistributedDataParallel against one process on the whole batch.

Every check asserts; a failed assertion ends the job through lamina.distributed's abort hook, so
the launching test sees a non-zero exit. Prints ``ddp-ok`` on rank 0 when all checks pass.
"""

import numpy as np

import lamina
import lamina.distributed as dist
from lamina import nn
from lamina.nn.parallel import DistributedDataParallel as DDP

B = 8


def make_model(seed, batch_norm=False):
    lamina.manual_seed(seed)
    layers = [nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 10)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(10))
    layers += [nn.Tanh(), nn.Linear(10, 4)]
    return nn.Sequential(*layers).double()


def batch(step):
    rng = np.random.default_rng(100 + step)
    return lamina.tensor(rng.normal(size=(B, 1, 6, 6))), lamina.tensor(rng.integers(0, 4, size=B))


def params(model):
    return [p.array.copy() for p in model.parameters()]


def train(model, opt, steps, rank, world, wrap):
    share = B // world
    for step in range(steps):
        x, y = batch(step)
        if wrap:
            x, y = x[rank * share:(rank + 1) * share], y[rank * share:(rank + 1) * share]
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def check_equivalence(rank, world):
    optimizers = {"SGD": lambda p: lamina.optim.SGD(p, lr=0.1, momentum=0.9),
                  "Adam": lambda p: lamina.optim.Adam(p, lr=0.01)}
    for cap in (1e-6, 0.001, 25):  # a bucket per parameter, a few buckets, one bucket
        for name, make_opt in optimizers.items():
            ref = make_model(0)
            train(ref, make_opt(ref.parameters()), 4, rank, world, wrap=False)
            ddp = DDP(make_model(rank), bucket_cap_mb=cap)  # rank 1's own init is overwritten by rank 0's
            n_buckets = len(ddp.bucket_sizes)
            assert (n_buckets == 6) if cap == 1e-6 else (n_buckets == 1) if cap == 25 else 1 < n_buckets < 6, \
                (cap, ddp.bucket_sizes)
            train(ddp, make_opt(ddp.parameters()), 4, rank, world, wrap=True)
            for a, b in zip(params(ref), params(ddp.module)):
                np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-13, err_msg=f"{name} bucket_cap_mb={cap}")


def check_overlap(rank, world):
    # the conv weight's gradient comes last in backward; a hook on it registered before DDP's runs while
    # backward is still under way: by then the linear layers' buckets must be on the wire already
    model = make_model(0)
    seen = []
    model[0].weight.register_post_accumulate_grad_hook(
        lambda p: seen.append([b.request is not None for b in ddp._buckets]))
    ddp = DDP(model, bucket_cap_mb=1e-6)
    x, y = batch(0)
    nn.functional.cross_entropy(ddp(x), y).backward()
    names = [b.names[0] for b in ddp._buckets]
    launched = {n for n, sent in zip(names, seen[0]) if sent}
    assert {"3.weight", "3.bias", "5.weight", "5.bias"} <= launched and "0.weight" not in launched, launched
    assert all(b.request is None for b in ddp._buckets)  # all finished when backward returns


def check_no_sync(rank, world):
    ref = make_model(0)
    for step in (0, 1):
        x, y = batch(step)
        nn.functional.cross_entropy(ref(x), y).backward()
    ddp = DDP(make_model(0), bucket_cap_mb=0.001)
    share = B // world
    with ddp.no_sync():
        x, y = batch(0)
        nn.functional.cross_entropy(ddp(x[rank * share:(rank + 1) * share]), y[rank * share:(rank + 1) * share]).backward()
    local = lamina.tensor(ddp.module[0].weight.grad.array.copy())
    gathered = [lamina.zeros_like(local) for _ in range(world)]
    dist.all_gather(gathered, local)
    assert not np.allclose(gathered[0].array, gathered[1].array), "no_sync communicated"
    x, y = batch(1)
    nn.functional.cross_entropy(ddp(x[rank * share:(rank + 1) * share]), y[rank * share:(rank + 1) * share]).backward()
    for p, q in zip(ref.parameters(), ddp.module.parameters()):
        np.testing.assert_allclose(q.grad.array, p.grad.array, rtol=1e-12, atol=1e-13, err_msg="no_sync")


def check_buffers(rank, world):
    for broadcast in (True, False):
        ddp = DDP(make_model(0, batch_norm=True), broadcast_buffers=broadcast)
        bn = ddp.module[4]
        seen = []
        bn.register_forward_pre_hook(lambda m, args: seen.append(m.running_mean.array.copy()))
        train(ddp, lamina.optim.SGD(ddp.parameters(), lr=0.1), 3, rank, world, wrap=True)
        mine = lamina.tensor(np.stack(seen))
        gathered = [lamina.zeros_like(mine) for _ in range(world)]
        dist.all_gather(gathered, mine)
        same = all(np.array_equal(g.array, gathered[0].array) for g in gathered)
        assert same == broadcast, f"broadcast_buffers={broadcast}: buffers equal across ranks: {same}"


def check_sync_batchnorm(rank, world):
    ref = make_model(0, batch_norm=True)
    train(ref, lamina.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9), 4, rank, world, wrap=False)
    ddp = DDP(nn.SyncBatchNorm.convert_sync_batchnorm(make_model(0, batch_norm=True)), bucket_cap_mb=0.001)
    assert isinstance(ddp.module[4], nn.SyncBatchNorm)
    train(ddp, lamina.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9), 4, rank, world, wrap=True)
    for (name, a), b in zip(ref.state_dict().items(), ddp.module.state_dict().values()):
        np.testing.assert_allclose(b.array, a.array, rtol=1e-12, atol=1e-13, err_msg=f"SyncBatchNorm {name}")


def check_unused(rank, world):
    class Partly(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = make_model(0)
            self.unused = nn.Linear(2, 2).double()

        def forward(self, x):
            return self.body(x)

    ddp = DDP(Partly())
    x, y = batch(0)
    nn.functional.cross_entropy(ddp(x), y).backward()
    try:
        ddp(x)
    except RuntimeError as e:
        assert "unused.weight" in str(e) and "unused.bias" in str(e), str(e)
    else:
        raise AssertionError("a forward after an incomplete reduction did not raise")


def main():
    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    assert B % world == 0
    t = lamina.tensor([float(rank + 1)], dtype=lamina.float64)
    dist.all_reduce(t)
    assert t.item() == world * (world + 1) / 2
    t = lamina.tensor([float(rank)])
    dist.broadcast(t, src=world - 1)
    assert t.item() == world - 1
    check_equivalence(rank, world)
    check_overlap(rank, world)
    check_no_sync(rank, world)
    check_buffers(rank, world)
    check_sync_batchnorm(rank, world)
    check_unused(rank, world)
    dist.barrier()
    if rank == 0:
        print("ddp-ok", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
