"""Recurrent layers: ``RNN``, ``LSTM``, ``GRU`` and their cells, as ``torch.nn``'s.

The recurrences are written with lamina's differentiable operations, so backpropagation through
time is the ordinary backward pass over the unrolled graph. One layer direction of an LSTM or GRU
is one primitive over the whole sequence (``lamina.ops.rnn_sequence``, its steps those of
``lamina.ops.rnn``); the cells and the plain RNN run step by step.

Parameter names, shapes, gate order (LSTM ``i, f, g, o``; GRU ``r, z, n``) and initialization
(every parameter ``U(−1/√hidden_size, 1/√hidden_size)``) are torch's, so a torch ``state_dict``
loads. ``PackedSequence`` (variable-length batches through ``pack_padded_sequence``) is not
supported yet: pad the batch and read the outputs at each sequence's last valid step.
"""

from __future__ import annotations

import math
from typing import Any

from ... import backend
from ...autograd.tensor import Tensor
from ...ops.join import cat, stack
from ...ops.rnn import gru_step, lstm_step
from ...ops.rnn_sequence import gru_sequence, lstm_sequence
from .. import functional as F
from .. import init
from ..parameter import Parameter
from .module import Module

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _param(*shape: int, dtype: Any = None) -> Parameter:
    return Parameter(Tensor._wrap(backend.xp.empty(shape, dtype=backend.to_dtype(dtype))))


