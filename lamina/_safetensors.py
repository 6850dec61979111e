"""safetensors files, read and written through the ``safetensors`` package (floor 3, under ``serialization``).

A safetensors file is an 8-byte header length, a JSON header (names, dtypes, shapes, offsets) and
the raw tensors: nothing in it can run code. ``safetensors.numpy`` does the parsing and checking;
this file turns its arrays into lamina tensors and back. The package is optional
(``pip install lamina[safetensors]``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._archive import SerializationError
from .autograd.tensor import Tensor

__all__ = ["is_safetensors", "load_safetensors", "save_safetensors_bytes"]


def _package(op: str) -> Any:
    try:
        import safetensors.numpy
    except ImportError:
        raise ImportError(f"{op} needs the safetensors package (pip install safetensors)") from None
    return safetensors


def is_safetensors(head: bytes, size: int) -> bool:
    """Whether a file of ``size`` bytes starting with ``head`` (its first 9 bytes) looks like safetensors."""
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return 2 <= n <= size - 8 and head[8:9] == b"{"


def load_safetensors(fileobj: Any, name: str) -> dict[str, Tensor]:
    """The tensors of the safetensors file ``fileobj`` (name → lamina tensor, in the file's order)."""
    st = _package("lamina.load of a safetensors file")
    fileobj.seek(0)
    data = fileobj.read()
    try:
        arrays = st.numpy.load(data)
    except (st.SafetensorError, ValueError, TypeError, KeyError) as e:  # what its parser and dtype map raise
        raise SerializationError(f"lamina.load: {name} is not a readable safetensors file ({e})") from None
    return {k: Tensor._wrap(np.array(v)) for k, v in arrays.items()}


def save_safetensors_bytes(obj: Any, metadata: dict[str, str] | None = None) -> bytes:
    """``obj`` (a flat dict: str → tensor or array) as the bytes of a safetensors file."""
    st = _package("lamina.save(format='safetensors')")
    if not isinstance(obj, dict):
        raise TypeError(f"lamina.save(format='safetensors'): expected a dict of name → tensor, got "
                        f"{type(obj).__name__}")
    arrays = {}
    for k, v in obj.items():
        if not isinstance(k, str):
            raise TypeError(f"lamina.save(format='safetensors'): key {k!r} is not a str")
        if isinstance(v, Tensor):
            v = v.array
        if not isinstance(v, np.ndarray):
            raise TypeError(f"lamina.save(format='safetensors'): entry {k!r} is a {type(v).__name__}; a safetensors "
                            "file holds only tensors (save other values with format='lamina' or 'torch')")
        a = np.asarray(v)
        arrays[k] = np.ascontiguousarray(a).reshape(a.shape)  # ascontiguousarray makes a 0-d array 1-d
    return st.numpy.save(arrays, metadata=metadata)
