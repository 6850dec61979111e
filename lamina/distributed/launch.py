"""Finding the ``mpiexec`` that the MPICH wheel bundles, and the command line that starts N ranks."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys

__all__ = ["find_mpiexec", "mpiexec_command"]


def find_mpiexec() -> str:
    """The path of ``mpiexec``: the ``mpich`` wheel's, else the one beside this Python, else on PATH.

    Raises:
        RuntimeError: when none is found, saying how to install one.
    """
    try:
        for f in importlib.metadata.files("mpich") or ():
            if f.name == "mpiexec":
                path = os.path.realpath(str(f.locate()))
                if os.access(path, os.X_OK):
                    return path
    except importlib.metadata.PackageNotFoundError:
        pass
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which("mpiexec")
    if found is None:
        raise RuntimeError("mpiexec not found: pip install 'lamina[mpi]' (mpi4py and the mpich wheel, which "
                           "bundles mpiexec)")
    return found


def mpiexec_command(nproc: int, argv: list[str], hosts: str | None = None) -> list[str]:
    """``mpiexec -n nproc [-hosts h1,h2] argv…``; ``hosts`` is a comma-separated list (``host:slots`` allowed).

    Raises:
        ValueError: for ``nproc`` below 1 or an empty host list.
    """
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"mpiexec: the number of processes should be a positive integer, got {nproc!r}")
    cmd = [find_mpiexec(), "-n", str(nproc)]
    if hosts is not None:
        names = [h.strip() for h in hosts.split(",") if h.strip()]
        if not names:
            raise ValueError(f"mpiexec: --hosts should list host names separated by commas, got {hosts!r}")
        cmd += ["-hosts", ",".join(names)]
    return cmd + list(argv)
