import pytest

pytest.importorskip("starlette", reason="the playground's server needs the playground extra (starlette)")
pytest.importorskip("httpx", reason="starlette's TestClient needs httpx")


@pytest.fixture
def client():
    from starlette.testclient import TestClient

    from lamina.playground.server import create_app

    with TestClient(create_app(allowed_hosts=["testserver"])) as c:
        yield c
