"""``lamina.nn.utils``: helpers around modules and parameters."""

__all__: list[str] = []
