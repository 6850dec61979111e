"""Floor 4: data sets that lamina generates or ships with, and readers for users' files (nothing is downloaded)."""

from .cifar import CIFAR10, CIFAR100
from .coco import CocoDetection
from .digits import Digits, load_digits
from .files import DatasetFileError
from .folder import IMG_EXTENSIONS, DatasetFolder, ImageFolder, read_image
from .mnist import MNIST, FashionMNIST, read_idx
from .segmentation_folder import SegmentationFolder
from .shapes import SHAPE_CLASSES, Shapes, masks_to_boxes, render_shape
from .shapes_detection import ShapesDetection
from .synthetic import *  # noqa: F403
from .synthetic import __all__ as _synthetic_all
from .vision import VisionDataset
from .voc import VOC_CLASSES, VOCDetection

__all__ = list(_synthetic_all) + [
    "VisionDataset", "Digits", "load_digits", "Shapes", "ShapesDetection", "SHAPE_CLASSES", "render_shape",
    "masks_to_boxes", "MNIST", "FashionMNIST", "read_idx", "CIFAR10", "CIFAR100", "DatasetFolder", "ImageFolder",
    "IMG_EXTENSIONS", "DatasetFileError", "read_image", "CocoDetection", "VOCDetection", "VOC_CLASSES",
    "SegmentationFolder",
]
