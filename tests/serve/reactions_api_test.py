"""POST /api/reactions: a generated video's summary and timeline, and every refusal (4xx + one JSON line).

Videos are written with OpenCV's VideoWriter (mp4v) from drawn demo faces: a few
seconds at small sizes, so each case costs well under a second of analysis.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient

from fer_keras.constants import CLASS_NAMES
from fer_keras.data.demo import draw_face
from fer_keras.serve.app import create_app
from fer_keras.serve.reactions_api import MAX_VIDEO_SECONDS, _FrameBudget
from fer_keras.serve.uploads import UploadRejected
from tests.model_fixtures import DRAWN, REPO_ROOT, face_photo, jpeg_bytes, running_server, shared_model_folder
from tests.serve.app_test import assert_error

LIMIT = 400_000  # bytes
ARTIFACTS = REPO_ROOT / "test-artifacts"


def write_video(path, seconds: float, fps: float = 10, size=(320, 240), emotions=("happy", "surprise")) -> bytes:
    """An mp4 of one drawn face whose expression changes halfway (to ``emotions[1]``); returns its bytes."""
    import cv2

    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened()
    rng = np.random.default_rng(0)
    faces = [np.asarray(draw_face(e, rng, size=min(150, height - 20), rgb=True))[..., ::-1] for e in emotions]
    for i in range(round(seconds * fps)):
        frame = np.full((height, width, 3), (160, 140, 120), np.uint8)
        face = faces[0] if i < seconds * fps / 2 else faces[1]
        x, y = (width - face.shape[1]) // 2 + (i % 3), (height - face.shape[0]) // 2
        frame[y : y + face.shape[0], x : x + face.shape[1]] = face
        writer.write(frame)
    writer.release()
    return path.read_bytes()


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    model_dir = shared_model_folder(tmp_path_factory, onnx=True)
    with TestClient(create_app(model_dir, runtime="onnx", max_upload_bytes=LIMIT, detector=DRAWN)) as c:
        yield c


@pytest.fixture(scope="module")
def short_video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("video") / "ad.mp4", seconds=3)


def send(client, data: bytes, name="ad.mp4", kind="video/mp4", **fields):
    return client.post("/api/reactions", files={"file": (name, data, kind)}, data=fields)


def test_video_gives_its_summary_and_timeline(client, short_video):
    response = send(client, short_video, fps="4")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["format_version"] == 1 and body["model"]["name"] == "tiny_test_model"
    [source] = body["sources"]
    assert source["kind"] == "video" and source["duration_s"] == pytest.approx(3.0, abs=0.2)
    assert source["frames_sampled"] == pytest.approx(12, abs=1)
    assert len(source["tracks"]) >= 1
    assert set(source["overall"]["share"]) == set(CLASS_NAMES)
    assert sum(source["overall"]["share"].values()) == pytest.approx(1.0, abs=1e-3)
    points = body["timeline"]
    assert len(points) >= source["frames_sampled"] - source["frames_without_face"] > 0
    assert [p["time_s"] for p in points] == sorted(p["time_s"] for p in points)
    assert all(sum(p["probabilities"].values()) == pytest.approx(1.0, abs=1e-3) for p in points)
    assert all(len(p["box"]) == 4 and p["top_emotion"] in CLASS_NAMES for p in points)
    assert "/tmp" not in response.text  # the server's temporary path is not shown to clients
    assert body["groups"] == [] and body["settings"]["fps"] == 4


def test_upload_over_the_limit_is_413(client):
    # Just over the upload limit but inside the multipart slack: refused by the route while streaming.
    assert_error(send(client, b"\0" * (LIMIT + 10)), 413, "upload limit")
    # Far over it: refused from Content-Length before the body is read.
    assert_error(send(client, b"\0" * (LIMIT + 200_000)), 413, "upload limit")


def test_too_long_video_is_413_with_the_limit(client, tmp_path):
    video = write_video(tmp_path / "long.mp4", seconds=MAX_VIDEO_SECONDS + 5, fps=1, size=(64, 48))
    assert len(video) < LIMIT
    assert_error(send(client, video, "long.mp4"), 413, "long.mp4", f"the limit is {MAX_VIDEO_SECONDS:g} s")


@pytest.mark.parametrize(
    "data, name, status, fragment",
    [
        (b"this is not a video at all, just some text " * 20, "notes.mp4", 415, "not a video"),
        (None, "photo.jpg", 415, "this is an image, not a video"),
        (b"", "empty.mp4", 400, "empty"),
    ],
    ids=["text", "image", "empty"],
)
def test_not_a_video_is_a_clear_4xx(client, data, name, status, fragment):
    data = jpeg_bytes(face_photo(("happy",))) if data is None else data
    assert_error(send(client, data, name), status, name, fragment)


def test_truncated_video_is_refused_and_the_server_keeps_serving(client, short_video):
    response = send(client, short_video[: len(short_video) // 3], "cut.mp4")
    # A cut mp4 loses its index (moov atom at the end): OpenCV cannot open it.
    assert response.status_code in (415, 422), response.text
    assert "cut.mp4" in response.json()["error"]
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize("fields", [{"fps": "0"}, {"fps": "abc"}, {"smooth": "-1"}])
def test_bad_fields_are_422(client, short_video, fields):
    assert_error(send(client, short_video, **fields), 422)


def test_a_second_video_meanwhile_is_503_and_the_route_recovers(client, short_video):
    lock = threading.Lock()
    client.app.state.reactions_lock = lock
    with lock:  # as if another request were analysing a video
        assert_error(send(client, short_video), 503, "another video is being analysed")
    assert send(client, short_video, fps="2").status_code == 200


def test_frame_budget_stops_a_video_longer_than_its_header_says():
    budget = _FrameBudget("liar.mp4", fps=5)
    budget.update(budget.limit)
    with pytest.raises(UploadRejected) as err:
        budget.update(1)
    assert err.value.status == 413 and "liar.mp4" in err.value.message


def test_route_is_documented(client):
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/api/reactions"]["post"]
    assert {"200", "400", "413", "415", "422"} <= set(post["responses"])


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent")
def test_video_tab_uploads_and_draws_the_timeline(tmp_path_factory, short_video, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    video = tmp_path / "ad.mp4"
    video.write_bytes(short_video)
    model_dir = shared_model_folder(tmp_path_factory, onnx=True)
    with (
        running_server(create_app(model_dir, runtime="onnx", detector=DRAWN)) as (host, port),
        sync_api.sync_playwright() as p,
    ):
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        problems, external = [], []
        page.on("pageerror", lambda err: problems.append(str(err)))
        page.on(
            "request",
            lambda r: external.append(r.url) if not r.url.startswith(("http://127.0.0.1", "blob:", "data:")) else None,
        )
        page.goto(f"http://{host}:{port}/")
        assert page.is_visible("#photo-panel") and not page.is_visible("#video-panel")
        page.click("#tab-video")
        assert page.is_visible("#video-panel") and not page.is_visible("#photo-panel")
        assert page.is_disabled("#analyze")
        page.set_input_files("#vfile", str(video))
        page.click("#analyze")
        page.wait_for_selector("#vresult:not([hidden])", timeout=60_000)
        assert page.text_content("#vstatus") == ""
        # One stacked layer per emotion per stretch of face, each drawn with a real size.
        emotions = page.eval_on_selector_all("#vtimeline polygon.area", "els => els.map(e => e.dataset.emotion)")
        assert emotions[: len(CLASS_NAMES)] == list(CLASS_NAMES)
        assert page.locator("#vtimeline svg").bounding_box()["width"] > 300
        widths = page.eval_on_selector_all("#vshare .bar", "els => els.map(e => parseFloat(e.style.width))")
        assert len(widths) == len(CLASS_NAMES) and abs(sum(widths) - 100) < 1.0
        assert "frames analysed" in page.text_content("#vfacts")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "serve_video.png"), full_page=True)
        # A file that is not a video: the server's one-line message, shown as an error.
        page.set_input_files("#vfile", files=[{"name": "notes.mp4", "mimeType": "video/mp4", "buffer": b"no video"}])
        page.click("#analyze")
        page.wait_for_selector("#vstatus.error", timeout=30_000)
        assert "not a video" in page.text_content("#vstatus") and page.is_hidden("#vresult")
        browser.close()
    assert problems == [] and external == []
    assert (ARTIFACTS / "serve_video.png").stat().st_size > 10_000
