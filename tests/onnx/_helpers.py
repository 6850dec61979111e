"""Shared by the ONNX tests: onnxruntime on an exported model, relative error."""

import io

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install 'lamina[test]')")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'lamina[test]')")


def to_bytes(model, x, **kw):
    from lamina.onnx import export
    buf = io.BytesIO()
    export(model, x, buf, **kw)
    return buf.getvalue()


def session(data):
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


def rel_err(ref, got):
    ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    assert ref.shape == got.shape, (ref.shape, got.shape)
    return float(np.abs(ref - got).max() / max(np.abs(ref).max(), 1e-30))
