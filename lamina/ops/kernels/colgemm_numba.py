"""Optional numba kernels: im2col + GEMM a few hundred column rows at a time (1-, 2- and 3-D).

The plain im2col path (:mod:`.conv_gemm`) copies a chunk's whole column matrix, then multiplies
it: for LeNet's c3 layer (N=64, 6→16 channels, 14×14, 5×5) that is 3.8 MB of columns written per
forward, 1.9 MB per thread, more than the 1 MB L2. Here one compiled loop per thread builds the
columns of ``piece`` output rows into a small buffer that stays in L2, multiplies that piece at
once (BLAS called from the loop), and goes on to the next rows, so no column matrix is ever
written to memory:

- the forward: ``y[r0:r1] = cols @ w_mat`` (plus the bias, added to each piece while it is in
  L1);
- the weight gradient: ``gw_mat += colsᵀ @ gy_rows``, summed over the pieces by BLAS
  (``beta = 1``);
- the input gradient: ``gcols = gy_rows @ w_matᵀ`` a piece at a time, added back onto the
  padded input gradient in vectors.

Grouped convs lay each group's columns out as one block of the row and make a product per
group on its block, its weight matrix and its ``K/g`` output columns.

Each column row is runs of contiguous values of the padded channels-last input: ``k_w·C``
values per kernel row with one group (one ``memcpy`` each, through an LLVM intrinsic: c3's
columns 2.5× faster than NumPy's strided copy and 10× faster than a numba loop, whose 30-float
runs fall into its scalar remainder), ``C/g`` per kernel tap and group otherwise.

They run where threadpoolctl finds an OpenBLAS that lamina keeps on one thread while its kernels
run (so that the products never start BLAS threads of their own; ``conv_plan.fused_piece``):
pieces of ``threads.small_gemm_rows`` rows where OpenBLAS has its small-product kernels (each
product stays within them), else of about ``conv_plan.FUSED_PIECE_BYTES`` of columns. BLAS is
NumPy's own, called through its 64-bit-integer CBLAS symbol found by :func:`gemm_address` (none
found: these kernels are off).
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from . import conv_numba, threads

__all__ = ["AVAILABLE", "gemm_address", "ok", "colgemm_fwd", "colgemm_wgrad", "colgemm_gx"]

colgemm_fwd: Any = None
colgemm_wgrad: Any = None
colgemm_gx: Any = None

# CBLAS enums
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112

_ADDRESS: dict[str, int] = {}


def _find_gemm(prefix: str) -> int:
    """The address of ``cblas_{prefix}gemm`` with 64-bit integers in the OpenBLAS NumPy loaded
    (threadpoolctl says whether there is one and where), or 0."""
    for lib in threads._openblas_libs():
        for name in (f"scipy_cblas_{prefix}gemm64_", f"cblas_{prefix}gemm64_"):
            fn = getattr(lib, name, None)
            if fn is not None:
                return ctypes.cast(fn, ctypes.c_void_p).value or 0
    return 0


def gemm_address(dtype: Any) -> int:
    """The address of the 64-bit-integer CBLAS ``sgemm`` (float32) or ``dgemm`` (float64) of
    NumPy's OpenBLAS, 0 where there is none (or for other dtypes)."""
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        return 0
    prefix = "s" if dt == np.float32 else "d"
    if prefix not in _ADDRESS:
        _ADDRESS[prefix] = _find_gemm(prefix)
    return _ADDRESS[prefix]


AVAILABLE = False

