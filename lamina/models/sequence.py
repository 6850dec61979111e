"""Classifiers of time series ``(N, C, L)``: the MNIST-1D paper's 1-D CNN, a TCN, and GRU / LSTM baselines.

All take series in the layout of ``Conv1d`` (channels, then time) and give ``(N, num_classes)``
scores, so one data pipeline feeds them all.
"""

from __future__ import annotations

from typing import Any

from .. import nn
from ..autograd.tensor import Tensor
from ..ops.join import cat

__all__ = ["CNN1d", "TCN", "TemporalBlock", "RecurrentClassifier", "cnn1d", "tcn", "gru", "lstm",
           "receptive_field"]


def _conv_len(length: int, kernel: int, stride: int, padding: int) -> int:
    return (length + 2 * padding - kernel) // stride + 1


class CNN1d(nn.Module):
    """The 1-D CNN of the MNIST-1D paper (Greydanus 2020, ``ConvBase``): three strided convolutions
    with ReLU and a linear head on the flattened features.

    ``conv1`` 5 taps stride 2, ``conv2`` and ``conv3`` 3 taps stride 2, each padding 1 and
    ``channels`` maps: a series of 40 steps becomes 19, 10, then 5 steps (the head sees 125 features).

    Args:
        num_classes: outputs. in_channels: channels of the series. input_length: steps of the series.
        channels: maps of each convolution (the paper's 25).

    Shape:
        ``(N, in_channels, input_length)`` → ``(N, num_classes)``.

    Example:
        >>> import lamina
        >>> CNN1d()(lamina.randn(2, 1, 40)).shape
        (2, 10)
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_length: int = 40, channels: int = 25) -> None:
        super().__init__()
        out = _conv_len(_conv_len(_conv_len(input_length, 5, 2, 1), 3, 2, 1), 3, 2, 1)
        if out < 1:
            raise ValueError(f"CNN1d: input_length {input_length} is too short for three strided convolutions "
                             "(at least 3 steps)")
        self.input_length = input_length
        self.conv1 = nn.Conv1d(in_channels, channels, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.linear = nn.Linear(channels * out, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 3 or x.shape[-1] != self.input_length:
            raise ValueError(f"CNN1d: expected series (N, {self.conv1.in_channels}, {self.input_length}), "
                             f"got {tuple(x.shape)}")
        h = self.conv3(self.conv2(self.conv1(x).relu()).relu()).relu()
        return self.linear(h.flatten(1))


class _CausalConv1d(nn.Conv1d):
    """A ``Conv1d`` that sees only the present and the past: ``(kernel − 1) · dilation`` zeros on the left."""

    def forward(self, input: Tensor) -> Tensor:
        left = (self.kernel_size[0] - 1) * self.dilation[0]
        return super().forward(nn.functional.pad(input, (left, 0)))


class TemporalBlock(nn.Module):
    """Two dilated causal convolutions with ReLU and dropout, plus a residual (Bai, Kolter & Koltun 2018).

    The residual is the identity, or a 1×1 convolution where the channel count changes.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.conv1 = _CausalConv1d(in_channels, out_channels, kernel_size, dilation=dilation)
        self.conv2 = _CausalConv1d(out_channels, out_channels, kernel_size, dilation=dilation)
        self.dropout = nn.Dropout(dropout)
        self.downsample = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.dropout(self.conv1(x).relu())
        h = self.dropout(self.conv2(h).relu())
        res = x if self.downsample is None else self.downsample(x)
        return (h + res).relu()


def receptive_field(model: nn.Module) -> int:
    """How many input steps one output step of ``model``'s causal convolutions sees: ``1 + Σ (k − 1) · d``
    over its ``Conv1d`` layers in sequence (the residual 1×1 convolutions add nothing)."""
    return 1 + sum((m.kernel_size[0] - 1) * m.dilation[0] for m in model.modules() if isinstance(m, nn.Conv1d))


