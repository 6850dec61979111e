"""``lamina playground``: the command line and a real server on 127.0.0.1."""

import json
import socket
import urllib.request

from lamina.cli import main


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


def test_serves_on_loopback_only(live_server):
    base, proc = live_server
    port = int(base.rsplit(":", 1)[1].strip("/"))
    meta = json.loads(urllib.request.urlopen(base + "api/meta", timeout=5).read())
    assert "Newton" in meta["optimizers"] and "prelu" in meta["activations"]
    page = urllib.request.urlopen(base, timeout=5).read().decode()
    assert 'data-testid="play"' in page
    addresses = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    for address in sorted(a for a in addresses if not a.startswith("127.")):
        with socket.socket() as s:
            s.settimeout(2)
            assert s.connect_ex((address, port)) != 0, f"the playground answers on {address}"
    assert proc.poll() is None
