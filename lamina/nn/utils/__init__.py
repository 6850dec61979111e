"""``lamina.nn.utils``: helpers around modules and parameters."""

from . import parametrizations, parametrize
from .clip_grad import *  # noqa: F403
from .clip_grad import __all__ as _clip_grad_all
from .conv_arithmetic import *  # noqa: F403
from .conv_arithmetic import __all__ as _conv_arithmetic_all
from .convert_parameters import *  # noqa: F403
from .convert_parameters import __all__ as _convert_parameters_all
from .skip_init import skip_init
from .spectral_norm import remove_spectral_norm, spectral_norm
from .weight_norm import remove_weight_norm, weight_norm

__all__ = _clip_grad_all + _conv_arithmetic_all + _convert_parameters_all + [
    "skip_init", "weight_norm", "remove_weight_norm", "spectral_norm", "remove_spectral_norm", "parametrize",
    "parametrizations"]