class TCN(nn.Module):
    """A temporal convolutional network: ``levels`` :class:`TemporalBlock` s with dilations 1, 2, 4, …,
    then a linear head on the last time step (which, being causal, has seen the whole series when
    :attr:`receptive_field` covers it).

    Args:
        num_classes, in_channels: outputs and series channels. channels: maps per block.
        levels: blocks. kernel_size: taps per convolution. dropout: inside the blocks.
        pool: ``'last'`` (the last step's features; default) or ``'mean'`` (the mean over time).

    Attributes:
        receptive_field: ``1 + 2 (kernel_size − 1)(2^levels − 1)`` steps (61 for the defaults).

    Example:
        >>> import lamina
        >>> m = TCN()
        >>> m(lamina.randn(2, 1, 40)).shape, m.receptive_field
        ((2, 10), 61)
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, channels: int = 32, levels: int = 4,
                 kernel_size: int = 3, dropout: float = 0.0, pool: str = "last") -> None:
        super().__init__()
        if pool not in ("last", "mean"):
            raise ValueError(f"TCN: pool must be 'last' or 'mean', got {pool!r}")
        if levels < 1 or kernel_size < 2:
            raise ValueError(f"TCN: need levels >= 1 and kernel_size >= 2, got {levels}, {kernel_size}")
        self.pool = pool
        self.blocks = nn.Sequential(*[TemporalBlock(in_channels if i == 0 else channels, channels, kernel_size,
                                                    2 ** i, dropout) for i in range(levels)])
        self.head = nn.Linear(channels, num_classes)
        self.receptive_field = receptive_field(self.blocks)

    def forward(self, x: Tensor) -> Tensor:
        h = self.blocks(x)
        return self.head(h[:, :, -1] if self.pool == "last" else h.mean(-1))


class RecurrentClassifier(nn.Module):
    """A GRU or LSTM over the series and a linear head on the final hidden state(s).

    Args:
        mode: ``'gru'`` or ``'lstm'``. num_classes, in_channels: outputs and series channels (the
            recurrence's ``input_size``). hidden_size, num_layers, bidirectional, dropout: the
            recurrent layer's (the head reads the last layer's final states of both directions).

    Shape:
        ``(N, in_channels, L)`` → ``(N, num_classes)``.
    """

    def __init__(self, mode: str = "gru", num_classes: int = 10, in_channels: int = 1, hidden_size: int = 64,
                 num_layers: int = 1, bidirectional: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        layer = {"gru": nn.GRU, "lstm": nn.LSTM}.get(mode)
        if layer is None:
            raise ValueError(f"RecurrentClassifier: mode must be 'gru' or 'lstm', got {mode!r}")
        self.mode = mode
        self.rnn = layer(in_channels, hidden_size, num_layers=num_layers, batch_first=True,
                         bidirectional=bidirectional, dropout=dropout)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), num_classes)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 3:
            raise ValueError(f"RecurrentClassifier: expected series (N, C, L), got {tuple(x.shape)}")
        _, state = self.rnn(x.transpose(1, 2))
        h = state[0] if self.mode == "lstm" else state
        d = 2 if self.rnn.bidirectional else 1
        last = h[-d:]  # the last layer's final states, (D, N, H)
        return self.head(last[0] if d == 1 else cat([last[0], last[1]], -1))


def cnn1d(**kwargs: Any) -> CNN1d:
    """The MNIST-1D paper's 1-D CNN (:class:`CNN1d`)."""
    return CNN1d(**kwargs)


def tcn(**kwargs: Any) -> TCN:
    """A temporal convolutional network (:class:`TCN`)."""
    return TCN(**kwargs)


def gru(**kwargs: Any) -> RecurrentClassifier:
    """A GRU classifier of series (:class:`RecurrentClassifier`, ``mode='gru'``)."""
    return RecurrentClassifier("gru", **kwargs)


def lstm(**kwargs: Any) -> RecurrentClassifier:
    """An LSTM classifier of series (:class:`RecurrentClassifier`, ``mode='lstm'``)."""
    return RecurrentClassifier("lstm", **kwargs)
