"""The layer classes of ``lamina.nn``, one family per file."""

from .activation import *  # noqa: F403
from .activation import __all__ as _activation_all
from .container import *  # noqa: F403
from .container import __all__ as _container_all
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
from .module import *  # noqa: F403
from .module import __all__ as _module_all
from .normalization import *  # noqa: F403
from .normalization import __all__ as _normalization_all
from .padding import *  # noqa: F403
from .padding import __all__ as _padding_all
from .pooling import *  # noqa: F403
from .pooling import __all__ as _pooling_all
from .rnn import *  # noqa: F403
from .rnn import __all__ as _rnn_all
from .sync_batchnorm import *  # noqa: F403
from .sync_batchnorm import __all__ as _sync_batchnorm_all
from .vision import *  # noqa: F403
from .vision import __all__ as _vision_all

__all__ = (
    _activation_all
    + _container_all
    + _conv_all
    + _distance_all
    + _dropout_all
    + _linear_all
    + _loss_all
    + _module_all
    + _normalization_all
    + _padding_all
    + _pooling_all
    + _sync_batchnorm_all
    + _rnn_all
    + _vision_all
)
