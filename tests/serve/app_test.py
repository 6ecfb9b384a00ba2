"""The fer-serve API: predictions, every bad-input case (4xx + JSON, server keeps serving), the page."""

from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from fer_keras.cli.serve import main as serve_main
from fer_keras.constants import CLASS_NAMES
from fer_keras.errors import FerError
from fer_keras.serve.app import STATIC_DIR, create_app
from tests.inference.predict_test import png_header
from tests.model_fixtures import (
    DRAWN,
    DRAWN_CLI,
    REPO_ROOT,
    face_photo,
    jpeg_bytes,
    png_bytes,
    shared_model_folder,
    subprocess_env,
)

LIMIT = 300_000  # bytes: small, so the over-limit cases stay cheap


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return shared_model_folder(tmp_path_factory, onnx=True)


@pytest.fixture(scope="module")
def client(model_dir):
    # The keras runtime: the one that needs the lock and the thread pool.
    with TestClient(create_app(model_dir, runtime="keras", max_upload_bytes=LIMIT, detector=DRAWN)) as c:
        yield c


def upload(client, data: bytes, name="photo.jpg", kind="image/jpeg"):
    return client.post("/api/predict", files={"file": (name, data, kind)})


def assert_error(response, status: int, *fragments: str):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"] and "\n" not in body["error"] and body["error"]
    for fragment in fragments:
        assert fragment in body["error"]


def test_health_names_the_model(client):
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["model"]["name"] == "tiny_test_model" and body["model"]["runtime"] == "keras"
    assert body["model"]["class_names"] == list(CLASS_NAMES)
    assert re.fullmatch(r"[0-9a-f]{12}", body["model"]["version"])


def test_predict_one_face(client):
    response = upload(client, jpeg_bytes(face_photo(("happy",))))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"faces", "image", "model", "time_ms"}
    [face] = body["faces"]
    x, y, w, h = face["box"]
    assert face["detected"] is True and 0 <= x < x + w <= 640 and 0 <= y < y + h <= 480
    assert list(face["probabilities"]) == list(CLASS_NAMES)
    assert face["label"] == max(face["probabilities"], key=face["probabilities"].get)
    assert abs(sum(face["probabilities"].values()) - 1) < 1e-4
    assert body["image"] == {"width": 640, "height": 480}
    assert body["model"]["name"] == "tiny_test_model" and body["time_ms"] > 0


def test_predict_several_faces_largest_first(client):
    body = upload(client, png_bytes(face_photo(("happy", "sad", "surprise"))), "group.png", "image/png").json()
    faces = body["faces"]
    assert len(faces) == 3 and all(f["detected"] for f in faces)
    areas = [f["box"][2] * f["box"][3] for f in faces]
    assert areas == sorted(areas, reverse=True)


def test_no_face_classifies_the_whole_image(client):
    [face] = upload(client, png_bytes(Image.new("RGB", (120, 90), "gray")), "wall.png", "image/png").json()["faces"]
    assert face["detected"] is False and face["box"] == [0, 0, 120, 90]