def _check_size(value: Any, what: str, op: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{op}: {what} must be an integer >= {minimum}, got {value!r}")
    return value


def _bias_sum(b_ih: Tensor | None, b_hh: Tensor | None) -> Tensor | None:
    return None if b_ih is None else b_ih + b_hh


def _whole_sequences(mode: str, x: Tensor) -> bool:
    """Whether a layer direction runs as one sequence primitive (``lamina.ops.rnn_sequence``): the LSTM
    and the GRU on float arrays of the backend; the others step by step."""
    a = x.array
    return mode in ("LSTM", "GRU") and isinstance(a, backend.xp.ndarray) and a.dtype.kind == "f"


def _run_direction(mode: str, xs: Any, state: Tensor, weights: list[Tensor], bias: bool, proj: bool,
                   reverse: bool) -> Any:
    """The states after every step of one layer in one direction (``xs``: the per-step inputs ``(N, F)``;
    for the LSTM ``state`` and the states returned are ``[h, c]`` joined). Given ``xs`` as one
    ``(L, N, F)`` tensor (LSTM and GRU), the states come as one ``(L, N, ·)`` tensor from one node."""
    w_ih, w_hh = weights[0], weights[1]
    b_ih, b_hh = (weights[2], weights[3]) if bias else (None, None)
    if isinstance(xs, Tensor):
        if mode == "LSTM":
            return lstm_sequence(xs, state, w_ih, w_hh, _bias_sum(b_ih, b_hh), weights[-1] if proj else None, reverse)
        return gru_sequence(xs, state, w_ih, w_hh, b_ih, b_hh, reverse)
    steps = range(len(xs) - 1, -1, -1) if reverse else range(len(xs))
    out: list[Any] = [None] * len(xs)
    if mode == "LSTM":
        b, w_hr = _bias_sum(b_ih, b_hh), (weights[-1] if proj else None)
        for t in steps:
            state = out[t] = lstm_step(xs[t], state, w_ih, w_hh, b, w_hr)
        return out
    if mode == "GRU":
        for t in steps:
            state = out[t] = gru_step(xs[t], state, w_ih, w_hh, b_ih, b_hh)
        return out
    b, w_ih_t, w_hh_t = _bias_sum(b_ih, b_hh), w_ih.t(), w_hh.t()
    for t in steps:
        g = xs[t] @ w_ih_t + state @ w_hh_t
        g = g + b if b is not None else g
        state = out[t] = g.tanh() if mode == "RNN_TANH" else g.relu()
    return out


class RNNBase(Module):
    """The multi-layer, optionally bidirectional recurrence shared by ``RNN``, ``LSTM`` and ``GRU``.

    Args:
        mode: ``'RNN_TANH'``, ``'RNN_RELU'``, ``'LSTM'`` or ``'GRU'``.
        input_size: features of the input ``H_in``.
        hidden_size: features of the hidden state ``H``.
        num_layers: stacked recurrent layers (default 1).
        bias: learn ``b_ih`` and ``b_hh`` (default True).
        batch_first: input and output ``(N, L, ·)`` instead of ``(L, N, ·)`` (the states keep ``(D·layers, N, ·)``).
        dropout: dropout probability on the outputs of every layer but the last (training mode only).
        bidirectional: a second recurrence reads the sequence backwards; outputs are concatenated.
        proj_size: LSTM only: project the hidden state to ``proj_size`` features (``weight_hr``).
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        name = type(self).__name__
        if mode not in _GATES:
            raise ValueError(f"{name}: unknown mode {mode!r}; known: {', '.join(_GATES)}")
        _check_size(input_size, "input_size", name)
        _check_size(hidden_size, "hidden_size", name)
        _check_size(num_layers, "num_layers", name)
        _check_size(proj_size, "proj_size", name, minimum=0)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
            raise ValueError(f"{name}: dropout should be a number in [0, 1], got {dropout!r}")
        if proj_size and mode != "LSTM":
            raise ValueError(f"{name}: proj_size is an LSTM option, got proj_size={proj_size} for mode {mode}")
        if proj_size >= hidden_size:
            raise ValueError(f"{name}: proj_size has to be smaller than hidden_size, got {proj_size} >= {hidden_size}")
        if device is not None:
            backend.to_device(device)
        self.mode, self.input_size, self.hidden_size, self.num_layers = mode, input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size = bidirectional, proj_size
        gate, out = _GATES[mode] * hidden_size, proj_size or hidden_size
        self._flat_weights_names: list[str] = []
        for layer in range(num_layers):
            for suffix in ("", "_reverse")[:2 if bidirectional else 1]:
                fan = input_size if layer == 0 else out * (2 if bidirectional else 1)
                shapes = [("weight_ih", (gate, fan)), ("weight_hh", (gate, out))]
                if bias:
                    shapes += [("bias_ih", (gate,)), ("bias_hh", (gate,))]
                if proj_size:
                    shapes.append(("weight_hr", (proj_size, hidden_size)))
                for base, shape in shapes:
                    key = f"{base}_l{layer}{suffix}"
                    setattr(self, key, _param(*shape, dtype=dtype))
                    self._flat_weights_names.append(key)
        self.reset_parameters()  # always drawn: init_model's deferral knows only weight/bias layers

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for key in self._flat_weights_names:
            init.uniform_(getattr(self, key), -stdv, stdv)

    @property
    def all_weights(self) -> list[list[Parameter]]:
        """The parameters of each layer and direction, in torch's order."""
        per = len(self._flat_weights_names) // (self.num_layers * (2 if self.bidirectional else 1))
        names = self._flat_weights_names
        return [[getattr(self, k) for k in names[i:i + per]] for i in range(0, len(names), per)]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        for key, default in (("num_layers", 1), ("bias", True), ("batch_first", False), ("dropout", 0.0),
                             ("bidirectional", False), ("proj_size", 0)):
            if getattr(self, key) != default:
                s += f", {key}={getattr(self, key)}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        return s

    def _check_state(self, state: Tensor, shape: tuple[int, ...], what: str) -> None:
        if tuple(state.shape) != shape:
            raise ValueError(f"{type(self).__name__}: expected {what} of shape {shape}, got {tuple(state.shape)}")

    def forward(self, input: Tensor, hx: Any = None) -> tuple[Tensor, Any]:
        """Run the recurrence over ``input``.

        Shape:
            input ``(L, N, H_in)`` (``(N, L, H_in)`` with ``batch_first``) or unbatched ``(L, H_in)``;
            ``hx``: ``h_0`` ``(D·num_layers, N, H_out)`` (for LSTM the pair ``(h_0, c_0)``, ``c_0``
            ``(D·num_layers, N, H)``), zeros when ``None``; ``D = 2`` if bidirectional else 1 and
            ``H_out = proj_size or hidden_size``.

        Returns:
            ``(output, h_n)`` (LSTM: ``(output, (h_n, c_n))``); ``output`` ``(L, N, D·H_out)`` (batch
            first as the input), ``h_n``/``c_n`` the final states, shaped as ``h_0``/``c_0``.
        """
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__} "
                            "(PackedSequence is not supported yet: pad the batch)")
        if input.ndim not in (2, 3) or input.shape[-1] != self.input_size:
            raise ValueError(f"{name}: expected input of shape (L, N, {self.input_size}) "
                             f"{'(batch_first: (N, L, ·)) ' if self.batch_first else ''}or (L, {self.input_size}), "
                             f"got {tuple(input.shape)}")
        batched = input.ndim == 3
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        steps, n = x.shape[0], x.shape[1]
        if steps == 0:
            raise ValueError(f"{name}: the input sequence is empty (length 0, input shape {tuple(input.shape)})")
        d = 2 if self.bidirectional else 1
        out_size = self.proj_size or self.hidden_size
        lstm = self.mode == "LSTM"
        h0 = c0 = None
        if hx is not None:
            if lstm:
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise ValueError(f"{name}: hx must be the pair (h_0, c_0)")
                h0, c0 = hx
            else:
                h0 = hx
            lead = (d * self.num_layers, n) if batched else (d * self.num_layers,)
            self._check_state(h0, (*lead, out_size), "h_0")
            if lstm:
                self._check_state(c0, (*lead, self.hidden_size), "c_0")
            if not batched:
                h0, c0 = h0.unsqueeze(1), (c0.unsqueeze(1) if lstm else None)
        h_size = out_size + (self.hidden_size if lstm else 0)  # the LSTM carries [h, c] joined
        h_last: list[Tensor] = []
        # the layers pass either (L, N, ·) tensors to the whole-sequence primitives, or lists of per-step
        # tensors: slicing one (L, N, ·) tensor per step would make the backward pass add L gradients of
        # the whole tensor
        seq = _whole_sequences(self.mode, x)
        xs: Any = x if seq else list(x.unbind(0))
        for layer in range(self.num_layers):
            last = layer == self.num_layers - 1
            outs = []
            for k in range(d):
                idx = layer * d + k
                if h0 is None:
                    state = Tensor._wrap(backend.xp.zeros((n, h_size), dtype=x.array.dtype))
                else:
                    state = cat([h0[idx], c0[idx]], -1) if lstm else h0[idx]
                states = _run_direction(self.mode, xs, state, self.all_weights[idx], self.bias, bool(self.proj_size),
                                        reverse=k == 1)
                h_last.append(states[-1 if k == 0 else 0])
                outs.append(states)
            if last:
                seqs = [o if seq else stack(o, 0) for o in outs]
                if lstm:
                    seqs = [q[..., :out_size] for q in seqs]
                x = seqs[0] if d == 1 else cat(seqs, -1)
                break
            if seq:
                outs = [o[..., :out_size] for o in outs] if lstm else outs
                xs = outs[0] if d == 1 else cat(outs, -1)
                if self.dropout and self.training:
                    xs = F.dropout(xs, self.dropout, True)
                continue
            if lstm:
                outs = [[q[..., :out_size] for q in o] for o in outs]
            xs = outs[0] if d == 1 else [cat([a, b], -1) for a, b in zip(*outs)]
            if self.dropout and self.training:
                xs = [F.dropout(v, self.dropout, True) for v in xs]
        hn_all = stack(h_last, 0)
        h_n = hn_all[..., :out_size] if lstm else hn_all
        c_n = hn_all[..., out_size:] if lstm else None
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        if not batched:
            x, h_n = x.squeeze(1), h_n.squeeze(1)
            c_n = c_n.squeeze(1) if lstm else None
        return x, ((h_n, c_n) if lstm else h_n)


