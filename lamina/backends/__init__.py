"""``lamina.backends``: torch.backends' flags, so scripts that set them run.

``cudnn`` and ``mps`` say they are unavailable; their flags (``cudnn.benchmark``,
``cudnn.deterministic``, ``cuda.matmul.allow_tf32`` …) can be read and set as in torch and change
nothing, since lamina has neither library.
"""

from . import cuda, cudnn, mps

__all__ = ["cuda", "cudnn", "mps"]
