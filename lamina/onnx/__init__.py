"""ONNX both ways (floor 5, beside ``lamina.train`` and ``lamina.vis``): :func:`export` traces a
lamina model into an ONNX file; :func:`convert` turns an ONNX graph into a lamina module.
Needs the ``onnx`` package."""

from ._convert import OnnxModule, convert
from ._export import UnsupportedOperatorError, export
from ._run import export_run

__all__ = ["export", "export_run", "convert", "OnnxModule", "UnsupportedOperatorError"]
