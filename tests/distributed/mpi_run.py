"""Launch a small script under ``mpiexec -n N`` from a test (localhost; MPICH oversubscribes 2 cores fine)."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))

# skip only where mpi4py is missing; CI installs it (the test extra), so there these tests run
needs_mpi = pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import mpi4py"], capture_output=True).returncode != 0,
    reason="mpi4py is not installed (pip install 'lamina[mpi]'): the MPI tests need it",
)


def run_mpi(argv, n=2, timeout=120, cwd=None):
    """``mpiexec -n n python argv…`` with this worktree's lamina, one thread per rank."""
    from lamina.distributed.launch import find_mpiexec

    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               LAMINA_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.run([find_mpiexec(), "-n", str(n), sys.executable, *argv], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd or ROOT)
