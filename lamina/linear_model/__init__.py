"""Floor 4: the classic models of the lectures with a scikit-learn interface."""

from .linear import LinearRegression, LogisticRegression
from .mlp import MLPClassifier, MLPRegressor

__all__ = ["LinearRegression", "LogisticRegression", "MLPClassifier", "MLPRegressor"]
