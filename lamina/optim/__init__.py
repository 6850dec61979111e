"""Floor 3: optimizers and learning-rate schedules (``lamina.optim``), as ``torch.optim``.

The torch-equivalent optimizers (``SGD``, ``Adam`` …, ``LBFGS``) follow torch's update rules,
options and defaults exactly; ``GradientDescent``, ``Newton``, ``NonlinearCG`` and the
``GradientNoise`` wrapper go beyond torch. Schedules live in ``lamina.optim.lr_scheduler``,
weight averaging in ``lamina.optim.swa_utils``.
"""

from . import lr_scheduler, swa_utils
from .adam import Adam, Adamax, AdamW, NAdam, RAdam
from .adaptive import ASGD, Adadelta, Adagrad, RMSprop, Rprop
from .early_stopping import EarlyStopping
from .gradient_noise import GradientNoise
from .lbfgs import LBFGS
from .optimizer import Optimizer, required
from .second_order import Newton, NonlinearCG
from .sgd import SGD, GradientDescent

__all__ = [
    "Optimizer", "required", "SGD", "Adagrad", "Adadelta", "RMSprop", "Adam", "AdamW", "Adamax", "NAdam",
    "RAdam", "ASGD", "Rprop", "LBFGS", "GradientDescent", "Newton", "NonlinearCG", "GradientNoise",
    "EarlyStopping", "lr_scheduler", "swa_utils",
]
