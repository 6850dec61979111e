import json
import os

import numpy as np
import pytest

import lamina


@pytest.fixture(autouse=True)
def _seed():
    lamina.manual_seed(0)
    np.random.seed(0)
    yield


# LAMINA_TEST_ARRAY=seam: the oracle tests run their lamina tensors on tests.seam_backend's
# array type; LAMINA_SEAM_REPORT names a file that gets the seam kernels' call counts
from tests import seam_backend  # noqa: E402

if seam_backend.enabled():
    seam_backend.install()


def pytest_sessionfinish(session, exitstatus):
    report = os.environ.get("LAMINA_SEAM_REPORT")
    if report and seam_backend.enabled():
        with open(report, "w") as f:
            calls = {f"{fam}.{pass_}": n for (fam, pass_), n in seam_backend.CALLS.items()}
            json.dump({"calls": calls, "collected": session.testscollected, "failed": session.testsfailed}, f)
