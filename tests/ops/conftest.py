import pytest

from lamina.ops.kernels import conv_select
from lamina.ops.kernels import im2col as kernels


@pytest.fixture(autouse=True)
def _fresh_conv_choices():
    """Forget the conv selector's cached choices around each test (tests change tuned constants)."""
    conv_select.clear_cache()
    yield
    conv_select.clear_cache()


@pytest.fixture(params=[True, False], ids=["numba", "numpy"])
def path(request):
    """Run a test on the numba kernels (where installed) and on the pure-NumPy fallback."""
    old = kernels.use_numba()
    kernels.use_numba(request.param)
    yield request.param
    kernels.use_numba(old)
