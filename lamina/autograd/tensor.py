"""The ``Tensor``: a backend array with an optional place in the autograd graph.

Operations are not defined here: each op file under ``lamina/ops`` attaches its methods with
:func:`register` (``x.relu()``, ``x + y`` …), so this floor never imports the floor above.
"""

from __future__ import annotations

import builtins as _builtins
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from .. import backend
from .graph import AccumulateGrad, RemovableHandle

__all__ = ["Tensor", "register", "tensor", "as_array", "legacy_array"]

xp = backend.xp


def register(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Attach the decorated function to ``Tensor`` under each of ``names``."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        for n in names:
            setattr(Tensor, n, fn)
        return fn

    return deco


def _infer_array(data: Any, dtype: Any) -> Any:
    """Array for ``lamina.tensor(data)``: torch's dtype inference (Python floats → default
    float dtype, ints → int64, bools → bool; NumPy arrays keep their dtype)."""
    if isinstance(data, Tensor):
        arr = data.array
    elif isinstance(data, (xp.ndarray, xp.generic)):
        arr = xp.asarray(data)
    else:
        if isinstance(data, (list, tuple)) and any(isinstance(d, Tensor) for d in _flat(data)):
            data = _to_nested(data)
        arr = xp.asarray(data)
        if dtype is None:
            if arr.dtype.kind == "f":
                arr = arr.astype(backend.get_default_dtype())
            elif arr.dtype.kind in "iu":
                arr = arr.astype(backend.int64)
            elif arr.dtype.kind not in "b":
                raise TypeError(f"tensor: cannot make a tensor from data of type {arr.dtype}")
    if dtype is not None:
        arr = arr.astype(backend.to_dtype(dtype), copy=False)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"tensor: unsupported dtype {arr.dtype} (expected float, int or bool)")
    return arr


def _is_size_arg(a: Any) -> bool:
    return isinstance(a, (_builtins.int, xp.integer)) and not isinstance(a, (_builtins.bool, xp.bool_))


def legacy_array(args: tuple[Any, ...], dtype: Any, op: str) -> Any:
    """The array of ``torch.Tensor(*args)`` / ``torch.FloatTensor(*args)``: no arguments → empty;
    integers (or one ``Size``) → an uninitialized tensor of that shape; else the data, converted to
    ``dtype`` (``torch.Tensor(np.float64 array)`` is float32, as torch)."""
    if not args:
        return xp.empty((0,), dtype=dtype)
    if all(_is_size_arg(a) for a in args):
        return xp.empty(tuple(_builtins.int(a) for a in args), dtype=dtype)
    if len(args) == 1 and type(args[0]).__name__ == "Size" and isinstance(args[0], tuple):
        return xp.empty(tuple(args[0]), dtype=dtype)
    if len(args) > 1:
        raise TypeError(f"{op}: expected sizes (integers) or one data argument, got "
                        f"({', '.join(type(a).__name__ for a in args)})")
    data = args[0]
    if isinstance(data, Tensor):
        return data.array if data.dtype == dtype else data.array.astype(dtype)
    if isinstance(data, (_builtins.float, _builtins.complex, str)):
        raise TypeError(f"{op}: expected a sequence, an array or sizes, got a {type(data).__name__} ({data!r})")
    arr = xp.asarray(data)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{op}: cannot make a tensor from data of type {arr.dtype}")
    return arr.astype(dtype)


def _flat(seq: Any) -> Iterator[Any]:
    for s in seq:
        if isinstance(s, (list, tuple)):
            yield from _flat(s)
        else:
            yield s


def _to_nested(seq: Any) -> Any:
    if isinstance(seq, (list, tuple)):
        return [_to_nested(s) for s in seq]
    return seq.array if isinstance(seq, Tensor) else seq


