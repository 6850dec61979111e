"""Floor 4: data sets that lamina generates or ships with, and readers for users' files (nothing is downloaded)."""

from .cifar import CIFAR10, CIFAR100
from .digits import Digits, load_digits
from .files import DatasetFileError
from .folder import IMG_EXTENSIONS, DatasetFolder, ImageFolder, read_image
from .mnist import MNIST, FashionMNIST, read_idx
from .mnist1d import MNIST1D, MNIST1D_DEFAULTS, make_mnist1d, mnist1d_templates
from .shapes import SHAPE_CLASSES, Shapes, masks_to_boxes, render_shape
from .synthetic import *  # noqa: F403
from .synthetic import __all__ as _synthetic_all
from .vision import VisionDataset

__all__ = list(_synthetic_all) + [
    "VisionDataset", "Digits", "load_digits", "Shapes", "SHAPE_CLASSES", "render_shape", "masks_to_boxes",
    "MNIST", "FashionMNIST", "read_idx", "CIFAR10", "CIFAR100", "DatasetFolder", "ImageFolder", "IMG_EXTENSIONS",
    "DatasetFileError", "read_image", "MNIST1D", "MNIST1D_DEFAULTS", "make_mnist1d", "mnist1d_templates",
]
