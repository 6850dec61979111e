"""Floor 6: ``lamina train --nproc N`` / ``--hosts``: starting the ranks through the bundled
``mpiexec``, and training as one of them (rank 0 prints and writes; a failing rank ends all)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable

__all__ = ["is_rank_process", "launch_ranks", "train_as_rank"]


def is_rank_process() -> bool:
    """Whether this process is one of the ranks that :func:`launch_ranks` started."""
    from .distributed.launch import RANK_ENV

    return os.environ.get(RANK_ENV) == "1"


def launch_ranks(args: argparse.Namespace) -> int:
    """Check the options once, here, then run the same command line as N ranks in one run folder."""
    from .cli import _new_run_dir, _train_options
    from .distributed.launch import launch

    argv, run_dir = list(args.argv), args.run_dir
    if args.resume and not run_dir:
        run_dir = args.resume if os.path.isdir(args.resume) else os.path.dirname(os.path.abspath(args.resume))
    if not args.resume:  # names are checked once, not once per rank; all ranks get one run folder
        from .train.run import resolve_config

        config = resolve_config(_train_options(args))
        ranks = args.nproc if args.nproc is not None else len([h for h in args.hosts.split(",") if h.strip()])
        if ranks > 0 and int(config["batch_size"]) % ranks:
            raise ValueError(f"--batch-size {config['batch_size']} must be divisible by the number of ranks {ranks} "
                             "(each rank takes batch-size / ranks samples of every batch)")
        if not args.run_dir:
            run_dir = _new_run_dir(args, config)
            argv += ["--run-dir", run_dir]
    code = launch(argv, args.nproc, args.hosts)
    if code not in (0, 1, 2, 130):  # the ranks said nothing: one was killed or crashed
        saved = os.path.exists(os.path.join(run_dir, "checkpoint.lamina"))
        hint = (f"its last checkpoint continues it: lamina train --resume {run_dir} with the same --nproc" if saved
                else "it wrote no checkpoint yet")
        print(f"lamina train: the MPI job ended with exit code {code} (a rank was killed or crashed); {hint}",
              file=sys.stderr)
    return code


def train_as_rank(args: argparse.Namespace, train: Callable[[argparse.Namespace], int]) -> int:
    """``train(args)`` as one rank of an MPI job: rank 0 prints and writes; a failing rank ends every rank."""
    from . import distributed
    from .cli import _user_errors

    distributed.init_process_group("mpi")
    rank, size = distributed.get_rank(), distributed.get_world_size()
    if rank != 0:
        sys.stdout = open(os.devnull, "w")  # rank 0 speaks for the job
    try:
        code = train(args)
    except _user_errors() as e:
        if size == 1:
            raise
        distributed.abort("lamina train: " + " ".join(str(e).split()), 2)
        raise  # not reached: abort ends the process
    if code == 130 and size > 1:  # every rank stopped after the same batch: let rank 0 finish its checkpoint
        # the stop is agreed: a Ctrl-C that mpiexec passes on again (or sends a rank still waiting here
        # once another has ended) must not turn the orderly exit into a death by signal
        for name in ("SIGINT", "SIGTERM"):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
        sys.stderr.flush()
        distributed.barrier()
    elif code != 0 and size > 1:
        distributed.abort(f"lamina train ended with exit code {code}; ending all ranks", code)
    return code
