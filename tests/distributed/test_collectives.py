import time

import pytest

import lamina
import lamina.distributed as dist

from .mpi_run import HERE, needs_mpi, run_mpi


@pytest.mark.parametrize("backend", ["gloo", "nccl"])
def test_other_backends_are_refused_naming_mpi(backend):
    with pytest.raises(ValueError, match=f"backend '{backend}' is not available in lamina.*backend='mpi'"):
        dist.init_process_group(backend)
    assert not dist.is_initialized()


def test_collectives_before_init_say_so():
    with pytest.raises(ValueError, match="get_rank: Default process group has not been initialized"):
        dist.get_rank()
    with pytest.raises(ValueError, match="all_reduce: Default process group"):
        dist.all_reduce(lamina.ones(2))


@needs_mpi
def test_an_exception_in_one_rank_aborts_the_job_naming_the_rank():
    t0 = time.monotonic()
    r = run_mpi([f"{HERE}/mpi_abort_check.py"], timeout=60)
    elapsed = time.monotonic() - t0
    assert r.returncode != 0
    assert "barrier passed" not in r.stdout
    assert "boom on purpose" in r.stderr
    assert "rank 1 of 2 raised an unhandled ValueError; aborting all ranks" in r.stderr
    assert elapsed < 30, f"the job took {elapsed:.0f} s to end"
