"""Floor 3: optimizers and learning-rate schedules (``lamina.optim``), as ``torch.optim``."""

__all__: list[str] = []
