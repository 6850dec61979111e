"""conv layers (filled in by the convolution-family work; see issue 4)."""

from __future__ import annotations

__all__: list[str] = []
