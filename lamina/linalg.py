"""``lamina.linalg``: torch.linalg's functions, batched over leading dims, differentiable.

Matches ``torch.linalg`` for real (float32/float64) matrices; see :mod:`lamina.ops.matrix`,
:mod:`lamina.ops.decomp` and :mod:`lamina.ops.norms` for the backward formulas.
"""

from .autograd.tensor import Tensor
from .ops.decomp import eigh, eigvalsh, lstsq, pinv, qr, svd, svdvals
from .ops.diagonal import diagonal as _diagonal
from .ops.linalg import matmul
from .ops.linalg_misc import linalg_cross as cross
from .ops.linalg_misc import matrix_power, matrix_rank, multi_dot, vecdot
from .ops.matrix import cholesky, det, inv, slogdet, solve, solve_triangular
from .ops.norms import linalg_norm as norm
from .ops.norms import matrix_norm, vector_norm

__all__ = ["norm", "vector_norm", "matrix_norm", "det", "slogdet", "inv", "solve", "solve_triangular", "cholesky",
           "qr", "eigh", "eigvalsh", "svd", "svdvals", "pinv", "lstsq", "matmul", "diagonal",
           "cross", "vecdot", "multi_dot", "matrix_power", "matrix_rank"]


def diagonal(A: Tensor, *, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """``torch.linalg.diagonal``: :func:`lamina.diagonal` with the last two dims as default."""
    return _diagonal(A, offset, dim1, dim2)