class RNN(RNNBase):
    """Elman RNN ``h_t = tanh(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh)`` (``torch.nn.RNN``).

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional: see :class:`RNNBase`.
        nonlinearity: ``'tanh'`` (default) or ``'relu'``.

    Example:
        >>> import lamina
        >>> rnn = lamina.nn.RNN(10, 20, num_layers=2)
        >>> out, h = rnn(lamina.randn(5, 3, 10))
        >>> out.shape, h.shape
        ((5, 3, 20), (2, 3, 20))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device: Any = None, dtype: Any = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r} (expected 'tanh' or 'relu')")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size, num_layers,
                         bias, batch_first, dropout, bidirectional, 0, device, dtype)


class LSTM(RNNBase):
    """Long short-term memory (``torch.nn.LSTM``): gates ``i, f, g, o`` from ``x_t`` and ``h_{t−1}``,
    ``c_t = f ⊙ c_{t−1} + i ⊙ g``, ``h_t = o ⊙ tanh(c_t)`` (times ``W_hrᵀ`` with ``proj_size``).

    Example:
        >>> import lamina
        >>> lstm = lamina.nn.LSTM(10, 20, batch_first=True, bidirectional=True)
        >>> out, (h, c) = lstm(lamina.randn(3, 5, 10))
        >>> out.shape, h.shape, c.shape
        ((3, 5, 40), (2, 3, 20), (2, 3, 20))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, device, dtype)


