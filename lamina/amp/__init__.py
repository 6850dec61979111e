"""Floor 3: ``lamina.amp`` — torch's mixed-precision API, truthfully on a CPU-only library.

``autocast`` casts nothing (operations run in their inputs' dtypes) and says so once when it is
asked for a precision lamina does not autocast to; ``GradScaler`` scales losses on the CPU as
torch's does, and passes through (disabled, with torch's warning) when asked for CUDA.
"""

from .autocast_mode import autocast, is_autocast_available
from .grad_scaler import GradScaler

__all__ = ["autocast", "GradScaler", "is_autocast_available"]
