"""``state_dict`` / ``load_state_dict`` of ``Module`` (a mixin, kept apart for size)."""

from __future__ import annotations

from collections import OrderedDict, namedtuple
from typing import Any

from ... import backend
from ...autograd.grad_mode import no_grad
from ...autograd.tensor import Tensor

__all__ = ["IncompatibleKeys", "_StateDictMixin"]

xp = backend.xp

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _as_array(value: Any) -> Any:
    """A state-dict value as an array: lamina tensors, NumPy arrays, and torch tensors."""
    if isinstance(value, Tensor):
        return value.array
    if hasattr(value, "detach") and hasattr(value, "cpu") and hasattr(value, "numpy"):
        return value.detach().cpu().numpy()  # a torch.Tensor
    return xp.asarray(value)


class _StateDictMixin:
    """Parameters and persistent buffers by torch's dotted names, saved and restored."""

    def state_dict(self, *args: Any, destination: Any = None, prefix: str = "",
                   keep_vars: bool = False) -> OrderedDict[str, Tensor]:
        """Parameters and persistent buffers by torch's dotted names (detached)."""
        if args:
            destination = args[0]
            if len(args) > 1:
                prefix = args[1]
        if destination is None:
            destination = OrderedDict()
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars else b.detach()
        extra = getattr(type(self), "get_extra_state", None)
        if extra is not None and extra is not _StateDictMixin.get_extra_state:
            destination[prefix + "_extra_state"] = self.get_extra_state()
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars)
        return destination

    def get_extra_state(self) -> Any:
        raise RuntimeError("get_extra_state is not implemented for this module")

    def set_extra_state(self, state: Any) -> None:
        raise RuntimeError("set_extra_state is not implemented for this module")

    def _local_state(self) -> dict[str, Tensor]:
        local = {k: v for k, v in self._parameters.items() if v is not None}
        local.update({k: v for k, v in self._buffers.items()
                      if v is not None and k not in self._non_persistent_buffers_set})
        return local

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> IncompatibleKeys:
        """Copy parameters and buffers from ``state_dict`` (lamina tensors, NumPy arrays or torch
        tensors). With ``strict`` (default), missing or unexpected keys raise; a shape mismatch
        always raises, naming the key and both shapes."""
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict).__name__}.")
        missing, unexpected, errors = [], [], []
        expected_keys = set()
        for mod_prefix, mod in self.named_modules():
            p = mod_prefix + "." if mod_prefix else ""
            for k, t in mod._local_state().items():
                key = p + k
                expected_keys.add(key)
                if key not in state_dict:
                    missing.append(key)
                    continue
                arr = _as_array(state_dict[key])
                if tuple(arr.shape) != tuple(t.shape):
                    errors.append(
                        f"size mismatch for {key}: copying a param with shape {tuple(arr.shape)} from "
                        f"checkpoint, the shape in current model is {tuple(t.shape)}."
                    )
                    continue
                if t.dtype.kind == "f" and arr.dtype.kind not in "fiub":
                    errors.append(f"dtype mismatch for {key}: cannot load {arr.dtype} into {t.dtype}")
                    continue
            extra = getattr(type(mod), "set_extra_state", None)
            if extra is not None and extra is not _StateDictMixin.set_extra_state:
                expected_keys.add(p + "_extra_state")
        for key in state_dict.keys():
            if key not in expected_keys:
                unexpected.append(key)
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ". ")
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ". ")
        if errors:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(errors)
            )
        with no_grad():
            for mod_prefix, mod in self.named_modules():
                p = mod_prefix + "." if mod_prefix else ""
                for k, t in mod._local_state().items():
                    if p + k not in state_dict:
                        continue
                    arr = _as_array(state_dict[p + k]).astype(t.dtype, copy=True)
                    if assign:
                        t.array = arr
                    else:
                        t.array[...] = arr
                    t._bump_version()
                if p + "_extra_state" in state_dict:
                    mod.set_extra_state(state_dict[p + "_extra_state"])
        return IncompatibleKeys(missing, unexpected)

