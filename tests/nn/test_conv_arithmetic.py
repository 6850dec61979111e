"""Conv arithmetic: output sizes against torch's layers, strict mode, parameter counts, receptive fields."""

import numpy as np
import pytest
import torch

from lamina.nn.utils import (
    ReceptiveField,
    conv_output_size,
    conv_parameter_count,
    conv_transpose_output_size,
    pool_output_size,
    receptive_field,
    receptive_fields,
)


def test_conv_output_size_matches_torch():
    rng = np.random.default_rng(0)
    for _ in range(60):
        n, k, s, p, d = (int(rng.integers(lo, hi)) for lo, hi in [(5, 20), (1, 5), (1, 4), (0, 3), (1, 3)])
        if n + 2 * p < d * (k - 1) + 1:
            continue
        conv = torch.nn.Conv1d(1, 1, k, stride=s, padding=p, dilation=d)
        expected = conv(torch.zeros(1, 1, n)).shape[-1]
        assert conv_output_size(n, k, s, p, d) == expected


def test_conv_transpose_output_size_matches_torch():
    rng = np.random.default_rng(1)
    for _ in range(60):
        n, k, s, p, d = (int(rng.integers(lo, hi)) for lo, hi in [(2, 10), (1, 5), (1, 4), (0, 2), (1, 3)])
        op = int(rng.integers(0, max(s, d)))
        try:
            conv = torch.nn.ConvTranspose1d(1, 1, k, stride=s, padding=p, output_padding=op, dilation=d)
            expected = conv(torch.zeros(1, 1, n)).shape[-1]
        except RuntimeError:
            continue
        assert conv_transpose_output_size(n, k, s, p, op, d) == expected


