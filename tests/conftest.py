import numpy as np
import pytest

import lamina


@pytest.fixture(autouse=True)
def _seed():
    lamina.manual_seed(0)
    np.random.seed(0)
    yield
