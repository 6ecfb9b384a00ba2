"""The fer-serve page in headless Chromium: choose a photo, press Predict, see boxes, label and chart.

uvicorn runs in a background thread on a free loopback port. Needs Debian's
/usr/bin/chromium and the playwright Python package; skips cleanly otherwise.
A screenshot of the result is saved to test-artifacts/serve.png.
"""

from __future__ import annotations

import os

import pytest

from fer_keras.constants import CLASS_NAMES
from fer_keras.serve.app import create_app
from tests.model_fixtures import DRAWN, REPO_ROOT, face_photo, running_server, shared_model_folder

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO_ROOT / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent"),
]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    model_dir = shared_model_folder(tmp_path_factory, onnx=True)
    with running_server(create_app(model_dir, runtime="onnx", detector=DRAWN)) as (host, port):
        yield f"http://{host}:{port}/"


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    external = []
    # Everything the page loads must come from the server itself (no CDN, no network).
    page.on(
        "request",
        lambda r: external.append(r.url) if not r.url.startswith(("http://127.0.0.1", "blob:", "data:")) else None,
    )
    yield page
    page.close()
    assert external == []


def test_upload_predict_and_see_faces_label_and_chart(page, server_url, tmp_path):
    photo = tmp_path / "group.jpg"
    face_photo(("happy", "sad", "surprise")).save(photo, quality=92)

    page.goto(server_url)
    page.wait_for_function("document.getElementById('model').textContent.includes('tiny_test_model')")
    assert page.is_disabled("#predict")
    page.set_input_files("#file", str(photo))
    page.wait_for_function("!document.getElementById('predict').disabled")
    page.click("#predict")
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)

    label = page.text_content("#label").strip()
    assert label in CLASS_NAMES
    bars = page.query_selector_all("#chart .bar")
    assert [b.get_attribute("data-class") for b in bars] == list(CLASS_NAMES)
    widths = [float(b.evaluate("el => parseFloat(el.style.width)")) for b in bars]
    assert abs(sum(widths) - 100) < 1.0 and max(widths) > 0
    assert page.text_content("#facenote").startswith("3 faces found")
    assert len(page.query_selector_all("#faces button")) == 3

    # The canvas shows the photo at full size with the boxes drawn on it: the pixel on
    # the first face's left edge has that face's label colour, not the background's.
    box = page.evaluate("state.result.faces[0].box")
    colour = page.evaluate(
        "([x, y]) => Array.from(document.getElementById('canvas').getContext('2d').getImageData(x, y, 1, 1).data)",
        [box[0] + 1, box[1] + box[3] // 2],
    )
    expected = page.evaluate("colour(state.result.faces[0].label)")
    assert "#{:02x}{:02x}{:02x}".format(*colour[:3]) == expected

    # Selecting another face updates the label and the chart.
    page.click("#faces button:nth-child(2)")
    assert page.text_content("#label").strip() == page.evaluate("state.result.faces[1].label")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "serve.png"), full_page=True)


def test_a_bad_file_shows_the_servers_error(page, server_url, tmp_path):
    fake = tmp_path / "notes.jpg"
    fake.write_text("this is not a photo")
    page.goto(server_url)
    page.set_input_files("#file", str(fake))
    page.wait_for_function("!document.getElementById('predict').disabled")
    page.click("#predict")
    page.wait_for_selector("#status.error", timeout=30_000)
    assert "not an image in a supported format" in page.text_content("#status")
    assert page.is_hidden("#result")