def test_pool_output_size_matches_torch_ceil_mode():
    rng = np.random.default_rng(2)
    for _ in range(100):
        n, k, s, d = (int(rng.integers(lo, hi)) for lo, hi in [(3, 20), (1, 5), (1, 4), (1, 3)])
        p = int(rng.integers(0, k // 2 + 1))
        ceil = bool(rng.random() < 0.5)
        if n + 2 * p < d * (k - 1) + 1:
            continue
        expected = torch.nn.functional.max_pool1d(torch.zeros(1, 1, n), k, s, p, d, ceil_mode=ceil).shape[-1]
        assert pool_output_size(n, k, s, p, d, ceil_mode=ceil) == expected


def test_tuples_per_dim():
    assert conv_output_size((28, 32), (5, 3), stride=(1, 2), padding=(2, 1)) == (28, 16)
    assert conv_output_size((28, 32), 3, padding="same") == (28, 32)
    assert conv_output_size(10, 3, padding="valid") == 8
    assert pool_output_size((7, 8), 2) == (3, 4)
    assert conv_transpose_output_size((16, 8), 4, stride=2, padding=1) == (32, 16)


def test_strict_mode_names_the_numbers():
    assert conv_output_size(33, 3, stride=2, strict=True) == 16  # (33 − 3) / 2 fits exactly
    with pytest.raises(ValueError, match=r"stride 2 does not fit.*29 is not divisible by 2"):
        conv_output_size(32, 3, stride=2, strict=True)
    with pytest.raises(ValueError, match="stride 4"):
        pool_output_size(10, 3, stride=4, strict=True)
    with pytest.raises(ValueError, match="stride 4"):  # ceil_mode takes the rows in, but the stride still does not fit
        pool_output_size(10, 3, stride=4, ceil_mode=True, strict=True)
    assert pool_output_size(10, 3, stride=4, ceil_mode=True) == 3
    assert pool_output_size(11, 3, stride=4, ceil_mode=True, strict=True) == 3  # (11 − 3) / 4 fits
    assert conv_output_size(32, 3, stride=2) == 15  # non-strict silently drops the last row


def test_errors():
    with pytest.raises(ValueError, match="larger than the padded input"):
        conv_output_size(3, 5)
    with pytest.raises(ValueError, match=r"padding should be at most half of the kernel size, got padding=2 "
                                         r"and kernel_size=2"):  # as torch's pools
        pool_output_size(8, 2, padding=2)
    with pytest.raises(ValueError, match="positive"):
        conv_output_size(8, 3, stride=0)
    with pytest.raises(ValueError, match="output_padding"):
        conv_transpose_output_size(8, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="divisible by groups"):
        conv_parameter_count(3, 8, 3, groups=2)
    with pytest.raises(ValueError, match="strided"):
        conv_output_size(8, 3, stride=2, padding="same")


def test_parameter_count_matches_torch():
    for cin, cout, k, g, b in [(3, 64, 3, 1, True), (1, 6, 5, 1, True), (32, 32, 3, 32, False), (16, 8, (3, 5), 4, True),
                               (4, 6, (1, 2, 3), 2, False)]:
        kk = k if isinstance(k, tuple) else (k, k)
        conv = {2: torch.nn.Conv2d, 3: torch.nn.Conv3d}[len(kk)](cin, cout, kk, groups=g, bias=b)
        assert conv_parameter_count(cin, cout, kk, groups=g, bias=b) == sum(p.numel() for p in conv.parameters())


def test_receptive_field_by_hand():
    # two 3×3 convs see 5×5; three see 7×7 (VGG's argument)
    assert receptive_field([(3, 1, 1)] * 2).size == 5
    assert receptive_field([(3, 1, 1)] * 3).size == 7
    # a dilated 3×3 (d=2) sees 5; stride multiplies the jump
    assert receptive_field([(3, 1, 2, 2)]) == ReceptiveField(5, 1, 0.0)
    fields = receptive_fields([(3, 2, 1), (3, 2, 1)])
    assert fields == [ReceptiveField(3, 2, 0.0), ReceptiveField(7, 4, 0.0)]
    # a valid 5×5 conv: the first output is centred on input pixel 2
    assert receptive_field([(5, 1)]).start == 2.0


def test_receptive_field_brute_force():
    """The field size equals the span of inputs that change the first output, found by
    perturbing each input of a random conv/pool stack in torch."""
    rng = np.random.default_rng(3)
    for _ in range(8):
        layers, specs = [], []
        for _ in range(int(rng.integers(1, 4))):
            k, s, d = int(rng.integers(1, 4)), int(rng.integers(1, 3)), int(rng.integers(1, 3))
            layers.append(torch.nn.Conv1d(1, 1, k, stride=s, dilation=d, bias=False))
            torch.nn.init.constant_(layers[-1].weight, 1.0)
            specs.append((k, s, 0, d))
        net = torch.nn.Sequential(*layers)
        x = torch.zeros(1, 1, 64, requires_grad=True)
        net(x)[0, 0, 0].backward()
        hit = np.nonzero(x.grad[0, 0].numpy())[0]
        rf = receptive_field(specs)
        assert rf.size == hit.max() - hit.min() + 1
        assert rf.start == (hit.max() + hit.min()) / 2


def test_receptive_field_of_modules():
    import lamina.nn as nn

    class Stub:  # anything with kernel_size/stride/padding/dilation attributes works
        def __init__(self, k, s=None, p=0):
            self.kernel_size, self.stride, self.padding = k, s, p

    stack = [Stub(5, 1), Stub(2), Stub(5, 1), nn.MaxPool2d(2)]
    assert receptive_field(stack).size == 16  # LeNet-5's conv/pool stack
    assert receptive_field([nn.MaxPool2d((2, 2)), nn.Identity(), nn.MaxPool2d(2, stride=1)]) == ReceptiveField(4, 2, 1.5)


def test_receptive_field_per_dim_brute_force():
    """Along each dim of a 2-D stack with non-square kernels, strides and dilations: the span
    of inputs that change the first output (torch, by perturbation)."""
    import lamina.nn as nn

    rng = np.random.default_rng(4)
    for _ in range(6):
        tlayers, llayers = [], []
        for _ in range(int(rng.integers(1, 4))):
            k = tuple(int(v) for v in rng.integers(1, 5, 2))
            s = tuple(int(v) for v in rng.integers(1, 3, 2))
            d = tuple(int(v) for v in rng.integers(1, 3, 2))
            tlayers.append(torch.nn.Conv2d(1, 1, k, stride=s, dilation=d, bias=False))
            torch.nn.init.constant_(tlayers[-1].weight, 1.0)
            llayers.append(nn.Conv2d(1, 1, k, stride=s, dilation=d))
        x = torch.zeros(1, 1, 48, 48, requires_grad=True)
        torch.nn.Sequential(*tlayers)(x)[0, 0, 0, 0].backward()
        rows, cols = np.nonzero(x.grad[0, 0].numpy())
        for dim, hit in ((0, rows), (1, cols)):
            rf = receptive_field(llayers, dim=dim)
            assert rf.size == hit.max() - hit.min() + 1
            assert rf.start == (hit.max() + hit.min()) / 2
    # 'same' padding of an even, dilated kernel: the conv's left pad d·(k−1)//2, as torch's
    stack = [nn.Conv1d(1, 1, 2, dilation=3, padding="same", bias=False), nn.Conv1d(1, 1, 3, stride=2, bias=False)]
    tstack = [torch.nn.Conv1d(1, 1, 2, dilation=3, padding="same", bias=False), torch.nn.Conv1d(1, 1, 3, stride=2,
                                                                                                  bias=False)]
    for t in tstack:
        torch.nn.init.constant_(t.weight, 1.0)
    x = torch.zeros(1, 1, 32, requires_grad=True)
    torch.nn.Sequential(*tstack)(x)[0, 0, 0].backward()
    hit = np.nonzero(x.grad[0, 0].numpy())[0]
    rf = receptive_field(stack)
    lo, hi = rf.start - (rf.size - 1) / 2, rf.start + (rf.size - 1) / 2  # [−1, 4]: one pixel in the padding
    assert (hit.min(), hit.max()) == (max(lo, 0), hi) and lo == -1
    with pytest.raises(ValueError, match="dim 2 asked of a layer with 2 spatial dims"):
        receptive_field([nn.Conv2d(1, 1, (3, 5))], dim=2)
