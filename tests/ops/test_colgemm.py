"""The compiled im2col + GEMM kernels (``lamina/ops/kernels/colgemm_numba.py``): each kernel
against a NumPy reference built from the column view, and the convolutions that run on them
against torch, with pieces forced small enough to straddle images and thread chunks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import lamina
from lamina.nn import functional as F
from lamina.ops.conv import explain_conv
from lamina.ops.kernels import colgemm_numba as cg
from lamina.ops.kernels import conv_gemm, conv_plan, threads
from lamina.ops.kernels import im2col as kernels
from tests.helpers import Input, check_grads

pytestmark = pytest.mark.skipif(not (cg.AVAILABLE and cg.gemm_address(np.float32)),
                                reason="colgemm kernels need numba and NumPy's OpenBLAS with 64-bit CBLAS symbols")


def _geometry(rng, nd):
    """Random ``nd``-D geometry lifted to 3-D: kernel, stride, dilation, padded extent, output."""
    k = [1] * (3 - nd) + [int(v) for v in rng.integers(1, 5, nd)]
    s = [1] * (3 - nd) + [int(v) for v in rng.integers(1, 3, nd)]
    d = [1] * (3 - nd) + [int(v) for v in rng.integers(1, 3, nd)]
    o = [1] * (3 - nd) + [int(v) for v in rng.integers(1, 6, nd)]
    e = [(oo - 1) * ss + dd * (kk - 1) + 1 + int(rng.integers(0, 2)) for oo, ss, dd, kk in zip(o, s, d, k)]
    return k, s, d, e, o


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_match_the_column_matrix(dtype):
    """Forward (with and without bias), weight gradient (added into what is there) and input
    gradient (added into what is there) over row ranges that start and end inside images, in
    pieces of every size from 1 row up, equal the products of the whole column matrix, group by
    group; 1-, 2- and 3-D windows, one to three groups."""
    rng = np.random.default_rng(11 if dtype == np.float32 else 12)
    addr = cg.gemm_address(dtype)
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for trial in range(80):
        k, s, d, e, o = _geometry(rng, 1 + trial % 3)
        groups = (1, 1, 2, 3)[trial % 4]
        n, cg_, kg = int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 5))
        c, kout = cg_ * groups, kg * groups
        xpad = rng.standard_normal((n, *e, c)).astype(dtype)
        view = np.array(kernels.im2col_view(xpad, k, s, d, o)).reshape(n * int(np.prod(o)), -1, groups, cg_)
        rows = view.shape[0]
        per_group = [view[:, :, g].reshape(rows, -1) for g in range(groups)]  # (rows, ∏k·C/g) each
        width = per_group[0].shape[1] * groups
        r0 = int(rng.integers(0, rows))
        r1 = int(rng.integers(r0 + 1, rows + 1))
        buf = np.empty((int(rng.integers(1, rows + 2)), width), dtype=dtype)
        geom = (*k, *s, *d, *o, groups)
        wms = [rng.standard_normal((width // groups, kg)).astype(dtype) for _ in range(groups)]
        bias = rng.standard_normal(kout).astype(dtype) if trial % 2 else np.zeros(0, dtype)

        y = np.full((rows, kout), 7.0, dtype=dtype)
        cg.colgemm_fwd(xpad, np.concatenate(wms), y, r0, r1, buf, geom, bias, addr)
        want = np.full((rows, kout), 7.0, dtype=dtype)
        want[r0:r1] = np.concatenate([a[r0:r1] @ wm for a, wm in zip(per_group, wms)], axis=1) + (
            bias if bias.size else 0)
        np.testing.assert_allclose(y, want, **tol)

        gy = rng.standard_normal((rows, kout)).astype(dtype)
        gm = rng.standard_normal((width, kg)).astype(dtype)
        want = gm + np.concatenate([a[r0:r1].T @ gy[r0:r1, g * kg:(g + 1) * kg] for g, a in enumerate(per_group)])
        cg.colgemm_wgrad(xpad, gy, gm, r0, r1, buf, geom, addr)
        np.testing.assert_allclose(gm, want, **tol)

        gpad = rng.standard_normal(xpad.shape).astype(dtype)
        want = gpad.copy()
        gview = np.zeros((rows, view.shape[1], groups, cg_), dtype=dtype)
        for g, wm in enumerate(wms):
            gview[r0:r1, :, g] = (gy[r0:r1, g * kg:(g + 1) * kg] @ wm.T).reshape(r1 - r0, -1, cg_)
        kernels.col2im_cl(gview.reshape(n, *o, *k, c), e, s, d, out=want)
        wt = np.concatenate([np.ascontiguousarray(wm.T) for wm in wms])
        cg.colgemm_gx(gy, wt, gpad, r0, r1, buf, geom, addr)
        np.testing.assert_allclose(gpad, want, **tol)


def test_which_convs_they_take():
    assert cg.ok(np.float32, 2, 1) and cg.ok(np.float64, 1, 1) and cg.ok(np.float32, 3, 1) and cg.ok(np.float32, 2, 4)
    assert not cg.ok(np.float32, 4, 1) and not cg.ok(np.float32, 0, 1) and not cg.ok(np.float32, 2, 0)
    assert not cg.ok(np.int64, 2, 1) and cg.gemm_address(np.int32) == 0 and cg.gemm_address(np.float16) == 0
    old = kernels.use_numba()
    try:
        kernels.use_numba(False)
        assert not cg.ok(np.float32, 2, 1)
    finally:
        kernels.use_numba(old)


@pytest.fixture
def counted(monkeypatch):
    """Small product pieces forced on (any BLAS core), three threads with every chunk shared out,
    and a count of each kernel's calls."""
    old = threads.get_num_threads()
    threads.set_num_threads(3)
    monkeypatch.setattr(threads, "_MIN_BLOCK", 1)
    monkeypatch.setattr(conv_plan, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(threads, "SMALL_GEMM", True)
    monkeypatch.setattr(lamina.runtime, "blas_controlled", lambda: True)
    monkeypatch.setattr(threads, "SMALL_GEMM_MIN_ROWS", 1)
    calls = {}
    for name in ("colgemm_fwd", "colgemm_wgrad", "colgemm_gx"):
        kernel = getattr(cg, name)

        def wrapped(*args, _kernel=kernel, _name=name):
            calls[_name] = calls.get(_name, 0) + 1
            return _kernel(*args)

        monkeypatch.setattr(cg, name, wrapped)
    yield calls, monkeypatch
    threads.set_num_threads(old)


@pytest.mark.parametrize("small", [True, False], ids=["small-products", "column-bytes"])
def test_convs_on_the_kernels_match_torch(counted, small):
    """1-, 2- and 3-D convs with strides, dilations, paddings, groups and biases, float32 and float64, in
    pieces of a few rows (sized for BLAS's small-product kernels, or by their columns' bytes
    where there are none): forward and every gradient as torch's, all three kernels used."""
    calls, monkeypatch = counted
    if not small:
        monkeypatch.setattr(threads, "SMALL_GEMM", False)
        monkeypatch.setattr(conv_plan, "FUSED_MIN_ROWS", 1)
    rng = np.random.default_rng(21 if small else 22)
    done = tries = 0
    while done < 36:
        tries += 1
        assert tries < 500, "too few configurations the kernels take"
        nd = 1 + done % 3
        dtype = (np.float64, np.float32)[done % 3 == 0]
        groups = (1, 1, 2, 3)[done % 4]
        # grouped: 33+ channels per group, so that no window is short enough for the direct kernels
        per_group = int(rng.integers(2, 6)) if groups == 1 else int(rng.integers(33, 36))
        n, c, k = int(rng.integers(1, 6)), groups * per_group, groups * int(rng.integers(1, 5))
        ks = [int(v) for v in rng.integers(2, 5, nd)]
        st = [int(v) for v in rng.integers(1, 3, nd)]
        dl = [int(v) for v in rng.integers(1, 3, nd)]
        pd = [int(v) for v in rng.integers(0, 3, nd)]
        size = [int(v) for v in rng.integers(3, 11 if nd < 3 else 7, nd)]
        if any(s + 2 * p < d * (q - 1) + 1 for s, p, d, q in zip(size, pd, dl, ks)):
            continue
        xs = rng.standard_normal((n, c, *size)).astype(dtype)
        ws = rng.standard_normal((k, c // groups, *ks)).astype(dtype)
        if explain_conv(xs, ws, stride=st, padding=pd, dilation=dl, groups=groups)["forward"] == "direct":
            continue
        # pieces of 1–13 rows, set through the product's size or the columns' bytes
        rows = int(rng.integers(1, 14))
        monkeypatch.setattr(threads, "SMALL_GEMM_WORK", rows * c * int(np.prod(ks)) * k)
        monkeypatch.setattr(conv_plan, "FUSED_PIECE_BYTES", rows * c * int(np.prod(ks)) * xs.itemsize)
        if groups > 1:
            monkeypatch.setattr(threads, "SMALL_GEMM", False)  # grouped products go by column bytes
        bias = rng.standard_normal(k).astype(dtype) if done % 2 else None
        fn, tfn = getattr(F, f"conv{nd}d"), getattr(TF, f"conv{nd}d")
        args = [a for a in (xs, ws, bias) if a is not None]
        lam = [lamina.tensor(a, requires_grad=True) for a in args]
        tor = [torch.tensor(a, requires_grad=True) for a in args]
        y = fn(lam[0], lam[1], lam[2] if bias is not None else None, st, pd, dl, groups)
        ty = tfn(tor[0], tor[1], tor[2] if bias is not None else None, st, pd, dl, groups)
        gy = rng.standard_normal(ty.shape).astype(dtype)
        y.backward(lamina.tensor(gy))
        ty.backward(torch.tensor(gy))
        tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-11)
        np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), **tol)
        for a, b in zip(lam, tor):
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **tol)
        done += 1
        if not small:
            monkeypatch.setattr(threads, "SMALL_GEMM", False)
        elif groups > 1:
            monkeypatch.setattr(threads, "SMALL_GEMM", True)
    assert min(calls.get(name, 0) for name in ("colgemm_fwd", "colgemm_wgrad", "colgemm_gx")) >= 30, calls


