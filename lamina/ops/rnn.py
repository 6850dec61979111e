"""Fused steps of the gated recurrences: one LSTM step and one GRU step, each a single primitive.

An LSTM step composed of lamina's operations is about a dozen graph nodes per time step (two
matmuls, a bias, slices, sigmoids, products), and over a 40-step sequence the bookkeeping of
those nodes, not the arithmetic, dominates a training step. Here one step (its matmuls
included) is one ``Function``. The LSTM's state travels as one tensor ``[h, c]`` so that a step
needs no slicing node.

The formulas are written once (:func:`_lstm`, :func:`_lstm_vjp`, ...) over a small math table
and run on arrays in the forward pass and in the default ``backward()``; under
``backward(create_graph=True)`` the same formulas run on lamina Tensors (recomputing the step
from its saved inputs), so higher-order gradients flow as through any composed operation.
"""

from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd.function import Context, Function
from ..autograd.grad_mode import is_grad_enabled
from ..autograd.tensor import Tensor
from .common import const
from .join import cat
from .kernels import rnn_numba
from .kernels.im2col import use_numba

__all__ = ["lstm_step", "gru_step"]

xp = backend.xp


def _sigmoid(a: Any) -> Any:
    # σ(a) = (1 + tanh(a/2)) / 2: stable for any |a|, and three ufuncs instead of exp, where and divisions
    s = xp.tanh(a * 0.5)
    s += 1.0
    s *= 0.5
    return s


def _gates(M: Any, a: Any, c: Any, n: int) -> tuple[Any, ...]:
    """The LSTM's gate arithmetic from the pre-activations ``a`` and the cell ``c``:
    ``(i, f, g, o, c2, tc, hp, slope, act)`` with ``slope`` the activations' slopes (σ′ = σ(1 − σ),
    tanh′ = 1 − tanh²) side by side and ``act`` the four activations in one array (from the
    array path; None here)."""
    s = M.sigmoid(a)
    i, f, o = s[..., :n], s[..., n:2 * n], s[..., 3 * n:]
    g = M.tanh(a[..., 2 * n:3 * n])
    c2 = f * c + i * g
    tc = M.tanh(c2)
    ds = s * (1.0 - s)
    return i, f, g, o, c2, tc, o * tc, M.cat([ds[..., :2 * n], 1.0 - g * g, ds[..., 3 * n:]]), None


def _gate_grads(M: Any, dhp: Any, dc_out: Any, c: Any, saved: tuple[Any, ...]) -> tuple[Any, Any]:
    """``(da, dc2 f)``: the gradients of the pre-activations and of the previous cell."""
    i, f, g, o, tc, hp, slope, _ = saved
    dc2 = dc_out + dhp * o * (1.0 - tc * tc)
    return M.cat([dc2 * g, dc2 * c, dc2 * i, dhp * tc]) * slope, dc2 * f


def _fast(*arrays: Any) -> bool:
    return (rnn_numba.lstm_gate_grads is not None and use_numba() and arrays[0].dtype in (xp.float32, xp.float64)
            and all(isinstance(a, xp.ndarray) and a.dtype == arrays[0].dtype for a in arrays))


class _Arrays:
    cat = staticmethod(lambda parts: xp.concatenate(parts, axis=-1))
    sigmoid = staticmethod(_sigmoid)
    tanh = staticmethod(xp.tanh)
    t = staticmethod(lambda a: a.T)

    @staticmethod
    def gates(a: Any, c: Any, n: int) -> tuple[Any, ...]:
        # the generic formulas with the four activations (and their slopes) kept in one array each:
        # NumPy's vectorized tanh is faster than a compiled scalar loop here; the backward kernel
        # reads ``act``
        act = _sigmoid(a)
        g = xp.tanh(a[:, 2 * n:3 * n])
        act[:, 2 * n:3 * n] = g
        i, f, o = act[:, :n], act[:, n:2 * n], act[:, 3 * n:]
        c2 = f * c + i * g
        tc = xp.tanh(c2)
        slope = act * (1.0 - act)
        slope[:, 2 * n:3 * n] = 1.0 - g * g
        return i, f, act[:, 2 * n:3 * n], o, c2, tc, o * tc, slope, act

    @staticmethod
    def gate_grads(dhp: Any, dc_out: Any, c: Any, saved: tuple[Any, ...]) -> tuple[Any, Any]:
        tc, slope, act = saved[4], saved[6], saved[7]
        if act is None or not _fast(dhp, dc_out, c, tc, slope):
            return _gate_grads(_Arrays, dhp, dc_out, c, saved)
        da, dcf = xp.empty_like(slope), xp.empty_like(c)
        rnn_numba.lstm_gate_grads(xp.ascontiguousarray(dhp), xp.ascontiguousarray(dc_out), xp.ascontiguousarray(c),
                                  act, tc, slope, da, dcf)
        return da, dcf


