import pytest

pytest.importorskip("starlette", reason="the playground's server needs the playground extra (starlette)")
pytest.importorskip("httpx", reason="starlette's TestClient needs httpx")


@pytest.fixture
def client():
    from starlette.testclient import TestClient

    from lamina.playground.server import create_app

    with TestClient(create_app(allowed_hosts=["testserver"])) as c:
        yield c


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory):
    """A runs folder with one tiny CNN run (lenet_small of width 4, one epoch on the digits)."""
    from lamina.train.run import resolve_config, train_run

    root = tmp_path_factory.mktemp("runs")
    config = resolve_config({"data": "digits", "epochs": 1, "batch_size": 64, "model_kwargs": {"width": 4}})
    train_run(config, str(root / "tiny"), log=lambda *a: None, progress=False, report=False)
    return root


@pytest.fixture
def cnn_client(runs_dir):
    from starlette.testclient import TestClient

    from lamina.playground.server import create_app

    with TestClient(create_app(str(runs_dir), allowed_hosts=["testserver"])) as c:
        yield c