BAD_UPLOADS = {
    "empty": (b"", 400, "empty file"),
    "not-an-image": (b"just some text\n" * 20, 415, "not an image"),
    "truncated": (jpeg_bytes(face_photo())[:4000], 422, "cannot decode"),
    "pixel-bomb": (png_header(9000, 8000), 413, "9000x8000"),
    "huge-pixel-bomb": (png_header(200_000, 200_000), 413, "exceeds limit"),
    "over-size-limit": (b"\xff\xd8" + b"\0" * (LIMIT + 70_000), 413, "upload limit"),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_bad_uploads_get_a_4xx_json_error_and_the_server_keeps_serving(client, case):
    data, status, fragment = BAD_UPLOADS[case]
    assert_error(upload(client, data, name=f"{case}.jpg"), status, fragment)
    assert client.get("/health").status_code == 200
    assert upload(client, jpeg_bytes(face_photo())).status_code == 200


def test_over_limit_without_content_length_is_cut_off_while_reading(client):
    def chunks():
        for _ in range(20):
            yield b"x" * 50_000

    response = client.post(
        "/api/predict", content=chunks(), headers={"content-type": "multipart/form-data; boundary=xyz"}
    )
    assert "content-length" not in response.request.headers  # chunked: counted while reading
    assert_error(response, 413, "upload limit")
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize(
    ("kwargs", "status", "fragment"),
    [
        ({}, 422, "'file'"),
        ({"data": {"file": "a string, not a file"}}, 422, "'file'"),
        ({"files": {"other": ("a.jpg", b"123", "image/jpeg")}}, 422, "'file'"),
        ({"content": b"{}", "headers": {"content-type": "application/json"}}, 422, "'file'"),
        ({"content": b"--xyz\r\ngarbage", "headers": {"content-type": "multipart/form-data; boundary=xyz"}}, 4, ""),
    ],
    ids=["no-body", "string-field", "wrong-field", "json-body", "broken-multipart"],
)
def test_malformed_requests(client, kwargs, status, fragment):
    response = client.post("/api/predict", **kwargs)
    if status == 4:  # whatever the parser says, a 4xx with a JSON error
        assert 400 <= response.status_code < 500
        status = response.status_code
    assert_error(response, status, fragment)
    assert client.get("/health").status_code == 200


def test_unknown_routes_and_methods_are_json_errors(client):
    assert_error(client.get("/api/nope"), 404, "Not Found")
    assert_error(client.get("/api/predict"), 405, "Method Not Allowed")


def test_batch_reports_each_file(client):
    files = [
        ("files", ("one.jpg", jpeg_bytes(face_photo(("happy",))), "image/jpeg")),
        ("files", ("notes.txt", b"hello", "text/plain")),
        ("files", ("three.png", png_bytes(face_photo(("sad", "happy", "fear"))), "image/png")),
        ("files", ("empty.jpg", b"", "image/jpeg")),
    ]
    response = client.post("/api/predict/batch", files=files)
    assert response.status_code == 200
    items = response.json()
    assert [i["file"] for i in items] == ["one.jpg", "notes.txt", "three.png", "empty.jpg"]
    assert [len(i["faces"] or []) for i in items] == [1, 0, 3, 0]
    assert items[1]["error"].startswith("notes.txt: not an image") and items[3]["error"].endswith(
        "empty file (0 bytes)"
    )
    assert items[0]["error"] is None and items[0]["model"]["name"] == "tiny_test_model"


def test_batch_with_too_many_files(client):
    files = [("files", (f"{i}.jpg", b"x", "image/jpeg")) for i in range(17)]
    assert_error(client.post("/api/predict/batch", files=files), 400, "Maximum number of files is 16")


def test_concurrent_requests_get_the_sequential_answers(client):
    photos = [jpeg_bytes(face_photo((e,), seed=i)) for i, e in enumerate(["happy", "sad", "fear", "angry"] * 2)]
    expected = [upload(client, p).json()["faces"] for p in photos]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda p: upload(client, p).json()["faces"], photos))
    assert got == expected