def test_gradcheck_on_the_kernels(counted):
    """Float64 gradcheck and gradgradcheck of 1-, 2- and 3-D convs that run on the kernels."""
    calls, monkeypatch = counted
    monkeypatch.setattr(threads, "SMALL_GEMM_WORK", 5 * 3 * 6 * 4)  # 5-row pieces of the 2-D conv
    check_grads(lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2)),
                Input((2, 3, 6, 7)), Input((4, 3, 2, 3)), Input((4,)))
    check_grads(lambda x, w: F.conv1d(x, w, padding=2), Input((3, 2, 7)), Input((3, 2, 4)))
    check_grads(lambda x, w: F.conv3d(x, w, stride=(1, 2, 1), padding=(1, 0, 1)), Input((2, 2, 3, 4, 3)),
                Input((2, 2, 2, 2, 2)))
    assert calls.get("colgemm_fwd", 0) and calls.get("colgemm_wgrad", 0) and calls.get("colgemm_gx", 0), calls


def test_a_channels_last_input_and_the_lenet_layer(counted):
    """The column kernels read a conv output laid out channels-last without a copy; LeNet's c3
    shape (the case they were written for) on the machine's own pieces."""
    calls, monkeypatch = counted
    monkeypatch.setattr(threads, "SMALL_GEMM_WORK", 100**3)
    rng = np.random.default_rng(8)
    xs = rng.standard_normal((8, 6, 14, 14)).astype(np.float32)
    ws = rng.standard_normal((16, 6, 5, 5)).astype(np.float32)
    x = lamina.tensor(np.ascontiguousarray(xs.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2), requires_grad=True)
    assert kernels.is_channels_last(x.detach().numpy())
    w = lamina.tensor(ws, requires_grad=True)
    y = F.conv2d(x, w)
    (y * y).sum().backward()
    tx, tw = torch.tensor(xs, requires_grad=True), torch.tensor(ws, requires_grad=True)
    ty = TF.conv2d(tx, tw)
    (ty * ty).sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-4, atol=1e-2)
    assert calls == {"colgemm_fwd": 3, "colgemm_wgrad": 3, "colgemm_gx": 3}, calls


