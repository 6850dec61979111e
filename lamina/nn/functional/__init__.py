"""``lamina.nn.functional``: the functional forms of layers, as ``torch.nn.functional``.

One file per family; this package re-exports them all.
"""

from ...ops.pad import pad
from .activation import *  # noqa: F403
from .activation import __all__ as _activation_all
from .conv import *  # noqa: F403
from .conv import __all__ as _conv_all
from .distance import *  # noqa: F403
from .distance import __all__ as _distance_all
from .dropout import *  # noqa: F403
from .dropout import __all__ as _dropout_all
from .linear import *  # noqa: F403
from .linear import __all__ as _linear_all
from .loss import *  # noqa: F403
from .loss import __all__ as _loss_all
from .normalization import *  # noqa: F403
from .normalization import __all__ as _normalization_all
from .pooling import *  # noqa: F403
from .pooling import __all__ as _pooling_all
from .segmentation_loss import *  # noqa: F403
from .segmentation_loss import __all__ as _segmentation_loss_all
from .vision import *  # noqa: F403
from .vision import __all__ as _vision_all

__all__ = (
    ["pad"]
    + _activation_all
    + _conv_all
    + _distance_all
    + _dropout_all
    + _linear_all
    + _loss_all
    + _normalization_all
    + _pooling_all
    + _segmentation_loss_all
    + _vision_all
)
