"""Reading users' data files safely: whole-file reads (raw or gzip) with errors that name the file."""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Sequence
from typing import Any

__all__ = ["read_bytes", "find_file", "DatasetFileError"]


class DatasetFileError(RuntimeError):
    """A data file is missing, corrupt, truncated or holds impossible values; the message names it."""


def read_bytes(path: str, dataset: str) -> bytes:
    """The content of ``path``, decompressed when it is gzip (by its magic bytes ``1f 8b``)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DatasetFileError(f"{dataset}: cannot read {path}: {e.strerror or e}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DatasetFileError(f"{dataset}: {path} is a corrupt or truncated gzip file ({e})") from None
    if path.endswith(".gz"):
        raise DatasetFileError(f"{dataset}: {path} has a .gz name but is not a gzip file (wrong magic bytes "
                               f"{raw[:2].hex() or 'none: empty file'})")
    return raw


def find_file(folders: Sequence[str], names: Sequence[str], dataset: str, what: str) -> str:
    """The first ``folder/name`` that exists, or a FileNotFoundError listing every place looked at."""
    tried = []
    for folder in folders:
        for name in names:
            p = os.path.join(folder, name)
            if os.path.isfile(p):
                return p
            tried.append(p)
    raise FileNotFoundError(f"{dataset}: {what} not found; lamina downloads nothing, put the file in one of: "
                            + ", ".join(tried))


def check_labels(labels: Any, num_classes: int, path: str, dataset: str) -> None:
    """Raise when a label lies outside ``0 .. num_classes - 1``, naming the first bad record."""
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        i = int(bad.argmax())
        raise DatasetFileError(f"{dataset}: {path}: label {int(labels[i])} of record {i} is out of range "
                               f"0..{num_classes - 1}")
