"""A pickle-opcode interpreter that executes nothing, and a small pickle writer (floor 3, under
``serialization``).

lamina never imports the ``pickle`` module: unpickling can call any importable function, so a file
lamina reads through it could run code. PyTorch's checkpoints are pickle streams, though, so
:func:`unpickle` interprets the opcodes of protocols 2 to 5 that torch's files use on its own
stack machine. A global (``GLOBAL``/``STACK_GLOBAL``) is never imported: the caller's ``find_class``
maps it to one of a few allowed constructors (torch's ``weights_only=True`` whitelist, rewritten
for lamina) or refuses it; ``REDUCE`` calls only what ``find_class`` returned; the opcodes that
build arbitrary instances (``INST``, ``OBJ``, ``NEWOBJ``, ``NEWOBJ_EX``, ``EXT*``) are refused.
Every length is checked against the bytes that remain before anything is read, so a crafted or
truncated stream raises :class:`SerializationError` and allocates no more than its own size.

:class:`PickleWriter` writes the protocol-2 opcodes of the same subset.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from ._archive import SerializationError

__all__ = ["Allowed", "unpickle", "PickleWriter", "MARK_LIMIT"]

MARK_LIMIT = 10_000  # nesting of MARKs (each costs a list, not recursion)
_LONG4_MAX = 4096  # bytes of a LONG4 integer: far beyond any real size, bounded work for int.from_bytes


class Allowed:
    """A whitelisted global: calling it through ``REDUCE`` calls ``func(*args)``.

    Args:
        name: the global's dotted name, for messages.
        func: what a ``REDUCE`` calls with the argument tuple's items.
    """

    __slots__ = ("name", "func")

    def __init__(self, name: str, func: Callable[..., Any]) -> None:
        self.name = name
        self.func = func

    def __repr__(self) -> str:
        return f"<allowed global {self.name}>"


class _Mark:
    pass


def unpickle(data: bytes, what: str, find_class: Callable[[str, str], Any],
             persistent_load: Callable[[Any], Any] | None = None,
             build: Callable[[Any, Any], None] | None = None, start: int = 0) -> tuple[Any, int]:
    """The object that the pickle stream in ``data`` (from ``start``) describes, and where it ended.

    Args:
        data: the bytes holding the stream.
        what: names the stream in messages (``"lamina.load: 'model.pt' (archive/data.pkl)"``).
        find_class: ``(module, name)`` to the object a global stands for (usually an :class:`Allowed`);
            raises :class:`SerializationError` for anything not allowed.
        persistent_load: what a ``BINPERSID`` id becomes (None: persistent ids are refused).
        build: what a ``BUILD`` opcode does to an object with a state (None: refused).
        start: the offset of the stream's first opcode.

    Raises:
        SerializationError: naming ``what`` and the offset, for a refused global or opcode, a
            truncated or malformed stream.
    """
    m = _Machine(data, what, find_class, persistent_load, build, start)
    try:
        return m.run(), m.pos
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError, RecursionError,
            struct.error, UnicodeDecodeError) as e:
        if isinstance(e, SerializationError):
            raise
        raise SerializationError(f"{what}: malformed pickle stream at byte {m.op_pos} "
                                 f"({type(e).__name__}: {e})") from None


class _Machine:
    def __init__(self, data: bytes, what: str, find_class: Any, persistent_load: Any, build: Any, start: int) -> None:
        self.data = memoryview(data)
        self.what = what
        self.find_class = find_class
        self.persistent_load = persistent_load
        self.build = build
        self.pos = start
        self.op_pos = start
        self.stack: list[Any] = []
        self.marks: list[list[Any]] = []
        self.memo: dict[int, Any] = {}

    def error(self, problem: str) -> SerializationError:
        return SerializationError(f"{self.what}: {problem} (at byte {self.op_pos} of the pickle stream)")

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.error(f"the stream ends early: {n:,} bytes declared, {len(self.data) - self.pos:,} left "
                             "(truncated or crafted)")
        out = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        return out

    def u(self, fmt: str) -> int:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def line(self) -> str:
        end = bytes(self.data[self.pos:self.pos + 512]).find(b"\n")
        if end < 0:
            raise self.error("a global's name does not end within 512 bytes")
        return self.take(end + 1)[:-1].decode("ascii")

    def pop_mark(self) -> list[Any]:
        if not self.marks:
            raise self.error("an opcode needs a MARK but none is open")
        items = self.stack
        self.stack = self.marks.pop()
        return items

    def pop(self) -> Any:
        if not self.stack:
            raise self.error("the stack is empty")
        return self.stack.pop()

    def top(self) -> Any:
        if not self.stack:
            raise self.error("the stack is empty")
        return self.stack[-1]

    def glob(self, module: str, name: str) -> Any:
        if not isinstance(module, str) or not isinstance(name, str):
            raise self.error("a global's module and name must be strings")
        return self.find_class(module, name)

    def run(self) -> Any:  # noqa: C901  (one branch per opcode reads best as one table)
        st = self.stack
        while True:
            self.op_pos = self.pos
            op = self.take(1)
            st = self.stack
            if op == b".":  # STOP
                value = self.pop()
                if self.stack or self.marks:
                    raise self.error("STOP with items left on the stack")
                return value
            if op == b"\x80":  # PROTO
                proto = self.take(1)[0]
                if proto > 5:
                    raise self.error(f"pickle protocol {proto} is not supported (at most 5)")
            elif op == b"\x95":  # FRAME: a hint only
                self.u("<Q")
            elif op == b"(":
                self.marks.append(self.stack)
                if len(self.marks) > MARK_LIMIT:
                    raise self.error(f"more than {MARK_LIMIT:,} nested MARKs")
                self.stack = []
            elif op == b"}":
                st.append({})
            elif op == b"]":
                st.append([])
            elif op == b")":
                st.append(())
            elif op == b"\x8f":  # EMPTY_SET
                st.append(set())
            elif op == b"N":
                st.append(None)
            elif op == b"\x88":
                st.append(True)
            elif op == b"\x89":
                st.append(False)
            elif op == b"K":
                st.append(self.u("<B"))
            elif op == b"M":
                st.append(self.u("<H"))
            elif op == b"J":
                st.append(self.u("<i"))
            elif op in (b"\x8a", b"\x8b"):  # LONG1, LONG4
                n = self.u("<B") if op == b"\x8a" else self.u("<i")
                if n > _LONG4_MAX:
                    raise self.error(f"an integer of {n:,} bytes (at most {_LONG4_MAX:,} are read)")
                st.append(int.from_bytes(self.take(n), "little", signed=True))
            elif op == b"G":
                st.append(self.u(">d"))
            elif op in (b"X", b"\x8c", b"\x8d"):  # BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
                n = self.u({b"X": "<I", b"\x8c": "<B", b"\x8d": "<Q"}[op])
                st.append(self.take(n).decode("utf-8", "surrogatepass"))
            elif op in (b"B", b"C", b"\x8e"):  # BINBYTES, SHORT_BINBYTES, BINBYTES8
                n = self.u({b"B": "<I", b"C": "<B", b"\x8e": "<Q"}[op])
                st.append(self.take(n))
            elif op == b"t":
                st = self.pop_mark()
                self.stack.append(tuple(st))
            elif op in (b"\x85", b"\x86", b"\x87"):
                n = op[0] - 0x84
                if len(st) < n:
                    raise self.error(f"TUPLE{n} needs {n} items on the stack")
                items = tuple(st[-n:])
                del st[-n:]
                st.append(items)
            elif op == b"l":
                st = self.pop_mark()
                self.stack.append(list(st))
            elif op == b"d":
                st = self.pop_mark()
                if len(st) % 2:
                    raise self.error("DICT with an odd number of items")
                self.stack.append({st[i]: st[i + 1] for i in range(0, len(st), 2)})
            elif op == b"\x91":  # FROZENSET
                st = self.pop_mark()
                self.stack.append(frozenset(st))
            elif op == b"a":
                value = self.pop()
                self._extend(self.top(), [value])
            elif op == b"e":
                items = self.pop_mark()
                self._extend(self.top(), items)
            elif op == b"s":
                value, key = self.pop(), self.pop()
                self._setitems(self.top(), [key, value])
            elif op == b"u":
                items = self.pop_mark()
                self._setitems(self.top(), items)
            elif op == b"\x90":  # ADDITEMS
                items = self.pop_mark()
                target = self.top()
                if not isinstance(target, set):
                    raise self.error(f"ADDITEMS on a {type(target).__name__}, not a set")
                target.update(items)
            elif op in (b"q", b"r"):  # BINPUT, LONG_BINPUT
                self.memo[self.u("<B" if op == b"q" else "<I")] = self.top()
            elif op == b"\x94":  # MEMOIZE
                self.memo[len(self.memo)] = self.top()
            elif op in (b"h", b"j"):  # BINGET, LONG_BINGET
                key = self.u("<B" if op == b"h" else "<I")
                if key not in self.memo:
                    raise self.error(f"memo entry {key} is read before it is written")
                st.append(self.memo[key])
            elif op == b"0":
                self.pop()
            elif op == b"1":  # POP_MARK
                self.pop_mark()
            elif op == b"2":  # DUP
                st.append(self.top())
            elif op == b"c":  # GLOBAL
                module = self.line()
                name = self.line()
                st.append(self.glob(module, name))
            elif op == b"\x93":  # STACK_GLOBAL
                name, module = self.pop(), self.pop()
                self.stack.append(self.glob(module, name))
            elif op == b"R":  # REDUCE
                args, func = self.pop(), self.pop()
                if not isinstance(func, Allowed):
                    raise self.error(f"REDUCE of a {type(func).__name__}, which is not an allowed global")
                if not isinstance(args, tuple):
                    raise self.error(f"REDUCE of {func.name} with a {type(args).__name__} of arguments, not a tuple")
                self.stack.append(func.func(*args))
            elif op == b"b":  # BUILD
                state = self.pop()
                if self.build is None:
                    raise self.error("BUILD is not allowed in this stream")
                self.build(self.top(), state)
            elif op == b"Q":  # BINPERSID
                pid = self.pop()
                if self.persistent_load is None:
                    raise self.error("a persistent id, but this stream may hold none")
                self.stack.append(self.persistent_load(pid))
            else:
                names = {b"i": "INST", b"o": "OBJ", b"\x81": "NEWOBJ", b"\x92": "NEWOBJ_EX", b"\x82": "EXT1",
                         b"\x83": "EXT2", b"\x84": "EXT4", b"P": "PERSID", b"\x96": "BYTEARRAY8",
                         b"\x97": "NEXT_BUFFER", b"\x98": "READONLY_BUFFER"}
                label = names.get(op, f"opcode {op!r}")
                raise self.error(f"{label} is not allowed (lamina reads only the tensor and container subset "
                                 "of pickle that torch's weights_only=True accepts, and builds no other objects)")

    def _extend(self, target: Any, items: list[Any]) -> None:
        if not isinstance(target, list):
            raise self.error(f"APPEND to a {type(target).__name__}, not a list")
        target.extend(items)

    def _setitems(self, target: Any, items: list[Any]) -> None:
        if not isinstance(target, dict):
            raise self.error(f"SETITEM on a {type(target).__name__}, not a dict")
        if len(items) % 2:
            raise self.error("SETITEMS with an odd number of items")
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]


class PickleWriter:
    """Protocol-2 pickle opcodes for None, bools, ints, floats, strings, tuples, lists, dicts, globals,
    ``REDUCE`` and persistent ids: what a torch checkpoint holds. ``getvalue()`` ends it with STOP."""

    def __init__(self) -> None:
        self.parts: list[bytes] = [b"\x80\x02"]

    def none(self) -> None:
        self.parts.append(b"N")

    def bool(self, v: bool) -> None:
        self.parts.append(b"\x88" if v else b"\x89")

    def int(self, v: int) -> None:
        if 0 <= v < 256:
            self.parts.append(b"K" + struct.pack("<B", v))
        elif 0 <= v < 65536:
            self.parts.append(b"M" + struct.pack("<H", v))
        elif -(2 ** 31) <= v < 2 ** 31:
            self.parts.append(b"J" + struct.pack("<i", v))
        else:
            raw = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
            if len(raw) > 255:
                raise OverflowError(f"an integer of {len(raw)} bytes is too large to save")
            self.parts.append(b"\x8a" + struct.pack("<B", len(raw)) + raw)

    def float(self, v: float) -> None:
        self.parts.append(b"G" + struct.pack(">d", v))

    def str(self, v: str) -> None:
        raw = v.encode("utf-8", "surrogatepass")
        self.parts.append(b"X" + struct.pack("<I", len(raw)) + raw)

    def mark(self) -> None:
        self.parts.append(b"(")

    def tuple(self) -> None:
        """Close the items written since the last :meth:`mark` into a tuple."""
        self.parts.append(b"t")

    def empty_tuple(self) -> None:
        self.parts.append(b")")

    def empty_list(self) -> None:
        self.parts.append(b"]")

    def appends(self) -> None:
        self.parts.append(b"e")

    def empty_dict(self) -> None:
        self.parts.append(b"}")

    def setitems(self) -> None:
        self.parts.append(b"u")

    def global_(self, module: str, name: str) -> None:
        self.parts.append(b"c" + module.encode("ascii") + b"\n" + name.encode("ascii") + b"\n")

    def reduce(self) -> None:
        self.parts.append(b"R")

    def build(self) -> None:
        self.parts.append(b"b")

    def persid(self) -> None:
        self.parts.append(b"Q")

    def getvalue(self) -> bytes:
        return b"".join(self.parts) + b"."
