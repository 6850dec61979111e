"""``MNIST`` and ``FashionMNIST`` from the user's own IDX files (raw or gzip); nothing is downloaded.

The IDX format (LeCun): a 4-byte magic number ``00 00 TT DD`` (``TT`` the element type, 0x08 for
unsigned bytes; ``DD`` the number of dimensions), ``DD`` big-endian int32 sizes, then the elements
in C order. Files are read as streams and validated: wrong magic number, wrong number of
dimensions or image size (MNIST images are 28×28), a declared size over
``lamina.datasets.files.MAX_DATA_BYTES`` or larger than the gzip can hold (checked before the data
is read), truncated or over-long data, image/label count mismatch and labels out of range raise a
:class:`~lamina.datasets.files.DatasetFileError` naming the file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from .. import backend
from .files import DatasetFileError, DataStream, check_labels, find_file
from .vision import VisionDataset, uint8_chw_to_tensor

__all__ = ["MNIST", "FashionMNIST", "read_idx"]

xp = backend.xp

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str, dataset: str = "read_idx", ndim: int | None = None,
             shape: tuple[int | None, ...] | None = None, limit: int | None = None) -> Any:
    """The array stored in an IDX file (raw or gzip), read as a stream.

    The header is read first; the shape it declares is checked against ``ndim``, ``shape`` and
    ``limit`` before the data is read, then exactly that many bytes are read and the file must end
    there.

    Args:
        path: the file.
        dataset: the name used in error messages.
        ndim: the number of dimensions the file must have (``None``: any).
        shape: the sizes the file must have, ``None`` for any size (e.g. ``(None, 28, 28)``).
        limit: the most data bytes accepted (default ``lamina.datasets.files.MAX_DATA_BYTES``).

    Returns:
        A NumPy array (uint8 for MNIST files).
    """
    with DataStream(path, dataset) as s:
        magic = s.read(4)
        if len(magic) < 4:
            raise DatasetFileError(f"{dataset}: {path} is truncated: {len(magic)} bytes, too short for an IDX "
                                   "header")
        if magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_TYPES:
            raise DatasetFileError(f"{dataset}: {path} is not an IDX file: wrong magic number 0x{magic.hex()} "
                                   f"(expected 0x0000TTDD with type TT in {{08, 09, 0b, 0c, 0d, 0e}})")
        dims = magic[3]
        if ndim is not None and dims != ndim:
            raise DatasetFileError(f"{dataset}: {path}: expected an IDX file with {ndim} dimensions, the magic "
                                   f"number 0x{magic.hex()} says {dims}")
        sizes = s.read(4 * dims)
        if len(sizes) < 4 * dims:
            raise DatasetFileError(f"{dataset}: {path} is truncated inside its header ({4 + len(sizes)} bytes)")
        found = tuple(int(n) for n in xp.frombuffer(sizes, dtype=">i4"))
        if shape is not None and (len(shape) != dims or any(e is not None and e != n for e, n in zip(shape, found))):
            want = "(" + ", ".join("N" if e is None else str(e) for e in shape) + ")"
            raise DatasetFileError(f"{dataset}: {path}: its header declares shape {found}, expected {want}")
        if any(n < 0 for n in found):
            raise DatasetFileError(f"{dataset}: {path}: its header declares a negative size {found}")
        dtype = xp.dtype(_IDX_TYPES[magic[2]])
        what = f"header shape {found}"
        s.expect(math.prod(found) * dtype.itemsize, what, limit)
        arr = s.read_array(found, dtype, what)
        s.end(what)
    return arr.astype(dtype.newbyteorder("="), copy=False)


class MNIST(VisionDataset):
    """MNIST from IDX files in ``root``, with torchvision's file names.

    Looked for in ``root/<Name>/raw``, ``root/<Name>`` and ``root`` (``<Name>`` = ``MNIST`` or
    ``FashionMNIST``): ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte`` (or ``t10k-…``
    for the test set), each raw or with ``.gz``.

    Samples are ``(image, label)``: ``image`` a float32 Tensor ``(1, 28, 28)`` in [0, 1] (the bytes
    divided by 255, as ``ToTensor`` would give), ``label`` an int.

    Args:
        root: the folder holding the files.
        train: the training files (``train-…``) or the test files (``t10k-…``).
        transform, target_transform: as in torchvision.
        download: must be False: lamina works offline.

    Attributes:
        data: uint8 array ``(N, H, W)``; targets: int64 array ``(N,)``; classes: the class names.
    """

    image_size = (28, 28)
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
               "8 - eight", "9 - nine"]

    def __init__(self, root: str, train: bool = True, transform: Callable[[Any], Any] | None = None,
                 target_transform: Callable[[Any], Any] | None = None, download: bool = False) -> None:
        super().__init__(root, transform, target_transform)
        name = type(self).__name__
        if download:
            raise RuntimeError(f"{name}: lamina downloads nothing; put the IDX files in {root} yourself")
        self.train = train
        prefix = "train" if train else "t10k"
        folders = [os.path.join(root, name, "raw"), os.path.join(root, name), root]
        img_path = find_file(folders, [f"{prefix}-images-idx3-ubyte", f"{prefix}-images-idx3-ubyte.gz"], name,
                             f"{prefix} images")
        lbl_path = find_file(folders, [f"{prefix}-labels-idx1-ubyte", f"{prefix}-labels-idx1-ubyte.gz"], name,
                             f"{prefix} labels")
        data = read_idx(img_path, name, ndim=3, shape=(None, *self.image_size))
        targets = read_idx(lbl_path, name, ndim=1)
        for path, arr in ((img_path, data), (lbl_path, targets)):
            if arr.dtype != xp.uint8:
                raise DatasetFileError(f"{name}: {path} holds {arr.dtype} elements, expected unsigned bytes (0x08)")
        if len(data) != len(targets):
            raise DatasetFileError(f"{name}: {img_path} holds {len(data)} images but {lbl_path} holds "
                                   f"{len(targets)} labels")
        targets = targets.astype(backend.int64)
        check_labels(targets, len(self.classes), lbl_path, name)
        self.data, self.targets = data, targets

    def _image(self, index: int) -> Any:
        return uint8_chw_to_tensor(self.data[index])


class FashionMNIST(MNIST):
    """Fashion-MNIST from IDX files (same format and file names as :class:`MNIST`, folder ``FashionMNIST``)."""

    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]
