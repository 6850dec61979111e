"""``ImageFolder`` and ``DatasetFolder``: one sub-folder per class, as in torchvision.

``root/dog/xxx.png``, ``root/cat/123.jpg`` …: classes are the sub-folder names in sorted order.
Images are decoded with Pillow, an optional dependency (``pip install "lamina[image]"``) imported
only when an image is read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from .. import backend
from .files import DatasetFileError
from .vision import VisionDataset, uint8_chw_to_tensor

__all__ = ["DatasetFolder", "ImageFolder", "IMG_EXTENSIONS", "pil_loader", "find_classes", "read_image"]

xp = backend.xp

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise ImportError('ImageFolder: reading images needs Pillow, an optional dependency of lamina; install it '
                          'with: pip install "lamina[image]"') from None
    return Image


def pil_loader(path: str) -> Any:
    """The image at ``path`` as a float32 Tensor ``(3, H, W)`` in [0, 1] (converted to RGB)."""
    image = _pil()
    try:
        with open(path, "rb") as f, image.open(f) as img:
            arr = xp.asarray(img.convert("RGB"))
    except OSError as e:  # PIL.UnidentifiedImageError is an OSError; truncated files raise OSError too
        raise DatasetFileError(f"ImageFolder: cannot read image {path}: {e}") from None
    return uint8_chw_to_tensor(arr.transpose(2, 0, 1))


def read_image(path: str, channels: int, size: tuple[int, int], op: str = "read_image") -> Any:
    """A user's image file as a float32 NumPy array ``(channels, H, W)`` in [0, 1]: PNG/JPEG/… via
    Pillow (converted to grey or RGB and resized bilinearly to ``size = (H, W)``), or a ``.npy``
    array (loaded without pickle, ``(H, W)`` or ``(C, H, W)``, not resized). Raises ValueError
    naming ``op`` and the file when it cannot be read or has the wrong shape."""
    if str(path).endswith(".npy"):
        try:
            a = xp.load(path, allow_pickle=False).astype(backend.float32)
        except (OSError, ValueError) as e:
            raise ValueError(f"{op}: cannot read array {path!r}: {e}") from None
        a = a[None] if a.ndim == 2 else a
    else:
        try:
            image = _pil()
        except ImportError as e:
            raise ValueError(f"{op}: {e}") from None
        try:
            with image.open(path) as img:
                img = img.convert("L" if channels == 1 else "RGB").resize((size[1], size[0]), image.BILINEAR)
                a = xp.asarray(img, dtype=backend.float32) / 255.0
        except OSError as e:
            raise ValueError(f"{op}: cannot read image {path!r}: {e}") from None
        a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    expected = (channels, *size)
    if a.shape != expected:
        raise ValueError(f"{op}: {path!r} has shape {a.shape}, but the model expects {expected}")
    return a


def find_classes(directory: str) -> tuple[list[str], dict[str, int]]:
    """The sorted class folder names in ``directory`` and their indices."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"ImageFolder: root folder {directory} does not exist")
    classes = sorted(e.name for e in os.scandir(directory) if e.is_dir())
    if not classes:
        raise FileNotFoundError(f"ImageFolder: couldn't find any class folder in {directory}")
    return classes, {c: i for i, c in enumerate(classes)}


class DatasetFolder(VisionDataset):
    """Samples stored as ``root/<class>/<file>``, read by ``loader``.

    Args:
        root: the root folder.
        loader: reads one file into a sample.
        extensions: the accepted file name endings (case-insensitive); excludes ``is_valid_file``.
        transform, target_transform: as in torchvision.
        is_valid_file: a predicate on the path deciding which files count.
        allow_empty: accept class folders without valid files (otherwise an error names them).

    Attributes:
        classes, class_to_idx, samples (list of ``(path, class_index)``), targets.
    """

    def __init__(self, root: str, loader: Callable[[str], Any], extensions: Sequence[str] | None = None,
                 transform: Callable[[Any], Any] | None = None, target_transform: Callable[[Any], Any] | None = None,
                 is_valid_file: Callable[[str], bool] | None = None, allow_empty: bool = False) -> None:
        super().__init__(os.fspath(root), transform, target_transform)
        if (extensions is None) == (is_valid_file is None):
            raise ValueError("DatasetFolder: pass exactly one of extensions and is_valid_file")
        if is_valid_file is None:
            exts = tuple(e.lower() for e in extensions)  # type: ignore[union-attr]

            def is_valid_file(p: str) -> bool:
                return p.lower().endswith(exts)

        classes, class_to_idx = find_classes(self.root)
        samples, empty = [], []
        for c in classes:
            found = []
            for dirpath, _, files in sorted(os.walk(os.path.join(self.root, c), followlinks=True)):
                for fname in sorted(files):
                    p = os.path.join(dirpath, fname)
                    if is_valid_file(p):
                        found.append((p, class_to_idx[c]))
            if not found:
                empty.append(c)
            samples.extend(found)
        if empty and not allow_empty:
            what = f"extensions {', '.join(extensions)}" if extensions is not None else "is_valid_file"
            raise FileNotFoundError(f"{type(self).__name__}: found no valid file for the classes {empty} in "
                                    f"{self.root} ({what})")
        self.loader, self.extensions = loader, extensions
        self.classes, self._class_to_idx = classes, class_to_idx
        self.samples = samples
        self.imgs = samples
        self.targets = [s[1] for s in samples]

    @property
    def class_to_idx(self) -> dict[str, int]:
        return self._class_to_idx

    def _image(self, index: int) -> Any:
        return self.loader(self.samples[index][0])


class ImageFolder(DatasetFolder):
    """Images stored as ``root/<class>/<image file>``, decoded with Pillow.

    Samples are ``(image, label)``: ``image`` a float32 Tensor ``(3, H, W)`` in [0, 1] (RGB, like
    ``ToTensor()`` of torchvision's PIL image), ``label`` the index of the class folder. An image
    Pillow cannot decode raises a :class:`~lamina.datasets.files.DatasetFileError` naming the file.

    Args:
        root: the root folder.
        transform, target_transform: as in torchvision.
        loader: reads one file (default :func:`pil_loader`).
        is_valid_file: a predicate on the path (default: the extensions in ``IMG_EXTENSIONS``).
        allow_empty: accept class folders holding no image.
    """

    def __init__(self, root: str, transform: Callable[[Any], Any] | None = None,
                 target_transform: Callable[[Any], Any] | None = None, loader: Callable[[str], Any] | None = None,
                 is_valid_file: Callable[[str], bool] | None = None, allow_empty: bool = False) -> None:
        super().__init__(root, loader if loader is not None else pil_loader,
                         IMG_EXTENSIONS if is_valid_file is None else None, transform, target_transform,
                         is_valid_file, allow_empty)
