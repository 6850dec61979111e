"""DataLoader: batching, seeded reshuffling, resumable state, worker processes."""

import json

import numpy as np
import pytest

import lamina
from lamina.utils.data import (
    DataLoader,
    Dataset,
    IterableDataset,
    TensorDataset,
    WeightedRandomSampler,
    get_worker_info,
)


def ds(n=23):
    return TensorDataset(lamina.arange(n).float(), lamina.arange(n))


def epochs(loader, k):
    return [[y.tolist() for _, y in loader] for _ in range(k)]


def test_batches_len_and_drop_last():
    loader = DataLoader(ds(), batch_size=5)
    batches = [y.tolist() for _, y in loader]
    assert batches[0] == [0, 1, 2, 3, 4] and batches[-1] == [20, 21, 22] and len(loader) == 5
    loader = DataLoader(ds(), batch_size=5, drop_last=True)
    assert [len(y) for _, y in loader] == [5] * 4 and len(loader) == 4
    single = list(DataLoader(ds(3), batch_size=None))
    assert [y.item() for _, y in single] == [0, 1, 2]


def test_shuffle_seeded_and_reshuffled_every_epoch():
    a = epochs(DataLoader(ds(), batch_size=4, shuffle=True, seed=7), 3)
    b = epochs(DataLoader(ds(), batch_size=4, shuffle=True, seed=7), 3)
    assert a == b  # same seed ⇒ same batches, epoch by epoch
    assert a[0] != a[1] != a[2]  # reshuffled every epoch
    for e in a:
        assert sorted(sum(e, [])) == list(range(23))
    c = epochs(DataLoader(ds(), batch_size=4, shuffle=True, generator=np.random.default_rng(7)), 3)
    assert c == a
    assert epochs(DataLoader(ds(), batch_size=4, shuffle=True, seed=8), 1) != a[:1]


def test_default_seed_comes_from_global_generator():
    lamina.manual_seed(11)
    a = epochs(DataLoader(ds(), batch_size=4, shuffle=True), 2)
    lamina.manual_seed(11)
    b = epochs(DataLoader(ds(), batch_size=4, shuffle=True), 2)
    assert a == b


def test_resume_between_epochs_reproduces_next_epoch():
    full = DataLoader(ds(), batch_size=4, shuffle=True, seed=3)
    reference = epochs(full, 3)
    run = DataLoader(ds(), batch_size=4, shuffle=True, seed=3)
    first = epochs(run, 1)
    state = json.loads(json.dumps(run.state_dict()))  # a checkpoint stores it as JSON
    resumed = DataLoader(ds(), batch_size=4, shuffle=True, seed=12345)
    resumed.load_state_dict(state)
    assert first + epochs(resumed, 2) == reference


def test_resume_mid_epoch():
    reference = epochs(DataLoader(ds(), batch_size=4, shuffle=True, seed=5), 2)
    run = DataLoader(ds(), batch_size=4, shuffle=True, seed=5)
    it = iter(run)
    head = [next(it)[1].tolist() for _ in range(2)]
    state = run.state_dict()
    assert state["batches_yielded"] == 2
    del it
    resumed = DataLoader(ds(), batch_size=4, shuffle=True, seed=0)
    resumed.load_state_dict(state)
    rest = epochs(resumed, 2)
    assert head + rest[0] == reference[0] and rest[1] == reference[1]


def test_resume_with_own_sampler_generator():
    labels = np.array([0] * 20 + [1] * 3)

    def make(seed):
        w = 1.0 / np.bincount(labels)[labels]
        return DataLoader(ds(), batch_size=5, sampler=WeightedRandomSampler(w, 23, generator=np.random.default_rng(seed)))

    reference = epochs(make(1), 2)
    run = make(1)
    first = epochs(run, 1)
    resumed = make(2)
    resumed.load_state_dict(run.state_dict())
    assert first + epochs(resumed, 1) == reference


def test_argument_errors():
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(ds(), sampler=[0, 1], shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler"):
        DataLoader(ds(), batch_size=4, batch_sampler=[[0, 1]])
    with pytest.raises(ValueError, match="num_workers"):
        DataLoader(ds(), num_workers=-1)
    with pytest.raises(TypeError, match="Generator"):
        DataLoader(ds(), generator=42)
    custom = DataLoader(ds(), batch_sampler=[[3, 1], [0]])
    assert [y.tolist() for _, y in custom] == [[3, 1], [0]] and len(custom) == 2


class Squares(Dataset):
    """NumPy samples, loaded in workers."""

    def __len__(self):
        return 30

    def __getitem__(self, i):
        return np.array([i * i], dtype=np.int64)


class Stream(IterableDataset):
    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, 17, step))

    def __len__(self):
        return 17


def test_workers_give_the_same_batches_as_in_process():
    for shuffle in (False, True):
        single = epochs(DataLoader(ds(), batch_size=3, shuffle=shuffle, seed=9), 2)
        multi = epochs(DataLoader(ds(), batch_size=3, shuffle=shuffle, seed=9, num_workers=2), 2)
        assert single == multi
    a = [b.tolist() for b in DataLoader(Squares(), batch_size=4, num_workers=2, prefetch_factor=1)]
    assert sum(a, []) == [[i * i] for i in range(30)]
    stream = sorted(sum((b.tolist() for b in DataLoader(Stream(), batch_size=4, num_workers=2)), []))
    assert stream == list(range(17))


def test_worker_seeding_and_errors():
    class Noise(Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            info = get_worker_info()
            return np.array([lamina.backend.generator().random(), -1 if info is None else info.id])

    a = [b.numpy() for b in DataLoader(Noise(), batch_size=2, num_workers=2, seed=4)]
    b = [b.numpy() for b in DataLoader(Noise(), batch_size=2, num_workers=2, seed=4)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))  # workers seeded from the loader's seed
    assert [int(x[0, 1]) for x in a] == [0, 1, 0, 1]  # batches alternate between the two workers
    loader = DataLoader(Noise(), batch_size=2, num_workers=2, seed=4)
    assert not np.array_equal(np.concatenate(list(loader)), np.concatenate(list(loader)))  # new seeds each epoch

    class Broken(Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            if i == 4:
                raise KeyError("sample 4 is broken")
            return i

    with pytest.raises(KeyError, match="sample 4 is broken"):
        list(DataLoader(Broken(), batch_size=2, num_workers=2))


class Dies(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        if get_worker_info() is not None and i == 2:
            import os

            os._exit(3)
        return i


def test_dead_worker_and_worker_init_fn():
    with pytest.raises(RuntimeError, match=r"worker \d \(exit code 3\) exited unexpectedly"):
        list(DataLoader(Dies(), batch_size=1, num_workers=2))

    class Info(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return np.array([lamina.backend.generator().integers(0, 1000)])

    def init(worker_id):
        lamina.manual_seed(100 + worker_id)

    out = [b.item() for b in DataLoader(Info(), batch_size=1, num_workers=2, worker_init_fn=init)]
    expect = [int(np.random.default_rng(100 + w).integers(0, 1000)) for w in (0, 1)]
    assert out[:2] == expect
