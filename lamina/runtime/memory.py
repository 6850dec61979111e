"""Keep freed array memory for reuse (glibc's ``malloc`` settings; part of :func:`lamina.runtime.tune`).

A training step allocates and frees the same large arrays every time (activations, column
buffers, gradients: 0.1–30 MB each). glibc serves each of them with a fresh ``mmap`` and hands
it back to the kernel on ``free``, so every step pays page faults on all that memory again
(``bench/bench_conv.py``'s transposed-conv case shows the difference). :func:`keep_freed_memory`
sets, for the whole process, and only when asked to (:func:`lamina.runtime.tune`, which the
``lamina`` command calls),

- ``M_MMAP_THRESHOLD`` to 32 MB (glibc's maximum): blocks up to that size come from the heap,
  where freed memory is reused;
- ``M_TRIM_THRESHOLD`` to 1 GB: up to that much free memory at the top of the heap is kept
  instead of being returned at once.

The resident set of a tuned training process therefore stays near its peak, which is why this is
not done on import. ``LAMINA_KEEP_MEMORY=0`` makes :func:`keep_freed_memory` leave glibc's defaults. Nothing is done
on other C libraries (musl, macOS, Windows).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["keep_freed_memory", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 2**30
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h

applied = False


def keep_freed_memory() -> bool:
    """Apply the settings above (once; unless ``LAMINA_KEEP_MEMORY=0``); whether they are in force."""
    global applied
    if applied or os.environ.get("LAMINA_KEEP_MEMORY", "1").strip() == "0":
        return applied
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - glibc only: musl has mallopt as a no-op stub
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return applied
