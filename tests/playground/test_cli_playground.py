"""``lamina playground``: the command line and a real server on 127.0.0.1."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from lamina.cli import main


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port, runs="runs"):
    """``python -m lamina playground --no-browser`` in a subprocess, once it answers."""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen([sys.executable, "-m", "lamina", "playground", "--no-browser", "--port", str(port),
                             "--runs", str(runs)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/meta", timeout=1).read()
            return proc
        except (TimeoutError, urllib.error.URLError, ConnectionError):
            if proc.poll() is not None:
                raise RuntimeError(proc.stdout.read())
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("lamina playground did not start")


def test_bad_port_is_one_line(capsys):
    assert main(["playground", "--port", "70000", "--no-browser"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "lamina playground: --port must be in [0, 65535], got 70000"


def test_port_in_use_is_one_line(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert main(["playground", "--port", str(s.getsockname()[1]), "--no-browser"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lamina playground: cannot serve on 127.0.0.1:") and "\n" not in err


def test_serves_on_loopback_only(tmp_path):
    port = free_port()
    proc = start_server(port, tmp_path)
    try:
        meta = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/meta", timeout=5).read())
        assert "Newton" in meta["optimizers"] and "prelu" in meta["activations"]
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
        assert 'data-testid="play"' in page
        addresses = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
        for address in addresses - {"127.0.0.1"}:
            if address.startswith("127."):
                continue
            with socket.socket() as s:
                s.settimeout(2)
                assert s.connect_ex((address, port)) != 0, f"the playground answers on {address}"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert f"http://127.0.0.1:{port}/" in out
