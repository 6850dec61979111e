"""lamina.save / lamina.load: round trips, atomic writes, clear errors, no code execution,
and conversion of PyTorch state dicts."""

import io
import os
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
import torch

import lamina
from lamina import nn
from lamina.serialization import SerializationError, from_torch_state_dict, to_torch_state_dict


def test_round_trip_of_nested_structures(tmp_path):
    obj = {
        "model": nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).state_dict(),
        "optimizer": {"state": {0: {"step": 3, "exp_avg": lamina.randn(4, 3, dtype=lamina.float64)}},
                      "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1]}]},
        "ints": lamina.tensor([1, 2, 3]), "mask": lamina.tensor([True, False]), "half": lamina.ones(2, dtype=lamina.float16),
        "array": np.arange(6).reshape(2, 3), "nan": float("nan"), "inf": -float("inf"), "none": None,
        "flag": True, "name": "lenet", 7: "int key", "grad": lamina.ones(2, requires_grad=True),
        "param": nn.Parameter(lamina.ones(3)),
    }
    path = tmp_path / "ckpt.lamina"
    lamina.save(obj, path)
    back = lamina.load(path)
    assert isinstance(back["model"], OrderedDict) and list(back["model"]) == list(obj["model"])
    for k, v in obj["model"].items():
        np.testing.assert_array_equal(back["model"][k].array, v.array)
        assert back["model"][k].dtype == v.dtype
    st = back["optimizer"]["state"][0]
    assert st["step"] == 3 and st["exp_avg"].dtype == lamina.float64
    np.testing.assert_array_equal(st["exp_avg"].array, obj["optimizer"]["state"][0]["exp_avg"].array)
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert back["ints"].dtype == lamina.int64 and back["mask"].tolist() == [True, False]
    assert back["half"].dtype == lamina.float16 and np.isnan(back["nan"]) and back["inf"] == -float("inf")
    assert back["none"] is None and back["flag"] is True and back["name"] == "lenet" and back[7] == "int key"
    np.testing.assert_array_equal(back["array"], obj["array"])
    assert back["grad"].requires_grad and isinstance(back["param"], nn.Parameter)


def test_model_checkpoint_restores_outputs(tmp_path):
    m = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    x = lamina.randn(5, 3)
    lamina.save(m.state_dict(), tmp_path / "m.lamina")
    m2 = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    m2.load_state_dict(lamina.load(tmp_path / "m.lamina"))
    np.testing.assert_array_equal(m(x).detach().array, m2(x).detach().array)
    buf = io.BytesIO()
    lamina.save(m.state_dict(), buf)
    buf.seek(0)
    assert list(lamina.load(buf)) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_write_is_atomic(tmp_path):
    path = tmp_path / "keep.lamina"
    lamina.save({"v": lamina.ones(2)}, path)
    with pytest.raises(TypeError, match="cannot save an object of type object"):
        lamina.save({"v": object()}, path)
    assert lamina.load(path)["v"].tolist() == [1.0, 1.0]  # the old file is intact
    assert sorted(os.listdir(tmp_path)) == ["keep.lamina"]  # no temporary file left behind


def test_truncated_corrupt_and_foreign_files_raise_naming_the_file(tmp_path):
    good = tmp_path / "good.lamina"
    lamina.save({"w": lamina.randn(50, 50)}, good)
    data = good.read_bytes()
    trunc = tmp_path / "trunc.lamina"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(SerializationError, match="trunc.lamina"):
        lamina.load(trunc)
    corrupt = tmp_path / "corrupt.lamina"
    corrupt.write_bytes(data[:100] + b"\x00" * 300 + data[400:])
    with pytest.raises(SerializationError, match="corrupt.lamina"):
        lamina.load(corrupt)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(SerializationError, match="notes.txt. is not a lamina file"):
        lamina.load(text)
    plain = tmp_path / "plain.npz"
    np.savez(plain, x=np.ones(3))
    with pytest.raises(SerializationError, match="has no __lamina__ entry"):
        lamina.load(plain)
    with pytest.raises(FileNotFoundError, match="no such file"):
        lamina.load(tmp_path / "missing.lamina")


