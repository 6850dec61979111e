"""How the im2col convolutions of :mod:`.conv_gemm` are split up: images into column chunks
shared among lamina's threads, each chunk's product into pieces (for OpenBLAS's small-product
kernels, or for :mod:`.colgemm_numba`'s compiled loops, which build and multiply the columns
a piece at a time), and the arguments those loops take. Array functions only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import colgemm_numba, threads
from .im2col import im2col_view

__all__ = ["COLUMN_CHUNK_BYTES", "PARALLEL_MIN_BYTES", "FUSED_PIECE_BYTES", "FUSED_MIN_ROWS", "image_chunks",
           "thread_slots", "run_chunks", "plan", "piece_rows", "fused_piece", "forced_piece",
           "fused_args"]


# column buffers are built a few images at a time: at most this many bytes each
COLUMN_CHUNK_BYTES = 16 * 2**20


# below this many column bytes in all, one chunk: a hand-off to another thread costs about as
# much as copying that many bytes (see threads.py). LeNet's c3 layer (3.8 MB of columns) gains
# from two chunks where the pool's threads are pinned (a tuned process)
PARALLEL_MIN_BYTES = 1 << 21


def image_chunks(n: int, per_image: int, slots: int) -> list[tuple[int, int]]:
    """Image ranges whose column buffers hold at most :data:`COLUMN_CHUNK_BYTES` each, of near
    equal sizes and, where the columns are large enough to share out over ``slots`` threads,
    a multiple of ``slots`` of them (so that each thread gets the same number of images)."""
    count = -(-n // max(1, COLUMN_CHUNK_BYTES // max(per_image, 1))) if n else 0
    if slots > 1 and n * per_image >= PARALLEL_MIN_BYTES:
        count = min(n, -(-count // slots) * slots)
    if count == 0:
        return []
    step = -(-n // count)
    return [(i, min(i + step, n)) for i in range(0, n, step)]


def thread_slots(n: int, per_image: int) -> int:
    """Threads to share the column chunks of ``n`` images among (1 below :data:`PARALLEL_MIN_BYTES`)."""
    return threads.parallel_slots(n) if n * per_image >= PARALLEL_MIN_BYTES else 1


def run_chunks(chunks: list[tuple[int, int]], body: Any, slots: int) -> None:
    """``body(n0, n1, j)`` for every chunk, the chunks dealt to ``slots`` parts run on lamina's
    threads (``j`` is the part, below ``slots``); each chunk's columns, product and scatter run
    in one thread, which keeps them in its cache."""
    def part(j: int) -> None:
        for n0, n1 in chunks[j::slots]:
            body(n0, n1, j)

    threads.run_parts(part, slots)


def plan(n: int, per_image: int, rows_per_image: int, k: int, m: int,
          groups: int) -> tuple[int, list[tuple[int, int]], int, int]:
    """How a chunked kernel runs over ``n`` images of ``per_image`` column bytes whose products
    are ``(rows, k) @ (k, m)``: its threads, its image chunks, the largest chunk's image count
    and the rows per product piece (:func:`piece_rows`; 0 for grouped convs)."""
    slots_ = thread_slots(n, per_image)
    chunks_ = image_chunks(n, per_image, slots_)
    step = max((n1 - n0 for n0, n1 in chunks_), default=0)
    piece = piece_rows(slots_, step * rows_per_image, k, m) if groups == 1 else 0
    return slots_, chunks_, step, piece


def piece_rows(slots: int, rows: int, k: int, n: int) -> int:
    """Rows per piece for the ``(rows, k) @ (k, n)`` products of one chunk made in small pieces
    (:func:`threads.small_gemm_rows`), or 0 for whole products: also where the chunks run on one
    thread but :func:`threads.matmul` would split a whole product over the threads (a batch of
    pieces runs on one)."""
    piece = threads.small_gemm_rows(k, n)
    if piece and slots == 1 and rows * k * n >= threads.SPLIT_MIN_WORK and threads.parallel_slots(2) > 1:
        return 0
    return piece


# rows per piece of the colgemm kernels where the products are too large for BLAS's small
# kernels: a piece's columns take about this many bytes
FUSED_PIECE_BYTES = 1 << 19
FUSED_MIN_ROWS = 64


def fused_piece(piece: int, slots: int, rows: int, work: int, width: int, itemsize: int) -> int:
    """Rows per piece for :mod:`.colgemm_numba`'s kernels (``width`` values per column row, a
    chunk of ``rows`` rows, ``work`` multiply-adds in its product): the small-product pieces
    where there are some, else pieces of about :data:`FUSED_PIECE_BYTES` of columns where lamina
    keeps BLAS on one thread; 0 where one chunk's product is better split over the threads."""
    if piece:
        return min(piece, max(rows, 1))
    if not threads.blas_controlled() or width <= 0:
        return 0
    if slots == 1 and work >= threads.SPLIT_MIN_WORK and threads.parallel_slots(2) > 1:
        return 0
    return min(max(rows, 1), max(FUSED_MIN_ROWS, FUSED_PIECE_BYTES // (width * itemsize)))


def forced_piece(rows: int, width: int, itemsize: int) -> int:
    """Rows per piece for :mod:`.colgemm_numba`'s kernels where :func:`fused_piece` would make none
    but they were asked for (:func:`.conv_select.force`): pieces of about :data:`FUSED_PIECE_BYTES`."""
    return min(max(rows, 1), max(FUSED_MIN_ROWS, FUSED_PIECE_BYTES // max(width * itemsize, 1)))


def fused_args(x: Any, xpad: Any, piece: int, stride: Sequence[int], dilation: Sequence[int],
                ksize: Sequence[int], out: Sequence[int], groups: int,
                others: Sequence[Any] = ()) -> tuple[Any, tuple[int, ...], int] | None:
    """For :mod:`.colgemm_numba`'s kernels: ``xpad`` as ``(N, E0, E1, E2, C)``, the 3-D geometry
    ``(k0, k1, k2, s0, s1, s2, d0, d1, d2, o0, o1, o2, groups)`` (1-D and 2-D lifted) and the
    BLAS address; None where they do not run (``piece`` 0, another dtype, numba off, or
    ``xpad`` and the ``others`` operands not all of ``x``'s dtype: the kernels call one BLAS
    routine and copy raw bytes, where NumPy would promote). Raises where the windows overrun
    ``xpad``, as the column view does."""
    nd = len(ksize)
    if not piece or xpad is None or not xpad.flags.c_contiguous or not colgemm_numba.ok(x.dtype, nd, groups):
        return None
    if any(a is not None and a.dtype != x.dtype for a in (xpad, *others)):
        return None
    im2col_view(xpad, ksize, stride, dilation, out)  # the bounds check

    def lift(t: Sequence[int]) -> tuple[int, ...]:
        return (1,) * (3 - nd) + tuple(int(v) for v in t)

    geom = (*lift(ksize), *lift(stride), *lift(dilation), *lift(out), int(groups))
    return xpad.reshape(xpad.shape[0], *(1,) * (3 - nd), *xpad.shape[1:]), geom, colgemm_numba.gemm_address(x.dtype)