def test_piece_sizes(monkeypatch):
    """Small-product pieces where BLAS has those kernels; else pieces of about
    ``FUSED_PIECE_BYTES`` of columns (never fewer than ``FUSED_MIN_ROWS`` rows, never more than
    the chunk), and none where BLAS keeps threads of its own or one chunk's large product is
    better split over lamina's threads."""
    monkeypatch.setattr(lamina.runtime, "blas_controlled", lambda: True)
    assert conv_plan.fused_piece(416, 2, 6400, 10**6, 150, 4) == 416
    rows = conv_plan.FUSED_PIECE_BYTES // (576 * 4)
    assert conv_plan.fused_piece(0, 2, 8192, 10**9, 576, 4) == rows
    assert conv_plan.fused_piece(0, 2, 8192, 10**9, 10**6, 4) == conv_plan.FUSED_MIN_ROWS
    assert conv_plan.fused_piece(0, 2, 10, 10**5, 576, 4) == 10
    assert conv_plan.fused_piece(0, 2, 10, 10**5, 0, 4) == 0
    old = threads.get_num_threads()
    threads.set_num_threads(2)
    try:
        assert conv_plan.fused_piece(0, 1, 8192, threads.SPLIT_MIN_WORK, 576, 4) == 0
        assert conv_plan.fused_piece(0, 1, 100, threads.SPLIT_MIN_WORK - 1, 576, 4) == 100
    finally:
        threads.set_num_threads(old)
    monkeypatch.setattr(lamina.runtime, "blas_controlled", lambda: False)
    assert conv_plan.fused_piece(0, 2, 8192, 10**9, 576, 4) == 0


