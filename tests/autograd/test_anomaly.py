"""Anomaly detection as torch's: a nan gradient raises, naming the backward function and output."""

import pytest
import torch

import lamina


def _nan_backward(lib):
    x = lib.tensor([0.0], requires_grad=True)
    (x / x).sum().backward()
    return x


def test_detect_anomaly_raises_where_torch_does():
    with pytest.raises(RuntimeError, match=r"Function 'DivBackward0' returned nan values in its 1th output"):
        with pytest.warns(UserWarning), torch.autograd.detect_anomaly():
            _nan_backward(torch)
    with pytest.raises(RuntimeError, match=r"Function 'DivBackward0' returned nan values in its 1th output"):
        with lamina.autograd.detect_anomaly():
            _nan_backward(lamina)
    assert not lamina.autograd.is_anomaly_enabled()
    assert lamina.autograd.anomaly_mode.is_anomaly_check_nan_enabled()


def test_set_detect_anomaly_switches_at_once_and_restores_as_a_context():
    x = _nan_backward(lamina)  # off: the nan gradient is accumulated, as torch's
    assert x.grad.isnan().any().item()
    lamina.autograd.set_detect_anomaly(True)
    try:
        assert lamina.autograd.is_anomaly_enabled()
        with pytest.raises(RuntimeError, match="nan values"):
            _nan_backward(lamina)
        with lamina.autograd.set_detect_anomaly(False):
            _nan_backward(lamina)
        assert lamina.autograd.is_anomaly_enabled()
        with lamina.autograd.set_detect_anomaly(True, check_nan=False):
            _nan_backward(lamina)
    finally:
        lamina.autograd.set_detect_anomaly(False)
    assert not lamina.autograd.is_anomaly_enabled()
