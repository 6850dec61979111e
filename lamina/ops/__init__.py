"""Floor 2: differentiable primitives, one family per file. Importing this package attaches
the Tensor methods (``x.relu()``, ``x + y`` …)."""

from . import arithmetic as _arithmetic
from . import cast as _cast
from . import compare as _compare
from . import diagonal as _diagonal
from . import einsum as _einsum
from . import indexing as _indexing
from . import inplace as _inplace  # noqa: F401  (attaches add_, mul_ … to Tensor)
from . import inplace_index as _inplace_index
from . import join as _join
from . import linalg as _linalg
from . import moments as _moments
from . import pad as _pad
from . import promotion as _promotion
from . import random_ops as _random_ops
from . import reduce as _reduce
from . import selection as _selection
from . import setops as _setops
from . import shape as _shape
from . import sort as _sort
from . import stats as _stats
from . import tiling as _tiling
from . import trig as _trig
from . import unary as _unary
from .activation import erf
from .arithmetic import *  # noqa: F403
from .cast import *  # noqa: F403
from .compare import *  # noqa: F403
from .decomp import legacy_cholesky as cholesky
from .decomp import legacy_qr as qr
from .decomp import legacy_svd as svd
from .decomp import pinverse
from .diagonal import *  # noqa: F403
from .einsum import *  # noqa: F403
from .indexing import *  # noqa: F403
from .inplace_index import *  # noqa: F403
from .join import *  # noqa: F403
from .linalg import *  # noqa: F403
from .linalg_misc import cross, matrix_power
from .matrix import det, inverse, logdet, slogdet
from .moments import *  # noqa: F403
from .pad import *  # noqa: F403
from .promotion import *  # noqa: F403
from .random_ops import *  # noqa: F403
from .reduce import *  # noqa: F403
from .selection import *  # noqa: F403
from .setops import *  # noqa: F403
from .shape import *  # noqa: F403
from .sort import *  # noqa: F403
from .stats import *  # noqa: F403
from .tiling import *  # noqa: F403
from .trig import *  # noqa: F403
from .unary import *  # noqa: F403

__all__ = (
    ["erf", "det", "inverse", "logdet", "slogdet", "cross", "matrix_power", "svd", "qr", "cholesky",
     "pinverse"] + _diagonal.__all__
    + _arithmetic.__all__ + _selection.__all__ + _cast.__all__ + _compare.__all__ + _einsum.__all__ + _indexing.__all__
    + _join.__all__
    + _linalg.__all__ + _moments.__all__ + _pad.__all__ + _promotion.__all__ + _reduce.__all__ + _shape.__all__
    + _sort.__all__ + _trig.__all__
    + _unary.__all__ + _random_ops.__all__ + _setops.__all__ + _stats.__all__ + _tiling.__all__
    + _inplace_index.__all__
)