class _Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/lamina_pwned",))


def test_a_pickle_inside_the_file_is_never_executed(tmp_path):
    # an attacker's archive: a lamina header referring to an object array holding a pickle payload
    evil = tmp_path / "evil.lamina"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("__lamina__.npy", _npy_bytes(np.frombuffer(
            b'{"format": "lamina", "version": 1, "tree": {"type": "tensor", "ref": "a0"}}', dtype=np.uint8)))
        obj = np.empty(1, dtype=object)
        obj[0] = _Boom()
        buf = io.BytesIO()
        np.lib.format.write_array(buf, obj, allow_pickle=True)
        z.writestr("a0.npy", buf.getvalue())
    if os.path.exists("/tmp/lamina_pwned"):
        os.unlink("/tmp/lamina_pwned")
    with pytest.raises(SerializationError, match="unreadable"):
        lamina.load(evil)
    assert not os.path.exists("/tmp/lamina_pwned")
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(SerializationError):
        lamina.load(raw)


def _npy_bytes(arr):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr)
    return buf.getvalue()


def test_torch_state_dict_conversion_both_ways():
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    sd = from_torch_state_dict(tm.state_dict())
    assert list(sd) == list(tm.state_dict()) and all(isinstance(v, lamina.Tensor) for v in sd.values())
    lm = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    lm.load_state_dict(sd)
    back = to_torch_state_dict(lm.state_dict())
    tm2 = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    tm2.load_state_dict(back)
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_allclose(tm2(torch.from_numpy(x)).detach().numpy(), lm(lamina.tensor(x)).detach().array, rtol=1e-6)


def test_zero_dim_tensors_keep_their_shape(tmp_path):
    sd = {"num_batches_tracked": lamina.tensor(7), "scale": lamina.tensor(0.5), "arr": np.float64(2.0)}
    lamina.save(sd, tmp_path / "z.lamina")
    back = lamina.load(tmp_path / "z.lamina")
    assert back["num_batches_tracked"].shape == () and back["num_batches_tracked"].item() == 7
    assert back["scale"].shape == () and back["arr"] == 2.0


# --- malformed, crafted and oversized files: always a SerializationError naming the file ---------

def _meta(tree, **extra):
    import json

    head = {"format": "lamina", "version": 1, "tree": tree, **extra}
    return _npy_bytes(np.frombuffer(json.dumps(head).encode(), dtype=np.uint8))


def _zip(path, members, compression=zipfile.ZIP_STORED):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names written on purpose
        with zipfile.ZipFile(path, "w", compression) as z:
            for name, data in members:
                z.writestr(name, data)
    return path


