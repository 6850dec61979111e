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

__all__ = ["DatasetFolder", "ImageFolder", "IMG_EXTENSIONS", "MAX_IMAGE_PIXELS", "pil_loader", "find_classes",
           "read_image", "walk_files"]

xp = backend.xp

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise ImportError('ImageFolder: reading images needs Pillow, an optional dependency of lamina; install it '
                          'with: pip install "lamina[image]"') from None
    return Image


MAX_IMAGE_PIXELS = 89_478_485
"""The most pixels (width × height) an image file may declare: Pillow's own default limit (about
9,459 × 9,459), checked from the header before the image is decoded. Raise it
(``lamina.datasets.folder.MAX_IMAGE_PIXELS = ...``) for larger images."""


class _Refused(Exception):
    """Internal: an image over the pixel limit (turned into the caller's error type with its name)."""


def _open_image(image: Any, path: str) -> Any:
    """``PIL.Image.open(path)`` (lazy: the header only), refused when it declares more than
    :data:`MAX_IMAGE_PIXELS` pixels. Raises ``_Refused`` with the reason, or Pillow's OSError."""
    try:
        img = image.open(path)
    except image.DecompressionBombError as e:  # over Pillow's own limit, which may be lower than ours
        raise _Refused(f"{e} (Pillow's own limit, PIL.Image.MAX_IMAGE_PIXELS)") from None
    width, height = img.size
    if width * height > MAX_IMAGE_PIXELS:
        img.close()
        raise _Refused(f"it is {width} × {height} = {width * height:,} pixels, more than "
                       f"lamina.datasets.folder.MAX_IMAGE_PIXELS = {MAX_IMAGE_PIXELS:,}")
    return img


def pil_loader(path: str) -> Any:
    """The image at ``path`` as a float32 Tensor ``(3, H, W)`` in [0, 1] (converted to RGB); an
    image over :data:`MAX_IMAGE_PIXELS` is refused before it is decoded."""
    image = _pil()
    try:
        with _open_image(image, path) as img:
            arr = xp.asarray(img.convert("RGB"))
    except _Refused as e:
        raise DatasetFileError(f"ImageFolder: refused image {path}: {e}") from None
    except (OSError, EOFError) as e:  # PIL.UnidentifiedImageError is an OSError; truncated files raise OSError too
        raise DatasetFileError(f"ImageFolder: cannot read image {path}: {e}") from None
    return uint8_chw_to_tensor(arr.transpose(2, 0, 1))


def read_image(path: str, channels: int, size: tuple[int, int], op: str = "read_image") -> Any:
    """A user's image file as a float32 NumPy array ``(channels, H, W)`` in [0, 1]: PNG/JPEG/… via
    Pillow (converted to grey or RGB and resized bilinearly to ``size = (H, W)``), or a ``.npy``
    array (loaded without pickle, ``(H, W)`` or ``(C, H, W)``, not resized). Raises ValueError
    naming ``op`` and the file when it cannot be read, has the wrong shape, or holds more than
    :data:`MAX_IMAGE_PIXELS` pixels (checked from its header, before it is decoded)."""
    if str(path).endswith(".npy"):
        from ..serialization import SerializationError, read_npy

        try:
            with open(path, "rb") as f:
                a = read_npy(f, os.fstat(f.fileno()).st_size, f"{op}: {path!r}", max_elements=4 * MAX_IMAGE_PIXELS,
                             limit_name="4 × lamina.datasets.folder.MAX_IMAGE_PIXELS").astype(backend.float32)
        except SerializationError as e:
            raise ValueError(str(e)) from None
        except OSError as e:
            raise ValueError(f"{op}: cannot read array {path!r}: {e.strerror or e}") from None
        a = a[None] if a.ndim == 2 else a
    else:
        try:
            image = _pil()
        except ImportError as e:
            raise ValueError(f"{op}: {e}") from None
        try:
            with _open_image(image, path) as img:
                img = img.convert("L" if channels == 1 else "RGB").resize((size[1], size[0]), image.BILINEAR)
                a = xp.asarray(img, dtype=backend.float32) / 255.0
        except _Refused as e:
            raise ValueError(f"{op}: refused image {path!r}: {e}") from None
        except (OSError, EOFError) as e:
            raise ValueError(f"{op}: cannot read image {path!r}: {e}") from None
        a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    expected = (channels, *size)
    if a.shape != expected:
        raise ValueError(f"{op}: {path!r} has shape {a.shape}, but the model expects {expected}")
    return a


def walk_files(top: str, skip: set[tuple[int, int]] | None = None) -> list[str]:
    """The files under ``top`` in torchvision's order (folders sorted by path, then file names),
    following symbolic links but walking each folder (by device and inode) once: a link loop ends,
    and a link to a folder already walked adds nothing twice. ``skip`` holds ``(st_dev, st_ino)`` of
    folders not to enter (e.g. the other class folders); the folders walked are added to it."""
    seen = skip if skip is not None else set()
    folders = []
    for dirpath, dirnames, files in os.walk(top, followlinks=True):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen:  # reached again through a link: its files are already listed
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames.sort()  # the first path to a folder, in sorted order, is the one that lists it
        folders.append((dirpath, files))
    return [os.path.join(dirpath, f) for dirpath, files in sorted(folders) for f in sorted(files)]


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
        # the root and every class folder count as walked, so that a link inside one class folder to
        # the root or to another class never lists that class's images under this one, nor loops
        reserved = {(st.st_dev, st.st_ino) for st in map(os.stat, [self.root] + [os.path.join(self.root, c)
                                                                                 for c in classes])}
        for c in classes:
            folder = os.path.join(self.root, c)
            st = os.stat(folder)
            found = [(p, class_to_idx[c]) for p in walk_files(folder, reserved - {(st.st_dev, st.st_ino)})
                     if is_valid_file(p)]
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