class _Tensors:
    cat = staticmethod(lambda parts: cat(parts, -1))
    sigmoid = staticmethod(lambda a: a.sigmoid())
    tanh = staticmethod(lambda a: a.tanh())
    t = staticmethod(lambda a: a.t())
    gates = staticmethod(lambda a, c, n: _gates(_Tensors, a, c, n))
    gate_grads = staticmethod(lambda dhp, dc_out, c, saved: _gate_grads(_Tensors, dhp, dc_out, c, saved))


def _lstm(M: Any, x: Any, hc: Any, w_ih: Any, w_hh: Any, b: Any, w_hr: Any) -> tuple[Any, tuple[Any, ...]]:
    n = w_hh.shape[0] // 4
    p = hc.shape[-1] - n
    h, c = hc[..., :p], hc[..., p:]
    a = x @ M.t(w_ih) + h @ M.t(w_hh)
    if b is not None:
        a = a + b
    i, f, g, o, c2, tc, hp, slope, act = M.gates(a, c, n)
    h2 = hp @ M.t(w_hr) if w_hr is not None else hp
    return M.cat([h2, c2]), (i, f, g, o, tc, hp, slope, act)


def _lstm_vjp(M: Any, gout: Any, x: Any, hc: Any, w_ih: Any, w_hh: Any, w_hr: Any, saved: tuple[Any, ...],
              needs: tuple[bool, ...]) -> tuple[Any, ...]:
    hp = saved[5]
    n = w_hh.shape[0] // 4
    p = hc.shape[-1] - n
    h, c = hc[..., :p], hc[..., p:]
    dh2, dc_out = gout[..., :p], gout[..., p:]
    dhp = dh2 @ w_hr if w_hr is not None else dh2
    da, dcf = M.gate_grads(dhp, dc_out, c, saved)  # through i, f, g, o to their pre-activations
    dx = da @ w_ih if needs[0] else None
    dhc = M.cat([da @ w_hh, dcf]) if needs[1] else None
    dw_ih = M.t(da) @ x if needs[2] else None
    dw_hh = M.t(da) @ h if needs[3] else None
    db = da.sum(0) if needs[4] else None
    dw_hr = M.t(dh2) @ hp if needs[5] else None
    return dx, dhc, dw_ih, dw_hh, db, dw_hr


class LSTMStep(Function):
    """``(x, [h, c], W_ih, W_hh, b, W_hr) → [h′, c′]``: gates ``i, f, g, o`` of ``x W_ihᵀ + h W_hhᵀ + b``,
    ``c′ = σ(f) c + σ(i) tanh(g)``, ``h′ = σ(o) tanh(c′)`` (times ``W_hrᵀ`` when given)."""

    @staticmethod
    def forward(ctx: Context, x: Any, hc: Any, w_ih: Any, w_hh: Any, b: Any, w_hr: Any) -> Any:
        out, saved = _lstm(_Arrays, x, hc, w_ih, w_hh, b, w_hr)
        ctx.save_for_backward(x, hc, w_ih, w_hh, b, w_hr)
        ctx.arrays = saved
        return out

    @staticmethod
    def backward(ctx: Context, gout: Tensor) -> Any:
        x, hc, w_ih, w_hh, b, w_hr = ctx.saved_tensors
        needs = ctx.needs_input_grad
        if is_grad_enabled():  # create_graph: recompute the step in differentiable operations
            _, saved = _lstm(_Tensors, x, hc, w_ih, w_hh, b, w_hr)
            return _lstm_vjp(_Tensors, gout, x, hc, w_ih, w_hh, w_hr, saved, needs)
        arr = [None if t is None else t.array for t in (x, hc, w_ih, w_hh, w_hr)]
        grads = _lstm_vjp(_Arrays, gout.array, *arr, ctx.arrays, needs)
        return tuple(None if gr is None else const(gr) for gr in grads)


def _gru(M: Any, x: Any, h: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any) -> tuple[Any, tuple[Any, ...]]:
    gi, gh = x @ M.t(w_ih), h @ M.t(w_hh)
    if b_ih is not None:
        gi = gi + b_ih
    if b_hh is not None:
        gh = gh + b_hh
    return _gru_gates(M, gi, gh, h)


def _gru_gates(M: Any, gi: Any, gh: Any, h: Any) -> tuple[Any, tuple[Any, ...]]:
    """``(h′, saved)`` from the input and hidden projections ``gi``, ``gh`` (biases included)."""
    m = h.shape[-1]
    rz = M.sigmoid(gi[..., :2 * m] + gh[..., :2 * m])
    r, z = rz[..., :m], rz[..., m:]
    ghn = gh[..., 2 * m:]
    nn = M.tanh(gi[..., 2 * m:] + r * ghn)
    return nn + z * (h - nn), (r, z, nn, ghn)


def _gru_vjp(M: Any, gy: Any, x: Any, h: Any, w_ih: Any, w_hh: Any, saved: tuple[Any, ...],
             needs: tuple[bool, ...]) -> tuple[Any, ...]:
    dgi, dgh = _gru_gate_grads(M, gy, h, saved)
    dx = dgi @ w_ih if needs[0] else None
    dh = dgh @ w_hh + gy * saved[1] if needs[1] else None
    dw_ih = M.t(dgi) @ x if needs[2] else None
    dw_hh = M.t(dgh) @ h if needs[3] else None
    db_ih = dgi.sum(0) if needs[4] else None
    db_hh = dgh.sum(0) if needs[5] else None
    return dx, dh, dw_ih, dw_hh, db_ih, db_hh


