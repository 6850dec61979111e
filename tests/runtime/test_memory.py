"""lamina's malloc settings (``lamina/runtime/memory.py``): in force after ``lamina.runtime.tune()``
on glibc (never on import), left alone with ``LAMINA_KEEP_MEMORY=0``."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

_PROBE = ("import lamina\nfrom lamina.runtime import memory\n"
          "print(memory.applied, lamina.runtime.tune()['keep_memory'], memory.applied)")


def _probe(**env: str) -> str:
    out = subprocess.run([sys.executable, "-c", _PROBE], env=dict(os.environ, **env), check=True,
                         capture_output=True, text=True)
    return out.stdout.split()


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="the settings exist in glibc only")
def test_settings_applied_by_tune_not_by_import_and_opt_out():
    assert _probe(LAMINA_KEEP_MEMORY="1") == ["False", "True", "True"]
    assert _probe(LAMINA_KEEP_MEMORY="0") == ["False", "False", "False"]


@pytest.mark.parametrize("tune", [False, True])
def test_freed_memory_is_reused_by_the_next_allocation_only_when_tuned(tune):
    """What the settings buy: in a tuned process a large array freed and allocated again lands on
    the same memory (no fresh pages); after a plain import glibc's default serves the first one
    with a fresh mapping and the next from the heap. Checked through the data pointer, glibc only."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc only")
    code = (f"import lamina, numpy as np\nif {tune}: lamina.runtime.tune()\n"
            "a = np.empty(4 << 20, np.uint8); a[:] = 1; p = a.ctypes.data; del a\n"
            "b = np.empty(4 << 20, np.uint8); print(b.ctypes.data == p)")
    env = {k: v for k, v in os.environ.items() if k not in ("LAMINA_TUNE", "LAMINA_KEEP_MEMORY")}
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    assert out.stdout.strip() == str(tune)
