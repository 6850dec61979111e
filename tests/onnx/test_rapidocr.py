"""Real networks: rapidocr's trained ONNX models (a MobileNet text-direction classifier, a DBNet
text detector, a text recognizer) converted to lamina, run on real photos, against onnxruntime.

CI installs rapidocr with ``--no-deps`` (its own dependencies, OpenCV and more, are not needed
to read its model files); there a missing package fails the test, elsewhere it skips."""

import glob
import os

import numpy as np
import pytest

import lamina
import lamina.onnx

from ._helpers import session


def _need(module):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{module} is not installed (CI installs it: pip install --no-deps rapidocr; "
                    f"pip install scikit-image)")


def _model_file(pattern):
    rapidocr = _need("rapidocr")
    found = sorted(glob.glob(os.path.join(os.path.dirname(rapidocr.__file__), "models", pattern)))
    assert found, f"rapidocr ships no model matching {pattern}"
    return found[0]


def _photo(h, w):
    """scikit-image's photo of printed text (a real image), as an RGB array resized to h × w."""
    data = _need("skimage.data")
    from PIL import Image

    img = Image.fromarray(data.text()).convert("RGB").resize((w, h), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255.0


def _run_both(path, x):
    m = lamina.onnx.convert(path)
    assert sum(p.numel() for p in m.parameters()) > 100_000  # the trained weights, as Parameters
    with lamina.no_grad():
        got = m(lamina.tensor(x))
    sess = session(open(path, "rb").read())
    ref = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    got = (got[0] if isinstance(got, tuple) else got).numpy()
    assert got.shape == ref.shape
    return ref, got


def test_text_direction_classifier():
    img = _photo(48, 192)
    up = (img.transpose(2, 0, 1) - 0.5) / 0.5
    x = np.stack([up, up[:, ::-1, ::-1]]).astype(np.float32)  # the photo, and upside down
    ref, got = _run_both(_model_file("*cls*.onnx"), x)
    assert np.abs(ref - got).max() < 1e-4
    np.testing.assert_allclose(got.sum(1), 1, atol=1e-5)


def test_text_detector():
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    x = ((_photo(96, 256) - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)
    ref, got = _run_both(_model_file("*det*.onnx"), x)
    assert np.abs(ref - got).max() < 1e-4
    assert (got > 0.5).mean() > 0.01  # the network does find text in the photo


def test_text_recognizer():
    x = ((_photo(48, 160).transpose(2, 0, 1) - 0.5) / 0.5)[None].astype(np.float32)
    ref, got = _run_both(_model_file("*rec*.onnx"), x)
    assert np.abs(ref - got).max() < 1e-4
