"""lamina's malloc settings (``lamina/ops/kernels/memory.py``): in force after import on glibc,
left alone with ``LAMINA_KEEP_MEMORY=0``."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

_PROBE = ("import lamina\nfrom lamina.ops.kernels import memory\n"
          "print(memory.applied, memory.keep_freed_memory())")


def _probe(**env: str) -> str:
    out = subprocess.run([sys.executable, "-c", _PROBE], env=dict(os.environ, **env), check=True,
                         capture_output=True, text=True)
    return out.stdout.split()


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="the settings exist in glibc only")
def test_settings_applied_at_import_and_opt_out():
    assert _probe(LAMINA_KEEP_MEMORY="1") == ["True", "True"]
    assert _probe(LAMINA_KEEP_MEMORY="0") == ["False", "False"]


def test_freed_memory_is_reused_by_the_next_allocation():
    """What the settings buy: a large array freed and allocated again lands on the same memory
    (no fresh pages); checked through the data pointer, on glibc only."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc only")
    code = ("import lamina, numpy as np\n"
            "a = np.empty(4 << 20, np.uint8); a[:] = 1; p = a.ctypes.data; del a\n"
            "b = np.empty(4 << 20, np.uint8); print(b.ctypes.data == p)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "True"
