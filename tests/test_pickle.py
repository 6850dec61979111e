"""lamina's pickle-opcode interpreter executes nothing: crafted torch checkpoints (code-running globals,
instance-building opcodes, truncated streams, huge sizes, memo abuse, storages out of range) all raise a
SerializationError naming the file, and nothing they ask for runs or is allocated."""

import io
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest
import torch

import lamina
from lamina._pickle import PickleWriter, unpickle
from lamina.serialization import SerializationError

PWNED = "/tmp/lamina_pickle_pwned"


def _zip(pkl, records=None):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", "little")
        for k, v in (records or {}).items():
            z.writestr(f"archive/data/{k}", v)
        z.writestr("archive/version", "3\n")
    buf.seek(0)
    buf.name = "crafted.pt"
    return buf


def _legacy(pkl):
    head = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2)
    head += pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2)
    buf = io.BytesIO(head + pkl + pickle.dumps([], protocol=2))
    buf.name = "crafted.pt"
    return buf


class _System:
    def __reduce__(self):
        return (os.system, (f"touch {PWNED}",))


class _Eval:
    def __reduce__(self):
        return (eval, (f"open({PWNED!r}, 'w')",))


class _Plain:
    def __init__(self):
        self.x = 1


def _sh(cmd):
    return b"\x80\x02cposix\nsystem\nX" + struct.pack("<I", len(cmd)) + cmd + b"\x85R."


@pytest.fixture(autouse=True)
def _no_pwn():
    if os.path.exists(PWNED):
        os.unlink(PWNED)
    yield
    assert not os.path.exists(PWNED), "a crafted pickle ran code"


CRAFTED = {
    "os.system REDUCE": (pickle.dumps(_System(), protocol=2), "global posix.system is not allowed"),
    "os.system protocol 4": (pickle.dumps({"a": _System()}, protocol=4), "global posix.system is not allowed"),
    "eval": (pickle.dumps(_Eval(), protocol=2), "global builtins.eval is not allowed"),
    "hand-written GLOBAL": (_sh(f"touch {PWNED}".encode()), "global posix.system is not allowed"),
    "NEWOBJ of a class": (pickle.dumps(_Plain(), protocol=2), "global tests.test_pickle._Plain is not allowed"),
    "INST": (b"(ios\nsystem\nX\x02\x00\x00\x00lsb.", "INST is not allowed"),
    "OBJ": (b"\x80\x02(X\x01\x00\x00\x00ao.", "OBJ is not allowed"),
    "NEWOBJ of a whitelisted": (b"\x80\x02ccollections\nOrderedDict\n)\x81.", "NEWOBJ is not allowed"),
    "EXT1": (b"\x80\x02\x82\x01.", "EXT1 is not allowed"),
    "text PERSID": (b"\x80\x02Pabc\n.", "PERSID is not allowed"),
    "torch.load itself": (b"\x80\x02ctorch\nload\nX\x01\x00\x00\x00x\x85R.", "global torch.load is not allowed"),
    "REDUCE of a non-global": (b"\x80\x02X\x01\x00\x00\x00a)R.", "REDUCE of a str"),
    "numpy reconstruct": (pickle.dumps(np.ones(2), protocol=2), "numpy.*is not allowed"),
    "BUILD on a dict": (b"\x80\x02}}X\x09\x00\x00\x00__class__Ns\x62.", "BUILD of a dict"),
    "BUILD __class__ on OrderedDict": (b"\x80\x02ccollections\nOrderedDict\n)R}X\x09\x00\x00\x00__class__Nsb.",
                                       "BUILD of a OrderedDict"),
    "truncated BINUNICODE": (b"\x80\x02X\xff\xff\xff\xffabc", "ends early: 4,294,967,295 bytes declared"),
    "huge BINBYTES8": (b"\x80\x04\x8e" + struct.pack("<Q", 2 ** 62) + b"ab.", "ends early"),
    "huge LONG4": (b"\x80\x02\x8b" + struct.pack("<i", 2 ** 30) + b"\x00.", "integer of 1,073,741,824 bytes"),
    "BINGET before BINPUT": (b"\x80\x02h\x05.", "memo entry 5 is read before it is written"),
    "LONG_BINGET far away": (b"\x80\x02Nr\xff\xff\xff\xff0j\xfe\xff\xff\xff.", "memo entry 4294967294"),
    "empty stream": (b"", "ends early"),
    "no STOP": (b"\x80\x02}", "ends early|items left"),
    "STOP on empty stack": (b"\x80\x02.", "stack is empty"),
    "items left": (b"\x80\x02NN.", "STOP with items left"),
    "APPEND to a dict": (b"\x80\x02}Na.", "APPEND to a dict"),
    "SETITEM on a list": (b"\x80\x02]NNs.", "SETITEM on a list"),
    "unhashable key": (b"\x80\x02}]Ns.", "malformed pickle stream.*unhashable"),
    "TUPLE without MARK": (b"\x80\x02Nt.", "needs a MARK"),
    "protocol 6": (b"\x80\x06N.", "protocol 6"),
    "unknown opcode": (b"\x80\x02\xff.", "opcode b'\\\\xff' is not allowed"),
    "persistent id of a non-storage": (b"\x80\x02X\x01\x00\x00\x00aQ.", "persistent id a is not"),
    "bfloat16": (b"\x80\x02ctorch\nBFloat16Storage\n.", "bfloat16"),
    "backward hooks": (None, "backward hooks"),
}


