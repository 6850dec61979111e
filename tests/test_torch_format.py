"""PyTorch checkpoints both ways: lamina.load reads torch.save's zip and legacy files; lamina.save(format="torch")
writes files torch.load(weights_only=True) reads; safetensors files through the safetensors package."""

import io
from collections import OrderedDict

import numpy as np
import pytest
import torch

import lamina
from lamina import nn
from lamina.serialization import SerializationError

DTYPES = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"]


def _torch_obj():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    lin = torch.nn.Linear(3, 2)
    return {
        "sd": lin.state_dict(),
        "base": base,
        "view": base[1:, ::2],           # an offset and strides into a shared storage
        "t": base.t(),                   # non-contiguous, the same storage again
        "param": torch.nn.Parameter(torch.ones(3)),
        "frozen": torch.nn.Parameter(torch.zeros(2), requires_grad=False),
        "grad": torch.ones(2, requires_grad=True),
        "size": torch.Size([2, 3]), "dtype": torch.float16, "none": None, "flag": False,
        "list": [1, -7, 2.5, "s", (3, 4.0)], 3: "int key", "big": 2 ** 70, "neg": -(2 ** 40),
        "empty": torch.zeros(0, 3), "scalar": torch.tensor(3.5, dtype=torch.float64),
    }


def _check_against_torch(got, want):
    assert type(got["sd"]) is OrderedDict and list(got["sd"]) == ["weight", "bias"]
    for k in ("base", "view", "t", "empty", "scalar"):
        assert got[k].shape == tuple(want[k].shape), k
        np.testing.assert_array_equal(got[k].numpy(), want[k].detach().numpy())
        assert got[k].dtype == lamina.backend.to_dtype(str(want[k].dtype).removeprefix("torch.")), k
    np.testing.assert_array_equal(got["sd"]["weight"].numpy(), want["sd"]["weight"].numpy())
    assert isinstance(got["param"], nn.Parameter) and got["param"].requires_grad
    assert isinstance(got["frozen"], nn.Parameter) and not got["frozen"].requires_grad
    assert got["grad"].requires_grad and not got["base"].requires_grad
    assert got["size"] == (2, 3) and got["dtype"] == lamina.float16
    assert got["none"] is None and got["flag"] is False and got[3] == "int key"
    assert got["list"] == [1, -7, 2.5, "s", (3, 4.0)]
    assert got["big"] == 2 ** 70 and got["neg"] == -(2 ** 40)
    assert got.get("set", {1, 2}) == {1, 2}


@pytest.mark.parametrize("zip_format, protocol", [(True, 2), (True, 4), (True, 5), (False, 2)],
                         ids=["zip", "zip-protocol4", "zip-protocol5", "legacy"])
def test_load_reads_what_torch_save_writes(tmp_path, zip_format, protocol):
    want = _torch_obj()
    want["set"] = {1, 2}
    path = tmp_path / "ckpt.pt"
    torch.save(want, path, _use_new_zipfile_serialization=zip_format, pickle_protocol=protocol)
    got = lamina.load(path)
    _check_against_torch(got, want)
    with open(path, "rb") as f:  # a file object too
        _check_against_torch(lamina.load(f), want)


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_both_ways(tmp_path, dtype, zip_format):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((3, 5)) * 50).astype(dtype)
    torch.save({"x": torch.from_numpy(a)[:, 1::2]}, tmp_path / "t.pt", _use_new_zipfile_serialization=zip_format)
    got = lamina.load(tmp_path / "t.pt")["x"]
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got.numpy(), a[:, 1::2])
    lamina.save({"x": lamina.from_numpy(a)[:, 1::2]}, tmp_path / "l.pt", format="torch")
    back = torch.load(tmp_path / "l.pt", weights_only=True)["x"]
    assert back.dtype == getattr(torch, dtype)
    np.testing.assert_array_equal(back.numpy(), a[:, 1::2])


def test_bfloat16_is_a_clear_error(tmp_path):
    torch.save({"w": torch.ones(2, dtype=torch.bfloat16)}, tmp_path / "bf.pt")
    with pytest.raises(SerializationError, match="bf.pt.*bfloat16.*no kernels"):
        lamina.load(tmp_path / "bf.pt")