if conv_numba.AVAILABLE:
    import numba as _nb
    from llvmlite import ir
    from numba import types as _t
    from numba.core import cgutils
    from numba.extending import intrinsic

    def _same(*arrays):
        """Typing guard of the intrinsics: C-contiguous arrays of one float dtype."""
        return all(isinstance(a, _t.Array) and a.layout == "C" and a.dtype == arrays[0].dtype
                   and a.dtype in (_t.float32, _t.float64) for a in arrays)

    @intrinsic
    def _memcpy(typingctx, dst, di, src, si, count):  # pragma: no cover - compiled
        """``dst.flat[di:di + count] = src.flat[si:si + count]`` (C-contiguous, same dtype)."""
        if not _same(dst, src):
            return None
        sig = _t.void(dst, _t.intp, src, _t.intp, _t.intp)

        def codegen(context, builder, signature, args):
            dary = context.make_array(signature.args[0])(context, builder, args[0])
            sary = context.make_array(signature.args[2])(context, builder, args[2])
            size = context.get_abi_sizeof(context.get_data_type(signature.args[0].dtype))
            nbytes = builder.mul(args[4], context.get_constant(_t.intp, size))
            cgutils.raw_memcpy(builder, builder.gep(dary.data, [args[1]]), builder.gep(sary.data, [args[3]]),
                               nbytes, 1)
            return context.get_dummy_value()

        return sig, codegen

    @intrinsic
    def _gemm(typingctx, addr, trans_a, m, n, k, a, ai, lda, b, bi, ldb, beta, c, ci, ldc):  # pragma: no cover
        """Row-major ``C = op(A) @ B + beta·C`` through the CBLAS gemm at ``addr`` (64-bit
        integers); ``A``, ``B``, ``C`` start at the flat offsets ``ai``, ``bi``, ``ci`` of the
        arrays ``a``, ``b``, ``c`` (one dtype, float32 or float64), ``op`` transposes A if ``trans_a``."""
        if not _same(a, b, c):
            return None
        sig = _t.void(addr, trans_a, m, n, k, a, ai, lda, b, bi, ldb, beta, c, ci, ldc)

        def codegen(context, builder, signature, args):
            (addr_, trans_, m_, n_, k_, a_, ai_, lda_, b_, bi_, ldb_, beta_, c_, ci_, ldc_) = args
            tys = signature.args
            fty = context.get_value_type(tys[5].dtype)
            i32, i64 = ir.IntType(32), ir.IntType(64)
            ptr = ir.IntType(8).as_pointer()
            fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, i64, i64, i64, fty, ptr, i64, ptr, i64, fty,
                                                  ptr, i64])
            fn = builder.inttoptr(addr_, fnty.as_pointer())

            def at(ary_ty, ary, off):
                arr = context.make_array(ary_ty)(context, builder, ary)
                return builder.bitcast(builder.gep(arr.data, [off]), ptr)

            def i64v(ty, v):
                return context.cast(builder, v, ty, _t.int64)

            trans = builder.select(builder.icmp_signed("!=", i64v(tys[1], trans_), i64(0)), i32(_TRANS),
                                   i32(_NO_TRANS))
            builder.call(fn, [i32(_ROW_MAJOR), trans, i32(_NO_TRANS), i64v(tys[2], m_), i64v(tys[3], n_),
                              i64v(tys[4], k_), context.get_constant(tys[5].dtype, 1.0),
                              at(tys[5], a_, ai_), i64v(tys[7], lda_), at(tys[8], b_, bi_), i64v(tys[10], ldb_),
                              context.cast(builder, beta_, tys[11], tys[5].dtype), at(tys[12], c_, ci_),
                              i64v(tys[14], ldc_)])
            return context.get_dummy_value()

        return sig, codegen

    def _vector_add(lanes):
        @intrinsic
        def add(typingctx, dst, di, src, si):  # pragma: no cover - compiled
            """``dst.flat[di:di + lanes] += src.flat[si:si + lanes]`` as one vector operation."""
            if not _same(dst, src):
                return None
            sig = _t.void(dst, _t.intp, src, _t.intp)

            def codegen(context, builder, signature, args):
                vty = ir.VectorType(context.get_value_type(signature.args[0].dtype), lanes)
                dary = context.make_array(signature.args[0])(context, builder, args[0])
                sary = context.make_array(signature.args[2])(context, builder, args[2])
                dp = builder.bitcast(builder.gep(dary.data, [args[1]]), vty.as_pointer())
                sp = builder.bitcast(builder.gep(sary.data, [args[3]]), vty.as_pointer())
                total = builder.fadd(builder.load(dp, align=1), builder.load(sp, align=1))
                builder.store(total, dp, align=1)
                return context.get_dummy_value()

            return sig, codegen

        return add

    _add16, _add8, _add4 = _vector_add(16), _vector_add(8), _vector_add(4)

    def _add_run(dst, di, src, si, count):  # pragma: no cover - compiled
        """``dst.flat[di:di + count] += src.flat[si:si + count]`` in vectors of 16, 8 and 4
        values (a numba loop runs runs this short in its scalar remainder: 3× slower)."""
        t = 0
        while t + 16 <= count:
            _add16(dst, di + t, src, si + t)
            t += 16
        if t + 8 <= count:
            _add8(dst, di + t, src, si + t)
            t += 8
        if t + 4 <= count:
            _add4(dst, di + t, src, si + t)
            t += 4
        while t < count:
            dst[di + t] += src[si + t]
            t += 1

    def _taps(shape, geom):  # pragma: no cover - compiled
        """Offsets, from a window's first value in the flat padded ``(N, E0, E1, E2, C)`` input,
        of the window's runs of contiguous values (a column row is these runs in order), and the
        run length: ``k2·C`` values per ``(i, j)`` where ``d2 == 1`` and there is one group,
        else the ``C/g`` channels of one group per ``(g, i, j, k)``, so that each group's columns
        are one contiguous block of the row."""
        e1, e2, c_ = shape[2], shape[3], shape[4]
        k0, k1, k2, d0, d1, d2, groups = geom[0], geom[1], geom[2], geom[6], geom[7], geom[8], geom[12]
        cg = c_ // groups
        whole = d2 == 1 and groups == 1
        taps = np.empty(groups * k0 * k1 * (1 if whole else k2), dtype=np.int64)
        t = 0
        for g in range(groups):
            for i in range(k0):
                for j in range(k1):
                    for k in range(1 if whole else k2):
                        taps[t] = ((i * d0 * e1 + j * d1) * e2 + k * d2) * c_ + g * cg
                        t += 1
        return taps, (k2 * c_ if whole else cg)

    def _bases(shape, geom, r, rows, bases):  # pragma: no cover - compiled
        """``bases[t]``: the flat offset of the first value of output row ``r + t``'s window
        (rows ``(n, a, b, e)`` in row-major order)."""
        e0, e1, e2, c_ = shape[1], shape[2], shape[3], shape[4]
        s0, s1, s2, o0, o1, o2 = geom[3], geom[4], geom[5], geom[9], geom[10], geom[11]
        per = o0 * o1 * o2
        n = r // per
        q = r - n * per
        a = q // (o1 * o2)
        b = (q - a * o1 * o2) // o2
        e = q - a * o1 * o2 - b * o2
        for t in range(rows):
            bases[t] = (((n * e0 + a * s0) * e1 + b * s1) * e2 + e * s2) * c_
            e += 1
            if e == o2:
                e = 0
                b += 1
                if b == o1:
                    b = 0
                    a += 1
                    if a == o0:
                        a = 0
                        n += 1

    def _check(flat, taps, run, bases, rows, bf, width):  # pragma: no cover - compiled
        """Bounds of a piece (the copies and vector adds run unchecked): its last window ends
        inside ``flat`` (bases and taps increase) and its columns fit the buffer."""
        if rows > 0 and (bases[rows - 1] + taps[taps.shape[0] - 1] + run > flat.shape[0] or rows * width > bf.shape[0]
                         or bases[0] < 0):
            raise ValueError("colgemm: a window or a piece runs past its array")

    def _prepare(shape, geom, r0, r1, total, buf, width):  # pragma: no cover - compiled
        """A kernel's run offsets and run length (:func:`_taps`) and its row-bases buffer, after
        checking its rows (``r0 … r1`` of ``total``) and its column width."""
        taps, run = _taps(shape, geom)
        if r0 < 0 or r1 > total or buf.shape[1] != width or taps.shape[0] * run != width:
            raise ValueError("colgemm: rows or operand shapes do not match")
        return taps, run, np.empty(buf.shape[0], dtype=np.int64)

    def _cols(xpad, geom, taps, run, bases, r, rows, buf):  # pragma: no cover - compiled
        """``buf[:rows]`` = the column rows of output rows ``r … r + rows``."""
        _bases(xpad.shape, geom, r, rows, bases)
        xf = xpad.reshape(-1)
        bf = buf.reshape(-1)
        width = taps.shape[0] * run
        _check(xf, taps, run, bases, rows, bf, width)
        for t in range(rows):
            base = bases[t]
            d = t * width
            for u in range(taps.shape[0]):
                _memcpy(bf, d + u * run, xf, base + taps[u], run)

    def _colgemm(xpad, b, c, r0, r1, buf, geom, bias, addr, wgrad):  # pragma: no cover - compiled
        """The forward (``c[r0:r1] = cols @ b + bias``, ``b (g·∏k·C/g, K/g)``: each group's weight
        matrix in turn) or, with ``wgrad``, the weight gradient (``c += colsᵀ @ b[r0:r1]``,
        ``c (g·∏k·C/g, K/g)``), ``len(buf)`` rows at a time; group ``g``'s products read its
        block of the columns and its ``K/g`` output columns."""
        groups = geom[12]
        kk = (b if wgrad else c).shape[1]  # K
        kg = kk // groups
        width = buf.shape[1]
        wg = width // groups
        if (c if wgrad else b).shape[0] != width or (c if wgrad else b).shape[1] != kg or kg * groups != kk:
            raise ValueError("colgemm: rows or operand shapes do not match")
        taps, run, bases = _prepare(xpad.shape, geom, r0, r1, (b if wgrad else c).shape[0], buf, width)
        for p in range(r0, r1, buf.shape[0]):
            rows = min(buf.shape[0], r1 - p)
            _cols(xpad, geom, taps, run, bases, p, rows, buf)
            for g in range(groups):
                if wgrad:
                    _gemm(addr, 1, wg, kg, rows, buf, g * wg, width, b, p * kk + g * kg, kk, 1.0, c, g * wg * kg, kg)
                else:
                    _gemm(addr, 0, rows, kg, wg, buf, g * wg, width, b, g * wg * kg, kg, 0.0, c, p * kk + g * kg, kk)
            if bias.shape[0] and not wgrad:
                for t in range(p, p + rows):
                    for q in range(kk):
                        c[t, q] += bias[q]

    def _colgemm_fwd(xpad, wm, y, r0, r1, buf, geom, bias, addr):  # pragma: no cover - compiled
        """``y[r0:r1] = cols[r0:r1] @ wm (+ bias)`` (by groups) for the padded channels-last input
        ``xpad (N, E0, E1, E2, C)`` and ``geom = (k0, k1, k2, s0, s1, s2, d0, d1, d2, o0, o1,
        o2, groups)``, ``len(buf)`` rows at a time (``bias`` of length 0: none)."""
        _colgemm(xpad, wm, y, r0, r1, buf, geom, bias, addr, False)

    def _colgemm_wgrad(xpad, gy, gm, r0, r1, buf, geom, addr):  # pragma: no cover - compiled
        """``gm += cols[r0:r1]ᵀ @ gy[r0:r1]`` (by groups; ``gm (g·∏k·C/g, K/g)``), ``len(buf)``
        rows at a time."""
        _colgemm(xpad, gy, gm, r0, r1, buf, geom, gy[:0, 0], addr, True)

    def _colgemm_gx(gy, wt, gpad, r0, r1, buf, geom, addr):  # pragma: no cover - compiled
        """``col2im(gy[r0:r1] @ wt)`` (by groups; ``wt (K, ∏k·C/g)``: each group's ``K/g`` rows)
        added into ``gpad (N, E0, E1, E2, C)``, ``len(buf)`` rows at a time: the input gradient of
        :func:`_colgemm_fwd`."""
        groups = geom[12]
        kk = gy.shape[1]
        kg = kk // groups
        width = buf.shape[1]
        wg = width // groups
        if wt.shape[0] != kk or wt.shape[1] != wg or kg * groups != kk:
            raise ValueError("colgemm: rows or operand shapes do not match")
        taps, run, bases = _prepare(gpad.shape, geom, r0, r1, gy.shape[0], buf, width)
        gf = gpad.reshape(-1)
        bf = buf.reshape(-1)
        for p in range(r0, r1, buf.shape[0]):
            rows = min(buf.shape[0], r1 - p)
            for g in range(groups):
                _gemm(addr, 0, rows, wg, kg, gy, p * kk + g * kg, kk, wt, g * kg * wg, wg, 0.0, buf, g * wg, width)
            _bases(gpad.shape, geom, p, rows, bases)
            _check(gf, taps, run, bases, rows, bf, width)
            for t in range(rows):
                base = bases[t]
                d = t * width
                for u in range(taps.shape[0]):
                    _add_run(gf, base + taps[u], bf, d + u * run, run)

    _flags = dict(cache=True, nogil=True, boundscheck=False)
    _add_run = _nb.njit(**_flags)(_add_run)
    _taps = _nb.njit(**_flags)(_taps)
    _bases = _nb.njit(**_flags)(_bases)
    _check = _nb.njit(**_flags)(_check)
    _prepare = _nb.njit(**_flags)(_prepare)
    _cols = _nb.njit(**_flags)(_cols)
    _colgemm = _nb.njit(**_flags)(_colgemm)
    colgemm_gx = _nb.njit(**_flags)(_colgemm_gx)
    colgemm_fwd = _nb.njit(**_flags)(_colgemm_fwd)
    colgemm_wgrad = _nb.njit(**_flags)(_colgemm_wgrad)
    AVAILABLE = True


def ok(dtype: Any, nd: int, groups: int) -> bool:
    """Whether these kernels take a conv of ``nd`` spatial dims, ``groups`` groups and this dtype."""
    from .im2col import use_numba

    return AVAILABLE and use_numba() and 1 <= nd <= 3 and groups >= 1 and gemm_address(dtype) != 0
