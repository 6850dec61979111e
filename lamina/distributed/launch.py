"""Finding the ``mpiexec`` that the MPICH wheel bundles, and the command line that starts N ranks."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys

__all__ = ["find_mpiexec", "mpiexec_command", "launch", "RANK_ENV", "MPINotFoundError"]


class MPINotFoundError(FileNotFoundError):
    """``mpiexec`` or ``mpi4py`` is not installed (a missing program, so the CLI says it in one line)."""


_INSTALL = "pip install 'lamina[mpi]' (mpi4py and the mpich wheel, which bundles mpiexec)"


def find_mpiexec() -> str:
    """The path of ``mpiexec``: the ``mpich`` wheel's, else the one beside this Python, else on PATH.

    Raises:
        MPINotFoundError: when none is found, saying how to install one.
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
        raise MPINotFoundError(f"mpiexec not found: {_INSTALL}")
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


RANK_ENV = "LAMINA_MPI_RANK_PROCESS"  # set for the processes that launch() starts: each is one rank


def launch(argv: list[str], nproc: int | None, hosts: str | None = None) -> int:
    """Run ``python -m lamina argv…`` as ``nproc`` ranks under the bundled ``mpiexec``; returns its exit code.

    The ranks import the same lamina as this process. On one machine each rank gets
    ``cores // nproc`` compute threads (``LAMINA_NUM_THREADS``, unless set), so N ranks do not
    oversubscribe the cores; with ``hosts``, ``nproc`` defaults to one rank per host.

    Raises:
        MPINotFoundError: when mpi4py or mpiexec is missing.
    """
    import subprocess

    from .collectives import is_mpi_available

    if nproc is None:
        nproc = len([h for h in (hosts or "").split(",") if h.strip()]) or 1
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"mpiexec: the number of processes should be a positive integer, got {nproc!r}")
    if not is_mpi_available():
        raise MPINotFoundError(f"training on several processes needs mpi4py, which is not installed: {_INSTALL}")
    cmd = mpiexec_command(nproc, [sys.executable, "-m", "lamina", *argv], hosts)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env[RANK_ENV] = "1"
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in [env.get("PYTHONPATH")] if p])
    if hosts is None and "LAMINA_NUM_THREADS" not in env:
        env["LAMINA_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // nproc))
    return subprocess.call(cmd, env=env)
