from ..distributed.mpi_run import HERE, needs_mpi, run_mpi


@needs_mpi
def test_ddp_on_two_ranks_matches_one_process_on_the_whole_batch():
    """mpi_ddp_check.py asserts, on 2 ranks with per-rank batch B/2 against one process with batch B
    (float64): parameters after 4 SGD-momentum and 4 Adam steps agree to 1e-12 with a bucket per
    parameter, a few buckets and one bucket; rank 1's own initial weights are replaced by rank 0's;
    no_sync accumulates without communicating and the next backward averages the sum; buffers are
    rank 0's at each forward with broadcast_buffers and differ without; the collectives' results;
    and a forward after a backward that left parameters without gradient names them."""
    r = run_mpi([f"{HERE}/mpi_ddp_check.py"], timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ddp-ok" in r.stdout
