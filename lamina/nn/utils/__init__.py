"""``lamina.nn.utils``: helpers around modules and parameters."""

from .clip_grad import *  # noqa: F403
from .clip_grad import __all__ as _clip_grad_all
from .conv_arithmetic import *  # noqa: F403
from .conv_arithmetic import __all__ as _conv_arithmetic_all
from .convert_parameters import *  # noqa: F403
from .convert_parameters import __all__ as _convert_parameters_all
from .skip_init import skip_init

__all__ = _clip_grad_all + _conv_arithmetic_all + _convert_parameters_all + ["skip_init"]
