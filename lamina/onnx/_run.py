"""``lamina export RUN --format onnx``: a trained run folder (or checkpoint) as an ONNX file."""

from __future__ import annotations

import os

from .. import backend
from ..autograd import Tensor
from ..train.run import data_info, load_run, model_input_size, resolve_checkpoint
from ._export import export

__all__ = ["export_run"]


def export_run(run: str, out: str | None = None, opset_version: int = 17) -> str:
    """Export the model of ``run`` (a run folder or checkpoint) to ONNX with a dynamic batch;
    returns the file written (default: ``model.onnx`` beside the checkpoint). The graph takes
    ``input`` — ``(batch, channels, side, side)`` images, or ``(batch, 2)`` points — and gives
    ``output``, the class scores (logits)."""
    config, model, _ = load_run(run)
    info = data_info(config)
    if info["channels"] == 0:
        shape: tuple[int, ...] = (1, 2)
    else:
        side = model_input_size(config, info["size"])
        shape = (1, info["channels"], side, side)
    x = Tensor._wrap(backend.xp.zeros(shape, dtype=backend.get_default_dtype()))
    if out is None:
        out = os.path.join(os.path.dirname(os.path.abspath(resolve_checkpoint(run))), "model.onnx")
    export(model, x, out, input_names=["input"], output_names=["output"],
           dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, opset_version=opset_version)
    return out
