"""``CIFAR10`` and ``CIFAR100`` from the binary version of the files; nothing is downloaded.

CIFAR-10 (``cifar-10-batches-bin/``): ``data_batch_1.bin`` … ``data_batch_5.bin`` and
``test_batch.bin``, records of 1 label byte + 3,072 pixel bytes (1,024 red, 1,024 green,
1,024 blue, row-major 32×32). CIFAR-100 (``cifar-100-binary/``): ``train.bin`` and ``test.bin``,
records of a coarse label byte, a fine label byte and 3,072 pixel bytes; lamina's labels are the
fine ones (100 classes), as torchvision's. A file whose size is not a whole number of records,
larger than a file of that data set can be (``max_records``: checked before a raw file is read,
and while a gzip one is expanded), or holding a label out of range, raises a
:class:`~lamina.datasets.files.DatasetFileError` naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .. import backend
from .files import DatasetFileError, DataStream, check_labels, find_file
from .vision import VisionDataset, uint8_chw_to_tensor

__all__ = ["CIFAR10", "CIFAR100"]

xp = backend.xp

_PIXELS = 3 * 32 * 32


class CIFAR10(VisionDataset):
    """CIFAR-10 from its binary files in ``root`` (or ``root/cifar-10-batches-bin``).

    Samples are ``(image, label)``: ``image`` a float32 Tensor ``(3, 32, 32)`` in [0, 1], ``label`` an int.

    Args:
        root: the folder holding the files (or their torchvision sub-folder).
        train: the five training batches or the test batch.
        transform, target_transform: as in torchvision.
        download: must be False: lamina works offline.

    Attributes:
        data: uint8 array ``(N, 32, 32, 3)`` (HWC, as torchvision's); targets: int64 ``(N,)``; classes.
    """

    base_folder = "cifar-10-batches-bin"
    train_files = [f"data_batch_{i}.bin" for i in range(1, 6)]
    test_files = ["test_batch.bin"]
    label_bytes = 1
    max_records = 10_000  # each batch file of CIFAR-10 holds 10,000 images
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    def __init__(self, root: str, train: bool = True, transform: Callable[[Any], Any] | None = None,
                 target_transform: Callable[[Any], Any] | None = None, download: bool = False) -> None:
        super().__init__(root, transform, target_transform)
        name = type(self).__name__
        if download:
            raise RuntimeError(f"{name}: lamina downloads nothing; put the binary files in {root} yourself")
        self.train = train
        folders = [os.path.join(root, self.base_folder), root]
        images, labels = [], []
        for fname in self.train_files if train else self.test_files:
            path = find_file(folders, [fname], name, fname)
            x, y = self._read(path, name)
            images.append(x)
            labels.append(y)
        self.data = xp.concatenate(images).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        self.targets = xp.concatenate(labels)

    def _read(self, path: str, name: str) -> tuple[Any, Any]:
        record = self.label_bytes + _PIXELS
        most = self.max_records * record
        limit = f"what a {name} file can hold ({self.max_records:,} records)"
        with DataStream(path, name) as s:
            if s.compressed:  # the size shows only while the stream is read: stop past the largest file
                raw = s.read(most + 1)
                if len(raw) > most:
                    raise DatasetFileError(f"{name}: {path} expands to more than {most:,} bytes, {limit}")
                table = xp.frombuffer(raw, dtype=xp.uint8)
            else:
                if s.disk_size > most:
                    raise DatasetFileError(f"{name}: {path} holds {s.disk_size:,} bytes, more than {limit}")
                table = s.read_array((s.disk_size,), xp.uint8, "its records") if s.disk_size % record == 0 else None
        if table is None or len(table) == 0 or len(table) % record:
            size = s.disk_size if table is None else len(table)
            raise DatasetFileError(f"{name}: {path} is truncated or not a CIFAR binary file: its size {size} "
                                   f"bytes is not a whole number of {record}-byte records")
        table = table.reshape(-1, record)
        if self.label_bytes == 2:
            check_labels(table[:, 0].astype(backend.int64), 20, path, name + " (coarse label)")
        labels = table[:, self.label_bytes - 1].astype(backend.int64)
        check_labels(labels, len(self.classes), path, name)
        return table[:, self.label_bytes:], labels

    def _image(self, index: int) -> Any:
        return uint8_chw_to_tensor(self.data[index].transpose(2, 0, 1))


class CIFAR100(CIFAR10):
    """CIFAR-100 from its binary files in ``root`` (or ``root/cifar-100-binary``); fine labels (100 classes)."""

    base_folder = "cifar-100-binary"
    train_files = ["train.bin"]
    test_files = ["test.bin"]
    label_bytes = 2
    max_records = 50_000  # train.bin; test.bin holds 10,000
    classes = [
        "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl",
        "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair",
        "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur", "dolphin",
        "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp",
        "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
        "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck",
        "pine_tree", "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
        "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider", "squirrel",
        "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
        "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
    ]
