"""Floor 4: the classic models of the lectures with a scikit-learn interface.

Every estimator fitted by gradient descent (``LinearRegression(solver='gd')``, ``LogisticRegression``,
``MLPClassifier``, ``MLPRegressor``, any solver) raises :class:`DivergenceError` when its loss, a
gradient or a parameter becomes NaN or infinite, naming the iteration (or epoch and batch) and the
learning rate to lower: an error rather than a warning, as ``lamina.train.Trainer`` stops on a NaN
loss, since the fitted model would be meaningless. NumPy's overflow warnings do not leak out of it.
"""

from ._base import DivergenceError
from .linear import LinearRegression, LogisticRegression
from .mlp import MLPClassifier, MLPRegressor

__all__ = ["DivergenceError", "LinearRegression", "LogisticRegression", "MLPClassifier", "MLPRegressor"]