def _npy_header(shape, descr="<f4", fortran=False):
    """The bytes of an .npy header declaring ``shape`` (with no data after it)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": fortran, "shape": shape})
    return buf.getvalue()


def _object_npy():
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.array([1, "x"], dtype=object), allow_pickle=True)
    return buf.getvalue()


TENSOR = {"type": "tensor", "ref": "a0"}
A0 = ("a0.npy", _npy_bytes(np.arange(6, dtype=np.float32).reshape(2, 3)))
CRAFTED = {
    "wrong JSON structure: tree is a list": [("__lamina__.npy", _meta([1, 2])), A0],
    "tree has no type": [("__lamina__.npy", _meta({"ref": "a0"})), A0],
    "type is a number": [("__lamina__.npy", _meta({"type": 3})), A0],
    "unknown type": [("__lamina__.npy", _meta({"type": "pickle"})), A0],
    "value holds a list": [("__lamina__.npy", _meta({"type": "value", "value": [1, 2]}))],
    "value missing": [("__lamina__.npy", _meta({"type": "value"}))],
    "float repr is code": [("__lamina__.npy", _meta({"type": "float", "repr": "__import__('os')"}))],
    "dict items not a list": [("__lamina__.npy", _meta({"type": "dict", "items": {"a": 1}}))],
    "dict item not a pair": [("__lamina__.npy", _meta({"type": "dict", "items": [["a"]]}))],
    "dict key is a list": [("__lamina__.npy", _meta({"type": "dict", "items": [[[1], TENSOR]]})), A0],
    "dict key twice": [("__lamina__.npy", _meta({"type": "dict", "items": [["k", {"type": "value", "value": 1}],
                                                                          ["k", {"type": "value", "value": 2}]]}))],
    "list items is a string": [("__lamina__.npy", _meta({"type": "list", "items": "abc"}))],
    "ref is a number": [("__lamina__.npy", _meta({"type": "tensor", "ref": 0})), A0],
    "ref missing": [("__lamina__.npy", _meta({"type": "tensor", "ref": "a9"})), A0],
    "ref to the header": [("__lamina__.npy", _meta({"type": "ndarray", "ref": "__lamina__"}))],
    "ref used twice": [("__lamina__.npy", _meta({"type": "list", "items": [TENSOR, TENSOR]})), A0],
    "requires_grad a string": [("__lamina__.npy", _meta({"type": "tensor", "ref": "a0", "requires_grad": "yes"})),
                               A0],
    "version a string": [("__lamina__.npy", _meta(TENSOR, version="1")), A0],
    "version from the future": [("__lamina__.npy", _meta(TENSOR, version=99)), A0],
    "no tree": [("__lamina__.npy", _npy_bytes(np.frombuffer(b'{"format": "lamina", "version": 1}', np.uint8)))],
    "header not JSON": [("__lamina__.npy", _npy_bytes(np.frombuffer(b"{not json", np.uint8)))],
    "header not UTF-8": [("__lamina__.npy", _npy_bytes(np.frombuffer(b"\xff\xfe\x00", np.uint8)))],
    "header nested too deeply": [("__lamina__.npy", _npy_bytes(np.frombuffer(b"[" * 100000 + b"]" * 100000,
                                                                             np.uint8)))],
    "tree nested too deeply": [("__lamina__.npy", _npy_bytes(np.frombuffer(
        b'{"format": "lamina", "version": 1, "tree": ' + b'{"type": "list", "items": [' * 3000
        + b'{"type": "value", "value": 1}' + b"]}" * 3000 + b"}", np.uint8)))],
    "header of float dtype": [("__lamina__.npy", _npy_bytes(np.ones(3)))],
    "header 2-d": [("__lamina__.npy", _npy_bytes(np.zeros((2, 2), np.uint8)))],
    "header not an .npy": [("__lamina__.npy", b"just bytes")],
    "duplicate member names": [("__lamina__.npy", _meta(TENSOR)), A0, ("a0.npy", _npy_bytes(np.zeros(2)))],
    "duplicate headers": [("__lamina__.npy", _meta(TENSOR)), ("__lamina__.npy", _meta(TENSOR)), A0],
    "object array": [("__lamina__.npy", _meta(TENSOR)), ("a0.npy", _object_npy())],
    "structured dtype": [("__lamina__.npy", _meta(TENSOR)),
                         ("a0.npy", _npy_bytes(np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")])))],
    "string dtype": [("__lamina__.npy", _meta(TENSOR)), ("a0.npy", _npy_bytes(np.array(["ab", "c"])))],
    "datetime dtype": [("__lamina__.npy", _meta(TENSOR)), ("a0.npy", _npy_bytes(np.zeros(2, "M8[s]")))],
    "array shorter than its shape": [("__lamina__.npy", _meta(TENSOR)), ("a0.npy", A0[1][:-4])],
    "array longer than its shape": [("__lamina__.npy", _meta(TENSOR)), ("a0.npy", A0[1] + b"\x00" * 4)],
    "header declares a huge shape": [("__lamina__.npy", _meta(TENSOR)),
                                     ("a0.npy", _npy_header((1 << 20, 1 << 20)) + b"\x00" * 64)],
    "negative shape": [("__lamina__.npy", _meta(TENSOR)), ("a0.npy", _npy_header((-1, 3)) + b"\x00" * 12)],
    "bad dtype string": [("__lamina__.npy", _meta(TENSOR)), ("a0.npy", _npy_header((3,), descr="<q9") + b"\x00")],
    "npy version 9": [("__lamina__.npy", _meta(TENSOR)), ("a0.npy", b"\x93NUMPY\x09\x00" + A0[1][8:])],
    "npy header is code": [("__lamina__.npy", _meta(TENSOR)),
                           ("a0.npy", b"\x93NUMPY\x01\x00\x20\x00__import__('os').system('x')      \n")],
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_archives_raise_serialization_error_naming_the_file(tmp_path, case):
    path = _zip(tmp_path / "crafted.lamina", CRAFTED[case])
    with pytest.raises(SerializationError, match="crafted.lamina"):
        lamina.load(path)


def _reference_file(tmp_path, compression=zipfile.ZIP_STORED):
    obj = {"model": {"w": lamina.randn(8, 5), "b": lamina.zeros(5)}, "epoch": 3, "name": "net",
           "history": [{"loss": 0.5}], "rng": np.arange(4, dtype=np.uint64)}
    path = tmp_path / "ref.lamina"
    lamina.save(obj, path)
    if compression != zipfile.ZIP_STORED:  # the same members, deflated (as np.savez_compressed writes)
        with zipfile.ZipFile(path) as z:
            members = [(n, z.read(n)) for n in z.namelist()]
        _zip(path, members, compression)
    return path, obj


def _same(a, b):
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, lamina.Tensor):
        return isinstance(b, lamina.Tensor) and np.array_equal(a.array, b.array) and a.dtype == b.dtype
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and np.array_equal(a, b) and a.dtype == b.dtype
    return a == b


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_truncated_and_bit_flipped_files_load_intact_or_raise_serialization_error(tmp_path, compression):
    """Every truncation and 400 random byte changes: either the same content comes back (a byte the
    reader does not use, such as a time stamp) or a SerializationError naming the file — nothing else."""
    path, obj = _reference_file(tmp_path, compression)
    data = path.read_bytes()
    rng = np.random.default_rng(0)
    bad = tmp_path / "damaged.lamina"
    variants = [data[:n] for n in range(0, len(data), 7)]
    for _ in range(400):
        d = bytearray(data)
        for i in rng.integers(0, len(d), size=rng.integers(1, 4)):
            d[i] = int(rng.integers(0, 256))
        variants.append(bytes(d))
    errors = 0
    for v in variants:
        bad.write_bytes(v)
        try:
            back = lamina.load(bad)
        except SerializationError as e:
            assert "damaged.lamina" in str(e)
            errors += 1
        else:
            assert _same(back, obj)
    assert errors > len(variants) // 2  # most damage is noticed (the CRC covers every array byte)


def test_zip_members_that_claim_more_than_they_hold_are_refused_before_reading(tmp_path):
    path, _ = _reference_file(tmp_path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("a0.npy")
    # the central directory's uncompressed size of a stored member: declare 4 GB
    central = data.find(b"PK\x01\x02")
    while data[central + 46:central + 46 + 6] != b"a0.npy":
        central = data.find(b"PK\x01\x02", central + 4)
    data[central + 24:central + 28] = (0xFFFFFFF0).to_bytes(4, "little")
    bad = tmp_path / "claims.lamina"
    bad.write_bytes(bytes(data))
    with pytest.raises(SerializationError, match=r"claims.lamina.*stored uncompressed but declares"):
        lamina.load(bad)
    assert info.compress_type == zipfile.ZIP_STORED
    # a deflated member declaring far more than deflate can expand to
    dpath, _ = _reference_file(tmp_path, zipfile.ZIP_DEFLATED)
    data = bytearray(dpath.read_bytes())
    central = data.find(b"PK\x01\x02")
    while data[central + 46:central + 46 + 6] != b"a0.npy":
        central = data.find(b"PK\x01\x02", central + 4)
    data[central + 24:central + 28] = (0xFFFFFFF0).to_bytes(4, "little")
    bad.write_bytes(bytes(data))
    with pytest.raises(SerializationError, match="more than deflate can expand"):
        lamina.load(bad)


def test_other_compressions_and_encrypted_members_are_refused(tmp_path):
    path, _ = _reference_file(tmp_path)
    with zipfile.ZipFile(path) as z:
        members = [(n, z.read(n)) for n in z.namelist()]
    _zip(tmp_path / "bz.lamina", members, zipfile.ZIP_BZIP2)
    with pytest.raises(SerializationError, match="bz.lamina.*compression method 12"):
        lamina.load(tmp_path / "bz.lamina")
    data = bytearray(path.read_bytes())
    central = data.find(b"PK\x01\x02")
    data[central + 8] |= 1  # the "encrypted" flag of the first member in the central directory
    (tmp_path / "enc.lamina").write_bytes(bytes(data))
    with pytest.raises(SerializationError, match="enc.lamina"):
        lamina.load(tmp_path / "enc.lamina")


def test_folders_and_unreadable_paths_raise_naming_them(tmp_path):
    with pytest.raises(SerializationError, match="cannot read .*tmp"):
        lamina.load(tmp_path)
    np.save(tmp_path / "bare.npy", np.ones(2))
    with pytest.raises(SerializationError, match="bare NumPy array"):
        lamina.load(tmp_path / "bare.npy")


def test_load_reads_each_array_into_place_with_little_extra_memory(tmp_path):
    import tracemalloc

    state = {f"layer{i}.weight": lamina.randn(512, 1024) for i in range(4)}  # 8 MiB of float32
    path = tmp_path / "big.lamina"
    lamina.save(state, path)
    nbytes = sum(v.array.nbytes for v in state.values())
    tracemalloc.start()
    try:
        back = lamina.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert all(np.array_equal(back[k].array, v.array) for k, v in state.items())
    assert peak <= 1.5 * nbytes, f"peak {peak / nbytes:.2f}x the arrays' bytes"


def test_a_non_seekable_stream_loads(tmp_path):
    path, obj = _reference_file(tmp_path)

    class Pipe(io.RawIOBase):
        def __init__(self, data):
            self.data = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, b):
            return self.data.readinto(b)

    assert _same(lamina.load(io.BufferedReader(Pipe(path.read_bytes()))), obj)


def test_a_write_killed_midway_leaves_a_temporary_that_the_next_write_of_that_file_removes(tmp_path):
    import signal
    import subprocess
    import sys

    target = tmp_path / "checkpoint.lamina"
    code = ("import os, signal, sys\n"
            "from lamina.serialization import atomic_write\n"
            "def write(f):\n"
            "    f.write(b'half a checkpoint')\n"
            "    f.flush()\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n"
            "atomic_write(sys.argv[1], write)\n")
    r = subprocess.run([sys.executable, "-c", code, str(target)], timeout=120, capture_output=True)
    assert r.returncode == -signal.SIGKILL, r.stderr
    (stale,) = [p.name for p in tmp_path.iterdir()]
    assert stale.startswith(".checkpoint.lamina.") and stale.endswith(".lamina-tmp")
    dead = int(stale.split(".")[3].split("-")[0])
    others = [f".other.lamina.{dead}-abcd1234.lamina-tmp",  # another target's temporary
              f".checkpoint.lamina.{os.getpid()}-abcd1234.lamina-tmp",  # a write still under way
              ".lamina-abcd1234.tmp", "notes.txt", f".checkpoint.lamina.{dead}-x.tmp"]
    for name in others:
        (tmp_path / name).write_bytes(b"keep")
    lamina.save({"w": lamina.ones(2)}, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["checkpoint.lamina", *others])
    assert lamina.load(target)["w"].tolist() == [1.0, 1.0]