def test_mixed_dtypes_are_promoted_not_reinterpreted(counted):
    """A float64 output gradient reaching a float32 conv (a hook may return one) is not handed
    to the kernels, which call one BLAS routine and copy raw bytes: the gradients come out as
    NumPy's promotion gives them, equal to torch's; the array functions likewise."""
    calls, monkeypatch = counted
    rng = np.random.default_rng(4)
    xs, ws = rng.standard_normal((4, 3, 9, 9)).astype(np.float32), rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    x, w = lamina.tensor(xs, requires_grad=True), lamina.tensor(ws, requires_grad=True)
    y = F.conv2d(x, w, stride=2)
    y.register_hook(lambda g: lamina.tensor(g.numpy().astype(np.float64)))
    gx, gw = lamina.autograd.grad(y.sum(), (x, w))
    tx, tw = torch.tensor(xs, requires_grad=True), torch.tensor(ws, requires_grad=True)
    tgx, tgw = torch.autograd.grad(TF.conv2d(tx, tw, stride=2).sum(), (tx, tw))
    np.testing.assert_allclose(gx.numpy(), tgx.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gw.numpy(), tgw.numpy(), rtol=1e-4, atol=1e-4)
    assert calls.get("colgemm_fwd") and not calls.get("colgemm_gx") and not calls.get("colgemm_wgrad"), calls
    w64 = ws.astype(np.float64)
    y = conv_gemm.conv_forward(xs, w64, (2, 2), (1, 1), (0, 0), (4, 4), 1)
    np.testing.assert_allclose(y, TF.conv2d(torch.tensor(xs, dtype=torch.float64), torch.tensor(w64), stride=2).numpy(),
                               rtol=1e-6, atol=1e-6)


def test_a_too_small_padded_input_is_refused(counted):
    """The weight gradient checks that a padded input handed to it holds every window, as the
    column view does."""
    rng = np.random.default_rng(5)
    xs, gy = rng.standard_normal((2, 3, 9, 9)), rng.standard_normal((2, 4, 4, 4))
    xpad = np.zeros((2, 6, 6, 3))
    with pytest.raises(ValueError, match="overrun the padded input of extent 6"):
        conv_gemm.conv_weight_grad(xs, gy, (3, 3), (2, 2), (1, 1), (0, 0), 1, xpad=xpad)


def test_the_kernels_refuse_mixed_dtypes():
    """The intrinsics type only C-contiguous arrays of one float dtype."""
    from numba.core.errors import TypingError

    geom = (1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 3, 1)
    xpad = np.zeros((1, 1, 1, 4, 2), np.float32)
    with pytest.raises(TypingError):
        cg.colgemm_fwd(xpad, np.zeros((4, 3)), np.zeros((3, 3)), 0, 3, np.zeros((2, 4)), geom, np.zeros(0),
                       cg.gemm_address(np.float64))


def test_the_kernels_check_their_bounds():
    """The copies and vector adds run unchecked, so each kernel checks a piece's windows against
    its array, and its rows and operand shapes, before touching memory."""
    addr = cg.gemm_address(np.float64)
    geom = (1, 1, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4, 1)  # 4 outputs of a 3-tap window: 6 positions needed
    xpad = np.zeros((1, 1, 1, 5, 2))
    buf = np.zeros((2, 6))
    with pytest.raises(ValueError, match="runs past its array"):
        cg.colgemm_fwd(xpad, np.zeros((6, 3)), np.zeros((4, 3)), 0, 4, buf, geom, np.zeros(0), addr)
    with pytest.raises(ValueError, match="runs past its array"):
        cg.colgemm_wgrad(xpad, np.zeros((4, 3)), np.zeros((6, 3)), 0, 4, buf, geom, addr)
    with pytest.raises(ValueError, match="runs past its array"):
        cg.colgemm_gx(np.zeros((4, 3)), np.zeros((3, 6)), xpad, 0, 4, buf, geom, addr)
    xpad = np.zeros((1, 1, 1, 6, 2))
    with pytest.raises(ValueError, match="do not match"):  # rows past the output
        cg.colgemm_fwd(xpad, np.zeros((6, 3)), np.zeros((3, 3)), 0, 4, buf, geom, np.zeros(0), addr)
    with pytest.raises(ValueError, match="do not match"):  # a weight matrix of the wrong width
        cg.colgemm_fwd(xpad, np.zeros((5, 3)), np.zeros((4, 3)), 0, 4, buf, geom, np.zeros(0), addr)
    y = np.zeros((4, 3))
    cg.colgemm_fwd(xpad, np.ones((6, 3)), y, 0, 4, buf, geom, np.zeros(0), addr)  # the right extent: fine
    assert not y.any()
