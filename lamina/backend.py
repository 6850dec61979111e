"""Floor 0: the array module, dtypes, devices and the global random generator.

Array calls in lamina go through an array module: :data:`xp` (NumPy) by default, or the module
of the arrays at hand, :func:`get_array_module` (Chainer's and CuPy's idea), so that the floors
above never name ``numpy`` for computation. Dtypes are NumPy dtypes, exported under torch's
names (``lamina.float32`` …).

The device seam. Another array type (a CuPy ndarray, a test suite's wrapper) joins in two
steps, neither touching ``ops/``:

1. :func:`register_array_module` maps the type to its NumPy-like module; ops that create arrays
   or call module functions on their inputs ask ``get_array_module(x)`` (a type check, NumPy's
   module for ndarrays, Python scalars and None). Functions NumPy dispatches through NEP 13/18
   (``__array_ufunc__``, ``__array_function__``) run on such arrays through ``numpy`` directly.
2. the kernel selectors (:mod:`lamina.ops.kernels.conv_select`, ``pool_select``,
   ``norm_select``) take per array type the implementations of each pass: ``register(type,
   pass, Impl)``. Their entry points look at ``type(x)`` first; ndarrays keep the built-in
   tables (one type check, then the cached dictionary look-up as before).

A tensor holds an array of any registered type: ``Tensor._wrap(array)`` (the autograd engine,
``Function.apply`` and the ops on the seam keep results in the inputs' type). There is no device
object for it: ``Device`` names torch's devices, and lamina computes on the CPU.

What does not go through the seam yet: the numba kernels (NumPy arrays by nature: a foreign
type registers its own kernels instead); the modules that still hold ``xp = backend.xp`` and
create arrays with it (the autograd factories ``zeros``/``randn``/…, ``lamina.tensor`` from
data, the data pipeline, the models, most of ``ops/`` beyond the conv, pooling, normalization,
elementwise, reduction and shape ops the seam tests run); tensors on another type are made
by wrapping its arrays.
"""

from __future__ import annotations

import builtins as _builtins
from typing import Any

import numpy

builtins_float, builtins_int, builtins_bool = _builtins.float, _builtins.int, _builtins.bool

__all__ = [
    "xp",
    "get_array_module",
    "register_array_module",
    "is_array",
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "bool_",
    "half",
    "float",
    "double",
    "short",
    "int",
    "long",
    "get_default_dtype",
    "set_default_dtype",
    "to_dtype",
    "is_floating_dtype",
    "manual_seed",
    "default_generator",
    "Device",
    "to_device",
    "Generator",
    "memory_format",
    "contiguous_format",
    "channels_last",
    "channels_last_3d",
    "preserve_format",
    "bfloat16",
    "promote_types",
    "can_cast",
]

xp = numpy

# array type -> its NumPy-like module (numpy.ndarray's is numpy and is never looked up)
_ARRAY_MODULES: dict[type, Any] = {}


def register_array_module(array_type: type, module: Any) -> None:
    """Make ``module`` (NumPy-like: ``zeros``, ``asarray``, ``einsum`` …) the array module of
    arrays of ``array_type``, as :func:`get_array_module` returns it."""
    if array_type is numpy.ndarray:
        raise ValueError("register_array_module: numpy.ndarray's module is numpy")
    _ARRAY_MODULES[array_type] = module


def unregister_array_module(array_type: type) -> None:
    """Forget ``array_type``'s module."""
    _ARRAY_MODULES.pop(array_type, None)


def get_array_module(*arrays: Any) -> Any:
    """The array module of ``arrays``: the registered module of the first whose type has one,
    else NumPy (for ndarrays, NumPy scalars, Python numbers, None)."""
    for a in arrays:
        t = type(a)
        if t is not numpy.ndarray and _ARRAY_MODULES:
            m = _ARRAY_MODULES.get(t)
            if m is not None:
                return m
    return numpy


def is_array(a: Any) -> _builtins.bool:
    """Whether ``a`` is an ndarray or an array of a registered type."""
    return isinstance(a, numpy.ndarray) or type(a) in _ARRAY_MODULES


