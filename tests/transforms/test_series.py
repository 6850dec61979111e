"""Time-series augmentations: what each does, seeded, types kept."""

from __future__ import annotations

import numpy as np
import pytest

import lamina
from lamina.transforms import series as TS


def _gen(seed: int = 0):
    return np.random.default_rng(seed)


def test_jitter_adds_noise_of_the_given_scale() -> None:
    x = np.zeros((2, 5000), dtype=np.float32)
    y = TS.Jitter(0.1, generator=_gen())(x)
    assert isinstance(y, np.ndarray) and y.dtype == np.float32
    assert abs(y.std() - 0.1) < 0.005 and abs(y.mean()) < 0.005


def test_scaling_is_one_factor_per_channel() -> None:
    x = lamina.ones(3, 10)
    y = TS.Scaling(0.2, generator=_gen())(x)
    assert isinstance(y, lamina.Tensor)
    a = y.array
    assert np.allclose(a, a[:, :1]) and not np.allclose(a[0, 0], a[1, 0])


def test_time_shift_rolls_within_the_bound() -> None:
    x = np.arange(10, dtype=np.float64)[None]
    for seed in range(20):
        y = TS.TimeShift(3, generator=_gen(seed))(x)
        k = int(np.argmin(y[0]))  # where the 0 went
        assert min(k, 10 - k) <= 3 and np.array_equal(np.roll(x, k, -1), y)


def test_window_slice_stretches_a_window_back() -> None:
    x = np.arange(11, dtype=np.float64)[None]  # a ramp stays a ramp: window [s, s + 5] stretched to 11 steps
    y = TS.WindowSlice(0.5, generator=_gen(1))(x)[0]
    assert y.shape == (11,)
    np.testing.assert_allclose(np.diff(y), 0.5)
    assert 0 <= y[0] <= 5 and y[-1] == y[0] + 5


def test_seeded_and_global_generator() -> None:
    x = np.random.default_rng(0).standard_normal((1, 40)).astype(np.float32)
    aug = TS.Compose([TS.Jitter(0.05), TS.Scaling(0.1), TS.TimeShift(4), TS.WindowSlice(0.8)])
    lamina.manual_seed(5)
    a = aug(x)
    lamina.manual_seed(5)
    np.testing.assert_array_equal(aug(x), a)
    assert not np.array_equal(aug(x), a)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="Jitter: sigma must be a non-negative number"):
        TS.Jitter(-1)
    with pytest.raises(ValueError, match="WindowSlice: ratio must lie in \\(0, 1\\]"):
        TS.WindowSlice(1.5)
    with pytest.raises(ValueError, match="TimeShift: expected a float series \\(C, L\\)"):
        TS.TimeShift(2)(np.zeros(5))
