"""``lamina explain`` on a run folder someone sent: its ``explain.json`` (or a symbolic link in
it) must not make the report embed files from outside the folder; ``--out`` stays inside too."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from lamina.cli import main
from lamina.vis import explain_cli

SECRET = b"local secret: host name, keys, ..."


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> str:
    run = tmp_path_factory.mktemp("sent") / "run"
    assert main(["train", "--epochs", "1", "--run-dir", str(run), "--quiet", "--no-report"]) == 0
    return str(run)


@pytest.fixture
def sent(trained, tmp_path) -> tuple[str, str]:
    """A copy of the run folder, and a local file outside it that must never reach its report."""
    run = str(tmp_path / "run")
    shutil.copytree(trained, run)
    secret = tmp_path / "secret.txt"
    secret.write_bytes(SECRET)
    return run, str(secret)


def _leaked(run: str) -> bool:
    import base64

    report = os.path.join(run, "report.html")
    return os.path.exists(report) and base64.b64encode(SECRET)[:24].decode() in open(report).read()


def _manifest(run: str, *files: str) -> None:
    with open(os.path.join(run, "explain.json"), "w") as f:
        json.dump([{"file": name, "caption": "x", "method": "saliency", "notes": []} for name in files], f)


@pytest.mark.parametrize("bad", ["ABS", "../secret.txt", "sub/../../secret.txt", "link.png"])
def test_a_crafted_manifest_embeds_nothing_from_outside(sent, bad, capsys):
    run, secret = sent
    os.symlink(secret, os.path.join(run, "link.png"))
    _manifest(run, "explain_filters.png", secret if bad == "ABS" else bad)
    with pytest.raises(ValueError, match="only the run folder's own files are read") as e:
        explain_cli.explain(run, "filters")
    assert "explain.json, entry 1: " in str(e.value) and "remove that entry" in str(e.value)
    with pytest.raises(ValueError, match="only the run folder's own files"):
        explain_cli.update_report(run)
    assert main(["explain", run, "--method", "saliency"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("explain: ") and "only the run folder's own files" in err
    assert not _leaked(run) and not os.path.exists(os.path.join(run, "explain_saliency.png"))


def test_malformed_manifests_are_clear_errors(sent):
    run, _ = sent
    path = os.path.join(run, "explain.json")
    for text, why in [("{", "not valid JSON"), ('{"file": "a.png"}', "not a list of figures"),
                      ('["a.png"]', "entry 0 is not a figure"), ('[{"file": "a.png", "caption": 3}]', "text caption")]:
        with open(path, "w") as f:
            f.write(text)
        with pytest.raises(ValueError, match=why):
            explain_cli.explain(run, "filters")


def test_symlinked_report_or_config_is_not_read(sent):
    run, secret = sent
    os.symlink(secret, os.path.join(run, "config.json.tmp"))
    os.replace(os.path.join(run, "config.json.tmp"), os.path.join(run, "config.json"))
    with pytest.raises(ValueError, match="'config.json' leads outside the run folder"):
        explain_cli.explain(run, "filters")  # no report.html yet: it would be made from config.json
    os.remove(os.path.join(run, "config.json"))
    os.symlink(secret, os.path.join(run, "report.html"))
    with pytest.raises(ValueError, match="'report.html' leads outside the run folder"):
        explain_cli.explain(run, "filters")
    assert open(secret, "rb").read() == SECRET


def test_out_must_name_a_file_inside_the_run_folder(sent, tmp_path):
    run, _ = sent
    for out in [str(tmp_path / "elsewhere.png"), "../elsewhere.png"]:
        with pytest.raises(ValueError, match="--out"):
            explain_cli.explain(run, "filters", out=out)
    assert not os.path.exists(tmp_path / "elsewhere.png")
    written, _ = explain_cli.explain(run, "maximize", steps=3, out="pics/max")  # a sub-folder, no extension
    assert written[:2] == [os.path.join(run, "pics/max"), os.path.join(run, "pics/max_scores.png")]
    assert {e["file"] for e in json.load(open(os.path.join(run, "explain.json")))} == {"pics/max",
                                                                                      "pics/max_scores.png"}
    report = open(os.path.join(run, "report.html")).read()
    assert "href='pics/max'" in report and "href='pics/max_scores.png'" in report


def test_an_image_with_nan_pixels_is_an_error(sent, tmp_path):
    run, _ = sent
    x = np.zeros((1, 8, 8), np.float32)
    x[0, 2, 2] = np.inf
    np.save(tmp_path / "inf.npy", x)
    with pytest.raises(ValueError, match="explain: the model output is not finite .* the input holds NaN or inf"):
        explain_cli.explain(run, "gradcam", image=str(tmp_path / "inf.npy"))
