"""Whole sequences of the gated recurrences: one layer direction of an LSTM or a GRU as one primitive.

The fused steps of :mod:`lamina.ops.rnn` still make one graph node per time step, and over a
40-step sequence the engine's bookkeeping (walking the nodes, adding each step's weight
gradients into the running sums) costs more than the steps' arithmetic. Here the ``L`` steps of
one layer direction run inside one ``Function`` on arrays: the input projection of all steps is
one matmul, the backward runs the steps backwards carrying the state's gradient, and the weight
gradients are one matmul each over all steps. The step formulas are those of
:mod:`lamina.ops.rnn` (``_Arrays.gates``, the compiled gate gradients, ``_gru_gates``).

Under ``backward(create_graph=True)`` the sequence is recomputed step by step from its saved
inputs with the differentiable step formulas (as ``LSTMStep`` does for one step), so
higher-order gradients flow as through the per-step composition.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from .. import backend
from ..autograd.function import Context, Function
from ..autograd.grad_mode import is_grad_enabled
from ..autograd.tensor import Tensor
from .common import const
from .join import stack
from .rnn import _Arrays, _check, _gru, _gru_gate_grads, _gru_gates, _gru_vjp, _lstm, _lstm_vjp, _Tensors

__all__ = ["lstm_sequence", "gru_sequence"]

xp = backend.xp


def _order(steps: int, reverse: bool) -> range:
    return range(steps - 1, -1, -1) if reverse else range(steps)


def _previous(y: Any, s0: Any, width: int, reverse: bool) -> Any:
    """The states each step started from ``(L, N, width)`` (its first ``width`` features) in time order."""
    first = s0[None, :, :width]
    return xp.concatenate([y[1:, :, :width], first] if reverse else [first, y[:-1, :, :width]], axis=0)


def _recompute_vjp(fwd: Callable, vjp: Callable, gout: Tensor, x: Tensor, s0: Tensor, reverse: bool,
                   needs: tuple[bool, ...]) -> tuple[Any, ...]:
    """The gradients of a sequence in differentiable operations: the steps recomputed, then their vjps
    backwards (``fwd(x_t, s) → (s′, saved)``, ``vjp(g, x_t, s, saved, needs) → (dx, ds, d_params...)``)."""
    tape, s = [], s0
    for t in _order(x.shape[0], reverse):
        xt = x[t]
        out, saved = fwd(xt, s)
        tape.append((t, xt, s, saved))
        s = out
    dxs: list[Any] = [None] * x.shape[0]
    sums: list[Any] = [None] * (len(needs) - 2)
    carry = None
    for t, xt, s, saved in reversed(tape):
        g = gout[t] if carry is None else gout[t] + carry
        grads = vjp(g, xt, s, saved, (needs[0], True, *needs[2:]))
        dxs[t], carry = grads[0], grads[1]
        sums = [a if d is None else (d if a is None else a + d) for a, d in zip(sums, grads[2:])]
    return (stack(dxs, 0) if needs[0] else None, carry if needs[1] else None, *sums)


class LSTMSequence(Function):
    """``(X, [h₀, c₀], W_ih, W_hh, b, W_hr) → Y``: the joined states ``[h_t, c_t]`` ``(L, N, H_out + H)``
    after every step of :class:`lamina.ops.rnn.LSTMStep` over ``X`` ``(L, N, F)`` (backwards in time
    with ``reverse``; ``Y[t]`` is always the state after reading ``X[t]``)."""

    @staticmethod
    def forward(ctx: Context, x: Any, hc0: Any, w_ih: Any, w_hh: Any, b: Any, w_hr: Any, reverse: bool = False) -> Any:
        steps, batch, feat = x.shape
        n = w_hh.shape[0] // 4
        p = hc0.shape[-1] - n
        xa = (x.reshape(steps * batch, feat) @ w_ih.T).reshape(steps, batch, 4 * n)
        y = xp.empty((steps, batch, p + n), dtype=xa.dtype)
        saves: list[Any] = [None] * steps
        hc = hc0
        for t in _order(steps, reverse):
            a = xa[t] + hc[:, :p] @ w_hh.T  # the sums in LSTMStep's order: (x W_ihᵀ + h W_hhᵀ) + b
            if b is not None:
                a = a + b
            i, f, g, o, c2, tc, hp, slope, act = _Arrays.gates(a, hc[:, p:], n)
            y[t, :, :p] = hp @ w_hr.T if w_hr is not None else hp
            y[t, :, p:] = c2
            saves[t] = (i, f, g, o, tc, hp, slope, act)
            hc = y[t]
        ctx.save_for_backward(x, hc0, w_ih, w_hh, b, w_hr)
        ctx.arrays, ctx.y, ctx.reverse = saves, y, reverse
        return y

    @staticmethod
    def backward(ctx: Context, gout: Tensor) -> Any:
        x, hc0, w_ih, w_hh, b, w_hr = ctx.saved_tensors
        needs, reverse = ctx.needs_input_grad[:6], ctx.reverse
        if is_grad_enabled():  # create_graph: the per-step composition, recomputed from the saved inputs
            return _recompute_vjp(
                lambda xt, s: _lstm(_Tensors, xt, s, w_ih, w_hh, b, w_hr),
                lambda g, xt, s, saved, nd: _lstm_vjp(_Tensors, g, xt, s, w_ih, w_hh, w_hr, saved, nd),
                gout, x, hc0, reverse, needs)
        ga, xa, s0, wi, wh = gout.array, x.array, hc0.array, w_ih.array, w_hh.array
        wr = None if w_hr is None else w_hr.array
        y, saves = ctx.y, ctx.arrays
        steps, batch, feat = xa.shape
        n = wh.shape[0] // 4
        p = s0.shape[-1] - n
        da_all = xp.empty((steps, batch, 4 * n), dtype=y.dtype)
        dh2_all = xp.empty((steps, batch, p), dtype=y.dtype) if wr is not None else None
        order = list(_order(steps, reverse))
        carry = None
        for k in range(steps - 1, -1, -1):
            t = order[k]
            prev = s0 if k == 0 else y[order[k - 1]]
            g = ga[t] if carry is None else ga[t] + carry
            dh2 = g[:, :p]
            if dh2_all is not None:
                dh2_all[t] = dh2
            da, dcf = _Arrays.gate_grads(dh2 @ wr if wr is not None else dh2, g[:, p:], prev[:, p:], saves[t])
            da_all[t] = da
            carry = xp.concatenate([da @ wh, dcf], axis=-1)
        da2 = da_all.reshape(steps * batch, 4 * n)
        dx = (da2 @ wi).reshape(xa.shape) if needs[0] else None
        dw_ih = da2.T @ xa.reshape(steps * batch, feat) if needs[2] else None
        dw_hh = da2.T @ _previous(y, s0, p, reverse).reshape(steps * batch, p) if needs[3] else None
        db = da2.sum(0) if needs[4] else None
        dw_hr = None
        if needs[5]:
            hp_all = xp.stack([s[5] for s in saves]).reshape(steps * batch, n)
            dw_hr = dh2_all.reshape(steps * batch, p).T @ hp_all
        grads = (dx, carry if needs[1] else None, dw_ih, dw_hh, db, dw_hr)
        return tuple(None if gr is None else const(gr) for gr in grads)


class GRUSequence(Function):
    """``(X, h₀, W_ih, W_hh, b_ih, b_hh) → Y``: the states ``h_t`` ``(L, N, H)`` after every step of
    :class:`lamina.ops.rnn.GRUStep` over ``X`` ``(L, N, F)`` (backwards in time with ``reverse``)."""

    @staticmethod
    def forward(ctx: Context, x: Any, h0: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any,
                reverse: bool = False) -> Any:
        steps, batch, feat = x.shape
        m = h0.shape[-1]
        gi_all = (x.reshape(steps * batch, feat) @ w_ih.T).reshape(steps, batch, 3 * m)
        if b_ih is not None:
            gi_all = gi_all + b_ih
        y = xp.empty((steps, batch, m), dtype=gi_all.dtype)
        saves: list[Any] = [None] * steps
        h = h0
        for t in _order(steps, reverse):
            gh = h @ w_hh.T
            if b_hh is not None:
                gh = gh + b_hh
            y[t], saves[t] = _gru_gates(_Arrays, gi_all[t], gh, h)
            h = y[t]
        ctx.save_for_backward(x, h0, w_ih, w_hh, b_ih, b_hh)
        ctx.arrays, ctx.y, ctx.reverse = saves, y, reverse
        return y

    @staticmethod
    def backward(ctx: Context, gout: Tensor) -> Any:
        x, h0, w_ih, w_hh, b_ih, b_hh = ctx.saved_tensors
        needs, reverse = ctx.needs_input_grad[:6], ctx.reverse
        if is_grad_enabled():
            return _recompute_vjp(
                lambda xt, s: _gru(_Tensors, xt, s, w_ih, w_hh, b_ih, b_hh),
                lambda g, xt, s, saved, nd: _gru_vjp(_Tensors, g, xt, s, w_ih, w_hh, saved, nd),
                gout, x, h0, reverse, needs)
        ga, xa, s0, wi, wh = gout.array, x.array, h0.array, w_ih.array, w_hh.array
        y, saves = ctx.y, ctx.arrays
        steps, batch, feat = xa.shape
        m = s0.shape[-1]
        dgi_all = xp.empty((steps, batch, 3 * m), dtype=y.dtype)
        dgh_all = xp.empty_like(dgi_all)
        order = list(_order(steps, reverse))
        carry = None
        for k in range(steps - 1, -1, -1):
            t = order[k]
            prev = s0 if k == 0 else y[order[k - 1]]
            gy = ga[t] if carry is None else ga[t] + carry
            dgi, dgh = _gru_gate_grads(_Arrays, gy, prev, saves[t])
            dgi_all[t], dgh_all[t] = dgi, dgh
            carry = dgh @ wh + gy * saves[t][1]
        dgi2, dgh2 = dgi_all.reshape(steps * batch, 3 * m), dgh_all.reshape(steps * batch, 3 * m)
        dx = (dgi2 @ wi).reshape(xa.shape) if needs[0] else None
        dw_ih = dgi2.T @ xa.reshape(steps * batch, feat) if needs[2] else None
        dw_hh = dgh2.T @ _previous(y, s0, m, reverse).reshape(steps * batch, m) if needs[3] else None
        grads = (dx, carry if needs[1] else None, dw_ih, dw_hh, dgi2.sum(0) if needs[4] else None,
                 dgh2.sum(0) if needs[5] else None)
        return tuple(None if gr is None else const(gr) for gr in grads)


def _check_sequence(op: str, x: Tensor, state: Tensor, w_ih: Tensor, w_hh: Tensor, gates: int, hidden: int,
                    out: int) -> None:
    if x.ndim != 3 or x.shape[0] == 0:
        raise ValueError(f"{op}: expected a non-empty input sequence (L, N, F), got shape {tuple(x.shape)}")
    _check(op, SimpleNamespace(shape=tuple(x.shape[1:]), ndim=2), state, w_ih, w_hh, gates, hidden, out)


def lstm_sequence(x: Tensor, hc0: Tensor, w_ih: Tensor, w_hh: Tensor, b: Tensor | None = None,
                  w_hr: Tensor | None = None, reverse: bool = False) -> Tensor:
    """The LSTM steps of :func:`lamina.ops.rnn.lstm_step` over a whole sequence, as one graph node.

    Args:
        x: the inputs ``(L, N, F)``. hc0: the initial ``[h, c]`` ``(N, H_out + H)``.
        w_ih, w_hh, b, w_hr: as :func:`lamina.ops.rnn.lstm_step`.
        reverse: read the sequence from its last step to its first.

    Returns:
        ``[h_t, c_t]`` after reading ``x[t]``, for every ``t``: ``(L, N, H_out + H)``.

    Example:
        >>> import lamina
        >>> y = lstm_sequence(lamina.zeros(3, 1, 1), lamina.tensor([[0.0, 0.0, 1.0, 1.0]]), lamina.zeros(8, 1),
        ...                   lamina.zeros(8, 2))
        >>> y[:, 0, 2].tolist()  # c halves at every step (σ(0) = 1/2, tanh(0) = 0)
        [0.5, 0.25, 0.125]
    """
    n = w_hh.shape[0] // 4
    _check_sequence("lstm_sequence", x, hc0, w_ih, w_hh, 4, n, hc0.shape[-1] - n)
    return LSTMSequence.apply(x, hc0, w_ih, w_hh, b, w_hr, reverse=bool(reverse))


def gru_sequence(x: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,
                 b_hh: Tensor | None = None, reverse: bool = False) -> Tensor:
    """The GRU steps of :func:`lamina.ops.rnn.gru_step` over a whole sequence, as one graph node:
    ``h_t`` after reading ``x[t]`` ``(L, N, H)`` from ``x`` ``(L, N, F)`` and ``h0`` ``(N, H)``.

    Example:
        >>> import lamina
        >>> y = gru_sequence(lamina.zeros(2, 1, 1), lamina.ones(1, 1), lamina.zeros(3, 1), lamina.zeros(3, 1))
        >>> y[:, 0, 0].tolist()  # z = 1/2, n = 0: h halves at every step
        [0.5, 0.25]
    """
    _check_sequence("gru_sequence", x, h0, w_ih, w_hh, 3, h0.shape[-1], h0.shape[-1])
    return GRUSequence.apply(x, h0, w_ih, w_hh, b_ih, b_hh, reverse=bool(reverse))
