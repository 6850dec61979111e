"""torch.set_printoptions: precision, profiles, threshold/edgeitems and sci_mode change how tensors print."""

import pytest
import torch

import lamina


@pytest.fixture(autouse=True)
def _restore():
    yield
    lamina.set_printoptions(profile="default")
    torch.set_printoptions(profile="default")


@pytest.mark.parametrize("precision", [1, 2, 6])
def test_precision_prints_as_torch(precision):
    values = [1.23456789, -2.5, 1000.125]
    for lib in (torch, lamina):
        lib.set_printoptions(precision=precision)
    assert repr(lamina.tensor(values)) == repr(torch.tensor(values))


def test_profiles_threshold_and_edgeitems():
    x = lamina.arange(20.0)
    assert "..." not in repr(x)
    lamina.set_printoptions(threshold=5, edgeitems=2)
    r = repr(x).replace(" ", "")
    assert r == "tensor([0.,1.,...,18.,19.])"
    lamina.set_printoptions(profile="full")
    assert "..." not in repr(lamina.arange(5000.0))
    lamina.set_printoptions(profile="short")
    assert repr(lamina.tensor([1.23456])) == "tensor([1.23])"
    lamina.set_printoptions(profile="default")
    assert repr(lamina.tensor([1.23456])) == "tensor([1.2346])"


def test_sci_mode_and_bad_options():
    lamina.set_printoptions(sci_mode=True)
    assert "e+00" in repr(lamina.tensor([1.5, 2.0]))
    lamina.set_printoptions(sci_mode=False)
    assert "e" not in repr(lamina.tensor([1e-8, 1.0])).replace("tensor", "")
    with pytest.raises(ValueError, match="profile"):
        lamina.set_printoptions(profile="long")
    with pytest.raises(ValueError, match="precision"):
        lamina.set_printoptions(precision=-1)
