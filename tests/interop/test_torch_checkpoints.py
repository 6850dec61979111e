"""Checkpoints both ways: lamina reads torch's .pt/.pth files (zip and legacy) without executing
code, and writes files that torch.load(weights_only=True) reads; safetensors through its package."""

import io
import os
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
import torch

import lamina
from lamina.serialization import SerializationError

DTYPES = ["float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8", "bool"]


def _torch_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                               torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 5))


def _lamina_net():
    return lamina.nn.Sequential(lamina.nn.Conv2d(3, 4, 3), lamina.nn.BatchNorm2d(4), lamina.nn.ReLU(),
                                lamina.nn.Flatten(), lamina.nn.Linear(4 * 4 * 4, 5))


@pytest.fixture(params=[True, False], ids=["zip", "legacy"])
def zipped(request):
    return request.param


def _torch_save(obj, path, zipped):
    torch.save(obj, path, _use_new_zipfile_serialization=zipped)


def test_a_torch_state_dict_loads_into_the_lamina_model_and_gives_torchs_outputs(tmp_path, zipped):
    net = _torch_net()
    net.train()
    net(torch.randn(2, 3, 6, 6))  # running stats move away from their initial values
    net.eval()
    _torch_save(net.state_dict(), tmp_path / "net.pth", zipped)
    sd = lamina.load(tmp_path / "net.pth")
    assert isinstance(sd, OrderedDict) and list(sd) == list(net.state_dict())
    model = _lamina_net().eval()
    model.load_state_dict(sd)
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype("float32")
    np.testing.assert_allclose(model(lamina.tensor(x)).detach().numpy(), net(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


def test_every_dtype_views_parameters_and_containers_read_as_torch_wrote_them(tmp_path, zipped):
    base = torch.arange(12.0)
    obj = {f"t_{d}": (torch.arange(6).reshape(2, 3) % 3).to(getattr(torch, d)) for d in DTYPES}
    obj.update({
        "view": base[2:10:3], "transposed": base.reshape(3, 4).t(), "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3), "param": torch.nn.Parameter(torch.ones(2)),
        "frozen": torch.nn.Parameter(torch.ones(2), requires_grad=False), "leaf_grad": torch.ones(2).requires_grad_(),
        "bf16": torch.tensor([1.5, -2.25, 3e38]).to(torch.bfloat16), "epoch": 7, "lr": 1e-3, "big": 2**70,
        "name": "résumé", "flags": [True, None, (1, 2.5)], "size": torch.Size([2, 3]), "dtype": torch.float64,
        "raw": b"\x00\xff", "nested": OrderedDict(a={"b": [base[:2]]}),
    })
    _torch_save(obj, tmp_path / "ck.pt", zipped)
    got = lamina.load(tmp_path / "ck.pt")
    for d in DTYPES:
        assert str(got[f"t_{d}"].dtype) == d
        np.testing.assert_array_equal(got[f"t_{d}"].numpy(), obj[f"t_{d}"].numpy())
    for k in ("view", "transposed", "scalar", "empty"):
        assert got[k].shape == tuple(obj[k].shape)
        np.testing.assert_array_equal(got[k].numpy(), obj[k].numpy())
    assert isinstance(got["param"], lamina.nn.Parameter) and got["param"].requires_grad
    assert isinstance(got["frozen"], lamina.nn.Parameter) and not got["frozen"].requires_grad
    assert got["leaf_grad"].requires_grad and not isinstance(got["leaf_grad"], lamina.nn.Parameter)
    assert got["bf16"].dtype == lamina.float32  # widened exactly
    assert got["bf16"].tolist() == obj["bf16"].float().tolist()
    assert (got["epoch"], got["lr"], got["big"], got["name"]) == (7, 1e-3, 2**70, "résumé")
    assert got["flags"] == [True, None, (1, 2.5)] and got["size"] == (2, 3) and got["dtype"] == lamina.float64
    assert got["raw"] == b"\x00\xff" and got["nested"]["a"]["b"][0].tolist() == [0.0, 1.0]
    got["view"].array[0] = 99  # every tensor owns its memory
    assert got["nested"]["a"]["b"][0].tolist() == [0.0, 1.0]


def test_a_file_object_and_map_location_as_torch(tmp_path):
    buf = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buf)
    buf.seek(0)
    assert lamina.load(buf, map_location="cpu")["w"].tolist() == [1.0, 1.0]
    buf.seek(0)
    assert lamina.load(buf, map_location=lambda storage, loc: storage)["w"].tolist() == [1.0, 1.0]
    buf.seek(0)
    with pytest.raises(RuntimeError, match="no GPU backend"):
        lamina.load(buf, map_location="cuda")


def test_lamina_writes_what_torch_load_weights_only_reads(tmp_path):
    model = _lamina_net()
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 6)).astype("float32")
    model.train()
    model(lamina.tensor(x))
    model.eval()
    ck = {"model": model.state_dict(), "epoch": 3, "loss": 0.25, "hist": [1.0, float("inf")], "tag": "run",
          "raw": b"\x01", "none": None, "big": -(2**40), "params": dict(model.named_parameters()),
          "scalar": lamina.tensor(2.0, dtype=lamina.float64), "ints": lamina.arange(5)[1::2]}
    lamina.save(ck, tmp_path / "ck.pt", format="torch")
    got = torch.load(tmp_path / "ck.pt", weights_only=True)
    assert isinstance(got["model"], OrderedDict) and list(got["model"]) == list(model.state_dict())
    net = _torch_net().eval()
    net.load_state_dict(got["model"])
    np.testing.assert_allclose(net(torch.tensor(x)).detach().numpy(), model(lamina.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    assert got["model"]["1.num_batches_tracked"].shape == () and got["model"]["1.num_batches_tracked"].item() == 1
    assert (got["epoch"], got["loss"], got["hist"], got["tag"], got["raw"], got["none"], got["big"]) == (
        3, 0.25, [1.0, float("inf")], "run", b"\x01", None, -(2**40))
    assert all(isinstance(p, torch.nn.Parameter) and p.requires_grad for p in got["params"].values())
    assert got["scalar"].dtype == torch.float64 and got["scalar"].shape == () and got["ints"].tolist() == [1, 3]
    assert lamina.load(tmp_path / "ck.pt")["ints"].tolist() == [1, 3]  # and lamina reads its own torch file


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_round_trips_through_torch(tmp_path, dtype):
    t = (lamina.arange(6).reshape(2, 3) % 3).to(getattr(lamina, dtype))
    lamina.save({"t": t}, tmp_path / "t.pt", format="torch")
    got = torch.load(tmp_path / "t.pt", weights_only=True)["t"]
    assert str(got.dtype) == f"torch.{dtype}" and got.numpy().tolist() == t.tolist()


def test_unsavable_objects_are_refused_before_the_file_is_touched(tmp_path):
    path = tmp_path / "x.pt"
    path.write_bytes(b"old")
    with pytest.raises(TypeError, match=r"cannot save an object of type ndarray at \['a'\]"):
        lamina.save({"a": np.ones(2)}, path, format="torch")
    with pytest.raises(TypeError, match="object"):
        lamina.save([object()], path, format="torch")
    assert path.read_bytes() == b"old"
    with pytest.raises(ValueError, match="format must be"):
        lamina.save({}, path, format="pickle")


# --- the reader executes nothing: crafted pickles --------------------------------------------


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _zip_with(pkl: bytes, extra=()):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pkl)
        zf.writestr("archive/byteorder", b"little")
        for name, data in extra:
            zf.writestr(name, data)
        zf.writestr("archive/version", b"3\n")
    buf.seek(0)
    return buf


def _legacy_with(pkl: bytes):
    head = b"".join(pickle.dumps(x, protocol=2) for x in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
    return io.BytesIO(head + pkl + pickle.dumps([], protocol=2))


@pytest.mark.parametrize("wrap", [_zip_with, _legacy_with], ids=["zip", "legacy"])
@pytest.mark.parametrize("payload", ["system", "eval", "getattr", "torch_load", "numpy"])
def test_a_crafted_payload_never_runs(tmp_path, wrap, payload):
    marker = tmp_path / "pwned"
    obj = {"system": _Payload(marker), "eval": type("E", (), {"__reduce__": lambda s: (eval, ("1+1",))})(),
           "getattr": type("G", (), {"__reduce__": lambda s: (getattr, ("abc", "upper"))})(),
           "torch_load": type("T", (), {"__reduce__": lambda s: (torch.load, ("x",))})(),
           "numpy": np.ones(2)}[payload]
    pkl = pickle.dumps({"state": obj}, protocol=2)
    with pytest.raises(SerializationError, match="not a tensor, a container or a number .*nothing was executed"):
        lamina.load(wrap(pkl))
    assert not marker.exists()


def _tensor_pickle(offset=0, size=(2,), stride=(1,), numel=2, storage="FloatStorage"):
    """A hand-built pickle of one tensor record (protocol 2 opcodes, as torch writes them)."""
    def tup(vals):
        return b"(" + b"".join(b"J" + int(v).to_bytes(4, "little", signed=True) for v in vals) + b"t"

    def text(s):
        return b"X" + len(s).to_bytes(4, "little") + s.encode()

    return (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((" + text("storage") + b"ctorch\n" + storage.encode()
            + b"\n" + text("0") + text("cpu") + b"J" + numel.to_bytes(4, "little") + b"tQ" + b"J"
            + offset.to_bytes(4, "little", signed=True) + tup(size) + tup(stride)
            + b"\x89ccollections\nOrderedDict\n)RtR.")


def test_the_hand_built_record_reads_and_bad_records_are_clear_errors():
    data = np.array([1.0, 2.0, 3.0], dtype="<f4").tobytes()
    ok = lamina.load(_zip_with(_tensor_pickle(numel=3, size=(2,), offset=1), [("archive/data/0", data)]))
    assert ok.tolist() == [2.0, 3.0]
    cases = [
        (dict(numel=3, size=(3,), offset=1), data, "reaches element 3 of storage '0', which holds 3"),
        (dict(numel=3, size=(2,), stride=(5,)), data, "reaches element 5"),
        (dict(numel=4), data, "should hold 16 bytes"),
        (dict(numel=3, size=(2, 2), stride=(1,)), data, "bad tensor record"),
        (dict(numel=3, storage="ComplexFloatStorage"), data, "torch.ComplexFloatStorage, which is not a tensor"),
    ]
    for kw, blob, msg in cases:
        with pytest.raises(SerializationError, match=msg):
            lamina.load(_zip_with(_tensor_pickle(**kw), [("archive/data/0", blob)]))
    with pytest.raises(SerializationError, match="storage '0' has no member"):
        lamina.load(_zip_with(_tensor_pickle(numel=3)))


def test_fuzzed_torch_files_raise_serialization_errors_only(tmp_path):
    torch.manual_seed(0)
    buf = io.BytesIO()
    torch.save({"w": torch.randn(3, 2), "n": 3, "l": [torch.ones(1)]}, buf)
    good = buf.getvalue()
    with zipfile.ZipFile(io.BytesIO(good)) as zf:
        pkl_name = next(n for n in zf.namelist() if n.endswith("data.pkl"))
        pkl = zf.read(pkl_name)
        members = [(n, zf.read(n)) for n in zf.namelist() if "/data/" in n]
    rng = np.random.default_rng(0)
    outcomes = {"error": 0, "read": 0}
    for trial in range(300):
        b = bytearray(pkl)
        for _ in range(int(rng.integers(1, 4))):
            b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
        if trial % 3 == 0:
            b = b[: int(rng.integers(1, len(b)))]  # truncated
        try:
            got = lamina.load(_zip_with(bytes(b), [(n.replace(pkl_name[:-8], "archive/"), d) for n, d in members]))
        except SerializationError as e:
            assert str(e).startswith("lamina.load: ")
            outcomes["error"] += 1
        else:
            outcomes["read"] += 1
            assert isinstance(got, (dict, list, tuple, int, float, str, bytes, type(None), lamina.Tensor))
    assert outcomes["error"] > 100
    whole = bytearray(good)  # damage the archive itself, and the legacy format's stream
    for _ in range(50):
        b = bytearray(whole)
        b[int(rng.integers(0, len(b)))] ^= 0xFF
        try:
            lamina.load(io.BytesIO(bytes(b)))
        except SerializationError:
            pass
    legacy = io.BytesIO()
    torch.save({"w": torch.ones(3)}, legacy, _use_new_zipfile_serialization=False)
    for cut in range(1, len(legacy.getvalue()), 7):
        with pytest.raises(SerializationError):
            lamina.load(io.BytesIO(legacy.getvalue()[:cut]))


def test_safetensors_both_ways(tmp_path):
    st = pytest.importorskip("safetensors.torch")
    t = {"w": torch.randn(3, 2), "i": torch.arange(4), "m": torch.tensor([True, False])}
    st.save_file(t, str(tmp_path / "a.safetensors"))
    got = lamina.load(tmp_path / "a.safetensors")
    assert sorted(got) == sorted(t)
    for k in t:
        np.testing.assert_array_equal(got[k].numpy(), t[k].numpy())
    lamina.save({"w": lamina.ones(2, 2), "s": lamina.tensor(3.0)}, tmp_path / "b.safetensors", format="safetensors")
    back = st.load_file(str(tmp_path / "b.safetensors"))
    assert back["w"].tolist() == [[1.0, 1.0], [1.0, 1.0]] and back["s"].shape == ()
    with pytest.raises(TypeError, match="only tensors under string names"):
        lamina.save({"n": 3}, tmp_path / "c.safetensors", format="safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"w\": 1}       ")
    with pytest.raises(SerializationError, match="unreadable safetensors"):
        lamina.load(tmp_path / "bad.safetensors")
