"""``lamina.save`` / ``lamina.load`` (floor 3, beside ``nn``): state dicts on disk in a format that
never executes code.

A lamina file is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays) holding every tensor as a
plain array, plus one entry ``__lamina__`` with a JSON description of the nested structure
(dicts — with string, int, float or bool keys —, lists, tuples, tensors, arrays, numbers,
strings, booleans, None). Loading uses ``allow_pickle=False`` throughout: nothing in the file
can run code. Writes go to a temporary file in the same folder, then an atomic rename.

``from_torch_state_dict`` / ``to_torch_state_dict`` convert a PyTorch ``state_dict`` to lamina
tensors and back (torch is needed only for the second).
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
import zipfile
from collections import OrderedDict
from typing import Any

from . import backend
from .autograd.tensor import Tensor

__all__ = ["save", "load", "atomic_write", "SerializationError", "from_torch_state_dict", "to_torch_state_dict"]

xp = backend.xp

_MAGIC = "lamina"
_VERSION = 1
_META = "__lamina__"


class SerializationError(ValueError):
    """A file is not a readable lamina file (missing, truncated, corrupt or foreign)."""


def _encode(obj: Any, arrays: dict[str, Any], path: str) -> Any:
    if isinstance(obj, Tensor):
        key = f"a{len(arrays)}"
        arrays[key] = xp.ascontiguousarray(obj.array).reshape(obj.shape)  # keeps 0-d arrays 0-d
        kind = "parameter" if type(obj).__name__ == "Parameter" else "tensor"
        return {"type": kind, "ref": key, "requires_grad": bool(obj.requires_grad)}
    if isinstance(obj, xp.ndarray):
        if obj.dtype.kind not in "biufc":
            raise TypeError(f"lamina.save: cannot save an array of dtype {obj.dtype} at {path or 'the top'}")
        key = f"a{len(arrays)}"
        arrays[key] = xp.ascontiguousarray(obj).reshape(obj.shape)
        return {"type": "ndarray", "ref": key}
    if isinstance(obj, xp.generic):
        obj = obj.item()
    if obj is None or isinstance(obj, (bool, int, str)):
        return {"type": "value", "value": obj}
    if isinstance(obj, float):
        if math.isfinite(obj):
            return {"type": "value", "value": obj}
        return {"type": "float", "repr": repr(obj)}
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                raise TypeError(f"lamina.save: dict key {k!r} at {path or 'the top'} is not a str, int, float or bool")
            items.append([k, _encode(v, arrays, f"{path}[{k!r}]")])
        return {"type": "ordereddict" if isinstance(obj, OrderedDict) else "dict", "items": items}
    if isinstance(obj, (list, tuple)):
        return {"type": type(obj).__name__ if type(obj) in (list, tuple) else "list",
                "items": [_encode(v, arrays, f"{path}[{i}]") for i, v in enumerate(obj)]}
    raise TypeError(
        f"lamina.save: cannot save an object of type {type(obj).__name__} at {path or 'the top'} (supported: "
        "dicts, lists, tuples, tensors, NumPy arrays, numbers, strings, booleans and None)"
    )


def _decode(node: Any, arrays: Any, name: str) -> Any:
    try:
        kind = node["type"]
    except (TypeError, KeyError):
        raise SerializationError(f"lamina.load: {name}: malformed structure entry {node!r}") from None
    if kind == "value":
        return node["value"]
    if kind == "float":
        return float(node["repr"])
    if kind in ("tensor", "parameter", "ndarray"):
        ref = node.get("ref")
        if ref not in arrays:
            raise SerializationError(f"lamina.load: {name}: the array {ref!r} is missing (truncated file?)")
        try:
            arr = arrays[ref]
        except Exception as e:  # any failure to parse a stored array means a damaged file
            raise SerializationError(f"lamina.load: {name}: the array {ref!r} is unreadable ({e})") from None
        if kind == "ndarray":
            return arr
        t = Tensor._wrap(xp.array(arr))
        if kind == "parameter":
            from .nn.parameter import Parameter

            return Parameter(t, requires_grad=bool(node.get("requires_grad", True)))
        if node.get("requires_grad") and t.dtype.kind == "f":
            t.requires_grad_()
        return t
    if kind in ("dict", "ordereddict"):
        d: dict[Any, Any] = OrderedDict() if kind == "ordereddict" else {}
        for k, v in node["items"]:
            d[k] = _decode(v, arrays, name)
        return d
    if kind in ("list", "tuple"):
        items = [_decode(v, arrays, name) for v in node["items"]]
        return items if kind == "list" else tuple(items)
    raise SerializationError(f"lamina.load: {name}: unknown entry type {kind!r}")


def save(obj: Any, f: Any) -> None:
    """Save ``obj`` (typically a ``state_dict``) to the path or binary file ``f``.

    Example:
        >>> import lamina, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "model.lamina")
        >>> lamina.save({"w": lamina.ones(2), "step": 3}, path)
        >>> lamina.load(path)["step"]
        3
    """
    arrays: dict[str, Any] = {}
    tree = _encode(obj, arrays, "")
    meta = json.dumps({"format": _MAGIC, "version": _VERSION, "tree": tree}, allow_nan=False)
    payload = dict(arrays)
    payload[_META] = xp.frombuffer(meta.encode("utf-8"), dtype=xp.uint8)
    if hasattr(f, "write"):
        xp.savez(f, **payload)
        return
    atomic_write(f, lambda out: xp.savez(out, **payload))


def atomic_write(path: Any, write: Any) -> str:
    """Call ``write(binary_file)`` on a temporary file beside ``path``, sync it, then rename it
    onto ``path`` in one atomic step: readers see the old file or the new one, never half of one."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".lamina-", suffix=".tmp", dir=folder)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load(f: Any, map_location: Any = None, weights_only: bool = True) -> Any:
    """Load what :func:`save` wrote. Never unpickles: a file that is not a lamina file, or is
    truncated or corrupt, raises :class:`SerializationError` naming it."""
    if map_location is not None:
        backend.to_device(map_location if not callable(map_location) else "cpu")
    name = repr(getattr(f, "name", f)) if hasattr(f, "read") else repr(os.fspath(f))
    try:
        data = f.read() if hasattr(f, "read") else open(os.fspath(f), "rb").read()  # noqa: SIM115
    except FileNotFoundError:
        raise FileNotFoundError(f"lamina.load: no such file: {name}") from None
    try:
        archive = xp.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise SerializationError(
            f"lamina.load: {name} is not a lamina file, or it is truncated or corrupt ({e})"
        ) from None
    if not hasattr(archive, "files"):
        raise SerializationError(f"lamina.load: {name} holds a bare NumPy array, not a lamina file")
    with archive:
        if _META not in archive.files:
            raise SerializationError(f"lamina.load: {name} is not a lamina file (it has no {_META} entry)")
        try:
            meta = json.loads(bytes(archive[_META]).decode("utf-8"))
        except Exception as e:  # noqa: BLE001  (damaged header: report, never propagate parser internals)
            raise SerializationError(f"lamina.load: {name}: unreadable header ({e})") from None
        if not isinstance(meta, dict) or meta.get("format") != _MAGIC:
            raise SerializationError(f"lamina.load: {name} is not a lamina file (bad header)")
        if meta.get("version", 0) > _VERSION:
            raise SerializationError(
                f"lamina.load: {name} was written by a newer lamina (format version {meta['version']})"
            )
        return _decode(meta.get("tree"), archive, name)


def from_torch_state_dict(state_dict: Any) -> OrderedDict[str, Tensor]:
    """A PyTorch ``state_dict`` (name → torch.Tensor) as lamina tensors (copied), same keys."""
    out: OrderedDict[str, Tensor] = OrderedDict()
    for k, v in state_dict.items():
        if hasattr(v, "detach"):
            out[k] = Tensor._wrap(xp.array(v.detach().cpu().numpy()))
        elif isinstance(v, (int, float)):
            out[k] = Tensor._wrap(xp.asarray(v))
        else:
            raise TypeError(f"from_torch_state_dict: entry {k!r} is a {type(v).__name__}, not a tensor")
    return out


def to_torch_state_dict(state_dict: Any) -> Any:
    """A lamina ``state_dict`` as PyTorch tensors (needs torch installed), same keys."""
    import torch

    return OrderedDict((k, torch.from_numpy(xp.array(v.array if isinstance(v, Tensor) else v)))
                       for k, v in state_dict.items())
