"""Checkpoints that lose nothing: model, optimizer, scheduler, RNG states, epoch, step, history.

Written with ``lamina.save`` (a temporary file, then an atomic rename: a crash never leaves a
half-written checkpoint) in lamina's pickle-free format. Reading checks that each part has the
kind the trainer expects, and :func:`load_part` turns a state that does not fit its model,
optimizer or callback into a :class:`CheckpointError` naming the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from .. import backend
from ..autograd.tensor import Tensor
from ..serialization import load, save

__all__ = ["save_checkpoint", "load_checkpoint", "load_part", "rng_state", "set_rng_state", "CheckpointError"]

_FORMAT = "lamina-checkpoint-1"
# the kind of each part that the trainer and ``lamina train`` write (a part may be absent)
_KINDS: dict[str, tuple[type, ...]] = {
    "model": (Mapping,), "optimizer": (Mapping,), "epoch": (int,), "step": (int,), "batches_done": (int,),
    "history": (list,), "callbacks": (list,), "rng": (Mapping,), "loader": (Mapping,), "config": (str,),
    "partial_epoch": (Mapping, type(None)),
}


class CheckpointError(ValueError):
    """A checkpoint does not fit: not a training checkpoint, a part of the wrong kind, or a state that
    does not match the model, optimizer or callbacks it is loaded into; the message names the file."""


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if text else type(e).__name__


def rng_state() -> dict[str, Any]:
    """The state of lamina's global generator (JSON-able)."""
    return backend.generator().bit_generator.state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore lamina's global generator to ``state`` (from :func:`rng_state`)."""
    backend.generator().bit_generator.state = state


def save_checkpoint(path: str | os.PathLike[str], **parts: Any) -> str:
    """Write ``parts`` (``model=model.state_dict()``, ``optimizer=...``, ``epoch=...``) plus the
    global RNG state to ``path`` atomically; returns the path."""
    payload = dict(parts)
    payload.setdefault("rng", rng_state())
    payload["format"] = _FORMAT
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    os.makedirs(folder, exist_ok=True)
    save(payload, path)
    return os.fspath(path)


def _check_parts(ck: dict[str, Any], name: str) -> None:
    for key, kinds in _KINDS.items():
        if key not in ck:
            continue
        value = ck[key]
        if not isinstance(value, kinds) or (int in kinds and (isinstance(value, bool) or value < 0)):
            article = "an" if type(value).__name__[0] in "aeiou" else "a"
            raise CheckpointError(f"load_checkpoint: {name}: its {key!r} part is {article} {type(value).__name__} "
                                  f"{_short(value)}, expected {' or '.join(k.__name__ for k in kinds)}"
                                  + (" (at least 0)" if int in kinds else ""))
    for key, value in ck.get("model", {}).items():
        if not isinstance(key, str) or not (isinstance(value, Tensor) or key.endswith("_extra_state")
                                            or isinstance(value, backend.xp.ndarray)):
            raise CheckpointError(f"load_checkpoint: {name}: its model state holds {key!r}: "
                                  f"{type(value).__name__}, expected parameter names mapping to tensors")
    if "config" in ck:
        try:
            config = json.loads(ck["config"])
        except json.JSONDecodeError as e:
            raise CheckpointError(f"load_checkpoint: {name}: its run configuration is not JSON ({e})") from None
        if not isinstance(config, dict):
            raise CheckpointError(f"load_checkpoint: {name}: its run configuration is a {type(config).__name__}, "
                                  "expected a JSON object")
    if "rng" in ck:  # tried on a spare generator of the same kind, so a bad state fails here, by name
        probe = type(backend.generator().bit_generator)()
        try:
            probe.state = dict(ck["rng"])
        except (TypeError, ValueError, KeyError) as e:
            raise CheckpointError(f"load_checkpoint: {name}: its random generator state is unusable "
                                  f"({_one_line(e)})") from None
    if ck.get("partial_epoch") is not None:
        part = ck["partial_epoch"]
        if not (isinstance(part.get("loss_sum"), (int, float)) and isinstance(part.get("seen"), int)
                and isinstance(part.get("metrics"), list)):
            raise CheckpointError(f"load_checkpoint: {name}: its 'partial_epoch' part is malformed "
                                  f"{_short(part)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        SerializationError: the file is not a readable lamina file.
        CheckpointError: it is one, but not a training checkpoint, or a part has the wrong kind
            (the model state not a mapping of names to tensors, the epoch not an integer …).
    """
    ck = load(path)
    name = repr(os.fspath(path))
    if not isinstance(ck, dict) or ck.get("format") != _FORMAT:
        raise CheckpointError(f"load_checkpoint: {name} is a lamina file but not a training checkpoint")
    _check_parts(ck, name)
    return ck


def load_part(target: Any, state: Any, path: str | os.PathLike[str], part: str) -> Any:
    """``target.load_state_dict(state)``, where ``state`` is the ``part`` of the checkpoint ``path``.

    A state that is absent or does not fit (missing or unexpected keys, a shape mismatch, another
    number of parameter groups …) raises a :class:`CheckpointError` naming the file and the part,
    in one line; the original error is its ``__cause__``."""
    name = repr(os.fspath(path))
    if state is None:
        raise CheckpointError(f"{name}: the checkpoint has no {part} state")
    try:
        return target.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
        # the errors load_state_dict raises for a state of another model or configuration
        raise CheckpointError(f"{name}: its {part} state does not fit this {type(target).__name__}: "
                              f"{_one_line(e)}") from e
