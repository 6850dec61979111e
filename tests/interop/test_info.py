"""finfo, iinfo and Size as torch's."""

import pytest
import torch

import lamina


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_finfo_as_torch(dtype):
    ours, theirs = lamina.finfo(getattr(lamina, dtype)), torch.finfo(getattr(torch, dtype))
    for a in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype"):
        assert getattr(ours, a) == getattr(theirs, a), a
    assert repr(ours) == repr(theirs)


def test_finfo_defaults_to_the_default_dtype():
    assert lamina.finfo().dtype == torch.finfo().dtype == "float32"
    with pytest.raises(TypeError, match="finfo\\(\\) requires a floating point input type"):
        lamina.finfo(lamina.int32)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "int64"])
def test_iinfo_as_torch(dtype):
    ours, theirs = lamina.iinfo(getattr(lamina, dtype)), torch.iinfo(getattr(torch, dtype))
    assert (ours.bits, ours.max, ours.min, ours.dtype) == (theirs.bits, theirs.max, theirs.min, theirs.dtype)
    assert repr(ours) == repr(theirs)
    with pytest.raises(TypeError, match="iinfo\\(\\) requires an integer input type"):
        lamina.iinfo(lamina.float32)


def test_size_as_torch():
    s, t = lamina.Size([2, 3]), torch.Size([2, 3])
    assert s == t == (2, 3) and s.numel() == t.numel() == 6 and lamina.Size([]).numel() == 1
    assert repr(s) == repr(t).replace("torch", "lamina")
    assert lamina.zeros(s).shape == (2, 3) and lamina.Tensor(s).shape == (2, 3)  # a Size is a shape
    with pytest.raises(TypeError, match="Size"):
        lamina.Size([2.5])