def test_torch_load_weights_only_reads_lamina_save(tmp_path):
    base = lamina.arange(24.0).reshape(4, 6)
    sd = nn.Linear(3, 2).state_dict()
    obj = {"sd": sd, "base": base, "view": base[1:, ::2], "t": base.T, "nested": [(base[0], {"k": None})],
           "param": nn.Parameter(lamina.ones(3)), "i": 7, "f": -0.25, "s": "text", "flag": True, "big": 2 ** 80,
           "empty": lamina.zeros(0, 2), "scalar": lamina.tensor(2.0), "grad": lamina.ones(2, requires_grad=True)}
    path = tmp_path / "to_torch.pt"
    lamina.save(obj, path, format="torch")
    got = torch.load(path, weights_only=True)
    assert type(got["sd"]) is OrderedDict and list(got["sd"]) == ["weight", "bias"]
    np.testing.assert_array_equal(got["sd"]["weight"].numpy(), sd["weight"].numpy())
    for k in ("base", "view", "t", "empty", "scalar"):
        np.testing.assert_array_equal(got[k].numpy(), obj[k].numpy())
    assert got["t"].stride() == (1, 6)  # the transposed view is written as a view, not copied
    # views of one array share one storage in the file, as torch's views do
    assert got["view"].untyped_storage().data_ptr() == got["base"].untyped_storage().data_ptr()
    assert got["view"].storage_offset() == 6 and got["view"].stride() == (6, 2)
    np.testing.assert_array_equal(got["nested"][0][0].numpy(), base[0].numpy())
    assert got["nested"][0][1] == {"k": None} and isinstance(got["nested"][0], tuple)
    assert isinstance(got["param"], torch.nn.Parameter) and got["param"].requires_grad
    assert got["grad"].requires_grad and not got["base"].requires_grad
    assert (got["i"], got["f"], got["s"], got["flag"], got["big"]) == (7, -0.25, "text", True, 2 ** 80)
    # and lamina reads its own torch file back
    again = lamina.load(path)
    np.testing.assert_array_equal(again["view"].numpy(), obj["view"].numpy())
    buf = io.BytesIO()
    lamina.save(obj, buf, format="torch")
    buf.seek(0)
    assert torch.load(buf, weights_only=True)["s"] == "text"


def test_save_torch_refuses_what_torch_cannot_load(tmp_path):
    with pytest.raises(TypeError, match="NumPy array at \\['a'\\].*weights_only"):
        lamina.save({"a": np.ones(2)}, tmp_path / "x.pt", format="torch")
    with pytest.raises(TypeError, match="type object at \\['b'\\]"):
        lamina.save({"b": object()}, tmp_path / "x.pt", format="torch")
    with pytest.raises(ValueError, match="unknown format 'pickle'"):
        lamina.save({}, tmp_path / "x.pt", format="pickle")
    assert not (tmp_path / "x.pt").exists()  # a failed save leaves nothing behind


def test_a_torch_state_dict_loads_into_the_lamina_model(tmp_path):
    from tests.models import torch_reference as ref

    torch.manual_seed(0)
    tm = ref.ResNet(ref.BasicBlock, [1, 1, 1, 1], num_classes=5).eval()
    ref.randomize_bn(tm)
    torch.save(tm.state_dict(), tmp_path / "resnet.pth")
    lm = lamina.models.ResNet(lamina.models.resnet.BasicBlock, [1, 1, 1, 1], num_classes=5).eval()
    lm.load_state_dict(lamina.load(tmp_path / "resnet.pth"))
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        want = tm(torch.from_numpy(x)).numpy()
    with lamina.no_grad():
        got = lm(lamina.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # and back: lamina's state_dict in torch's format loads into the torch model
    lamina.save(lm.state_dict(), tmp_path / "back.pth", format="torch")
    tm2 = ref.ResNet(ref.BasicBlock, [1, 1, 1, 1], num_classes=5).eval()
    tm2.load_state_dict(torch.load(tmp_path / "back.pth", weights_only=True))
    with torch.no_grad():
        np.testing.assert_allclose(tm2(torch.from_numpy(x)).numpy(), want, rtol=1e-5, atol=1e-5)


def test_safetensors_both_ways(tmp_path):
    st = pytest.importorskip("safetensors.torch", reason="the safetensors package is not installed")
    rng = np.random.default_rng(1)
    tensors = {"w": torch.from_numpy(rng.standard_normal((3, 4)).astype(np.float32)),
               "i": torch.arange(5), "h": torch.ones(2, dtype=torch.float16)}
    st.save_file(tensors, tmp_path / "t.safetensors")
    got = lamina.load(tmp_path / "t.safetensors")
    assert set(got) == {"w", "i", "h"}
    for k, v in tensors.items():
        assert got[k].dtype == np.dtype(str(v.dtype).removeprefix("torch."))
        np.testing.assert_array_equal(got[k].numpy(), v.numpy())
    lamina.save({"a": lamina.arange(6.0).reshape(2, 3).T, "b": lamina.tensor([1, 2], dtype=lamina.int8)},
                tmp_path / "l.safetensors", format="safetensors")
    back = st.load_file(tmp_path / "l.safetensors")
    np.testing.assert_array_equal(back["a"].numpy(), np.arange(6.0, dtype=np.float32).reshape(2, 3).T)
    assert back["b"].dtype == torch.int8
    lamina.save({"s": lamina.tensor(3.0)}, tmp_path / "s.safetensors", format="safetensors")
    assert st.load_file(tmp_path / "s.safetensors")["s"].shape == ()  # a 0-d tensor stays 0-d
    with pytest.raises(TypeError, match="entry 'n' is a int"):
        lamina.save({"n": 3}, tmp_path / "bad.safetensors", format="safetensors")
    damaged = (tmp_path / "t.safetensors").read_bytes()[:-5]
    (tmp_path / "d.safetensors").write_bytes(damaged)
    with pytest.raises(SerializationError, match="d.safetensors. is not a readable safetensors file"):
        lamina.load(tmp_path / "d.safetensors")
