"""Reading users' time series (CSV wide and long, NumPy .npz): windows, standardization, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from lamina.datasets import DatasetFileError
from lamina.datasets.series import SeriesDataset, make_windows, read_series, series_split


def _write(path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_wide_csv_one_series_per_row(tmp_path) -> None:
    p = _write(tmp_path / "w.csv", "t0,label,t1,t2\n1,b,2,3\n4,a,5,6\n")
    series, labels = read_series(p)
    assert labels == ["b", "a"]
    np.testing.assert_array_equal(series[0], [[1, 2, 3]])  # the label column may sit anywhere
    np.testing.assert_array_equal(series[1], [[4, 5, 6]])


def test_long_csv_one_row_per_step(tmp_path) -> None:
    p = _write(tmp_path / "l.csv", "id,label,x,y\ns1,0,1,10\ns1,0,2,20\ns1,0,3,30\ns2,1,4,40\ns2,1,5,50\n")
    series, labels = read_series(p)
    assert labels == ["0", "1"]
    np.testing.assert_array_equal(series[0], [[1, 2, 3], [10, 20, 30]])  # (channels, steps)
    np.testing.assert_array_equal(series[1], [[4, 5], [40, 50]])


def test_npz(tmp_path) -> None:
    p = str(tmp_path / "s.npz")
    np.savez(p, x=np.arange(12.0).reshape(2, 2, 3), y=np.array([3, 1]))
    series, labels = read_series(p)
    assert labels == ["3", "1"] and series[1].shape == (2, 3)


def test_windows_with_stride_keep_labels() -> None:
    s = [np.arange(10.0)[None], np.arange(7.0)[None] + 100]
    x, y = make_windows(s, [0, 1], 4, 3, "test")
    # starts 0, 3, 6 of the first (length 10) and 0, 3 of the second (length 7)
    assert x.shape == (5, 1, 4) and y.tolist() == [0, 0, 0, 1, 1]
    np.testing.assert_array_equal(x[2, 0], [6, 7, 8, 9])
    np.testing.assert_array_equal(x[4, 0], [103, 104, 105, 106])
    with pytest.raises(DatasetFileError, match="different lengths \\(7 to 10 steps\\); give --window"):
        make_windows(s, [0, 1], None, None, "test")
    with pytest.raises(DatasetFileError, match="no series is as long as the window \\(20 steps"):
        make_windows(s, [0, 1], 20, None, "test")


def test_standardization_uses_the_training_statistics() -> None:
    rng = np.random.default_rng(0)
    train = [np.stack([rng.normal(5, 2, 50), rng.normal(-1, 0.5, 50)]) for _ in range(8)]
    test = [np.stack([rng.normal(5, 2, 50), np.full(50, -1.0)]) for _ in range(3)]
    tr = SeriesDataset(train, [0] * 8, ["a"])
    assert np.allclose(tr.data.mean(axis=(0, 2)), 0, atol=1e-5) and np.allclose(tr.data.std(axis=(0, 2)), 1,
                                                                                     atol=1e-4)
    te = SeriesDataset(test, [0] * 3, ["a"], stats=(tr.mean, tr.std))
    raw = np.stack(test)
    np.testing.assert_allclose(te.data, (raw - tr.mean[:, None]) / tr.std[:, None], rtol=1e-5, atol=1e-5)
    x, y = te[1]
    assert tuple(x.shape) == (2, 50) and y == 0
    const = SeriesDataset([np.ones((1, 5))], [0], ["a"])  # a constant channel: centred, not divided by 0
    assert np.all(const.data == 0)


def test_split_is_seeded_and_disjoint() -> None:
    a, b = series_split(50, 3)
    assert len(b) == 10 and not set(a) & set(b) and sorted([*a, *b]) == list(range(50))
    np.testing.assert_array_equal(series_split(50, 3)[1], b)
    assert not np.array_equal(series_split(50, 4)[1], b)


@pytest.mark.parametrize("text, message", [
    ("", "needs a header row and at least one data row"),
    ("a,b\n1,2\n", "no label column 'label' in its header \\(a, b\\)"),
    ("label,a,b\n0,1\n", "line 2: 2 fields, but the header has 3"),
    ("label,a,b\n0,1,x\n", "line 2, column 'b': expected a number, got 'x'"),
    ("label,a,b\n0,1,nan\n", "line 2, column 'b': the value 'nan' is not finite"),
    ("id,label,a\n1,0,1\n1,1,2\n", "line 3: series '1' changes its label from '0' to '1'"),
    ("id,label,a\n1,0,1\n2,0,2\n1,0,3\n", "line 4: the rows of series '1' are not together"),
    ("label\n0\n", "no value columns besides 'label'"),
])
def test_malformed_csv_is_named(tmp_path, text: str, message: str) -> None:
    p = _write(tmp_path / "bad.csv", text)
    with pytest.raises(DatasetFileError, match=f"series: {p}.*{message}" if "line" in message else message):
        read_series(p)


def test_malformed_npz_and_missing_file(tmp_path) -> None:
    p = str(tmp_path / "s.npz")
    np.savez(p, x=np.zeros((2, 3)))
    with pytest.raises(DatasetFileError, match="must hold arrays 'x' and 'y', found x"):
        read_series(p)
    np.savez(p, x=np.zeros((2, 3)), y=np.zeros(3))
    with pytest.raises(DatasetFileError, match="expected x \\(N, L\\) or \\(N, C, L\\) numbers and y \\(N,\\)"):
        read_series(p)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetFileError, match="cannot read .*junk.npz as a NumPy .npz"):
        read_series(str(tmp_path / "junk.npz"))
    with pytest.raises(DatasetFileError, match="series: no file"):
        read_series(str(tmp_path / "none.csv"))
