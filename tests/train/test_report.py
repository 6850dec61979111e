"""The run-folder report: files are read only from inside the run folder, links stay links to
files, and the configuration shows the settings the chosen optimizer really uses."""

import os

import pytest

from lamina.train.report import file_href, run_file, shown_config, write_html_report
from lamina.train.run import OPTIMIZERS, default_config

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


def test_run_file_accepts_only_files_inside_the_run_folder(tmp_path):
    run = tmp_path / "run"
    (run / "sub").mkdir(parents=True)
    (run / "a.png").write_bytes(PNG)
    (tmp_path / "secret.txt").write_text("local secret")
    os.symlink(tmp_path / "secret.txt", run / "leak.png")
    os.symlink(run / "a.png", run / "sub" / "inside.png")  # a link that stays inside is fine
    assert run_file(run, "a.png") == os.path.realpath(run / "a.png")
    assert run_file(run, "sub/inside.png") == os.path.realpath(run / "a.png")
    assert run_file(run, "sub/new.png") == os.path.realpath(run / "sub" / "new.png")  # need not exist yet
    for name, why in [("/etc/hostname", "not a relative path"), ("../secret.txt", "not a relative path"),
                      ("sub/../../secret.txt", "not a relative path"), ("..\\secret.txt", "not a relative path"),
                      ("leak.png", "leads outside the run folder"), ("", "non-empty string"),
                      (3, "non-empty string")]:
        with pytest.raises(ValueError, match=why):
            run_file(run, name, "report")


def test_write_html_report_refuses_paths_leading_out(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "outside.png").write_bytes(PNG)
    with pytest.raises(ValueError, match="write_html_report: '../outside.png' is not a relative path"):
        write_html_report(run, "t", {}, [], [("leak", "../outside.png")])
    (run / "javascript:alert(1).png").write_bytes(PNG)
    html = open(write_html_report(run, "t", {}, [], [("odd name", "javascript:alert(1).png")])).read()
    assert "href='javascript%3Aalert%281%29.png'" in html  # the file's name, percent-quoted: no URL scheme
    assert "href='javascript:" not in html
    assert file_href("sub/a b.png") == "sub/a%20b.png"


def test_shown_config_has_only_the_chosen_optimizers_settings_with_their_real_values():
    base = default_config()
    assert base["momentum"] == 0.9
    shown = {o: shown_config({**base, "optimizer": o}) for o in OPTIMIZERS}
    assert "momentum" not in shown["adam"] and "momentum" not in shown["adamw"] and "momentum" not in shown["nadam"]
    assert shown["sgd"]["momentum"] == 0.9
    assert shown["rmsprop"]["momentum"] == 0  # RMSprop takes momentum, but the run does not pass it on
    assert shown["adamw"]["weight_decay"] == 0.01 and shown["adam"]["weight_decay"] == 0.0
    for o in OPTIMIZERS:
        assert shown[o]["lr"] == base["lr"] and shown[o]["epochs"] == base["epochs"] and shown[o]["optimizer"] == o
    assert shown_config({"model": "x"}) == {"model": "x"}  # no optimizer named: shown as it is