def _gru_gate_grads(M: Any, gy: Any, h: Any, saved: tuple[Any, ...]) -> tuple[Any, Any]:
    """``(dgi, dgh)``: the gradients of the input and hidden projections (biases included)."""
    r, z, nn, ghn = saved
    dan = gy * (1.0 - z) * (1.0 - nn * nn)
    drz = M.cat([dan * ghn * r * (1.0 - r), gy * (h - nn) * z * (1.0 - z)])
    return M.cat([drz, dan]), M.cat([drz, dan * r])


class GRUStep(Function):
    """``(x, h, W_ih, W_hh, b_ih, b_hh) → h′``: ``r, z = σ(…)``, ``n = tanh(x W_inᵀ + b_in + r (h W_hnᵀ + b_hn))``,
    ``h′ = (1 − z) n + z h`` (gate order ``r, z, n``, torch's)."""

    @staticmethod
    def forward(ctx: Context, x: Any, h: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any) -> Any:
        out, saved = _gru(_Arrays, x, h, w_ih, w_hh, b_ih, b_hh)
        ctx.save_for_backward(x, h, w_ih, w_hh, b_ih, b_hh)
        ctx.arrays = saved
        return out

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Any:
        x, h, w_ih, w_hh, b_ih, b_hh = ctx.saved_tensors
        needs = ctx.needs_input_grad
        if is_grad_enabled():
            _, saved = _gru(_Tensors, x, h, w_ih, w_hh, b_ih, b_hh)
            return _gru_vjp(_Tensors, gy, x, h, w_ih, w_hh, saved, needs)
        grads = _gru_vjp(_Arrays, gy.array, x.array, h.array, w_ih.array, w_hh.array, ctx.arrays, needs)
        return tuple(None if gr is None else const(gr) for gr in grads)


def _check(op: str, x: Tensor, state: Tensor, w_ih: Tensor, w_hh: Tensor, gates: int, hidden: int, out: int) -> None:
    want = {"x": (x.shape[0], w_ih.shape[1]), "state": (x.shape[0], state.shape[-1]),
            "w_ih": (gates * hidden, x.shape[-1]), "w_hh": (gates * hidden, out)}
    got = {"x": tuple(x.shape), "state": tuple(state.shape), "w_ih": tuple(w_ih.shape), "w_hh": tuple(w_hh.shape)}
    if x.ndim != 2 or state.ndim != 2 or got != want:
        raise ValueError(f"{op}: shapes do not fit (x (N, F), state (N, {'H_out + H' if gates == 4 else 'H'}), "
                         f"w_ih ({gates}H, F), w_hh ({gates}H, H_out)): got {got}")


def lstm_step(x: Tensor, hc: Tensor, w_ih: Tensor, w_hh: Tensor, b: Tensor | None = None,
              w_hr: Tensor | None = None) -> Tensor:
    """One LSTM step (torch's gate order ``i, f, g, o``) on the joined state ``[h, c]``.

    Args:
        x: the input ``(N, F)``. hc: ``[h, c]`` joined on the last dim ``(N, H_out + H)``.
        w_ih, w_hh: ``(4H, F)``, ``(4H, H_out)``. b: ``b_ih + b_hh`` ``(4H,)`` or None.
        w_hr: the projection ``(H_out, H)`` (torch's ``proj_size``) or None (then ``H_out = H``).

    Returns:
        ``[h′, c′]`` ``(N, H_out + H)``.

    Example:
        >>> import lamina
        >>> w = lamina.zeros(8, 1)
        >>> hc = lstm_step(lamina.zeros(1, 1), lamina.tensor([[0.0, 0.0, 1.0, 1.0]]), w, lamina.zeros(8, 2))
        >>> hc[0, 2:].tolist()  # c′ = σ(0) c + σ(0) tanh(0): half the old cell
        [0.5, 0.5]
    """
    n = w_hh.shape[0] // 4
    _check("lstm_step", x, hc, w_ih, w_hh, 4, n, hc.shape[-1] - n)
    return LSTMStep.apply(x, hc, w_ih, w_hh, b, w_hr)


def gru_step(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,
             b_hh: Tensor | None = None) -> Tensor:
    """One GRU step (torch's gate order ``r, z, n``): ``h′`` ``(N, H)``.

    Args:
        x: ``(N, F)``; h: ``(N, H)``; w_ih ``(3H, F)``, w_hh ``(3H, H)``; b_ih, b_hh ``(3H,)`` or None.

    Example:
        >>> import lamina
        >>> gru_step(lamina.zeros(1, 1), lamina.ones(1, 1), lamina.zeros(3, 1), lamina.zeros(3, 1)).item()
        0.5
    """
    _check("gru_step", x, h, w_ih, w_hh, 3, h.shape[-1], h.shape[-1])
    return GRUStep.apply(x, h, w_ih, w_hh, b_ih, b_hh)