def test_page_and_assets_are_served_without_external_urls(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for asset in ("static/app.js", "static/style.css"):
        assert f'"{asset}"' in page.text
        assert client.get(f"/{asset}").status_code == 200
    script = client.get("/static/app.js").text
    assert 'postFile("api/predict"' in script and 'fetch("health")' in script  # relative URLs only
    for file in STATIC_DIR.iterdir():
        text = file.read_text()
        # No CDN, no absolute URL: the page must work offline and behind a path prefix.
        assert not re.search(r"https?://|//cdn|fetch\(\"/", text), file.name


def test_openapi_docs(client):
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/api/predict", "/api/predict/batch", "/health"} <= set(schema["paths"])
    assert {"400", "413", "415", "422"} <= set(schema["paths"]["/api/predict"]["post"]["responses"])


def test_create_app_validates_its_arguments(model_dir, tmp_path):
    with pytest.raises(FerError, match="model folder not found"):
        create_app(tmp_path / "missing")
    with pytest.raises(FerError, match="'runtime' must be one of"):
        create_app(model_dir, runtime="tflite")
    with pytest.raises(FerError, match="'max_upload_bytes' must be >= 1"):
        create_app(model_dir, max_upload_bytes=0)


def test_onnx_server_answers_without_importing_tensorflow(model_dir):
    code = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "from fer_keras.serve.app import create_app\n"
        "from tests.model_fixtures import face_photo, jpeg_bytes\n"
        f"with TestClient(create_app({str(model_dir)!r}, runtime='onnx')) as c:\n"
        "    r = c.post('/api/predict', files={'file': ('a.jpg', jpeg_bytes(face_photo()), 'image/jpeg')})\n"
        "    assert r.status_code == 200 and r.json()['model']['runtime'] == 'onnx', r.text\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
        "print('imported:', bad[:5])\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=90
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cli_missing_model_is_one_line(tmp_path, capsys):
    assert serve_main(["--model", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "model folder not found" in err


def test_cli_dry_run_and_argument_checks(model_dir, capsys):
    assert serve_main(["--model", str(model_dir), "--port", "8123", "--dry-run"]) == 0
    assert "would serve" in capsys.readouterr().out
    assert serve_main(["--model", str(model_dir), "--port", "70000", "--dry-run"]) == 1
    assert "'--port' must be <= 65535" in capsys.readouterr().err
    assert serve_main(["--model", str(model_dir), "--max-upload-mb", "0", "--dry-run"]) == 1


def test_cli_serves_over_http(model_dir):
    """The real thing: fer-serve in a subprocess, answered over loopback, then stopped."""
    import socket
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fer_keras.cli.serve",
            "--model",
            str(model_dir),
            "--runtime",
            "onnx",
            "--port",
            str(port),
            "-q",
            *DRAWN_CLI,
        ],
        cwd=REPO_ROOT,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        assert health.json()["model"]["runtime"] == "onnx"
        response = httpx.post(
            f"http://127.0.0.1:{port}/api/predict",
            files={"file": ("a.jpg", jpeg_bytes(face_photo(("happy", "sad"))), "image/jpeg")},
            timeout=30,
        )
        assert response.status_code == 200 and len(response.json()["faces"]) == 2
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_the_web_api_answers_as_the_python_api(model_dir):
    """One inference path: the same bytes give the same faces through /api/predict and EmotionRecognizer."""
    from fer_keras.inference.recognizer import EmotionRecognizer

    data = jpeg_bytes(face_photo(("happy", "sad")))
    app = create_app(model_dir, max_upload_bytes=LIMIT)  # runtime auto: the folder has model.onnx
    with TestClient(app) as c:
        body = c.post("/api/predict", files={"file": ("a.jpg", data, "image/jpeg")}).json()
        batch = c.post("/api/predict/batch", files=[("files", ("a.jpg", data, "image/jpeg"))] * 2).json()
    assert body["model"]["runtime"] == "onnx" and app.state.recognizer.predictor.runtime == "onnx"
    expected = [face.to_dict() for face in EmotionRecognizer(model_dir).analyze(data)]
    assert body["faces"] == expected and [item["faces"] for item in batch] == [expected, expected]


def test_no_detect_and_the_detector_reach_the_recognizer(model_dir, capsys):
    app = create_app(model_dir, runtime="onnx", detect=False, detector="haar")
    assert (app.state.recognizer.detect, app.state.recognizer.detector) == (False, "haar")
    with TestClient(app) as c:
        [face] = c.post("/api/predict", files={"file": ("a.png", png_bytes(face_photo()), "image/png")}).json()["faces"]
    assert face["box"] == [0, 0, 640, 480] and not face["detected"]
    with pytest.raises(FerError, match="'detector' must be one of"):
        create_app(model_dir, detector="nope")
    assert serve_main(["--model", str(model_dir), "--detector", "haar", "--dry-run"]) == 0
    assert f"would serve {model_dir} (onnx)" in capsys.readouterr().out
