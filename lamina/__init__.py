"""lamina — a deep-learning library built from first principles on NumPy.

The public API mirrors PyTorch's: ``lamina.tensor``, ``lamina.nn``, ``lamina.optim`` …

Example:
    >>> import lamina
    >>> x = lamina.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad.tolist()
    [2.0, 4.0, 6.0]
"""

import os as _os

from . import backend, runtime

if _os.environ.get("LAMINA_TUNE", "").strip() == "1":  # before the kernels import numba (see runtime.tune)
    runtime.tune()
from .autograd import (
    Function,
    Tensor,
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
    tensor,
)
from .autograd.factory import *  # noqa: F403
from .autograd._print import set_printoptions
from .autograd.legacy import (
    BoolTensor,
    ByteTensor,
    CharTensor,
    DoubleTensor,
    FloatTensor,
    HalfTensor,
    IntTensor,
    LongTensor,
    ShortTensor,
)
from .autograd.factory import __all__ as _factory_all
from .backend import (
    Device,
    Generator,
    bfloat16,
    bool_,
    channels_last,
    channels_last_3d,
    contiguous_format,
    double,
    float16,
    float32,
    float64,
    get_default_dtype,
    half,
    int8,
    int16,
    int32,
    int64,
    long,
    manual_seed,
    memory_format,
    preserve_format,
    set_default_dtype,
    short,
    uint8,
)
from .backend import float as float  # noqa: PLC0414  (torch.float is float32)
from .backend import int as int  # noqa: PLC0414
from .ops import *  # noqa: F403
from .ops import __all__ as _ops_all
from . import autograd, datasets, distributed, linear_model, nn, optim, transforms, utils  # noqa: E402
from . import models, vision  # noqa: E402
from . import accelerator, amp, backends, cuda  # noqa: E402
from . import linalg  # noqa: E402
from .amp import autocast
from ._info import Size, finfo, iinfo
from .nn.functional import (  # torch keeps these at the top level too: torch.conv2d, torch.batch_norm …
    adaptive_avg_pool1d, adaptive_max_pool1d, alpha_dropout, avg_pool1d, batch_norm, bilinear, celu, conv1d,
    conv2d, conv3d, conv_transpose1d, conv_transpose2d, conv_transpose3d, cosine_similarity, dropout, embedding,
    group_norm, pairwise_distance,
    instance_norm, layer_norm, max_pool1d, max_pool2d, max_pool3d, pixel_shuffle, pixel_unshuffle, prelu, selu,
)
from .ops.kernels.threads import get_num_threads, set_num_threads
from .serialization import load, save

bool = bool_  # noqa: A001  (lamina.bool is the dtype, as torch.bool)
device = Device


def is_tensor(obj: object) -> bool:
    """Whether ``obj`` is a lamina Tensor."""
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> int:
    return input.numel()


def from_numpy(array: object) -> Tensor:
    """A tensor sharing memory with the NumPy ``array`` (as ``torch.from_numpy``)."""
    import numpy as _np

    if not isinstance(array, _np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray (got {type(array).__name__})")
    return Tensor._wrap(array)


def as_tensor(data: object, dtype: object = None, device: object = None) -> Tensor:
    """``data`` as a tensor, sharing memory with a NumPy array or Tensor when dtype allows."""
    import numpy as _np

    if isinstance(data, Tensor) and (dtype is None or backend.to_dtype(dtype) == data.dtype):
        return data
    if isinstance(data, _np.ndarray) and (dtype is None or backend.to_dtype(dtype) == data.dtype):
        return Tensor._wrap(data)
    return tensor(data, dtype=dtype, device=device)


def summary(model: object, input_size: object = None, **kwargs: object) -> object:
    """Per-layer output shapes, parameters, multiply-adds and memory of ``model`` (see
    :func:`lamina.train.summary`)."""
    from .train.summary import summary as _summary

    return _summary(model, input_size, **kwargs)


__version__ = "0.1.0"

if runtime.tuned():  # tuned before the kernels imported numba, which loads scipy's BLAS too
    runtime.rescan_blas()

__all__ = [
    "Tensor", "tensor", "Function", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
    "manual_seed", "get_default_dtype", "set_default_dtype", "autograd", "backend", "distributed", "nn", "optim",
    "datasets",
    "linear_model", "transforms", "utils", "float16", "float32", "float64", "half", "double", "int8", "int16",
    "int32", "int64", "long", "short", "uint8", "bool", "float", "int", "device", "is_tensor", "numel",
    "from_numpy", "as_tensor", "save", "load", "get_num_threads", "set_num_threads",
    "summary", "set_printoptions", "models", "vision", "cuda", "amp", "backends", "accelerator", "autocast",
    "inference_mode",
    "is_inference_mode_enabled", "Generator", "memory_format", "channels_last", "channels_last_3d",
    "contiguous_format", "preserve_format", "bfloat16", "FloatTensor", "DoubleTensor", "HalfTensor", "LongTensor",
    "IntTensor", "ShortTensor", "CharTensor", "ByteTensor", "BoolTensor", "finfo", "iinfo", "Size",
    "conv1d", "conv2d", "conv3d", "conv_transpose1d",
    "conv_transpose2d", "conv_transpose3d", "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d",
    "adaptive_avg_pool1d", "adaptive_max_pool1d", "batch_norm", "layer_norm", "group_norm", "instance_norm",
    "pixel_shuffle", "pixel_unshuffle", "dropout", "alpha_dropout", "embedding", "bilinear", "prelu", "selu", "celu",
] + list(_factory_all) + list(_ops_all)
