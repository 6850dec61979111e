"""safetensors files through the ``safetensors`` package (floor 3, under ``serialization``).

A safetensors file is a flat dict of named arrays: an 8-byte header length, a JSON header, the
raw bytes; it holds no code. The package parses and checks it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from ._archive import SerializationError
from .autograd.tensor import Tensor

__all__ = ["load_safetensors", "save_safetensors"]


def _package(op: str) -> Any:
    try:
        import safetensors.numpy as st
    except ImportError:
        raise ImportError(f"{op}: safetensors files need the safetensors package (pip install safetensors)") from None
    return st


def load_safetensors(fileobj: Any, what: str) -> OrderedDict[str, Tensor]:
    """The tensors in a safetensors stream, by name."""
    st = _package(what)
    from safetensors import SafetensorError

    data = fileobj.read()
    try:
        arrays = st.load(data)
    except (SafetensorError, ValueError, TypeError) as e:
        raise SerializationError(f"{what}: unreadable safetensors file ({e})") from None
    out: OrderedDict[str, Tensor] = OrderedDict()
    for k, a in arrays.items():
        if a.dtype.kind not in "biuf":
            raise SerializationError(f"{what}: tensor {k!r} has dtype {a.dtype}, which lamina has not")
        out[k] = Tensor._wrap(np.array(a))
    return out


def save_safetensors(obj: Any, f: Any) -> None:
    """Write a dict of name → tensor as safetensors to the path or binary file ``f`` (atomically)."""
    from .serialization import atomic_write

    st = _package("lamina.save(format='safetensors')")
    if not isinstance(obj, dict):
        raise TypeError(f"lamina.save(format='safetensors'): expected a dict of name -> tensor, got "
                        f"{type(obj).__name__}")
    arrays = {}
    for k, v in obj.items():
        if not isinstance(k, str) or not isinstance(v, Tensor):
            raise TypeError(f"lamina.save(format='safetensors'): entry {k!r} is a {type(v).__name__}; safetensors "
                            f"holds only tensors under string names")
        arrays[k] = np.ascontiguousarray(v.array).reshape(v.array.shape)
    data = st.save(arrays)
    if hasattr(f, "write"):
        f.write(data)
    else:
        atomic_write(f, lambda out: out.write(data))
