"""Floor 4: the classic networks of the lectures, by name (torchvision's names where it has them).

Every builder takes keyword options (``num_classes`` …) and is also reachable by name through
:func:`get_model` (and ``lamina train --model NAME``). Models that torchvision also has share its
module structure, ``state_dict`` keys, shapes and parameter counts, so its checkpoints load.

Example:
    >>> import lamina
    >>> m = lamina.models.get_model("resnet18", num_classes=10)
    >>> sum(p.numel() for p in m.parameters())
    11181642
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import nn
from . import detection
from ._init import no_weight_init
from .alexnet import AlexNet, alexnet
from .backbone_utils import ClassifierBackbone, backbone_lr_groups, classifier_backbone
from .cifar import CifarResNet, WideResNet, resnet20, resnet32, resnet56, wrn28_10
from .densenet import DenseNet, densenet121, densenet161, densenet169, densenet201
from .detection import fasterrcnn_small, maskrcnn_small
from .feature_extraction import create_feature_extractor, get_graph_node_names
from .googlenet import GoogLeNet, GoogLeNetOutputs, googlenet
from .lenet import LeNet5, LeNetSmall, lenet5, lenet_small
from .mobilenet import MobileNetV1, MobileNetV2, mobilenet_v1, mobilenet_v2
from .mtcnn import MTCNN, ONet, PNet, RNet, facenet_pytorch_weights_dir, mtcnn
from .resnet import (
    ResNet,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
    resnext50_32x4d,
    wide_resnet50_2,
    wide_resnet101_2,
)
from .segmentation import FCN, DeepLabV3, UNet, deeplabv3, deeplabv3_resnet50, deeplabv3_resnet101, fcn8s, fcn32s, unet
from .sequence import TCN, CNN1d, RecurrentClassifier, TemporalBlock, cnn1d, gru, lstm, receptive_field, tcn
from .transfer import (
    FrozenBatchNorm2d,
    discriminative_lr_groups,
    freeze,
    freeze_batchnorm,
    replace_head,
    trainable_parameters,
    unfreeze,
)
from .vgg import VGG, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn

__all__ = [
    # classes
    "LeNet5", "LeNetSmall", "AlexNet", "VGG", "GoogLeNet", "GoogLeNetOutputs", "ResNet", "DenseNet", "MobileNetV1",
    "MobileNetV2", "CifarResNet", "WideResNet", "FCN", "UNet", "DeepLabV3", "CNN1d", "TCN", "TemporalBlock",
    "RecurrentClassifier", "MTCNN", "PNet", "RNet", "ONet",
    # builders
    "lenet5", "lenet_small", "alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19",
    "vgg19_bn", "googlenet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
    "wide_resnet50_2", "wide_resnet101_2", "densenet121", "densenet161", "densenet169", "densenet201",
    "mobilenet_v1", "mobilenet_v2", "resnet20", "resnet32", "resnet56", "wrn28_10", "fcn32s", "fcn8s", "unet",
    "deeplabv3", "deeplabv3_resnet50", "deeplabv3_resnet101", "fasterrcnn_small", "maskrcnn_small",
    "cnn1d", "tcn", "gru", "lstm", "receptive_field",
    "mtcnn", "facenet_pytorch_weights_dir",  # a face detector: not in get_model's registry
    # transfer learning and feature extraction
    "freeze", "unfreeze", "trainable_parameters", "replace_head", "discriminative_lr_groups", "freeze_batchnorm",
    "FrozenBatchNorm2d", "create_feature_extractor", "get_graph_node_names", "ClassifierBackbone",
    "classifier_backbone", "backbone_lr_groups",
    # registry and construction
    "detection", "no_weight_init", "get_model", "list_models", "register_model",
]

_BUILDERS = [
    lenet5, lenet_small, alexnet, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn, googlenet,
    resnet18, resnet34, resnet50, resnet101, resnet152, resnext50_32x4d, wide_resnet50_2, wide_resnet101_2,
    densenet121, densenet161, densenet169, densenet201, mobilenet_v1, mobilenet_v2, resnet20, resnet32, resnet56,
    wrn28_10, fcn32s, fcn8s, unet, deeplabv3, deeplabv3_resnet50, deeplabv3_resnet101,
    fasterrcnn_small, maskrcnn_small, cnn1d, tcn, gru, lstm,
]
_REGISTRY: dict[str, Callable[..., nn.Module]] = {b.__name__: b for b in _BUILDERS}
_REGISTRY["yolov1"] = detection.yolov1


def register_model(name: str, builder: Callable[..., nn.Module]) -> None:
    """Make ``builder`` available as ``get_model(name, ...)`` (and ``lamina train --model name``)."""
    _REGISTRY[name] = builder


def list_models() -> list[str]:
    """The names ``get_model`` knows, sorted."""
    return sorted(_REGISTRY)


def get_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the model called ``name`` (e.g. ``'lenet5'``) with ``kwargs`` (``num_classes`` …)."""
    if name not in _REGISTRY:
        raise ValueError(f"get_model: unknown model {name!r}; known models: {', '.join(list_models())}")
    return _REGISTRY[name](**kwargs)