class GRU(RNNBase):
    """Gated recurrent unit (``torch.nn.GRU``): ``r, z = σ(…)``, ``n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))``,
    ``h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}``.

    Example:
        >>> import lamina
        >>> gru = lamina.nn.GRU(10, 20)
        >>> out, h = gru(lamina.randn(5, 3, 10))
        >>> out.shape, h.shape
        ((5, 3, 20), (1, 3, 20))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, 0,
                         device, dtype)


class RNNCellBase(Module):
    """One step of a recurrence, with torch's parameter names ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``."""

    _mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        name = type(self).__name__
        _check_size(input_size, "input_size", name)
        _check_size(hidden_size, "hidden_size", name)
        if device is not None:
            backend.to_device(device)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        gate = _GATES[self._mode] * hidden_size
        self.weight_ih = _param(gate, input_size, dtype=dtype)
        self.weight_hh = _param(gate, hidden_size, dtype=dtype)
        if bias:
            self.bias_ih, self.bias_hh = _param(gate, dtype=dtype), _param(gate, dtype=dtype)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -stdv, stdv)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")
        return s + (", nonlinearity='relu'" if self._mode == "RNN_RELU" else "")

    def _run(self, input: Tensor, hx: Tensor | None, cx: Tensor | None) -> tuple[Tensor, Tensor | None, bool]:
        name = type(self).__name__
        if not isinstance(input, Tensor) or input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            got = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
            raise ValueError(f"{name}: expected input of shape (N, {self.input_size}) or ({self.input_size},), "
                             f"got {got}")
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        shape = (x.shape[0], self.hidden_size)
        states = []
        for s, what in ((hx, "hx"), (cx, "cx")):
            if s is not None and tuple(s.shape) != (shape if batched else shape[1:]):
                raise ValueError(f"{name}: expected {what} of shape {shape if batched else shape[1:]}, "
                                 f"got {tuple(s.shape)}")
            zeros = Tensor._wrap(backend.xp.zeros(shape, dtype=x.array.dtype))
            states.append(zeros if s is None else (s if batched else s.unsqueeze(0)))
        weights = [self.weight_ih, self.weight_hh] + ([self.bias_ih, self.bias_hh] if self.bias else [])
        if self._mode == "LSTM":
            hc = _run_direction("LSTM", [x], cat(states, -1), weights, self.bias, False, False)[0]
            return hc[..., :self.hidden_size], hc[..., self.hidden_size:], batched
        return _run_direction(self._mode, [x], states[0], weights, self.bias, False, False)[0], None, batched


class RNNCell(RNNCellBase):
    """``h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)`` (``torch.nn.RNNCell``; ``nonlinearity='relu'`` for ReLU).

    Example:
        >>> import lamina
        >>> lamina.nn.RNNCell(4, 6)(lamina.randn(3, 4)).shape
        (3, 6)
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device: Any = None, dtype: Any = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: unknown nonlinearity {nonlinearity!r} (expected 'tanh' or 'relu')")
        self.nonlinearity = nonlinearity
        self._mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        h, _, batched = self._run(input, hx, None)
        return h if batched else h.squeeze(0)


class LSTMCell(RNNCellBase):
    """One LSTM step (``torch.nn.LSTMCell``): ``(h', c') = cell(x, (h, c))``.

    Example:
        >>> import lamina
        >>> h, c = lamina.nn.LSTMCell(4, 6)(lamina.randn(3, 4))
        >>> h.shape, c.shape
        ((3, 6), (3, 6))
    """

    _mode = "LSTM"

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        h0, c0 = (None, None) if hx is None else hx
        h, c, batched = self._run(input, h0, c0)
        assert c is not None
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    """One GRU step (``torch.nn.GRUCell``).

    Example:
        >>> import lamina
        >>> lamina.nn.GRUCell(4, 6)(lamina.randn(3, 4)).shape
        (3, 6)
    """

    _mode = "GRU"

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        h, _, batched = self._run(input, hx, None)
        return h if batched else h.squeeze(0)
