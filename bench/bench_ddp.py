"""Data-parallel training on MPI: 2 ranks × 1 thread against 1 process × 2 threads and 1 × 1.

    python bench/bench_ddp.py [--quick] [--models lenet5,resnet20] [--batch 32] [--steps 10]

For each model, one training step (forward, loss, backward, SGD momentum 0.9) on a global batch
of ``--batch`` images, float32:

- ``1x1``: one process, one thread, the whole batch;
- ``1x2``: one process, two threads, the whole batch;
- ``2x1``: two ranks under the bundled ``mpiexec``, one thread each, half the batch each,
  ``DistributedDataParallel`` (25 MB buckets, allreduce overlapped with backward).

It prints the median step time of each (per rank for ``2x1``), the scaling efficiency
``T(1x1) / (2 · T(2x1))`` (1.0: perfect), and for the ranks the gradient buckets, the time of a
blocking allreduce of each bucket and of all buckets of a step (measured alone, outside
training), and the bytes each rank sends per step (ring allreduce: 2·(N-1)/N × the gradient).
Launched without MPI around it, the script starts its own workers; ``--worker MODE`` is one of them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's lamina
SHAPES = {"lenet5": (1, 32, 32), "resnet20": (3, 32, 32)}


def _time_model(name: str, args: argparse.Namespace, ddp: bool, rank: int, size: int) -> dict:
    import numpy as np

    import lamina
    from lamina import nn

    lamina.manual_seed(0)
    model = lamina.models.get_model(name).train()
    if ddp:
        import lamina.distributed as dist
        from lamina.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model)
    else:
        net = model
    opt = lamina.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(rank)
    share = args.batch // size
    x = lamina.tensor(rng.standard_normal((share,) + SHAPES[name]).astype(np.float32))
    y = lamina.tensor(rng.integers(0, 10, share))
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad()
        loss_fn(net(x), y).backward()
        opt.step()

    for _ in range(2):  # warm-up: kernels compiled, buffers allocated
        step()
    times = []
    for _ in range(args.steps):
        if ddp:
            dist.barrier()  # ranks start each step together
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    r = {"step_s": statistics.median(times)}
    if ddp:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
        per_bucket = []
        for b in net._buckets:
            ts = []
            for _ in range(max(args.steps, 5)):
                comm.Barrier()
                t0 = time.perf_counter()
                comm.Allreduce(MPI.IN_PLACE, b.flat, MPI.SUM)
                ts.append(time.perf_counter() - t0)
            per_bucket.append(statistics.median(ts))
        r.update(bucket_bytes=net.bucket_sizes, bucket_allreduce_s=per_bucket,
                 rank_step_s=comm.gather(r["step_s"], root=0))
    return r


def _worker(args: argparse.Namespace) -> None:
    import lamina

    lamina.set_num_threads(args.threads)
    ddp = args.worker == "ddp"
    rank, size = 0, 1
    if ddp:
        import lamina.distributed as dist

        dist.init_process_group("mpi")
        rank, size = dist.get_rank(), dist.get_world_size()
    results = {name: _time_model(name, args, ddp, rank, size) for name in args.models.split(",")}
    if rank == 0:
        print("RESULT " + json.dumps(results), flush=True)


def _run(mode: str, threads: int, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", mode, "--threads", str(threads),
           "--models", args.models, "--batch", str(args.batch), "--steps", str(args.steps)]
    if mode == "ddp":
        from lamina.distributed.launch import mpiexec_command

        cmd = mpiexec_command(2, cmd)
    env = dict(os.environ, PYTHONPATH=ROOT, LAMINA_NUM_THREADS=str(threads))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="lenet5,resnet20")
    ap.add_argument("--batch", type=int, default=32, help="global batch (each of 2 ranks takes half)")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per configuration")
    ap.add_argument("--quick", action="store_true", help="4 timed steps")
    ap.add_argument("--worker", choices=["single", "ddp"], help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.steps = 4
    if args.worker:
        _worker(args)
        return
    one, two, ddp = _run("single", 1, args), _run("single", 2, args), _run("ddp", 1, args)
    print(f"one SGD step, global batch {args.batch}, float32; median of {args.steps} steps (ms)")
    print(f"{'model':9s} {'1x1':>8s} {'1x2':>8s} {'2x1 rank0':>10s} {'2x1 rank1':>10s} {'eff 2x1':>8s} "
          f"{'eff 1x2':>8s}")
    for name in args.models.split(","):
        t11, t12, d = one[name]["step_s"], two[name]["step_s"], ddp[name]
        t21 = max(d["rank_step_s"])
        print(f"{name:9s} {1e3 * t11:8.1f} {1e3 * t12:8.1f} {1e3 * d['rank_step_s'][0]:10.1f} "
              f"{1e3 * d['rank_step_s'][1]:10.1f} {t11 / (2 * t21):8.2f} {t11 / (2 * t12):8.2f}")
    for name in args.models.split(","):
        d = ddp[name]
        grad = sum(d["bucket_bytes"])
        buckets = ", ".join(f"{b / 2**20:.2f} MB: {1e3 * t:.2f} ms" for b, t in zip(d["bucket_bytes"],
                                                                                       d["bucket_allreduce_s"]))
        print(f"{name}: buckets [{buckets}]; allreduce per step {1e3 * sum(d['bucket_allreduce_s']):.2f} ms "
              f"of a {1e3 * max(d['rank_step_s']):.1f} ms step; each rank sends {2 * (2 - 1) / 2 * grad / 2**20:.2f} "
              f"MB per step (2 ranks, ring)")


if __name__ == "__main__":
    main()
