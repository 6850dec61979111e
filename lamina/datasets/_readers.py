"""Shared pieces of the detection / segmentation readers: images, masks, JSON and XML read safely.

Every failure is a :class:`~lamina.datasets.files.DatasetFileError` naming the data set and the
file, what was expected and what came. Images are refused before decoding when they declare more
than ``MAX_IMAGE_PIXELS`` pixels; XML with a DOCTYPE (where entities would be declared) is refused
before it is parsed, so no entity is ever expanded.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from typing import Any
from xml.parsers import expat

import numpy as np

from . import folder
from .files import MAX_DATA_BYTES, DatasetFileError

__all__ = ["load_rgb", "load_label_png", "read_json", "read_xml", "safe_join", "MAX_XML_BYTES"]

MAX_XML_BYTES = 16 << 20
"""The largest annotation XML file read (16 MiB; a VOC annotation is a few kB)."""

_LABEL_MODES = ("P", "L", "1")


def _open(path: str, dataset: str) -> Any:
    image = folder._pil()
    try:
        return folder._open_image(image, path)
    except folder._Refused as e:
        raise DatasetFileError(f"{dataset}: refused image {path}: {e}") from None
    except (OSError, EOFError) as e:  # PIL.UnidentifiedImageError is an OSError
        raise DatasetFileError(f"{dataset}: cannot read image {path}: {e}") from None


def load_rgb(path: str, dataset: str) -> Any:
    """The image file at ``path`` as a uint8 array ``(3, H, W)`` (converted to RGB)."""
    img = _open(path, dataset)
    try:
        with img:
            arr = np.asarray(img.convert("RGB"))
    except (OSError, EOFError, ValueError) as e:  # truncated data shows up when decoding
        raise DatasetFileError(f"{dataset}: cannot decode image {path}: {e}") from None
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def image_size(path: str, dataset: str) -> tuple[int, int]:
    """``(height, width)`` of an image file, from its header."""
    with _open(path, dataset) as img:
        return img.size[1], img.size[0]


def load_label_png(path: str, dataset: str) -> Any:
    """A label image as an int64 array ``(H, W)`` of its pixel values: palette images (mode ``P``,
    as VOC's ``SegmentationClass``) give their palette indices, grey images (``L``, ``1``) their
    values. Colour images are refused: their colours are not class indices."""
    img = _open(path, dataset)
    with img:
        if img.mode not in _LABEL_MODES:
            raise DatasetFileError(f"{dataset}: mask {path} has image mode {img.mode!r}; expected a palette "
                                   f"(P) or greyscale (L) PNG whose pixel values are class indices")
        try:
            arr = np.asarray(img)
        except (OSError, EOFError, ValueError) as e:  # truncated data shows up when decoding
            raise DatasetFileError(f"{dataset}: cannot decode mask {path}: {e}") from None
    return arr.astype(np.int64)


def read_json(path: str, dataset: str) -> Any:
    """A JSON file (at most ``MAX_DATA_BYTES``), parsed."""
    try:
        size = os.path.getsize(path)
        if size > MAX_DATA_BYTES:
            raise DatasetFileError(f"{dataset}: {path} has {size:,} bytes, more than "
                                   f"lamina.datasets.files.MAX_DATA_BYTES = {MAX_DATA_BYTES:,}")
        with open(path, "rb") as f:
            return json.loads(f.read())
    except OSError as e:
        raise DatasetFileError(f"{dataset}: cannot read {path}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise DatasetFileError(f"{dataset}: {path} is not UTF-8 text: {e}") from None
    except json.JSONDecodeError as e:
        raise DatasetFileError(f"{dataset}: {path} is not valid JSON: {e}") from None


def _refuse_doctype(*_: Any) -> None:
    raise _Doctype


class _Doctype(Exception):
    """Internal: the XML declares a DOCTYPE."""


def read_xml(path: str, dataset: str) -> ET.Element:
    """The root element of an XML file, refused when it has a DOCTYPE (no entity is declared or expanded)."""
    try:
        size = os.path.getsize(path)
        if size > MAX_XML_BYTES:
            raise DatasetFileError(f"{dataset}: {path} has {size:,} bytes, more than "
                                   f"lamina.datasets._readers.MAX_XML_BYTES = {MAX_XML_BYTES:,}")
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DatasetFileError(f"{dataset}: cannot read {path}: {e.strerror or e}") from None
    # first pass with expat itself: a DOCTYPE (the only place entities can be declared) stops it
    check = expat.ParserCreate()
    check.StartDoctypeDeclHandler = _refuse_doctype
    check.EntityDeclHandler = _refuse_doctype
    try:
        check.Parse(data, True)
    except _Doctype:
        raise DatasetFileError(f"{dataset}: {path} declares a DOCTYPE; annotation XML must not (entities "
                               f"are not expanded, for safety)") from None
    except expat.ExpatError as e:
        raise DatasetFileError(f"{dataset}: {path} is not well-formed XML: {e}") from None
    return ET.fromstring(data)


def safe_join(root: str, name: Any, dataset: str, where: str) -> str:
    """``root/name`` for a relative ``name`` that stays inside ``root`` (no absolute path, no ``..``)."""
    if not isinstance(name, str) or not name:
        raise DatasetFileError(f"{dataset}: {where}: expected a file name (a non-empty string), got {name!r}")
    norm = os.path.normpath(name)
    if os.path.isabs(name) or norm == ".." or norm.startswith(".." + os.sep):
        raise DatasetFileError(f"{dataset}: {where}: file name {name!r} leaves the image folder {root}")
    return os.path.join(root, norm)
