"""The machinery every kernel selector shares: implementations, ordered tables, forcing, and
tables registered per array type.

A family of kernels (conv, pooling, normalization) describes each call by a frozen *problem*
dataclass (shapes, dtype, settings, detected capabilities — never the memory layout of an
array) and keeps, per pass, one ordered table of :class:`Impl`. :meth:`Selector.select` takes
the first implementation that supports the problem and prefers it, cached per problem (choosing
costs a dictionary look-up); every NumPy table ends with a reference that supports everything.
:meth:`Selector.force` picks implementations by name within a ``with`` block (this thread or
task only), so that tests run each implementation against the reference.

Tables are per array type: the built-in ones serve ``numpy.ndarray``; another array type (a
CuPy backend, the test suite's wrapper array) brings its own with :meth:`Selector.register`,
and the kernels' entry points hand ``type(x)`` to the selector whenever ``x`` is not an
ndarray. The ndarray path never looks at the registry.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

__all__ = ["Impl", "Selector", "always"]


def always(p: Any) -> bool:
    """Every problem."""
    return True


@dataclass(frozen=True)
class Impl:
    """One implementation of one pass: ``supports(problem)`` says whether it computes the problem
    (correctly: :meth:`Selector.force` may pick it for any such problem), ``prefers(problem)``
    whether the selector takes it there (the speed thresholds), ``run`` computes it (its
    arguments are the pass's, set by the family's entry point), ``doc`` says what it supports
    and where it earns its place."""

    name: str
    supports: Callable[[Any], bool]
    run: Callable[..., Any]
    doc: str
    prefers: Callable[[Any], bool] = always


class Selector:
    """The tables of one kernel family and the choice among them.

    Args:
        family: the name errors start with (``"conv_select"``).
        passes: the family's passes, in the order :meth:`force` and ``explain`` list them.
        build: returns ``{pass: (Impl, …)}`` for ndarrays, called on first use (so a table may
            name the runs of a module that imports the selector).
    """

    def __init__(self, family: str, passes: tuple[str, ...],
                 build: Callable[[], dict[str, tuple[Impl, ...]]]) -> None:
        self.family, self.passes, self._build = family, passes, build
        self._tables: dict[str, tuple[Impl, ...]] = {}
        self._foreign: dict[type, dict[str, tuple[Impl, ...]]] = {}
        self._forced: contextvars.ContextVar[tuple[tuple[str, str], ...]] = contextvars.ContextVar(
            f"lamina_{family}_forced", default=())
        self._choose = lru_cache(maxsize=4096)(self._first)
        self._fast: dict[Any, Impl] = {}

    # --------------------------------------------------------------------------- tables

    def _pass(self, pass_: str) -> str:
        if pass_ not in self.passes:
            raise ValueError(f"{self.family}: unknown pass {pass_!r}; expected one of {', '.join(self.passes)}")
        return pass_

    def table(self, pass_: str, array_type: type = np.ndarray) -> tuple[Impl, ...]:
        """The ordered implementations of ``pass_`` for arrays of ``array_type``."""
        if array_type is np.ndarray:
            if not self._tables:
                self._tables.update(self._build())
            return self._tables[self._pass(pass_)]
        tables = self._foreign.get(array_type)
        if tables is None or self._pass(pass_) not in tables:
            raise TypeError(f"{self.family}: no {pass_} implementation registered for arrays of type "
                            f"{array_type.__module__}.{array_type.__qualname__} (register one with "
                            f"{self.family}.register)")
        return tables[pass_]

    def register(self, array_type: type, pass_: str, impl: Impl) -> None:
        """Add ``impl`` at the end of ``pass_``'s table for arrays of ``array_type`` (a type other
        than ``numpy.ndarray``, whose tables are built in); an implementation of the same name
        is replaced in place."""
        if array_type is np.ndarray:
            raise ValueError(f"{self.family}.register: numpy.ndarray's tables are built in; register kernels "
                             f"for another array type")
        tables = self._foreign.setdefault(array_type, {})
        old = tables.get(self._pass(pass_), ())
        if any(i.name == impl.name for i in old):
            tables[pass_] = tuple(impl if i.name == impl.name else i for i in old)
        else:
            tables[pass_] = old + (impl,)
        self._choose.cache_clear()

    def unregister(self, array_type: type) -> None:
        """Forget every table registered for ``array_type``."""
        self._foreign.pop(array_type, None)
        self._choose.cache_clear()

    # --------------------------------------------------------------------------- choice

    def _first(self, pass_: str, p: Any, array_type: type) -> Impl:
        for impl in self.table(pass_, array_type):
            if impl.supports(p) and impl.prefers(p):
                return impl
        raise TypeError(f"{self.family}: no {pass_} implementation registered for arrays of type "
                        f"{array_type.__qualname__} supports this problem ({p.describe()})")

    def select(self, pass_: str, p: Any, array_type: type = np.ndarray) -> Impl:
        """The implementation that runs ``pass_`` of ``p`` on arrays of ``array_type``: the one
        :meth:`force` asked for, else the first of the table that supports and prefers ``p``.
        Raises ValueError where a forced implementation does not support ``p``."""
        forced = self._forced.get()
        if forced:
            for name_pass, name in forced:
                if name_pass == pass_:
                    impl = next((i for i in self.table(pass_, array_type) if i.name == name), None)
                    if impl is None:
                        break  # forced by a name this array type's table lacks: chosen as usual
                    if not impl.supports(p):
                        raise ValueError(f"{self.family}.force: the {pass_} implementation {name!r} does not "
                                         f"support this problem ({p.describe()}); it supports: "
                                         f"{impl.doc.splitlines()[0]}")
                    return impl
        return self._choose(pass_, p, array_type)

    def choose(self, key: Any, pass_: str, make: Callable[[], Any], array_type: type = np.ndarray) -> Impl:
        """``select(pass_, make(), array_type)``, cached for ndarrays on ``key`` (hashable, holding
        the pass and everything the problem is made of), so that a call seen before costs one
        dictionary look-up."""
        if array_type is np.ndarray and not self._forced.get():
            hit = self._fast.get(key)
            if hit is None:
                hit = self._choose(pass_, make(), array_type)
                if len(self._fast) >= 4096:
                    self._fast.clear()
                self._fast[key] = hit
            return hit
        return self.select(pass_, make(), array_type)

    def forcing(self) -> bool:
        """Whether a :meth:`force` block is active here."""
        return bool(self._forced.get())

    def clear_cache(self) -> None:
        """Forget the cached choices (after changing a tuned constant, as tests do)."""
        self._choose.cache_clear()
        self._fast.clear()

    @contextmanager
    def force(self, **picks: str | None) -> Iterator[None]:
        """Within the block (this thread or task only), run each named pass on the named
        implementation (``force(max_forward="numpy")``); a pass left ``None`` is chosen as
        usual. Raises ValueError for an unknown pass or a name in no table of the pass."""
        chosen = []
        for pass_, name in picks.items():
            if name is None:
                continue
            names = [i.name for i in self.table(pass_)]
            names += [i.name for t in self._foreign.values() for i in t.get(pass_, ()) if i.name not in names]
            if name not in names:
                raise ValueError(f"{self.family}.force: no {pass_} implementation {name!r}; expected one of "
                                 f"{', '.join(names)}")
            chosen.append((pass_, name))
        token = self._forced.set(tuple(chosen) + self._forced.get())
        try:
            yield
        finally:
            self._forced.reset(token)
