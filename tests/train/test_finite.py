"""Finding NaN and inf in a model's weights, its inputs and its outputs, and saying where."""

import numpy as np
import pytest

import lamina
from lamina.train.finite import check_finite, nonfinite_rows, nonfinite_state


def test_nonfinite_state_and_rows():
    net = lamina.nn.Sequential(lamina.nn.Linear(2, 2), lamina.nn.BatchNorm1d(2))
    assert nonfinite_state(net) == []
    net[0].bias.data = lamina.tensor([0.0, float("inf")])
    net[1].running_var.data = lamina.tensor([float("nan"), 1.0])
    assert nonfinite_state(net) == ["0.bias", "1.running_var"]  # buffers too; the int64 counter is skipped
    rows = nonfinite_rows(np.array([[1.0, 2.0], [np.nan, 0.0], [0.0, -np.inf]]))
    assert rows.tolist() == [False, True, True]


def test_check_finite_names_the_samples_and_the_cause():
    check_finite(np.zeros((2, 3)), "predict")  # finite: nothing happens
    out = np.array([[0.0, 1.0], [np.nan, np.nan]])
    with pytest.raises(ValueError, match=r"^predict: the model output is not finite \(NaN or inf\) for b\.png; "):
        check_finite(out, "predict", samples=["a.png", "b.png"])
    inputs = np.array([[[0.0]], [[np.nan]]])
    with pytest.raises(ValueError, match=r"for b\.png: the input holds NaN or inf \(b\.png\)"):
        check_finite(out, "predict", samples=["a.png", "b.png"], inputs=inputs)
    net = lamina.nn.Linear(1, 2)
    net.weight.data = lamina.tensor([[float("nan")], [1.0]])
    with pytest.raises(ValueError, match=r"for sample 1: the model's weights hold NaN or inf \(weight\)"):
        check_finite(out, "evaluate", model=net)
