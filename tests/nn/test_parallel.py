from ..distributed.mpi_run import HERE, needs_mpi, run_mpi


@needs_mpi
def test_ddp_on_two_ranks_matches_one_process_on_the_whole_batch():
    """mpi_ddp_check.py asserts, on 2 ranks with per-rank batch B/2 against one process with batch B
    (float64): parameters after 4 SGD-momentum and 4 Adam steps agree to 1e-12 with a bucket per
    parameter, a few buckets and one bucket; rank 1's own initial weights are replaced by rank 0's;
    the later layers' buckets are already being all-reduced when backward reaches the first layer;
    no_sync accumulates without communicating and the next backward averages the sum; buffers are
    rank 0's at each forward with broadcast_buffers and differ without; SyncBatchNorm on 2 ranks gives
    one process's BatchNorm parameters and running statistics; the collectives' results;
    and a forward after a backward that left parameters without gradient names them."""
    r = run_mpi([f"{HERE}/mpi_ddp_check.py"], timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ddp-ok" in r.stdout


def test_sync_batchnorm_outside_a_process_group_is_batchnorm_and_convert_keeps_the_state():
    import numpy as np

    import lamina
    from lamina import nn

    ref = nn.Sequential(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3)).double()
    with lamina.no_grad():
        ref[1].weight.array[...] = [1.0, 2.0, 3.0]
    ref[1].running_mean.array[...] = [0.5, -0.5, 1.0]
    state = {k: v.array.copy() for k, v in ref.state_dict().items()}
    conv = nn.SyncBatchNorm.convert_sync_batchnorm(ref)
    assert isinstance(conv[1], nn.SyncBatchNorm)
    for k, v in conv.state_dict().items():
        np.testing.assert_array_equal(v.array, state[k])
    plain = nn.BatchNorm2d(3).double()
    plain.load_state_dict({k[2:]: lamina.tensor(v) for k, v in state.items() if k.startswith("1.")})
    x = lamina.randn(4, 3, 2, 2, dtype=lamina.float64)
    np.testing.assert_allclose(conv[1](x).array, plain(x).array, rtol=1e-14)
    np.testing.assert_allclose(conv[1].running_mean.array, plain.running_mean.array, rtol=1e-14)
