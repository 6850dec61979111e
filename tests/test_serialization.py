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