def as_array(x: Any) -> Any:
    """The backend array behind ``x`` (a Tensor, an array of any registered type or a Python number)."""
    if isinstance(x, Tensor):
        return x.array
    return x if backend.is_array(x) else xp.asarray(x)


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    ``Tensor(...)`` itself follows torch's legacy constructor: ``Tensor(2, 3)`` is an
    uninitialized 2×3 tensor and ``Tensor(data)`` is a copy of the data in the default float
    dtype (``Tensor(np.float64 array)`` is float32, as torch). ``lamina.tensor(data)`` infers
    the dtype instead, and is what new code should call.

    Args:
        *data: sizes (integers) or one array-like (nested lists, NumPy array, or Tensor); copied.
        dtype: the dtype (default: the default float dtype); a lamina extension.
        requires_grad: record operations on this tensor for backward; a lamina extension.

    Attributes:
        array: the backend (NumPy) array underneath; a lamina extension to torch's API.
        grad: the accumulated gradient (a Tensor) after ``backward``, or None.
        grad_fn: the graph node that produced this tensor (None for leaves).
    """

    __slots__ = ("array", "_grad", "grad_fn", "_requires_grad", "_vc", "_acc", "_hooks", "_post_acc_hooks",
                 "_retains_grad", "_is_view", "__weakref__")
    __array_priority__ = 1000  # numpy scalars and arrays defer to Tensor's operators

    def __init__(self, *data: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None) -> None:
        if device is not None:
            backend.to_device(device)
        if type(self) is Tensor:  # torch.Tensor's own constructor: sizes, or data in the default dtype
            d = backend.get_default_dtype() if dtype is None else backend.to_dtype(dtype)
            arr = legacy_array(data, d, "Tensor")
        else:  # subclasses (Parameter, Buffer) keep the data's dtype as lamina.tensor does
            arr = _infer_array(data[0] if data else (), dtype)
        self._init_array(xp.array(arr, copy=True), requires_grad)

    def _init_array(self, arr: Any, requires_grad: bool) -> None:
        self.array = arr
        self._grad: Tensor | None = None
        self.grad_fn: Any = None
        self._requires_grad = False
        self._vc = [0]
        self._acc: weakref.ref[AccumulateGrad] | None = None
        self._hooks: dict[int, Callable[[Tensor], Tensor | None]] | None = None
        self._post_acc_hooks: dict[int, Callable[[Tensor], None]] | None = None
        self._retains_grad = False
        self._is_view = False
        if requires_grad:
            self.requires_grad = True

    @classmethod
    def _wrap(cls, array: Any, vc: list[int] | None = None) -> Tensor:
        """A tensor around ``array`` without copying (internal fast path)."""
        t = cls.__new__(cls)
        t.array = array
        t._grad = None
        t.grad_fn = None
        t._requires_grad = False
        t._vc = vc if vc is not None else [0]
        t._acc = None
        t._hooks = None
        t._post_acc_hooks = None
        t._retains_grad = False
        t._is_view = False
        return t

    # --- metadata ------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @property
    def ndim(self) -> int:
        return self.array.ndim

    @property
    def dtype(self) -> Any:
        return self.array.dtype

    @property
    def device(self) -> backend.Device:
        return backend.Device("cpu")

    @property
    def is_cuda(self) -> bool:
        """False: lamina has no GPU backend (also ``is_xpu``, ``is_mps``, ``is_meta``; ``is_cpu`` is True)."""
        return False

    is_xpu = is_mps = is_meta = is_cuda

    @property
    def is_cpu(self) -> bool:
        return True

    def get_device(self) -> int:
        """-1, torch's answer for a CPU tensor."""
        return -1

    def size(self, dim: int | None = None) -> Any:
        """The shape, or its length along ``dim``."""
        if dim is None:
            return tuple(self.array.shape)
        return self.array.shape[_wrap_dim(dim, self.ndim, "size")]

    def dim(self) -> int:
        return self.array.ndim

    def numel(self) -> int:
        return int(self.array.size)

    def nelement(self) -> int:
        return int(self.array.size)

    def element_size(self) -> int:
        return int(self.array.itemsize)

    def is_floating_point(self) -> bool:
        return self.array.dtype.kind == "f"

    def is_contiguous(self, memory_format: Any = None) -> bool:
        """Whether the array is laid out as ``memory_format`` (default: C-contiguous, torch's
        ``contiguous_format``; ``lamina.channels_last`` asks for channels innermost)."""
        return backend.is_memory_format(self.array, memory_format)

    def stride(self, dim: int | None = None) -> Any:
        """The strides in elements (as torch), or the stride along ``dim``."""
        st = tuple(s // self.array.itemsize for s in self.array.strides)
        return st if dim is None else st[_wrap_dim(dim, self.ndim, "stride")]

    @property
    def _version(self) -> int:
        return self._vc[0]

    def _bump_version(self) -> None:
        self._vc[0] += 1

    # --- autograd state -------------------------------------------------------------------
    @property
    def grad(self) -> Tensor | None:
        """The accumulated gradient (None until a backward reaches this leaf)."""
        return self._grad

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got {type(value).__name__}")
            if value.array.shape != self.array.shape:
                raise RuntimeError(
                    f"assigned grad has data of a different size: {tuple(value.shape)} for a tensor of shape "
                    f"{tuple(self.shape)}"
                )
            if value.array.dtype != self.array.dtype:
                raise RuntimeError(f"assigned grad has dtype {value.dtype} but the tensor has {self.dtype}")
        self._grad = value

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad or self.grad_fn is not None

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        if self.grad_fn is not None:
            if not flag:
                raise RuntimeError(
                    "you can only change requires_grad flags of leaf variables. If you want to use "
                    "a computed variable in a subgraph that doesn't require differentiation use "
                    "var_no_grad = var.detach()."
                )
            return
        if flag and self.array.dtype.kind != "f":
            raise RuntimeError(
                f"only Tensors of floating point dtype can require gradients (got {self.dtype})"
            )
        self._requires_grad = bool(flag)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def data(self) -> Tensor:
        """A detached tensor sharing this tensor's array but not its version counter (as torch's
        ``.data``: changes through it are not seen by autograd — ``detach()`` is the safe form)."""
        return Tensor._wrap(self.array)

    @data.setter
    def data(self, value: Tensor) -> None:
        self.array = value.array if isinstance(value, Tensor) else xp.asarray(value)

    def detach(self) -> Tensor:
        """A tensor sharing this one's array, cut from the graph (version counter shared)."""
        return Tensor._wrap(self.array, vc=self._vc)

    def detach_(self) -> Tensor:
        self.grad_fn = None
        self._requires_grad = False
        return self

    def _get_accumulator(self) -> AccumulateGrad:
        acc = self._acc() if self._acc is not None else None
        if acc is None:
            acc = AccumulateGrad(self)
            self._acc = weakref.ref(acc)
        return acc

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward."""
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is None or self._retains_grad:
            return
        self._retains_grad = True
        self.grad_fn.retained = weakref.ref(self)

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> RemovableHandle:
        """Call ``hook(grad)`` when the gradient for this tensor is computed; a non-None return
        replaces the gradient. Returns a handle whose ``remove()`` unregisters it."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            return self.grad_fn.add_pre_hook(hook)
        if self._hooks is None:
            self._hooks = {}
        handle = RemovableHandle(self._hooks)
        self._hooks[handle.id] = hook
        return handle

    def register_post_accumulate_grad_hook(self, hook: Callable[[Tensor], None]) -> RemovableHandle:
        """Call ``hook(tensor)`` on this leaf after ``backward`` has accumulated into its ``.grad``
        (data-parallel training starts reducing a gradient from here). Matches torch's method of
        the same name; the hook's return value is ignored."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        if self._post_acc_hooks is None:
            self._post_acc_hooks = {}
        handle = RemovableHandle(self._post_acc_hooks)
        self._post_acc_hooks[handle.id] = hook
        return handle

    def backward(
        self,
        gradient: Tensor | None = None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
        inputs: Any = None,
    ) -> None:
        """Accumulate the gradient of this tensor into the ``.grad`` of the graph's leaves.

        Args:
            gradient: the gradient with respect to this tensor; may be omitted for a scalar.
            retain_graph: keep saved buffers so a second backward works (default: create_graph).
            create_graph: record the backward pass itself, for higher-order derivatives.
            inputs: accumulate only into these leaves (default: all leaves of the graph).
        """
        from .engine import run_backward

        run_backward((self,), (gradient,), retain_graph, create_graph, inputs=inputs)

    # --- conversion -----------------------------------------------------------------------
    def item(self) -> Any:
        if self.array.size != 1:
            raise RuntimeError(
                f"a Tensor with {self.array.size} elements cannot be converted to Scalar"
            )
        return self.array.reshape(()).item()

    def numpy(self) -> Any:
        """The array (shared, as torch's ``.numpy()``); raises if the tensor requires grad."""
        if self.requires_grad:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead."
            )
        return self.array

    def tolist(self) -> Any:
        return self.array.tolist()

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        return self.array if dtype is None else self.array.astype(dtype)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.array.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))  # type: ignore[index]

    def __bool__(self) -> bool:
        if self.array.size != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with {self.array.size} values is ambiguous"
            )
        return bool(self.array.reshape(()))

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.array.dtype.kind not in "iu" or self.array.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    __hash__ = object.__hash__

    def __format__(self, spec: str) -> str:
        if spec and self.array.size == 1:  # f"{loss:.4f}" on a one-element tensor, as torch
            return format(self.item(), spec)
        return format(repr(self), spec)

    def __deepcopy__(self, memo: dict[int, Any]) -> Tensor:
        """A copy with its own array and version counter, cut from the graph (``requires_grad``
        and the gradient are copied), as ``copy.deepcopy`` of a torch leaf tensor."""
        if not self.is_leaf:
            raise RuntimeError(
                "Only Tensors created explicitly by the user (graph leaves) support the deepcopy protocol"
            )
        new = type(self).__new__(type(self))
        new._init_array(self.array.copy(), False)
        new._requires_grad = self._requires_grad
        new.grad = self.grad.__deepcopy__(memo) if self.grad is not None else None
        memo[id(self)] = new
        return new

    def __repr__(self) -> str:
        from ._print import format_tensor

        return format_tensor(self)


def _wrap_dim(dim: int, ndim: int, op: str) -> int:
    lo, hi = -max(ndim, 1), max(ndim, 1) - 1
    if not isinstance(dim, (int, xp.integer)) or not lo <= dim <= hi:
        raise IndexError(
            f"{op}: dimension out of range (expected to be in range of [{lo}, {hi}], but got {dim})"
        )
    return int(dim) % max(ndim, 1)


def tensor(data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Make a tensor from ``data`` (copied), as ``torch.tensor``.

    Python floats become the default float dtype (float32), ints int64, bools bool; NumPy
    arrays keep their dtype.

    Example:
        >>> import lamina
        >>> lamina.tensor([[1., 2.], [3., 4.]]).shape
        (2, 2)
    """
    if device is not None:
        backend.to_device(device)
    t = Tensor.__new__(Tensor)
    t._init_array(xp.array(_infer_array(data, dtype), copy=True), requires_grad)
    return t
