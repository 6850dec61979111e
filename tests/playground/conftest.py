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


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(runs_dir):
    """``python -m lamina playground --no-browser`` in a subprocess: ``(base URL, process)`` once it answers."""
    import os
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen([sys.executable, "-m", "lamina", "playground", "--no-browser", "--port", str(port),
                             "--runs", str(runs_dir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            text=True)
    base = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(base + "api/meta", timeout=1).read()
            break
        except (TimeoutError, urllib.error.URLError, ConnectionError):
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError("lamina playground did not start: " + proc.stdout.read()) from None
            time.sleep(0.2)
    yield base, proc
    proc.terminate()
    proc.communicate(timeout=20)
