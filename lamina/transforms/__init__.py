"""Floor 4: ``lamina.transforms`` — image transforms with torchvision's names, composable and seeded.

Inputs: lamina Tensors ``(C, H, W)`` / ``(N, C, H, W)``, NumPy ``(H, W[, C])`` arrays, and PIL images
where Pillow is installed; each transform returns the type it was given (``ToTensor`` converts).
Random transforms take ``generator=`` or draw from lamina's global generator. Plain array code:
no autograd.

Example:
    >>> import lamina
    >>> from lamina import transforms as T
    >>> _ = lamina.manual_seed(0)
    >>> aug = T.Compose([T.RandomCrop(8, padding=2), T.RandomHorizontalFlip(), T.Normalize([0.5], [0.25])])
    >>> tuple(aug(lamina.rand(1, 8, 8)).shape)
    (1, 8, 8)
"""

from . import detection, functional
from .augment import ColorJitter, GaussianBlur, RandomAffine, RandomErasing, RandomRotation
from .functional import InterpolationMode
from .standardize import ZCAWhitening, compute_mean_std
from .transforms import (
    CenterCrop,
    Compose,
    Grayscale,
    Lambda,
    Normalize,
    Pad,
    RandomApply,
    RandomChoice,
    RandomCrop,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomOrder,
    RandomResizedCrop,
    RandomVerticalFlip,
    Resize,
    ToTensor,
    Transform,
)

__all__ = ["functional", "detection", "InterpolationMode", "Transform", "Compose", "ToTensor", "Normalize", "Resize",
           "CenterCrop", "Pad", "RandomCrop", "RandomResizedCrop", "RandomHorizontalFlip", "RandomVerticalFlip",
           "RandomRotation", "RandomAffine", "ColorJitter", "RandomErasing", "GaussianBlur", "Grayscale",
           "RandomGrayscale", "Lambda", "RandomApply", "RandomChoice", "RandomOrder", "compute_mean_std",
           "ZCAWhitening"]