float16 = numpy.dtype("float16")
float32 = numpy.dtype("float32")
float64 = numpy.dtype("float64")
int8 = numpy.dtype("int8")
int16 = numpy.dtype("int16")
int32 = numpy.dtype("int32")
int64 = numpy.dtype("int64")
uint8 = numpy.dtype("uint8")
bool_ = numpy.dtype("bool")
half, double, short, long = float16, float64, int16, int64
float = float32  # noqa: A001  (torch.float is float32)
int = int32  # noqa: A001  (torch.int is int32)

_default_dtype = float32

_DTYPE_NAMES = {
    "float16": float16, "half": float16, "float32": float32, "float": float32,
    "float64": float64, "double": float64, "int8": int8, "int16": int16, "short": int16,
    "int32": int32, "int": int32, "int64": int64, "long": int64, "uint8": uint8,
    "bool": bool_,
}


def to_dtype(dtype: Any) -> numpy.dtype:
    """Return the NumPy dtype for ``dtype`` (a dtype, a torch-style name such as ``'float32'``,
    a Python type ``float``/``int``/``bool``, or a ``torch.dtype``)."""
    if dtype is None:
        return _default_dtype
    if isinstance(dtype, numpy.dtype):
        return dtype
    if dtype is builtins_float:
        return _default_dtype
    if dtype is builtins_int:
        return int64
    if dtype is builtins_bool:
        return bool_
    if isinstance(dtype, _NoKernels):
        raise TypeError(f"dtype {dtype}: lamina has no {dtype.name} kernels (its floating dtypes are float16, "
                        f"float32 and float64)")
    name = str(dtype)
    if name.startswith("torch."):
        name = name[len("torch."):]
    if name in _DTYPE_NAMES:
        return _DTYPE_NAMES[name]
    try:
        return numpy.dtype(dtype)
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}") from None


def is_floating_dtype(dtype: numpy.dtype) -> bool:
    return dtype.kind == "f"


def _category(dtype: numpy.dtype) -> _builtins.int:
    return 0 if dtype.kind == "b" else 2 if dtype.kind == "f" else 1


def promote_types(type1: Any, type2: Any) -> numpy.dtype:
    """The smallest dtype both ``type1`` and ``type2`` convert to, as ``torch.promote_types``.

    Bool < integers < floats: the higher category wins (``int64`` with ``float16`` is
    ``float16``, where NumPy says ``float64``); within floats the wider one; within integers
    NumPy's rule, which is torch's (``uint8`` with ``int8`` is ``int16``).
    """
    a, b = to_dtype(type1), to_dtype(type2)
    if a == b:
        return a
    ca, cb = _category(a), _category(b)
    if ca != cb:
        return a if ca > cb else b
    if ca == 2:
        return a if a.itemsize >= b.itemsize else b
    return numpy.result_type(a, b)


def can_cast(from_: Any, to: Any) -> _builtins.bool:
    """Whether an in-place op may write a ``from_`` result into a ``to`` tensor, as
    ``torch.can_cast``: not float into integer or bool, nor integer into bool."""
    return _category(to_dtype(from_)) <= _category(to_dtype(to))


def get_default_dtype() -> numpy.dtype:
    """The floating dtype new tensors get from Python floats (float32 unless changed)."""
    return _default_dtype


def set_default_dtype(dtype: Any) -> None:
    """Set the default floating dtype (float32 or float64), as ``torch.set_default_dtype``."""
    global _default_dtype
    d = to_dtype(dtype)
    if d not in (float32, float64):
        raise TypeError(f"set_default_dtype: expected float32 or float64, got {d}")
    _default_dtype = d


# --- random numbers: one global generator, reseeded by manual_seed ---------------------------

default_generator = numpy.random.default_rng(0)


def manual_seed(seed: _builtins.int) -> numpy.random.Generator:
    """Seed lamina's global random generator (as ``torch.manual_seed``) and return it."""
    global default_generator
    if not isinstance(seed, (_builtins.int, numpy.integer)) or isinstance(seed, _builtins.bool):
        raise TypeError(f"manual_seed: expected an integer seed, got {type(seed).__name__}")
    default_generator = numpy.random.default_rng(_builtins.int(seed) & 0xFFFFFFFFFFFFFFFF)
    return default_generator


