"""Floor 4: data sets that lamina generates or ships with (nothing is downloaded)."""

from .synthetic import *  # noqa: F403
from .synthetic import __all__ as _synthetic_all

__all__ = list(_synthetic_all)
