"""The conv-arithmetic explorer's output sizes against torch's conv1d / conv_transpose1d."""

import itertools

import pytest

from lamina.playground.conv_shape import describe

torch = pytest.importorskip("torch")


def torch_size(n, k, s, p, d, op, transposed):
    x = torch.zeros(1, 1, n)
    w = torch.zeros(1, 1, k)
    try:
        if transposed:
            return torch.nn.functional.conv_transpose1d(x, w, stride=s, padding=p, output_padding=op, dilation=d).shape[-1]
        return torch.nn.functional.conv1d(x, w, stride=s, padding=p, dilation=d).shape[-1]
    except RuntimeError:
        return None


@pytest.mark.parametrize("transposed", [False, True])
def test_output_size_and_legality_match_torch(transposed):
    for n, k, s, p, d, op in itertools.product((1, 2, 5, 6), (1, 3, 4), (1, 2, 3), (0, 1, 3), (1, 2), (0, 1, 2)):
        if not transposed and op:
            continue
        got = describe({"size": n, "kernel": k, "stride": s, "padding": p, "dilation": d, "output_padding": op,
                        "transposed": "1" if transposed else "0"})
        assert got["out"] == torch_size(n, k, s, p, d, op, transposed), (n, k, s, p, d, op, got)
        assert got["legal"] == (got["out"] is not None) and bool(got["problems"]) != got["legal"]


def test_formula_with_the_users_numbers_and_the_stride_that_does_not_fit():
    fits = describe({"size": "7", "kernel": "3", "stride": "2", "padding": "0"})
    assert fits["out"] == 3 and fits["notes"] == [] and fits["positions"] == [0, 2, 4]
    assert "⌊(7 + 2·0 − 1·(3 − 1) − 1) / 2⌋ + 1" in fits["formula"]
    rest = describe({"size": "8", "kernel": "3", "stride": "2"})
    assert rest["out"] == 3 and "the stride does not fit" in rest["notes"][0] and "last 1 padded" in rest["notes"][0]


def test_illegal_cases_are_explained():
    assert "no window fits" in describe({"size": "2", "kernel": "5"})["problems"][0]
    assert "stride must be at least 1" in describe({"stride": "0"})["problems"][0]
    assert "only to a transposed" in describe({"output_padding": "1"})["problems"][0]
    assert "must be smaller than the stride" in describe({"output_padding": "2", "stride": "2",
                                                          "transposed": "1"})["problems"][0]
    with pytest.raises(ValueError, match="kernel must be an integer"):
        describe({"kernel": "3.5"})
    with pytest.raises(ValueError, match="unknown parameters groups"):
        describe({"groups": "2"})


def test_endpoint(client):
    r = client.get("/api/conv?size=5&kernel=3&stride=2&padding=1")
    assert r.status_code == 200 and r.json()["out"] == 3
    r = client.get("/api/conv?size=x")
    assert r.status_code == 400 and "size must be an integer" in r.json()["error"]