def generator() -> numpy.random.Generator:
    """The current global generator (after the latest ``manual_seed``)."""
    return default_generator


# --- devices ---------------------------------------------------------------------------------


_DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu", "meta")


class Device:
    """A device as torch names it (``'cpu'``, ``'cuda:0'``, ``device('cuda', 0)``).

    Any of torch's common device types can be *named* (``torch.device('cuda')`` works on a machine
    without a GPU in torch too); lamina computes on the CPU only, so moving a tensor or a module to
    any other device raises (see :func:`to_device`).
    """

    __slots__ = ("type", "index")

    def __init__(self, spec: Any = "cpu", index: _builtins.int | None = None) -> None:
        if isinstance(spec, Device):
            self.type, self.index = spec.type, spec.index
            return
        if isinstance(spec, (_builtins.int, numpy.integer)) and not isinstance(spec, _builtins.bool):
            spec = f"cuda:{spec}"  # torch.device(0) is the first CUDA device
        if not isinstance(spec, str):
            raise TypeError(f"device: expected a string or a device, got {type(spec).__name__}")
        typ, _, idx = spec.partition(":")
        if typ not in _DEVICE_TYPES or (idx and not idx.isdigit()):
            raise ValueError(f"device: expected one of {', '.join(_DEVICE_TYPES)} with an optional ':N', "
                             f"got {spec!r}")
        if idx and index is not None:
            raise ValueError(f"device: index given twice ({spec!r} and index={index})")
        self.type = typ
        self.index = _builtins.int(idx) if idx else (None if index is None else _builtins.int(index))

    def __eq__(self, other: object) -> _builtins.bool:
        try:
            o = Device(other)  # type: ignore[arg-type]
        except (ValueError, TypeError):
            return False
        return self.type == o.type and self.index == o.index

    def __hash__(self) -> _builtins.int:
        return hash((self.type, self.index))

    def __repr__(self) -> str:
        return f"device(type='{self.type}'" + (f", index={self.index})" if self.index is not None else ")")

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


def is_device_spec(obj: Any) -> _builtins.bool:
    """Whether ``obj`` names a device (a :class:`Device` or a string such as ``'cuda:0'``)."""
    return isinstance(obj, Device) or (isinstance(obj, str) and obj.partition(":")[0] in _DEVICE_TYPES)


def to_device(spec: Any) -> Device:
    """``spec`` as a :class:`Device`, which must be the CPU: lamina has no GPU backend.

    Raises:
        RuntimeError: for any device other than the CPU (``x.cuda()``, ``x.to('cuda')`` and
            ``model.to('mps')`` all end here).
    """
    d = Device(spec)
    if d.type != "cpu":
        raise RuntimeError(f"device {d}: lamina has no GPU backend; it computes on the CPU only "
                           f"(use device 'cpu', or pick it with lamina.cuda.is_available(), which is False)")
    return d


# --- torch.Generator: a NumPy generator with torch's seeding methods --------------------------

_DEFAULT_SEED = 67280421310721  # torch.Generator's default seed


