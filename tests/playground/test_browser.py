"""The playground in a real browser: Playwright driving Debian's Chromium against ``lamina
playground`` on 127.0.0.1. Skipped (with the reason) only outside CI when Playwright or
Chromium is missing; in CI (``CI`` set, ``.ci/run`` installs both) they must run."""

import io
import os
import shutil
import urllib.parse

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _need(ok, what):
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"{what} is missing in CI (.ci/run installs it)")
        pytest.skip(f"{what} is missing: pip install playwright; apt-get install chromium")


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need(False, "Playwright (the Python package)")
    _need(os.path.exists(CHROMIUM), "Debian's chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        yield b
        b.close()


@pytest.fixture
def page(browser, live_server):
    pg = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.base = live_server[0]
    yield pg
    pg.close()
    assert errors == [], errors


def open_page(pg, **state):
    pg.goto(pg.base + ("#" + urllib.parse.urlencode(state) if state else ""))
    pg.wait_for_selector("body[data-ready='1']", timeout=30000)


def text(pg, testid):
    return pg.get_by_test_id(testid).inner_text()


def canvas(pg, testid):
    return pg.get_by_test_id(testid).first.evaluate("c => c.toDataURL()")


def assert_not_blank(png):
    from PIL import Image

    a = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    assert len(np.unique(a, axis=0)) > 50 and a.std() > 10


def set_value(pg, testid, value):
    loc = pg.get_by_test_id(testid)
    loc.fill(str(value))
    loc.dispatch_event("change")


EASY = {"dataset": "circle", "n": 200, "features": "x1^2,x2^2", "hidden": "4", "activations": "tanh",
        "optimizer": "Adam", "lr": 0.03, "batch_size": 10}


def test_loads_plays_and_the_boundary_learns(page):
    open_page(page, **EASY)
    loss0, boundary0 = float(text(page, "train-loss")), canvas(page, "boundary")
    assert text(page, "epoch") == "0" and float(text(page, "test-loss")) > 0
    page.get_by_test_id("play").click()
    page.wait_for_function("Number(document.querySelector('[data-testid=epoch]').textContent) >= 10", timeout=30000)
    page.get_by_test_id("pause").click()
    page.wait_for_timeout(300)
    epoch = text(page, "epoch")
    page.wait_for_timeout(500)
    assert text(page, "epoch") == epoch  # paused: no more epochs arrive
    assert float(text(page, "train-loss")) < 0.8 * loss0
    assert canvas(page, "boundary") != boundary0
    assert page.get_by_test_id("link").count() == 2 * 4 + 4 * 2
    assert_not_blank(page.screenshot(full_page=True))


def test_step_and_reset(page):
    open_page(page, **EASY)
    loss0 = text(page, "train-loss")
    page.get_by_test_id("step").click()
    page.wait_for_function("document.querySelector('[data-testid=epoch]').textContent === '1'")
    assert text(page, "train-loss") != loss0
    page.get_by_test_id("reset").click()
    page.wait_for_function("document.querySelector('[data-testid=epoch]').textContent === '0'")
    assert text(page, "train-loss") == loss0


def test_url_round_trip_restores_the_state(page, browser):
    open_page(page)
    page.get_by_test_id("dataset").select_option("spiral")
    page.wait_for_function("location.hash.includes('dataset=spiral')")
    page.get_by_test_id("optimizer").select_option("RMSprop")
    page.wait_for_function("location.hash.includes('optimizer=RMSprop')")
    set_value(page, "learning-rate", 0.1)
    page.wait_for_function("location.hash.includes('lr=0.1')")
    page.get_by_test_id("add-layer").click()
    page.wait_for_function("document.querySelectorAll('[data-testid^=activation-]').length === 3")
    page.get_by_test_id("activation-2").select_option("prelu")
    page.wait_for_function("location.hash.includes('prelu')")
    url, loss = page.url, text(page, "train-loss")
    other = browser.new_page()
    other.goto(url)
    other.wait_for_selector("body[data-ready='1']")
    assert other.get_by_test_id("dataset").input_value() == "spiral"
    assert other.get_by_test_id("optimizer").input_value() == "RMSprop"
    assert float(other.get_by_test_id("learning-rate").input_value()) == 0.1
    assert other.get_by_test_id("activation-2").input_value() == "prelu"
    assert text(other, "train-loss") == loss  # the same seed: the same network and data
    other.close()


def test_csv_upload_trains(page):
    open_page(page, features="x1^2,x2^2", optimizer="Adam", lr=0.05, hidden="3", activations="tanh")
    rng = np.random.default_rng(1)
    X = rng.uniform(-2, 2, size=(120, 2))
    rows = "x1,x2,label\n" + "".join(f"{a:.3f},{b:.3f},{int(a * a + b * b < 1.5)}\n" for a, b in X)
    page.get_by_test_id("csv-upload").set_input_files({"name": "mine.csv", "mimeType": "text/csv",
                                                       "buffer": rows.encode()})
    page.wait_for_function("location.hash.includes('dataset=csv')")
    loss0 = float(text(page, "train-loss"))
    page.get_by_test_id("play").click()
    page.wait_for_function("Number(document.querySelector('[data-testid=epoch]').textContent) >= 10", timeout=30000)
    page.get_by_test_id("pause").click()
    assert float(text(page, "train-loss")) < loss0
    assert page.get_by_test_id("error").is_hidden()


def test_cnn_explainer_and_conv_explorer(page):
    open_page(page, view="cnn")
    page.wait_for_selector("body[data-runs-loaded='1']")
    page.get_by_test_id("cnn-run").select_option("tiny")
    page.get_by_test_id("cnn-go").click()
    page.wait_for_selector("body[data-cnn-ready='1']", timeout=30000)
    assert page.get_by_test_id("cnn-layer").count() == 14
    page.get_by_test_id("cnn-map").nth(1).click(position={"x": 12, "y": 12})
    page.wait_for_selector("[data-testid=unit-sum]")
    assert "Σ patch·kernel + bias" in text(page, "cnn-unit")
    assert page.get_by_test_id("gradcam").count() == 1 and page.get_by_test_id("cnn-grad").count() > 0
    assert_not_blank(page.screenshot(full_page=True))
    page.get_by_test_id("tab-conv").click()
    set_value(page, "conv-size", 8)
    page.get_by_test_id("conv-stride").fill("2")
    page.wait_for_function("document.querySelector('[data-testid=conv-problems]').textContent.includes('stride does not fit')")
    assert text(page, "conv-formula").endswith("= 3")
