"""``lamina.save`` / ``lamina.load`` (floor 3, beside ``nn``): state dicts on disk in a format that
never executes code.

A lamina file is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays) holding every tensor as a
plain array, plus one entry ``__lamina__`` with a JSON description of the nested structure
(dicts — with string, int, float or bool keys —, lists, tuples, tensors, arrays, numbers,
strings, booleans, None). Loading uses ``allow_pickle=False`` throughout: nothing in the file
can run code. Writes go to a temporary file in the same folder, then an atomic rename.

``load`` also reads PyTorch's checkpoints (``lamina._torch_format``: an own pickle-opcode interpreter
with torch's ``weights_only`` whitelist, no ``pickle`` module) and safetensors files; ``save`` writes
both with ``format="torch"`` / ``format="safetensors"``.

``from_torch_state_dict`` / ``to_torch_state_dict`` convert a PyTorch ``state_dict`` to lamina
tensors and back (torch is needed only for the second).
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import tempfile
from collections import OrderedDict
from typing import Any

from . import backend
from ._archive import STREAM_ERRORS, Archive, SerializationError, read_npy
from .autograd.tensor import Tensor

__all__ = ["save", "load", "atomic_write", "SerializationError", "read_npy", "from_torch_state_dict",
           "to_torch_state_dict"]

xp = backend.xp

_MAGIC = "lamina"
_VERSION = 1
_META = "__lamina__"
_SCALARS = (type(None), bool, int, float, str)
_MISSING = object()


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


def _bad(name: str, where: str, problem: str) -> SerializationError:
    return SerializationError(f"lamina.load: {name}: malformed structure at {where}: {problem}")


def _short(node: Any) -> str:
    text = repr(node)
    return text if len(text) <= 60 else text[:57] + "..."


def _decode(node: Any, arrays: Archive, name: str, where: str = "the top") -> Any:
    """The object that ``node`` (a JSON entry written by :func:`_encode`) describes; every field is
    checked, so a crafted or damaged header raises :class:`SerializationError`, never a raw error."""
    if not isinstance(node, dict) or not isinstance(node.get("type"), str):
        raise _bad(name, where, f"expected an object with a 'type', got {_short(node)}")
    kind = node["type"]
    if kind == "value":
        value = node.get("value", _MISSING)
        if not isinstance(value, _SCALARS):
            got = "nothing" if value is _MISSING else _short(value)
            raise _bad(name, where, f"a 'value' entry must hold null, a bool, a number or a string, got {got}")
        return value
    if kind == "float":
        if node.get("repr") not in ("nan", "inf", "-inf"):
            raise _bad(name, where, f"a 'float' entry must be nan, inf or -inf, got {_short(node.get('repr'))}")
        return float(node["repr"])
    if kind in ("tensor", "parameter", "ndarray"):
        ref = node.get("ref")
        if not isinstance(ref, str):
            raise _bad(name, where, f"an array reference must be a string, got {_short(ref)}")
        requires_grad = node.get("requires_grad", kind == "parameter")
        if not isinstance(requires_grad, bool):
            raise _bad(name, where, f"'requires_grad' must be true or false, got {_short(requires_grad)}")
        arr = arrays.take(ref, where)
        if kind == "ndarray":
            return arr
        t = Tensor._wrap(xp.asarray(arr))  # no copy: the array was read into its final place
        grad = requires_grad and t.dtype.kind == "f"
        if kind == "parameter":
            from .nn.parameter import Parameter

            return Parameter(t, requires_grad=grad)
        if grad:
            t.requires_grad_()
        return t
    if kind in ("dict", "ordereddict", "list", "tuple"):
        items = node.get("items")
        if not isinstance(items, list):
            raise _bad(name, where, f"'items' of a {kind} must be a list, got {_short(items)}")
        if kind in ("list", "tuple"):
            values = [_decode(v, arrays, name, f"{where}[{i}]") for i, v in enumerate(items)]
            return values if kind == "list" else tuple(values)
        d: dict[Any, Any] = OrderedDict() if kind == "ordereddict" else {}
        for item in items:
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], _SCALARS)):
                raise _bad(name, where, f"a {kind} item must be a [key, entry] pair, got {_short(item)}")
            k = item[0]
            if k in d:
                raise _bad(name, where, f"the key {k!r} appears twice")
            d[k] = _decode(item[1], arrays, name, f"{where}[{k!r}]")
        return d
    raise _bad(name, where, f"unknown entry type {kind!r}")


def save(obj: Any, f: Any, format: str = "lamina") -> None:
    """Save ``obj`` (typically a ``state_dict``) to the path or binary file ``f``.

    Args:
        obj: dicts, lists, tuples, tensors, NumPy arrays, numbers, strings, booleans and None.
        f: a path (written atomically) or a binary file.
        format: ``"lamina"`` (a NumPy ``.npz`` archive with a JSON structure), ``"torch"`` (torch's zip
            format, which ``torch.load(f, weights_only=True)`` reads; no NumPy arrays) or
            ``"safetensors"`` (a flat dict of name → tensor; needs the ``safetensors`` package).
            :func:`load` reads all three.

    Example:
        >>> import lamina, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "model.lamina")
        >>> lamina.save({"w": lamina.ones(2), "step": 3}, path)
        >>> lamina.load(path)["step"]
        3
    """
    if format == "torch":
        from ._torch_writer import save_torch

        _write(f, lambda out: save_torch(obj, out))
        return
    if format == "safetensors":
        from ._safetensors import save_safetensors_bytes

        data = save_safetensors_bytes(obj)
        _write(f, lambda out: out.write(data))
        return
    if format != "lamina":
        raise ValueError(f"lamina.save: unknown format {format!r} (expected 'lamina', 'torch' or 'safetensors')")
    arrays: dict[str, Any] = {}
    tree = _encode(obj, arrays, "")
    meta = json.dumps({"format": _MAGIC, "version": _VERSION, "tree": tree}, allow_nan=False)
    payload = dict(arrays)
    payload[_META] = xp.frombuffer(meta.encode("utf-8"), dtype=xp.uint8)
    if hasattr(f, "write"):
        xp.savez(f, **payload)
        return
    atomic_write(f, lambda out: xp.savez(out, **payload))


def _write(f: Any, write: Any) -> None:
    if hasattr(f, "write"):
        write(f)
    else:
        atomic_write(f, write)


def _temp_prefix(path: str) -> str:
    """The start of the temporary names of writes to ``path``: ``.<file name>.``, so that a temporary
    names its target (shortened with a digest when the name is long)."""
    base = os.path.basename(path)
    if len(base) > 120:
        import hashlib

        base = base[:80] + "~" + hashlib.sha1(base.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return f".{base}."


_TEMP_TAIL = re.compile(r"(\d+)-[A-Za-z0-9_]+\.lamina-tmp")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # on Windows, os.kill(pid, 0) would send CTRL_C_EVENT
        return True  # (a thread of this process may be writing the same target)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists (another user's), or we cannot tell: keep its file
    return True


def remove_stale_temporaries(path: Any) -> list[str]:
    """Delete the temporary files that earlier writes of ``path`` left when their process was killed.

    Only files named like :func:`atomic_write`'s temporaries *of this target* (``.<name>.<pid>-<random>
    .lamina-tmp`` beside it) whose writing process no longer runs are removed; nothing else is
    touched. Returns the removed paths."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    prefix = _temp_prefix(path)
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for fname in names:
        m = _TEMP_TAIL.fullmatch(fname[len(prefix):]) if fname.startswith(prefix) else None
        if m is None or _pid_alive(int(m.group(1))):
            continue
        try:
            os.unlink(os.path.join(folder, fname))
            removed.append(os.path.join(folder, fname))
        except FileNotFoundError:  # another process cleaned it up first
            pass
    return removed


