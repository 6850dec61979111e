"""The corpus: small PyTorch programs of the kinds real users run (tests/interop/corpus/), changed
only in their data source (seeded NumPy), run unmodified under torch and, with the import lines
pointed at lamina, under lamina; their numbers must agree."""

import re
from pathlib import Path

import numpy as np
import pytest

CORPUS = Path(__file__).parent / "corpus"
PROGRAMS = sorted(p.name for p in CORPUS.glob("*.py"))


def _as_lamina(source: str) -> str:
    """The program with each import of torch pointed at lamina (``import torch``, ``import torch.nn
    as nn``, ``import torch.utils.data``, ``from torch.utils.data import ...``); nothing else changes."""
    source = re.sub(r"^import torch$", "import lamina as torch", source, flags=re.M)
    source = re.sub(r"^import torch\.(\S+) as (\w+)$", r"import lamina.\1 as \2", source, flags=re.M)
    source = re.sub(r"^import torch\.(\S+)$", r"import lamina.\1", source, flags=re.M)
    return re.sub(r"^from torch(\.\S+)? import ", r"from lamina\1 import ", source, flags=re.M)


def _run(source: str, name: str) -> dict:
    namespace = {"__name__": "__corpus__"}
    exec(compile(source, name, "exec"), namespace)  # noqa: S102  (our own corpus files)
    return namespace["RESULT"]


def _close(ours, theirs, where):
    if isinstance(theirs, dict):
        assert sorted(ours) == sorted(theirs), where
        for k in theirs:
            _close(ours[k], theirs[k], f"{where}.{k}")
    elif isinstance(theirs, str):
        assert ours == theirs, where
    else:
        np.testing.assert_allclose(np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float), rtol=2e-4,
                                   atol=1e-5, err_msg=where)


def test_the_corpus_is_there():
    kinds = {"blitz_cifar_net", "blitz_neural_networks", "blitz_tensors_autograd", "mnist", "dcgan", "vae", "regression", "super_resolution", "micrograd_test",
             "pytorch_cifar_main", "unet", "wgan_gp"}
    assert kinds <= {p.removesuffix(".py") for p in PROGRAMS}


@pytest.mark.parametrize("program", PROGRAMS)
def test_a_pytorch_program_runs_on_lamina_with_torchs_numbers(program):
    source = (CORPUS / program).read_text()
    lamina_source = _as_lamina(source)
    assert "import lamina as torch" in lamina_source and not re.search(r"^(import|from) torch\b", lamina_source,
                                                                       flags=re.M)
    theirs = _run(source, program)
    ours = _run(lamina_source, program)
    _close(ours, theirs, program)