@pytest.mark.parametrize("container", ["zip", "legacy"])
@pytest.mark.parametrize("case", list(CRAFTED))
def test_crafted_pickles_are_refused_and_never_run(case, container):
    payload, message = CRAFTED[case]
    if payload is None:  # a tensor with a backward hook: the hook would be code
        w = PickleWriter()
        w.global_("torch._utils", "_rebuild_tensor_v2")
        w.mark()
        _storage_id(w, 2)
        for v in (0, (2,), (1,), False):
            _value(w, v)
        w.empty_dict()
        w.mark()
        w.int(0)
        w.str("hook")
        w.setitems()
        w.tuple()
        w.reduce()
        payload = w.getvalue()
    f = _zip(payload, {"0": b"\0" * 8}) if container == "zip" else _legacy(payload)
    with pytest.raises(SerializationError, match=f"crafted.pt.*({message})"):
        lamina.load(f)


def _storage_id(w, numel, key="0", storage="FloatStorage"):
    w.mark()
    w.str("storage")
    w.global_("torch", storage)
    w.str(key)
    w.str("cpu")
    w.int(numel)
    w.tuple()
    w.persid()


def _value(w, v):
    if isinstance(v, tuple):
        w.mark()
        for x in v:
            w.int(x)
        w.tuple()
    elif isinstance(v, bool):
        w.bool(v)
    else:
        w.int(v)


def _tensor_pickle(numel, offset, size, stride):
    w = PickleWriter()
    w.global_("torch._utils", "_rebuild_tensor_v2")
    w.mark()
    _storage_id(w, numel)
    for v in (offset, size, stride, False):
        _value(w, v)
    w.global_("collections", "OrderedDict")
    w.empty_tuple()
    w.reduce()
    w.tuple()
    w.reduce()
    return w.getvalue()


@pytest.mark.parametrize("numel, offset, size, stride, record, message", [
    (4, 0, (2, 2), (2, 1), 16, None),                                    # the well-formed control case
    (4, 3, (2,), (1,), 16, "reaches element 4 of storage '0', which holds 4"),
    (4, 0, (3, 2), (2, 1), 16, "reaches element 5"),
    (4, 0, (2,), (5,), 16, "reaches element 5"),
    (4, 0, (10 ** 6, 10 ** 6), (0, 0), 16, "expands storage '0' of 4"),
    (4, 0, (2, 2), (2, 1), 12, "holds 12 bytes, but 4 elements of float32 need 16"),
    (2 ** 60, 0, (2,), (1,), 16, "holds 16 bytes, but 1,152,921,504,606,846,976 elements"),
    (4, -1, (2,), (1,), 16, "storage offset is -1"),
    (4, 0, (2, 2), (1,), 16, "differ in length"),
    (4, 0, (-2,), (1,), 16, "size is \\(-2,\\)"),
])
def test_storages_out_of_range_are_refused(numel, offset, size, stride, record, message):
    f = _zip(_tensor_pickle(numel, offset, size, stride), {"0": np.arange(record // 4, dtype=np.float32).tobytes()})
    if message is None:
        np.testing.assert_array_equal(lamina.load(f).numpy(), [[0, 1], [2, 3]])
        return
    with pytest.raises(SerializationError, match=f"crafted.pt.*{message}"):
        lamina.load(f)


def test_a_missing_storage_record_is_named():
    with pytest.raises(SerializationError, match="storage record 'archive/data/0' is missing"):
        lamina.load(_zip(_tensor_pickle(4, 0, (2,), (1,))))


def _real_stream():
    buf = io.BytesIO()
    torch.save({"w": torch.ones(2, 3), "sd": torch.nn.Linear(2, 2).state_dict(), "l": [1, 2.5, "x"]}, buf)
    buf.seek(0)
    with zipfile.ZipFile(buf) as z:
        name = next(n for n in z.namelist() if n.endswith("data.pkl"))
        return z.read(name), {n.rsplit("/", 1)[1]: z.read(n) for n in z.namelist() if "/data/" in n}


def test_every_truncation_of_a_real_stream_is_a_clear_error():
    pkl, records = _real_stream()
    assert isinstance(lamina.load(_zip(pkl, records))["sd"]["weight"], lamina.Tensor)  # the intact stream loads
    for n in range(len(pkl)):
        with pytest.raises(SerializationError, match="crafted.pt"):
            lamina.load(_zip(pkl[:n], records))


def test_random_damage_gives_a_clear_error_or_a_value_never_a_crash():
    pkl, records = _real_stream()
    rng = np.random.default_rng(0)
    errors = 0
    for _ in range(300):
        b = bytearray(pkl)
        for i in rng.integers(0, len(b), size=rng.integers(1, 4)):
            b[i] = rng.integers(0, 256)
        try:
            lamina.load(_zip(bytes(b), records))
        except SerializationError as e:
            assert "crafted.pt" in str(e)
            errors += 1
    assert errors > 100  # most damage is caught (some flips only change a number)


def test_the_interpreter_agrees_with_pickle_on_plain_values():
    value = {"a": [1, -2, 2 ** 70, -(2 ** 70), 1.5, None, True, False, "ü", b"\x00\xff"], "t": (1,), "t2": (1, 2),
             "t3": (1, 2, 3), "t4": (1, 2, 3, 4), "s": {1, 2}, "f": frozenset({3}), "e": (), "c": complex(1, 2)}
    for protocol in (2, 3, 4, 5):
        data = pickle.dumps(value, protocol=protocol)

        def find_class(module, name):
            from lamina._torch_format import _Reader

            return _Reader("test").find_class(module, name)

        got, end = unpickle(data, "test", find_class)
        assert got == value and end == len(data), protocol


def test_nested_marks_are_bounded():
    with pytest.raises(SerializationError, match="more than 10,000 nested MARKs"):
        lamina.load(_zip(b"\x80\x02" + b"(" * 20_000))
    with pytest.raises(SerializationError, match="nested too deeply"):
        lamina.load(_zip(b"\x80\x02" + b"]" * 5000 + b"a" * 4999 + b"."))
