"""lamina's own threads (``lamina/ops/kernels/threads.py``): split products equal NumPy's,
chunked kernels give the same result on any number of threads, and the API checks its input."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import lamina
from lamina.nn import functional as F
from lamina.ops.conv import explain_conv
from lamina.ops.kernels import conv_gemm, conv_plan, threads


@pytest.fixture
def many_threads(monkeypatch):
    """Three threads (more than the test machine's cores, so that blocks are uneven) and every
    product split, whatever its size; the old setting comes back afterwards."""
    old = threads.get_num_threads()
    threads.set_num_threads(3)
    monkeypatch.setattr(threads, "SPLIT_MIN_WORK", 0)
    monkeypatch.setattr(threads, "_MIN_BLOCK", 1)
    monkeypatch.setattr(conv_plan, "PARALLEL_MIN_BYTES", 0)  # im2col chunks shared out too
    yield 3
    threads.set_num_threads(old)


@pytest.mark.parametrize("sa,sb", [
    ((7, 5), (5, 4)),            # by rows
    ((2, 5), (5, 9)),            # by columns (too few rows)
    ((4, 6, 5), (5, 3)),         # by the batch dim, b broadcast
    ((6, 5), (4, 5, 3)),         # by the batch dim, a broadcast
    ((1, 6, 5), (4, 5, 3)),      # a batch of one, broadcast
    ((2, 3, 6, 5), (2, 3, 5, 2)),  # two batch dims
    ((2, 1, 1), (2, 1, 1)),      # nothing to split
])
def test_split_matmul_equals_numpy(many_threads, sa, sb):
    rng = np.random.default_rng(len(sa) + sa[-1])
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    np.testing.assert_allclose(threads.matmul(a, b), np.matmul(a, b), rtol=1e-13, atol=1e-13)
    out = np.full(np.matmul(a, b).shape, np.nan)
    assert threads.matmul(a, b, out=out) is out
    np.testing.assert_allclose(out, np.matmul(a, b), rtol=1e-13, atol=1e-13)


def test_split_matmul_views_and_dtypes(many_threads):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((9, 12))[:, ::2]  # non-contiguous rows
    b = rng.standard_normal((6, 8)).T.copy().T  # Fortran order
    np.testing.assert_allclose(threads.matmul(a, b), a @ b, rtol=1e-13)
    ai = rng.integers(-5, 5, (8, 3))
    bi = rng.integers(-5, 5, (3, 7))
    assert np.array_equal(threads.matmul(ai, bi), ai @ bi) and threads.matmul(ai, bi).dtype == (ai @ bi).dtype
    a32 = a.astype(np.float32)
    assert threads.matmul(a32, b).dtype == np.float64  # NumPy's promotion
    assert threads.matmul(np.ones(3), np.ones((3, 2))).shape == (2,)  # 1-D operands: NumPy's path
    with pytest.raises(ValueError):
        threads.matmul(np.ones((2, 3)), np.ones((4, 2)))


def test_run_parts_runs_every_part_once_and_raises_the_error(many_threads):
    seen = []
    lock = threading.Lock()

    def part(j):
        with lock:
            seen.append(j)

    threads.run_parts(part, 7)
    assert sorted(seen) == list(range(7))

    def bad(j):
        if j == 2:
            raise KeyError("part 2")

    with pytest.raises(KeyError, match="part 2"):
        threads.run_parts(bad, 4)
    threads.run_parts(part, 0)  # nothing to do


def test_nested_parts_run_inline_without_deadlock(many_threads):
    """A part that hands out work again (a split product inside a chunk) runs it in its own
    thread: with every pool thread busy, waiting on the pool would never end."""
    results = {}

    def inner(j):
        a = np.full((4, 3), float(j))
        results[j] = threads.matmul(a, np.ones((3, 5)))

    done = threading.Event()

    def run():
        threads.run_parts(inner, 6)
        done.set()

    t = threading.Thread(target=run)
    t.start()
    t.join(timeout=30)
    assert done.is_set(), "nested run_parts deadlocked"
    for j in range(6):
        np.testing.assert_array_equal(results[j], np.full((4, 5), 3.0 * j))


def test_set_num_threads_checks_its_input():
    old = threads.get_num_threads()
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(ValueError, match="set_num_threads: expected a positive integer"):
            lamina.set_num_threads(bad)
    assert lamina.get_num_threads() == old
    lamina.set_num_threads(1)
    try:
        assert lamina.get_num_threads() == 1
        a = np.random.default_rng(0).standard_normal((300, 200))
        np.testing.assert_array_equal(threads.matmul(a, a.T), np.matmul(a, a.T))
    finally:
        lamina.set_num_threads(old)


def test_default_threads_from_the_environment(monkeypatch):
    monkeypatch.setenv("LAMINA_NUM_THREADS", "3")
    assert threads._default_threads() == 3
    for bad in ("0", "x", "-2"):
        monkeypatch.setenv("LAMINA_NUM_THREADS", bad)
        with pytest.raises(ValueError, match="LAMINA_NUM_THREADS"):
            threads._default_threads()
    monkeypatch.delenv("LAMINA_NUM_THREADS")
    assert threads._default_threads() >= 1


@pytest.mark.parametrize("chunk_bytes", [1, 16 * 2**20])
def test_split_products_in_a_network_match_torch(many_threads, chunk_bytes, monkeypatch, path):
    """Linear layers, im2col convs (their column chunks shared among three threads, one image
    per chunk or one chunk per thread) and 1×1 convs with every product split: forward and
    gradients as torch's."""
    monkeypatch.setattr(conv_plan, "COLUMN_CHUNK_BYTES", chunk_bytes)
    rng = np.random.default_rng(7)
    xs = rng.standard_normal((7, 8, 7, 7))
    w1 = rng.standard_normal((16, 8, 3, 3)) / 5  # stride 2: the im2col path
    w2 = rng.standard_normal((12, 8, 3, 3)) / 5  # two groups, 72-long windows: grouped im2col
    w3 = rng.standard_normal((5, 12, 1, 1)) / 5  # 1×1: a plain product
    lw = rng.standard_normal((3, 5 * 16)) / 5
    assert explain_conv(np.zeros((7, 16, 4, 4)), w2, groups=2)["forward"] != "direct"
    shared = []
    run_parts = threads.run_parts
    monkeypatch.setattr(threads, "run_parts", lambda fn, parts: (shared.append(parts), run_parts(fn, parts)))
    tensors = {}
    for lib, mk in (("lamina", lambda a: lamina.tensor(a, requires_grad=True)),
                    ("torch", lambda a: torch.tensor(a, requires_grad=True))):
        fn = F if lib == "lamina" else TF
        x, a, a2, b, c = (mk(v) for v in (xs, w1, w2, w3, lw))
        h = fn.conv2d(fn.conv2d(fn.conv2d(x, a, stride=2, padding=1), a2, padding=1, groups=2, dilation=1), b)
        out = fn.linear(h.reshape(7, -1), c)
        (out * out).sum().backward()
        tensors[lib] = [out.detach().numpy()] + [v.grad.numpy() for v in (x, a, a2, b, c)]
    assert max(shared) == 3  # the work went to three threads
    for got, want in zip(tensors["lamina"], tensors["torch"]):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("padding", [0, 2])
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_im2col_chunks_copy_their_images_in(many_threads, monkeypatch, padding, layout, path):
    """Each column chunk copies its own images into the padded channels-last input (an unzeroed
    buffer where there is no padding): the forward and all gradients (the weight gradient reads
    that buffer) as torch's, with the chunks on three threads, one image each."""
    monkeypatch.setattr(conv_plan, "COLUMN_CHUNK_BYTES", 1)
    monkeypatch.setattr(conv_plan, "PARALLEL_MIN_BYTES", 1)
    rng = np.random.default_rng(padding)
    xs = rng.standard_normal((5, 6, 9, 8))
    if layout == "channels_last":
        xs = np.ascontiguousarray(xs.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    ws = rng.standard_normal((7, 6, 5, 3)) / 5
    assert explain_conv(xs, ws, padding=padding)["forward"] in ("im2col", "colgemm")
    shared = []
    run_parts = threads.run_parts
    monkeypatch.setattr(threads, "run_parts", lambda fn, parts: (shared.append(parts), run_parts(fn, parts)))
    x, w = lamina.tensor(xs, requires_grad=True), lamina.tensor(ws, requires_grad=True)
    y = F.conv2d(x, w, padding=padding)
    (y * y).sum().backward()
    assert max(shared) == 3
    tx, tw = torch.tensor(xs, requires_grad=True), torch.tensor(ws, requires_grad=True)
    ty = TF.conv2d(tx, tw, padding=padding)
    (ty * ty).sum().backward()
    for got, want in ((y, ty), (x.grad, tx.grad), (w.grad, tw.grad)):
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("m,piece", [(10, 3), (12, 4), (5, 7), (7, 0), (0, 3)])
def test_matmul_in_pieces_equals_numpy(m, piece):
    """Products made as a batch of ``piece``-row products plus the rows left over (and the
    transposed product as a sum of pieces) equal NumPy's."""
    rng = np.random.default_rng(m + piece)
    a, b, c = rng.standard_normal((m, 6)), rng.standard_normal((6, 5)), rng.standard_normal((m, 5))
    out = np.full((m, 5), np.nan)
    np.testing.assert_allclose(threads.matmul_pieces(a, b, out, piece), a @ b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(threads.matmul_t_pieces(a, c, piece), a.T @ c, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("small", [False, True])
def test_im2col_products_in_small_pieces_match_torch(many_threads, monkeypatch, small, path):
    """The im2col conv's three products made in pieces for BLAS's small-product kernels (forced
    here with pieces of 7 rows, 4 images of 5×4 outputs not a multiple of them) or whole: forward
    and all gradients as torch's."""
    monkeypatch.setattr(threads, "SMALL_GEMM", small)
    monkeypatch.setattr(threads, "SMALL_GEMM_WORK", 7 * 6 * 25 * 5)
    monkeypatch.setattr(threads, "SMALL_GEMM_MIN_ROWS", 1)
    assert threads.small_gemm_rows(6 * 25, 5) == (7 if small else 0)
    rng = np.random.default_rng(3)
    xs, ws, bs = rng.standard_normal((4, 6, 9, 8)), rng.standard_normal((5, 6, 5, 5)) / 5, rng.standard_normal(5)
    assert explain_conv(xs, ws)["forward"] in ("im2col", "colgemm")
    x, w, b = (lamina.tensor(a, requires_grad=True) for a in (xs, ws, bs))
    y = F.conv2d(x, w, b)
    (y * y).sum().backward()
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (xs, ws, bs))
    ty = TF.conv2d(tx, tw, tb)
    (ty * ty).sum().backward()
    for got, want in ((y, ty), (x.grad, tx.grad), (w.grad, tw.grad), (b.grad, tb.grad)):
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_small_pieces_leave_a_one_chunk_product_to_the_threads(many_threads, monkeypatch):
    """A single image's large product (one column chunk) is split over the threads as before,
    not made as a batch of small pieces on one thread; an empty product has no pieces."""
    monkeypatch.setattr(threads, "SMALL_GEMM", True)
    assert threads.small_gemm_rows(0, 16) == threads.small_gemm_rows(150, 0) == 0
    rng = np.random.default_rng(5)
    x = lamina.tensor(rng.standard_normal((1, 8, 96, 96)).astype(np.float32), requires_grad=True)
    w = lamina.tensor(rng.standard_normal((16, 8, 5, 5)).astype(np.float32), requires_grad=True)
    assert threads.small_gemm_rows(8 * 25, 16) > 0 and 92 * 92 * 8 * 25 * 16 >= threads.SPLIT_MIN_WORK
    shared = []
    run_parts = threads.run_parts
    monkeypatch.setattr(threads, "run_parts", lambda fn, parts: (shared.append(parts), run_parts(fn, parts)))
    F.conv2d(x, w).sum().backward()
    assert max(shared) == 3, shared


def test_import_with_a_non_utf8_path_mapped():
    """Finding OpenBLAS (threadpoolctl's scan of the loaded libraries) survives mapped paths
    that are not UTF-8."""
    import subprocess
    import sys

    code = ("import mmap, os, tempfile\n"
            "d = os.path.join(tempfile.mkdtemp().encode(), b'\\xff')\n"
            "os.mkdir(d)\n"
            "f = open(os.path.join(d, b'data.bin'), 'w+b'); f.write(b'x' * 4096); f.flush()\n"
            "m = mmap.mmap(f.fileno(), 4096)\n"
            "import lamina\n"
            "from lamina.ops.kernels import threads\n"
            "print(threads.blas_controlled())\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() in ("True", "False")


def test_small_gemm_setting_from_the_environment():
    """The small-product pieces are off unless ``LAMINA_SMALL_GEMM=1``: no core name decides."""
    import subprocess
    import sys

    for value in ("", "0", "1"):
        out = subprocess.run([sys.executable, "-c", "from lamina.ops.kernels import threads; print(threads.SMALL_GEMM)"],
                             env=dict(os.environ, LAMINA_SMALL_GEMM=value), check=True, capture_output=True,
                             text=True)
        assert out.stdout.strip() == ("True" if value == "1" else "False")


def test_forked_child_gets_a_fresh_pool():
    """After ``fork`` the parent's pool threads do not exist in the child: the child makes a
    new pool instead of waiting on dead threads."""
    import multiprocessing as mp

    if "fork" not in mp.get_all_start_methods():
        pytest.skip("no fork on this platform")
    if threads.get_num_threads() < 2:
        pytest.skip("one thread: no pool")
    threads.run_parts(lambda j: None, 2)  # the parent's pool exists
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_parts, args=(q,))
    p.start()
    p.join(timeout=60)
    assert p.exitcode == 0 and q.get(timeout=5) == [0, 1]


def _child_parts(q):
    seen = []
    threads.run_parts(seen.append, 2)
    q.put(sorted(seen))


def test_keep_blas_threads_leaves_blas_alone():
    """With ``LAMINA_KEEP_BLAS_THREADS=1`` lamina neither touches BLAS nor splits products or
    chunks."""
    import os
    import subprocess
    import sys

    code = ("import numpy as np\nimport lamina\nfrom lamina.ops.kernels import threads\n"
            "print(threads.blas_controlled() or threads.parallel_slots(2) > 1)")
    for value, want in (("1", "False"), ("0", str(bool(lamina.runtime.blas_info())))):
        out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, LAMINA_KEEP_BLAS_THREADS=value),
                             check=True, capture_output=True, text=True)
        assert out.stdout.strip() == want


_RUN_PARTS = threads.run_parts  # the real one, whatever a test patches


def _hold_pool():
    """Start a run_parts call in another thread whose second part blocks: the pool stays taken
    until the returned event is set. Returns (event, thread)."""
    release = threading.Event()
    started = threading.Event()

    def part(j):
        if j == 1:
            started.set()
            release.wait(30)

    t = threading.Thread(target=_RUN_PARTS, args=(part, 2))
    t.start()
    assert started.wait(30)
    return release, t


def test_parts_run_in_the_caller_while_another_call_holds_the_pool(many_threads):
    release, t = _hold_pool()
    try:
        assert threads.busy() and threads.parallel_slots(3) == 1
        where = []
        threads.run_parts(lambda j: where.append((j, threading.get_ident())), 3)
        assert sorted(j for j, _ in where) == [0, 1, 2]
        assert {ident for _, ident in where} == {threading.get_ident()}
        # a conv sized for several threads before the pool was taken still gets every part
        rng = np.random.default_rng(5)
        xs, ws = rng.standard_normal((6, 8, 9, 9)), rng.standard_normal((16, 8, 3, 3))
        gys = rng.standard_normal((6, 16, 5, 5))
        got = conv_gemm.conv_weight_grad(xs, gys, (3, 3), (2, 2), (1, 1), (1, 1), 1)
        tx = torch.tensor(xs, requires_grad=True)
        tw = torch.tensor(ws, requires_grad=True)
        TF.conv2d(tx, tw, stride=2, padding=1).backward(torch.tensor(gys))
        np.testing.assert_allclose(got, tw.grad.numpy(), rtol=1e-10, atol=1e-12)
    finally:
        release.set()
        t.join(30)
    assert not threads.busy()


def test_weight_grad_sized_for_two_parts_when_the_pool_is_taken_meanwhile(many_threads, monkeypatch):
    """The part count is fixed once: a call that sized its partial sums for 3 parts and then
    finds the pool taken runs those 3 parts itself (an IndexError before)."""
    real = threads.run_parts
    holder = {}

    def late_take(fn, parts):
        holder["release"], holder["t"] = _hold_pool()
        try:
            real(fn, parts)
        finally:
            holder["release"].set()
            holder["t"].join(30)

    monkeypatch.setattr(threads, "run_parts", late_take)
    rng = np.random.default_rng(6)
    xs, gys = rng.standard_normal((7, 8, 9, 9)), rng.standard_normal((7, 16, 5, 5))
    got = conv_gemm.conv_weight_grad(xs, gys, (3, 3), (2, 2), (1, 1), (1, 1), 1)
    assert "t" in holder  # the pool was taken between sizing and running
    tx, tw = torch.tensor(xs), torch.zeros((16, 8, 3, 3), dtype=torch.float64, requires_grad=True)
    TF.conv2d(tx, tw, stride=2, padding=1).backward(torch.tensor(gys))
    np.testing.assert_allclose(got, tw.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_a_shut_down_pool_runs_parts_in_the_caller(many_threads):
    threads.run_parts(lambda j: None, 2)  # the pool exists
    threads._pool.shutdown(wait=True)  # as at interpreter exit: submit now raises
    seen = []
    threads.run_parts(seen.append, 3)
    assert sorted(seen) == [0, 1, 2]
    threads.set_num_threads(3)  # a fresh pool for the other tests


def test_products_in_an_atexit_handler():
    import subprocess
    import sys

    code = ("import atexit, numpy as np, lamina\n"
            "from lamina.ops.kernels import threads\n"
            "threads.SPLIT_MIN_WORK = 0\n"
            "a = np.random.default_rng(0).standard_normal((300, 300))\n"
            "def at_exit():\n"
            "    assert np.allclose(threads.matmul(a, a), a @ a)\n"
            "    print('ok')\n"
            "atexit.register(at_exit)\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_set_num_threads_while_parts_run(many_threads):
    """Changing the thread count from another thread never breaks a running call."""
    errors = []
    stop = threading.Event()

    def toggle():
        try:
            while not stop.is_set():
                threads.set_num_threads(1)
                threads.set_num_threads(3)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=toggle)
    t.start()
    try:
        for _ in range(300):
            seen = []
            threads.run_parts(seen.append, 3)
            assert sorted(seen) == [0, 1, 2]
    finally:
        stop.set()
        t.join(30)
    assert not errors
    threads.set_num_threads(3)


def test_split_matmul_with_out_overlapping_an_input(many_threads):
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((64, 64)), rng.standard_normal((64, 64))
    want = a @ b
    bb = b.copy()
    np.testing.assert_allclose(threads.matmul(a, bb, out=bb), want, rtol=1e-12, atol=1e-12)
    aa = a.copy()
    np.testing.assert_allclose(threads.matmul(aa, b, out=aa), want, rtol=1e-12, atol=1e-12)


def test_forked_child_is_not_left_busy():
    """A fork while another thread's parts run: the child starts with a free pool."""
    import multiprocessing as mp

    if "fork" not in mp.get_all_start_methods() or threads.get_num_threads() < 2 or not threads.blas_controlled():
        pytest.skip("needs fork, two threads and lamina's BLAS control")
    release, t = _hold_pool()
    try:
        ctx = mp.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=_child_state, args=(q,))
        p.start()
        p.join(timeout=60)
        assert p.exitcode == 0 and q.get(timeout=5) == (False, 2)
    finally:
        release.set()
        t.join(30)


def _child_state(q):
    q.put((threads.busy(), threads.parallel_slots(2)))


@pytest.mark.parametrize("n,c,k,size", [(6, 4, 5, 7), (9, 24, 20, 2)])
def test_pointwise_weight_grad_both_forms_match_torch(many_threads, n, c, k, size):
    """The 1×1 weight gradient as per-image products (large planes) or one einsum (many
    channels on small planes, where the per-image temporary would outgrow the input)."""
    rng = np.random.default_rng(n + c)
    xs, ws = rng.standard_normal((n, c, size, size)), rng.standard_normal((k, c, 1, 1))
    tx, tw = torch.tensor(xs, requires_grad=True), torch.tensor(ws, requires_grad=True)
    ty = TF.conv2d(tx, tw)
    gys = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(gys))
    assert (n * k * c <= xs.size) == (size == 7)
    got = conv_gemm.conv_weight_grad(xs, gys, (1, 1), (1, 1), (1, 1), (0, 0), 1)
    np.testing.assert_allclose(got, tw.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_environment_sizes_numba_and_dataloader_workers_use_one_thread():
    import subprocess
    import sys

    code = ("import os, lamina, numba\nfrom lamina.ops.kernels import conv_numba\nconv_numba.start_threads()\n"
            "print(lamina.get_num_threads(), numba.get_num_threads(), 'NUMBA_NUM_THREADS' in os.environ)")
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_NUM_THREADS", "LAMINA_TUNE")}
    out = subprocess.run([sys.executable, "-c", code], env=dict(env, LAMINA_NUM_THREADS="1"), check=True,
                         capture_output=True, text=True)
    assert out.stdout.split() == ["1", "1", "False"], out.stdout + out.stderr  # numba's team cut, no variable set
    out = subprocess.run([sys.executable, "-c", code], env=dict(env, LAMINA_NUM_THREADS="1", LAMINA_TUNE="1"),
                         check=True, capture_output=True, text=True)
    assert out.stdout.split() == ["1", "1", "True"], out.stdout + out.stderr  # tuned: numba's pool sized by it
    code = ("import lamina\nfrom lamina.utils.data import DataLoader, Dataset\n"
            "class D(Dataset):\n"
            "    def __len__(self): return 2\n"
            "    def __getitem__(self, i): return lamina.tensor(float(lamina.get_num_threads()))\n"
            "if __name__ == '__main__':\n"
            "    print([float(b) for b in DataLoader(D(), batch_size=1, num_workers=1)], lamina.get_num_threads())\n")
    out = subprocess.run([sys.executable, "-c", code], env=dict(env, LAMINA_NUM_THREADS="2"), check=True,
                         capture_output=True, text=True)
    assert out.stdout.split() == ["[1.0,", "1.0]", "2"], out.stdout + out.stderr


@pytest.mark.parametrize("c", [1, 6, 16, 63, 64, 70, 128])
def test_pad_channels_last_copies_every_channel(c, path):
    """The NCHW → zero-padded NHWC copy (row-at-a-time below 64 channels, 16 channels at a time
    from 64), against NumPy; 1-D and 2-D, odd sizes and paddings, serial and parallel builds."""
    from lamina.ops.kernels import conv_numba
    from lamina.ops.kernels.im2col import pad_channels_last

    rng = np.random.default_rng(c)
    for shape, pad, ext in (((3, c, 5, 7), (1, 2), (8, 10)), ((2, c, 9), (3,), (13,)), ((2, c, 4, 4), (0, 0), (5, 4))):
        x = rng.standard_normal(shape).astype(np.float32)
        want = np.zeros((shape[0], *ext, c), np.float32)
        want[(slice(None), *[slice(p, p + s) for p, s in zip(pad, shape[2:])])] = np.moveaxis(x, 1, -1)
        np.testing.assert_array_equal(pad_channels_last(x, pad, ext), want)
        if path and conv_numba.AVAILABLE:
            for fn in (conv_numba.to_channels_last_wide, conv_numba.to_channels_last):
                for build in (fn.parallel, fn.serial):
                    out = np.zeros_like(want)
                    x4 = x.reshape(shape[0], c, *(1,) * (4 - x.ndim), *shape[2:])
                    build(x4, out.reshape(shape[0], *(1,) * (4 - x.ndim), *ext, c), *(0,) * (4 - x.ndim), *pad)
                    np.testing.assert_array_equal(out, want)
