import itertools

import pytest
import torch
import torch.utils.data.distributed as tdist

from lamina.utils.data import DataLoader, DistributedSampler, TensorDataset
from lamina.utils.data import distributed as ldist

CASES = list(itertools.product([1, 2, 5, 7, 10, 13], [1, 2, 3, 4], [False, True]))


def _torch(n, replicas, rank, **kw):
    return list(tdist.DistributedSampler(range(n), num_replicas=replicas, rank=rank, **kw))


@pytest.mark.parametrize("n,replicas,drop_last", CASES)
def test_unshuffled_indices_are_torchs(n, replicas, drop_last):
    for rank in range(replicas):
        s = DistributedSampler(range(n), num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last)
        assert list(s) == _torch(n, replicas, rank, shuffle=False, drop_last=drop_last)
        assert len(s) == len(_torch(n, replicas, rank, shuffle=False, drop_last=drop_last))


@pytest.mark.parametrize("n,replicas,drop_last", CASES)
def test_shuffled_padding_and_split_are_torchs_given_torchs_permutation(monkeypatch, n, replicas, drop_last):
    # the order itself comes from NumPy's generator; with torch's permutation put in, every index matches
    monkeypatch.setattr(ldist, "_permutation",
                        lambda k, seed: torch.randperm(k, generator=torch.Generator().manual_seed(seed)).tolist())
    for epoch in (0, 3):
        for rank in range(replicas):
            s = DistributedSampler(range(n), num_replicas=replicas, rank=rank, seed=11, drop_last=drop_last)
            t = tdist.DistributedSampler(range(n), num_replicas=replicas, rank=rank, seed=11, drop_last=drop_last)
            s.set_epoch(epoch)
            t.set_epoch(epoch)
            assert list(s) == list(t)


@pytest.mark.parametrize("n,replicas", [(10, 2), (10, 3), (7, 4), (3, 5)])
def test_ranks_partition_the_data_set(n, replicas):
    shares = [list(DistributedSampler(range(n), num_replicas=replicas, rank=r, seed=5)) for r in range(replicas)]
    assert len({len(s) for s in shares}) == 1
    flat = sum(shares, [])
    assert sorted(set(flat)) == list(range(n))  # every index is seen
    assert len(flat) - n == (-n) % replicas  # and only the padding twice
    dropped = [list(DistributedSampler(range(n), num_replicas=replicas, rank=r, seed=5, drop_last=True))
               for r in range(replicas)]
    flat = sum(dropped, [])
    assert len(flat) == len(set(flat)) == (n // replicas) * replicas  # disjoint, the tail dropped


def test_set_epoch_reshuffles_the_same_way_on_every_rank():
    a = [DistributedSampler(range(20), num_replicas=2, rank=r, seed=3) for r in (0, 1)]
    first = [list(s) for s in a]
    for s in a:
        s.set_epoch(1)
    second = [list(s) for s in a]
    assert first != second
    assert sorted(first[0] + first[1]) == sorted(second[0] + second[1]) == list(range(20))
    assert list(DistributedSampler(range(20), num_replicas=2, rank=0, seed=3)) == first[0]  # seed + epoch decides
    assert list(DistributedSampler(range(20), num_replicas=2, rank=0, seed=4)) != first[0]


def test_bad_rank_is_refused_like_torch():
    with pytest.raises(ValueError, match=r"Invalid rank 2, rank should be in the interval \[0, 1\]"):
        DistributedSampler(range(4), num_replicas=2, rank=2)


def test_feeds_a_dataloader():
    import lamina

    ds = TensorDataset(lamina.arange(6))
    s = DistributedSampler(ds, num_replicas=2, rank=1, shuffle=False)
    (batch,) = next(iter(DataLoader(ds, batch_size=3, sampler=s)))
    assert batch.tolist() == [1, 3, 5]
