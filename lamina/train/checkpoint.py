"""Checkpoints that lose nothing: model, optimizer, scheduler, RNG states, epoch, step, history.

Written with ``lamina.save`` (a temporary file, then an atomic rename: a crash never leaves a
half-written checkpoint) in lamina's pickle-free format.
"""

from __future__ import annotations

import os
from typing import Any

from .. import backend
from ..serialization import load, save

__all__ = ["save_checkpoint", "load_checkpoint", "rng_state", "set_rng_state"]


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
    payload["format"] = "lamina-checkpoint-1"
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    os.makedirs(folder, exist_ok=True)
    save(payload, path)
    return os.fspath(path)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (raises naming the file if it is not one)."""
    ck = load(path)
    if not isinstance(ck, dict) or ck.get("format") != "lamina-checkpoint-1":
        raise ValueError(f"load_checkpoint: {os.fspath(path)!r} is a lamina file but not a training checkpoint")
    return ck
