"""Floor 3: neural-network building blocks (``lamina.nn``), as ``torch.nn``."""

from . import functional, init, parallel, utils
from .modules import *  # noqa: F403
from .modules import __all__ as _modules_all
from .parallel import DataParallel
from .parameter import Buffer, Parameter

__all__ = ["functional", "init", "utils", "parallel", "Parameter", "Buffer", "DataParallel"] + _modules_all
