"""Floor 5: visualizations — optimizer paths on 2-D loss surfaces (``optim_paths``) and tools to
look inside CNNs. Plotting needs matplotlib (the optional ``plot`` extra), imported lazily."""

from . import optim_paths
from .optim_paths import optimizer_paths, plot_optimizer_paths

__all__ = ["optim_paths", "optimizer_paths", "plot_optimizer_paths"]