def atomic_write(path: Any, write: Any) -> str:
    """Call ``write(binary_file)`` on a temporary file beside ``path``, sync it, then rename it
    onto ``path`` in one atomic step: readers see the old file or the new one, never half of one.

    The temporary is named ``.<file name>.<pid>-<random>.lamina-tmp``; one that a killed process
    left behind (its pid no longer runs) is deleted by the next write to the same ``path``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{_temp_prefix(path)}{os.getpid()}-", suffix=".lamina-tmp", dir=folder)
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


def _open(f: Any, name: str) -> Any:
    """A seekable binary file for ``f`` (a path or a file object) and whether this call opened it."""
    if hasattr(f, "read"):
        if hasattr(f, "seekable") and f.seekable():
            return f, False
        return io.BytesIO(f.read()), True  # a pipe: the archive's directory sits at its end
    try:
        return open(os.fspath(f), "rb"), True  # noqa: SIM115  (closed by load)
    except FileNotFoundError:
        raise FileNotFoundError(f"lamina.load: no such file: {name}") from None
    except OSError as e:  # a folder, no permission …
        raise SerializationError(f"lamina.load: cannot read {name}: {e.strerror or e}") from None


def load(f: Any, map_location: Any = None, weights_only: bool = True) -> Any:
    """Load what :func:`save` wrote, or a PyTorch checkpoint, or a safetensors file. Never unpickles:
    a file that is none of these, or is truncated, corrupt or crafted, raises :class:`SerializationError`
    naming it.

    PyTorch's ``.pt``/``.pth`` files (``torch.save``'s zip format and its legacy format) are read by
    lamina's own pickle-opcode interpreter, which resolves only the globals that
    ``torch.load(weights_only=True)`` allows (tensor rebuilds, ``OrderedDict``, ``torch.Size``, dtypes …)
    and refuses every other one with an error naming it: nothing in the file runs. Their tensors come
    back as lamina tensors (copies: tensors that shared a storage in torch no longer share it);
    bfloat16 storages raise an error (lamina has no bfloat16). A safetensors file (read through the
    ``safetensors`` package) comes back as a dict of name → tensor.

    Each array is read from the archive straight into its final place (peak memory about the size
    of the arrays), after its declared shape, dtype and size are checked against what the file holds."""
    if map_location is not None:
        backend.to_device(map_location if not callable(map_location) else "cpu")
    name = repr(getattr(f, "name", f)) if hasattr(f, "read") else repr(os.fspath(f))
    fileobj, opened = _open(f, name)
    try:
        head = fileobj.read(16)
        size = fileobj.seek(0, 2)
        fileobj.seek(0)
        from . import _safetensors, _torch_format

        if _torch_format.is_legacy(head):
            return _torch_format.load_torch_legacy(fileobj, name)
        if _safetensors.is_safetensors(head, size):
            return _safetensors.load_safetensors(fileobj, name)
        try:
            archive = Archive(fileobj, name)
        except STREAM_ERRORS as e:
            raise SerializationError(f"lamina.load: cannot read {name} ({e})") from None
        try:
            return _load_archive(archive, name)
        finally:
            archive.close()
    finally:
        if opened:
            fileobj.close()


def _load_archive(archive: Archive, name: str) -> Any:
    if _META not in archive.members:
        from ._torch_format import is_torch_zip, load_torch_zip

        top = is_torch_zip(archive)
        if top is not None:
            return load_torch_zip(archive, top, name)
        raise SerializationError(f"lamina.load: {name} is not a lamina file (it has no {_META} entry)")
    header = archive.read(_META, f"lamina.load: {name}: the header {_META}")
    if header.dtype != xp.uint8 or header.ndim != 1:
        raise SerializationError(f"lamina.load: {name}: unreadable header (a {header.dtype} array of shape "
                                 f"{header.shape}, expected a 1-d uint8 array)")
    try:
        meta = json.loads(header.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise SerializationError(f"lamina.load: {name}: unreadable header ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != _MAGIC:
        raise SerializationError(f"lamina.load: {name} is not a lamina file (bad header)")
    version = meta.get("version")
    if type(version) is not int or version < 1:
        raise SerializationError(f"lamina.load: {name}: bad format version {_short(version)} in the header")
    if version > _VERSION:
        raise SerializationError(f"lamina.load: {name} was written by a newer lamina (format version {version})")
    if "tree" not in meta:
        raise SerializationError(f"lamina.load: {name}: the header describes no content (no 'tree')")
    try:
        return _decode(meta["tree"], archive, name)
    except RecursionError:
        raise SerializationError(f"lamina.load: {name}: the structure is nested too deeply") from None


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
