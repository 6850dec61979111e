"""lamina.utils.data: data sets, random_split, samplers and default_collate, against torch's semantics."""

from collections import namedtuple

import numpy as np
import pytest
import torch
import torch.utils.data as tud

import lamina
from lamina.utils.data import (
    BatchSampler,
    ConcatDataset,
    Dataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    random_split,
)


def test_tensor_dataset_and_errors():
    x, y = lamina.randn(5, 3), lamina.arange(5)
    ds = TensorDataset(x, y)
    assert len(ds) == 5
    xi, yi = ds[2]
    assert np.array_equal(xi.numpy(), x.numpy()[2]) and yi.item() == 2
    with pytest.raises(ValueError, match="size mismatch"):
        TensorDataset(lamina.zeros(4, 2), lamina.zeros(5))


def test_concat_and_subset_match_torch():
    a, b = list(range(3)), list(range(10, 15))
    ours, ref = ConcatDataset([a, b]), tud.ConcatDataset([a, b])
    assert len(ours) == len(ref) == 8
    assert [ours[i] for i in range(-8, 8)] == [ref[i] for i in range(-8, 8)]
    assert ours.cumulative_sizes == ref.cumulative_sizes
    with pytest.raises(IndexError):
        ours[8]
    s = Subset(b, [4, 0, 2])
    assert [s[i] for i in range(3)] == [14, 10, 12] and len(s) == 3

    class D(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return i

    assert len(D() + D()) == 4


@pytest.mark.parametrize("n,fracs", [(10, [0.7, 0.3]), (11, [0.5, 0.25, 0.25]), (7, [0.34, 0.33, 0.33]),
                                     (3, [0.1, 0.9])])
def test_random_split_fraction_lengths_match_torch(n, fracs):
    ours = random_split(range(n), fracs, generator=np.random.default_rng(0))
    ref = tud.random_split(range(n), fracs, generator=torch.Generator().manual_seed(0))
    assert [len(s) for s in ours] == [len(s) for s in ref]
    assert sorted(i for s in ours for i in s.indices) == list(range(n))


def test_random_split_seeded_and_errors():
    a = random_split(range(20), [5, 15], generator=np.random.default_rng(4))
    b = random_split(range(20), [5, 15], generator=np.random.default_rng(4))
    assert a[0].indices == b[0].indices
    lamina.manual_seed(1)
    c = random_split(range(20), [5, 15])
    lamina.manual_seed(1)
    assert random_split(range(20), [5, 15])[0].indices == c[0].indices
    with pytest.raises(ValueError, match="sum of input lengths"):
        random_split(range(5), [2, 2])
    with pytest.raises(ValueError, match="fractions"):
        random_split(range(5), [0.5, 0.6])


def test_samplers():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    g = np.random.default_rng(0)
    s = RandomSampler(range(6), generator=g)
    e1, e2 = list(s), list(s)
    assert sorted(e1) == sorted(e2) == list(range(6)) and e1 != e2  # a fresh permutation every pass
    more = list(RandomSampler(range(4), num_samples=10, generator=g))
    assert len(more) == 10 and sorted(more[:8]) == [0, 0, 1, 1, 2, 2, 3, 3]
    rep = list(RandomSampler(range(3), replacement=True, num_samples=50, generator=g))
    assert len(rep) == 50 and set(rep) <= {0, 1, 2}
    assert sorted(SubsetRandomSampler([5, 9, 7], generator=g)) == [5, 7, 9]
    assert list(BatchSampler(range(7), 3, False)) == list(tud.BatchSampler(range(7), 3, False))
    assert len(BatchSampler(range(7), 3, True)) == len(tud.BatchSampler(range(7), 3, True)) == 2
    with pytest.raises(ValueError, match="batch_size"):
        BatchSampler(range(3), 0, False)


def test_weighted_sampler_balances_classes():
    labels = np.array([0] * 90 + [1] * 10)
    weights = 1.0 / np.bincount(labels)[labels]
    draws = np.array(list(WeightedRandomSampler(weights, 4000, generator=np.random.default_rng(0))))
    share = (labels[draws] == 1).mean()
    assert 0.45 < share < 0.55  # class-balanced although class 1 is 10% of the data
    no_rep = list(WeightedRandomSampler([1, 1, 0, 1], 3, replacement=False, generator=np.random.default_rng(0)))
    assert sorted(no_rep) == [0, 1, 3]
    with pytest.raises(ValueError, match="without replacement"):
        WeightedRandomSampler([1, 0, 0], 2, replacement=False)
    with pytest.raises(ValueError, match="non-negative"):
        WeightedRandomSampler([1, -1], 2)


Point = namedtuple("Point", "x y")


def test_default_collate_matches_torch():
    batch = [
        {"img": np.full((2, 2), i, dtype=np.float32), "label": i, "w": 0.5 * i, "name": f"s{i}",
         "pair": (i, np.int64(i)), "pt": Point(i, 2.0 * i), "t": lamina.tensor([i, i + 1])}
        for i in range(3)
    ]
    ours = default_collate(batch)
    tbatch = [{**b, "t": torch.tensor(b["t"].numpy())} for b in batch]
    ref = tud.default_collate(tbatch)
    assert ours["img"].shape == (3, 2, 2) and ours["img"].dtype == lamina.float32
    for key in ("label", "w"):
        assert ours[key].tolist() == ref[key].tolist()
        assert str(ours[key].dtype) == str(ref[key].dtype).replace("torch.", "")
    assert ours["name"] == ref["name"]
    assert isinstance(ours["pair"], list) and ours["pair"][1].tolist() == ref["pair"][1].tolist()
    assert isinstance(ours["pt"], Point) and ours["pt"].y.tolist() == [0.0, 2.0, 4.0]
    assert ours["t"].tolist() == ref["t"].tolist()
    with pytest.raises(RuntimeError, match="same shape"):
        default_collate([np.zeros(2), np.zeros(3)])


def test_collate_keeps_graph():
    a = lamina.tensor([1.0, 2.0], requires_grad=True)
    out = default_collate([a, a * 2])
    out.sum().backward()
    assert a.grad.tolist() == [3.0, 3.0]
