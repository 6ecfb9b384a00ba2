"""The reaction report from a small hand-built fer-reactions output folder (no model, no video).

Two ads in two groups, two viewers of ad A with segments, a photo set, thumbnails
under peaks/: the HTML is self-contained, has every figure, and renders in
headless Chromium (screenshot: test-artifacts/reaction_report.png).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re

import pytest

from fer_keras.constants import CLASS_NAMES, REACTIONS_REPORT_FILE, REACTIONS_SUMMARY_FILE, TIMELINE_FILE
from fer_keras.errors import FerError
from fer_keras.reactions.report import read_timeline, write_reaction_report
from tests.model_fixtures import REPO_ROOT, face_photo

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO_ROOT / "test-artifacts"
FPS = 5
DURATION = 12.0
SEGMENTS = [("intro", 0.0, 4.0, "neutral"), ("joke", 4.0, 8.0, "happy"), ("twist", 8.0, 12.0, "surprise")]


def _probs(emotion: str, strength: float) -> dict[str, float]:
    rest = (1 - strength) / (len(CLASS_NAMES) - 1)
    return {e: strength if e == emotion else rest for e in CLASS_NAMES}


def _share(counts: dict[str, int]) -> dict[str, float]:
    total = sum(counts.values()) or 1
    return {e: counts.get(e, 0) / total for e in CLASS_NAMES}


def _video_source(name: str, group: str, tracks: int, script, out) -> tuple[dict, list[dict]]:
    """A video source whose viewers show ``script(t)`` -> (emotion, strength); a gap without a face at 5-6 s."""
    rows, per_track = [], []
    overall_counts: dict[str, int] = {}
    for track in range(1, tracks + 1):
        counts: dict[str, int] = {}
        times = [i / FPS for i in range(int(DURATION * FPS)) if not 5.0 <= i / FPS < 6.0]
        best: dict[str, tuple[float, float]] = {}
        for t in times:
            emotion, strength = script(t)
            probs = _probs(emotion, strength - 0.05 * (track - 1))
            top = max(probs, key=probs.get)
            counts[top] = counts.get(top, 0) + 1
            if probs[top] > best.get(top, (0, -1))[1]:
                best[top] = (t, probs[top])
            rows.append(
                {
                    "source": name,
                    "kind": "video",
                    "time_s": f"{t:.2f}",
                    "frame": int(t * 25),
                    "track_id": track,
                    "x": 100 * track,
                    "y": 80,
                    "w": 120,
                    "h": 120,
                    "detected": "yes",
                    **{e: f"{p:.4f}" for e, p in probs.items()},
                    "top_emotion": top,
                }
            )
        for e, n in counts.items():
            overall_counts[e] = overall_counts.get(e, 0) + n
        per_track.append(
            {
                "track_id": track,
                "first_s": times[0],
                "last_s": times[-1],
                "samples": len(times),
                "share": _share(counts),
                "mean": _share(counts),
                "peaks": {},
            }
        )
    # Frames without a face get a row too (summary.py): no track, no box, no probabilities.
    rows += [
        {
            "source": name,
            "kind": "video",
            "time_s": f"{t:.2f}",
            "frame": int(t * 25),
            "track_id": "",
            "x": "",
            "y": "",
            "w": "",
            "h": "",
            "detected": "no",
            **{e: "" for e in CLASS_NAMES},
            "top_emotion": "",
        }
        for t in (5.0, 5.2, 5.4, 5.6, 5.8)
    ]
    peaks = {}
    for i, (emotion, strength) in enumerate([("happy", 0.9), ("surprise", 0.85), ("neutral", 0.8)]):
        thumb = f"peaks/{name}_{emotion}.jpg"
        face_photo((emotion,), size=(96, 96), face_size=90, seed=i).save(out / thumb)
        peaks[emotion] = [
            {"time_s": 2.0 + 4 * i, "frame": 50 + 100 * i, "probability": strength, "thumbnail": thumb, "track_id": 1}
        ]
    peaks |= {e: [] for e in CLASS_NAMES if e not in peaks}
    segments = [
        {"name": s, "start_s": a, "end_s": b, "share": _probs(e, 0.8), "mean": _probs(e, 0.6), "samples": 20}
        for s, a, b, e in SEGMENTS
    ]
    source = {
        "name": name,
        "kind": "video",
        "path": f"videos/{name}.mp4",
        "group": group,
        "duration_s": DURATION,
        "frames_sampled": int(DURATION * FPS),
        "frames_without_face": FPS,
        "faces": sum(t["samples"] for t in per_track),
        "tracks": per_track,
        "overall": {"share": _share(overall_counts), "mean": _share(overall_counts), "peaks": peaks},
        "segments": segments,
        "warnings": [],
    }
    return source, rows


def make_output_folder(out):
    """A fer-reactions output folder by hand: summary.json, timeline.csv, peaks/*.jpg."""
    (out / "peaks").mkdir(parents=True)
    funny = lambda t: next((e, 0.7) for s, a, b, e in SEGMENTS if a <= t < b)  # noqa: E731
    flat = lambda t: ("neutral", 0.6) if t < 10 else ("sad", 0.5)  # noqa: E731
    ad_a, rows_a = _video_source("ad_a", "funny", 2, funny, out)
    ad_b, rows_b = _video_source("ad_b", "serious", 1, flat, out)
    ad_b["segments"] = []
    ad_b["warnings"] = ["no face in 5 of 60 sampled frames"]
    thumb = "peaks/s03-t1-sad-1.jpg"
    face_photo(("sad",), size=(96, 96), face_size=90).save(out / thumb)
    photo_peak = {"time_s": None, "frame": "street/corner_7.jpg", "track_id": 1, "probability": 0.7, "thumbnail": thumb}
    photos = {
        "name": "street_photos",
        "kind": "photo",
        "path": "photos/",
        "group": "serious",
        "duration_s": None,
        "frames_sampled": 4,
        "frames_without_face": 1,
        "faces": 3,
        "tracks": [],
        "overall": {"share": _probs("sad", 0.5), "mean": _probs("sad", 0.4), "peaks": {"sad": [photo_peak]}},
        "segments": [],
        "warnings": [],
    }
    summary = {
        "format_version": 1,
        "model": {"name": "tiny_test_model", "version": "abc123", "runtime": "onnx"},
        "settings": {
            "fps": FPS,
            "smooth": 1.0,
            "smooth_method": "ema",
            "detector": "haar",
            "align": "times.csv",
            "segments": [{"name": s, "start_s": a, "end_s": b} for s, a, b, _ in SEGMENTS],
        },
        "sources": [ad_a, ad_b, photos],
        "groups": [
            {
                "name": "funny",
                "sources": ["ad_a"],
                "samples": 110,
                "share": ad_a["overall"]["share"],
                "mean": ad_a["overall"]["mean"],
            },
            {
                "name": "serious",
                "sources": ["ad_b", "street_photos"],
                "samples": 58,
                "share": ad_b["overall"]["share"],
                "mean": ad_b["overall"]["mean"],
            },
        ],
        "warnings": [],
    }
    (out / REACTIONS_SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
    with open(out / TIMELINE_FILE, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows_a[0]))
        writer.writeheader()
        writer.writerows(rows_a + rows_b)
    return summary


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("reactions") / "out"
    summary = make_output_folder(out)
    path = write_reaction_report(out)
    return path, path.read_text(encoding="utf-8"), summary


def test_report_is_written_beside_the_outputs_and_self_contained(report):
    path, html, _ = report
    assert path.name == REACTIONS_REPORT_FILE and path.is_file()
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html), "no network reference"
    assert "<script" not in html
    assert html.count('<svg class="fig timeline"') == 3  # ad_a: 2 viewers; ad_b: 1; photos: none
    assert html.count('<svg class="fig comparison"') == 1
    assert html.count('src="data:image/jpeg;base64,') == 3 + 3 + 1  # 3 peaks per video, 1 for the photos
    assert "corner_7.jpg · 70%" in html  # a photo's moment is named by its file, not a time
    assert "segments" not in html.split("<footer>")[1]  # the settings line shows scalars only


def test_timeline_stacks_every_emotion_and_breaks_at_the_faceless_gap(report):
    html = report[1]
    first = html.split('<svg class="fig timeline"')[1].split("</svg>")[0]
    areas = re.findall(r'<polygon class="area" data-emotion="(\w+)"', first)
    # Two stretches of face (0-5 s and 6-12 s), each with one layer per emotion.
    assert areas == list(CLASS_NAMES) * 2
    assert [m for m in re.findall(r'<g class="segment">.*?<text[^>]*>(\w+)</text>', first)] == [
        "intro",
        "joke",
        "twist",
    ]


def test_comparison_names_the_happiest_and_most_surprised_group(report):
    html = report[1]
    assert re.search(r"<b>Happiest:</b> funny", html)
    assert re.search(r"<b>Most surprised:</b> funny", html)
    assert re.search(r"<b>Saddest:</b> serious", html)
    assert "Reaction per part of the ad" in html


def test_regenerated_report_is_identical(report, tmp_path):
    path, html, summary = report
    # From the folder alone (the summary read back from summary.json) the page is the same.
    assert write_reaction_report(path.parent, summary).read_text(encoding="utf-8") == html


def test_thumbnails_outside_the_folder_are_not_embedded(tmp_path):
    out = tmp_path / "out"
    summary = make_output_folder(out)
    secret = tmp_path / "secret.jpg"
    secret.write_bytes((out / "peaks" / "ad_a_happy.jpg").read_bytes())
    summary["sources"][0]["overall"]["peaks"]["happy"][0]["thumbnail"] = "../secret.jpg"
    html = write_reaction_report(out, summary).read_text(encoding="utf-8")
    assert html.count('src="data:image/jpeg;base64,') == 6
    assert "no picture" in html


def test_missing_timeline_still_gives_a_report(tmp_path):
    out = tmp_path / "out"
    make_output_folder(out)
    (out / TIMELINE_FILE).unlink()
    html = write_reaction_report(out).read_text(encoding="utf-8")
    assert "no face was found in this video" in html  # empty charts, but the summary parts are there
    assert "Happiest:" in html


@pytest.mark.parametrize(
    "summary, message",
    [({"format_version": 2, "sources": []}, "format_version: expected 1"), ({"format_version": 1}, "sources")],
)
def test_unreadable_summary_is_one_clear_error(tmp_path, summary, message):
    (tmp_path / REACTIONS_SUMMARY_FILE).write_text(json.dumps(summary))
    with pytest.raises(FerError, match=message):
        write_reaction_report(tmp_path)
    assert not (tmp_path / REACTIONS_REPORT_FILE).exists()


def test_read_timeline_skips_rows_without_a_face(tmp_path):
    path = tmp_path / TIMELINE_FILE
    header = [
        "source",
        "kind",
        "time_s",
        "frame",
        "track_id",
        "x",
        "y",
        "w",
        "h",
        "detected",
        *CLASS_NAMES,
        "top_emotion",
    ]
    rows = [
        ["v", "video", "0.4", "10", "1", 1, 2, 3, 4, "yes", *["0.1"] * 6, "0.4", "surprise"],
        ["v", "video", "0.2", "5", "", "", "", "", "", "no", *[""] * 7, ""],
        ["v", "video", "0.0", "0", "1", 1, 2, 3, 4, "yes", *["0.1"] * 6, "0.4", "surprise"],
        ["p", "photo", "", "a.jpg", "1", 1, 2, 3, 4, "yes", *["0.1"] * 6, "0.4", "surprise"],
    ]
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    timeline = read_timeline(path)
    assert list(timeline) == ["v"] and [t for t, _ in timeline["v"]["1"]] == [0.0, 0.4]
    assert math.isclose(sum(timeline["v"]["1"][0][1].values()), 1.0)


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent")
def test_report_renders_in_chromium_with_its_figures_and_screenshot(report):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        problems, requests = [], []
        page.on("console", lambda msg: problems.append(msg.text) if msg.type in ("error", "warning") else None)
        page.on("pageerror", lambda err: problems.append(str(err)))
        page.on("request", lambda req: requests.append(req.url))
        page.goto(report[0].as_uri(), wait_until="load")
        assert problems == []
        assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
        assert page.locator("h2").all_inner_texts() == [
            "How to read this report",
            "Which group got which reaction",
            "ad_a",
            "ad_b",
            "street_photos",
        ]
        # Every figure is laid out with a real size, every thumbnail decodes.
        sizes = page.evaluate(
            "Array.from(document.querySelectorAll('svg.fig')).map(s => s.getBoundingClientRect().width)"
        )
        assert len(sizes) == 3 + 1 + 2 * 3 and min(sizes) > 100
        images = page.evaluate("Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
        assert images == [True] * 7
        areas = page.locator("svg.timeline polygon.area[data-emotion='happy']")
        assert areas.count() == 2 * 3 and areas.first.bounding_box()["width"] > 0
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "reaction_report.png"), full_page=True)
        browser.close()
    assert (ARTIFACTS / "reaction_report.png").stat().st_size > 10_000


def test_weak_emotions_get_no_strongest_moments(tmp_path):
    out = tmp_path / "out"
    summary = make_output_folder(out)
    weak = {"time_s": 1.0, "frame": 25, "track_id": 1, "probability": 0.07, "thumbnail": "peaks/ad_a_happy.jpg"}
    summary["sources"][0]["overall"]["peaks"]["fear"] = [weak]  # fear is never the top emotion in ad_a
    html = write_reaction_report(out, summary).read_text(encoding="utf-8")
    ad_a = html.split('id="source-1"')[1].split('id="source-2"')[0]
    assert re.findall(r"<h4>(\w+)</h4>", ad_a) == ["happy", "neutral", "surprise"]


def test_a_real_run_writes_the_report_last(tmp_path_factory, tmp_path):
    # The library's run calls write_reaction_report on its finished folder: the report follows its real schema.
    from fer_keras.reactions.analyze import Settings
    from fer_keras.reactions.run import plan_reactions, run_reactions
    from tests.model_fixtures import shared_model_folder
    from tests.reactions.videos import segment_video

    model_dir = shared_model_folder(tmp_path_factory, onnx=True)
    (tmp_path / "ads" / "ad_a").mkdir(parents=True)
    (tmp_path / "ads" / "ad_b").mkdir(parents=True)
    segment_video(tmp_path / "ads" / "ad_a" / "v1.mp4", [("surprise", 1.0), ("angry", 1.0)], fps=5)
    segment_video(tmp_path / "ads" / "ad_b" / "v2.mp4", [("angry", 2.0)], fps=5)
    plan = plan_reactions([tmp_path / "ads"], tmp_path / "out", settings=Settings(fps=2), model_dir=model_dir,
                          runtime="onnx")  # fmt: skip
    out = run_reactions(plan).out
    html = (out / REACTIONS_REPORT_FILE).read_text(encoding="utf-8")
    assert html.count('<svg class="fig timeline"') == 2 and '<svg class="fig comparison"' in html
    assert "Which group got which reaction" in html and "ads/ad_a/v1.mp4" in html
    assert 'src="data:image/jpeg;base64,' in html  # the peaks/ thumbnails, embedded
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html)