class Generator(numpy.random.Generator):
    """A random generator with torch's methods (``manual_seed``, ``seed``, ``initial_seed``,
    ``get_state``/``set_state``), usable wherever lamina takes a ``numpy.random.Generator``
    (``DataLoader(generator=)``, ``random_split``, samplers).

    It is NumPy's PCG64 generator, so its numbers are not torch's: ``Generator().manual_seed(s)``
    draws what ``numpy.random.default_rng(s)`` draws.
    """

    def __init__(self, device: Any = "cpu") -> None:
        to_device(device)
        self._initial_seed = _DEFAULT_SEED
        super().__init__(numpy.random.PCG64(_DEFAULT_SEED))

    def manual_seed(self, seed: _builtins.int) -> Generator:
        """Reseed the generator; returns it (so ``Generator().manual_seed(0)`` chains)."""
        if not isinstance(seed, (_builtins.int, numpy.integer)) or isinstance(seed, _builtins.bool):
            raise TypeError(f"Generator.manual_seed: expected an integer seed, got {type(seed).__name__}")
        self._initial_seed = _builtins.int(seed) & 0xFFFFFFFFFFFFFFFF
        self.bit_generator.state = numpy.random.PCG64(self._initial_seed).state
        return self

    def seed(self) -> _builtins.int:
        """Reseed from the operating system's entropy; returns the new seed."""
        s = _builtins.int(numpy.random.SeedSequence().entropy) & 0xFFFFFFFFFFFFFFFF
        self.manual_seed(s)
        return s

    def initial_seed(self) -> _builtins.int:
        return self._initial_seed

    def get_state(self) -> dict[str, Any]:
        """The generator's state (a dict of NumPy's PCG64 state, not torch's byte tensor)."""
        return self.bit_generator.state

    def set_state(self, state: dict[str, Any]) -> Generator:
        self.bit_generator.state = state
        return self

    @property
    def device(self) -> Device:
        return Device("cpu")

    def __reduce__(self) -> Any:  # pickled into DataLoader workers
        return (_rebuild_generator, (self._initial_seed, self.bit_generator.state))


def _rebuild_generator(initial_seed: _builtins.int, state: dict[str, Any]) -> Generator:
    g = Generator()
    g._initial_seed = initial_seed
    g.bit_generator.state = state
    return g


# --- memory formats: torch.channels_last and friends -------------------------------------------


class memory_format:  # noqa: N801  (torch's name)
    """A memory layout, as ``torch.channels_last``: the order of the strides of a 4-d (5-d) tensor.

    Lamina keeps the logical NCHW shape whatever the layout; ``channels_last`` stores the array
    with the channel dimension innermost (strides as torch's), and results do not depend on it.
    """

    __slots__ = ("name", "order")

    def __init__(self, name: str, order: tuple[_builtins.int, ...] | None) -> None:
        self.name, self.order = name, order

    def __repr__(self) -> str:
        return f"lamina.{self.name}"

    def __reduce__(self) -> str:
        return self.name


contiguous_format = memory_format("contiguous_format", None)
preserve_format = memory_format("preserve_format", None)
channels_last = memory_format("channels_last", (0, 2, 3, 1))
channels_last_3d = memory_format("channels_last_3d", (0, 2, 3, 4, 1))


def to_memory_format(array: Any, fmt: Any) -> Any:
    """``array`` laid out in memory as ``fmt`` (a copy when the layout changes)."""
    if not isinstance(fmt, memory_format):
        raise TypeError(f"memory_format: expected lamina.channels_last, contiguous_format or preserve_format, "
                        f"got {fmt!r}")
    if fmt is preserve_format:
        return array
    if fmt.order is None:
        return numpy.ascontiguousarray(array).reshape(array.shape)  # ascontiguousarray makes 0-d 1-d
    if array.ndim != len(fmt.order):
        raise RuntimeError(f"required rank {len(fmt.order)} tensor to use {fmt.name} format (got shape "
                           f"{tuple(array.shape)})")
    inverse = tuple(numpy.argsort(fmt.order))
    return numpy.ascontiguousarray(array.transpose(fmt.order)).transpose(inverse)


def is_memory_format(array: Any, fmt: Any) -> _builtins.bool:
    """Whether ``array`` is laid out as ``fmt`` (torch's ``is_contiguous(memory_format=)``)."""
    if fmt is None or fmt.order is None:
        return _builtins.bool(array.flags.c_contiguous)
    if array.ndim != len(fmt.order):
        return False
    return _builtins.bool(array.transpose(fmt.order).flags.c_contiguous)


class _NoKernels:
    """A dtype torch has and lamina has not (``torch.bfloat16``): it can be named (in
    ``torch.autocast(dtype=...)``), and making a tensor of it raises."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"lamina.{self.name}"


bfloat16 = _NoKernels("bfloat16")
