"""The full report (every section filled) opened from disk in headless Chromium.

Checks that it needs nothing but the file (no request leaves file:// or data:),
logs no console error, and that every embedded image decodes. A full-page
screenshot is saved to test-artifacts/report.png. Needs Debian's /usr/bin/chromium
and the playwright Python package; skips cleanly otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fer_keras.report.synthetic import (
    class_centres,
    dump,
    write_brightness_model,
    write_grey_images,
    write_synthetic_histories,
)

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ORDER = ["happy", "angry", "sad"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent"),
]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, dict]:
    from fer_keras.report import build_report

    root = tmp_path_factory.mktemp("browser")
    data, balanced = root / "data", root / "data-balanced"
    c = class_centres(3)
    for k, name in enumerate(ORDER):
        write_grey_images(data / "test" / name, [c[k], c[k] + 0.03, c[(k + 1) % 3]], prefix=name)
        write_grey_images(data / "train" / name, [c[k]] * 2, prefix=name)
    model = write_brightness_model(root / "model", ORDER, metadata={"config": {"data": str(data)}, "source_run": None})
    history = root / "history"
    write_synthetic_histories(
        history,
        n_runs=12,
        epochs=8,
        variants=("augment", "balanced"),
        failed=1,
        interrupted=1,
        garbled=1,
        data=str(balanced),
    )
    dump(
        balanced / "manifest.json",
        {"counts_before": {"happy": 2, "angry": 2, "sad": 2}, "counts_after": {"happy": 4, "angry": 4, "sad": 4}},
    )
    reports = root / "reports"
    dump(
        reports / "dataset_stats.json",
        {
            "counts": {"train": {n: 2 for n in ORDER}, "test": {n: 3 for n in ORDER}},
            "color": {"train": {"grayscale": 6, "rgb": 0}},
        },
    )
    dump(reports / "clean_report.json", {"counts": {"blank": {"train": 1, "total": 1}}})
    dump(
        reports / "eval" / "fer2013.json",
        {"dataset": "fer2013", "accuracy": 0.6, "macro_f1": 0.5, "per_class_recall": {"happy": 0.9}},
    )
    summary = build_report(history, reports / "report.html", model_dir=model, progress=False)
    assert summary["model"]["available"], summary["model"]["message"]
    return reports / "report.html", summary


@pytest.fixture(scope="module")
def page(report):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        problems, requests = [], []
        page.on("console", lambda msg: problems.append(msg.text) if msg.type in ("error", "warning") else None)
        page.on("pageerror", lambda err: problems.append(str(err)))
        page.on("request", lambda req: requests.append(req.url))
        page.goto(report[0].as_uri(), wait_until="load")
        page.problems, page.requests = problems, requests
        yield page
        browser.close()


def test_no_console_errors_and_no_network(page):
    assert page.problems == []
    assert [u for u in page.requests if not u.startswith(("file:", "data:"))] == []


def test_every_embedded_image_decodes(page, report):
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    images = page.evaluate(
        "Array.from(document.images).map(i => ({src: i.src.slice(0, 22), w: i.naturalWidth, ok: i.complete}))"
    )
    # Class counts, balancing, 6 grid plots, 4 evaluation plots, the variants figure, and one thumbnail
    # per mistake (each class has one image at the next class's brightness).
    assert len(images) == 13 + 3
    assert all(img["src"].startswith("data:image/png;base64") for img in images)
    assert [img for img in images if not (img["ok"] and img["w"] > 0)] == []
    sparklines = page.locator("svg.spark").count()
    assert sparklines == 2 * report[1]["ranking"]["n_runs"]


def test_sections_show_model_order_and_screenshot(page):
    headers = page.locator("h2").all_inner_texts()
    assert headers == [
        "1 Dataset",
        "2 Ranking by max val_accuracy",
        "3 Grid",
        "4 Best model on the test split",
        "5 Comparisons",
        "6 Run details",
    ]
    report_rows = page.locator("#model ~ table").first.locator("td.l").all_inner_texts()
    assert report_rows[:3] == ORDER  # classification report rows in the model's order, not sorted
    assert page.locator("details.run").count() == 13  # 12 runs + 1 unreadable file
    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = false)")
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000
