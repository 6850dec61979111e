"""clip_grad helpers of lamina.nn.utils."""

from __future__ import annotations

__all__: list[str] = []
