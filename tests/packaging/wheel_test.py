"""The package as users receive it: built (sdist, then the wheel from it), installed in a fresh venv.

One module-scoped build and venv (about a minute on 2 idle cores, seconds of which are the
installs: uv links from its cache). The venv has only the core install first (no TensorFlow)
and then the ``[serve]`` extra; every command runs from an empty folder with a clean
environment, so neither the checkout nor the developer's venv can leak in.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import tarfile
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from fer_keras.constants import BEST_MODEL_DIR, CLASS_NAMES, WEIGHTS_FILE
from fer_keras.model.shipped import PACKAGED_FILES, PACKAGED_MODEL
from tests.model_fixtures import face_photo
from tests.packaging.install import REPO_ROOT, build_dist, clean_env, install, make_venv

TIMEOUT_S = 180  # one command in the fresh venv (cold start of onnxruntime/OpenCV on a busy machine)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("dist") / "dist"
    out.mkdir()
    return build_dist(out)


@pytest.fixture(scope="module")
def venv(tmp_path_factory, dist) -> Path:
    """A fresh venv with the wheel's core install only."""
    path = tmp_path_factory.mktemp("venv") / "core"
    install(make_venv(path), [str(dist[0])])
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """An empty folder (not the checkout) holding one generated photo with one face."""
    folder = tmp_path_factory.mktemp("user")
    face_photo(("happy",)).save(folder / "face.jpg", quality=92)
    return folder


def _run(venv: Path, workdir: Path, *cmd: str) -> subprocess.CompletedProcess:
    exe = venv / "bin" / cmd[0]
    return subprocess.run(
        [str(exe), *cmd[1:]], cwd=workdir, env=clean_env(venv), capture_output=True, text=True, timeout=TIMEOUT_S
    )


def _python(venv: Path, workdir: Path, code: str) -> subprocess.CompletedProcess:
    return _run(venv, workdir, "python", "-c", code)


def test_wheel_carries_the_shipped_model_byte_for_byte(dist):
    wheel, _ = dist
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        packaged = {n.rsplit("/", 1)[1] for n in names if n.startswith(f"fer_keras/{PACKAGED_MODEL}/")}
        assert packaged == set(PACKAGED_FILES), f"wheel's fer_keras/{PACKAGED_MODEL}: {sorted(packaged)}"
        assert WEIGHTS_FILE not in packaged  # model.keras holds the same weights
        for name in PACKAGED_FILES:
            source = (REPO_ROOT / BEST_MODEL_DIR / name).read_bytes()
            packed = zf.read(f"fer_keras/{PACKAGED_MODEL}/{name}")
            # The packaged copy and models/best_model must never silently disagree.
            assert _sha256(packed) == _sha256(source), f"{name}: the wheel's copy differs from {BEST_MODEL_DIR}"
        assert any(n.startswith("fer_keras/serve/static/") for n in names), "the page's files ship as package data"
        entry_points = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    for command in ("fer-predict", "fer-eval", "fer-serve", "fer-train", "fer-reactions", "fer-ensemble"):
        assert f"{command} = " in entry_points


def test_sdist_carries_what_the_wheel_is_built_from(dist):
    _, sdist = dist
    with tarfile.open(sdist) as tf:
        names = {name.split("/", 1)[1] for name in tf.getnames() if "/" in name}
    assert {f"{BEST_MODEL_DIR}/{name}" for name in PACKAGED_FILES} <= names
    assert {"setup.py", "pyproject.toml", "requirements-lock.txt"} <= names
    assert f"{BEST_MODEL_DIR}/{WEIGHTS_FILE}" not in names


def test_core_install_has_no_tensorflow_and_not_the_checkout(venv, workdir):
    done = _python(venv, workdir, "import tensorflow")
    assert done.returncode != 0 and "No module named 'tensorflow'" in done.stderr
    done = _python(venv, workdir, "import fer_keras, keras")
    assert "No module named 'keras'" in done.stderr
    done = _python(venv, workdir, "import fer_keras.model.shipped as s; print(s.default_model_dir())")
    assert done.returncode == 0, done.stderr
    model_dir = Path(done.stdout.strip())
    assert model_dir.is_relative_to(venv) and model_dir.name == PACKAGED_MODEL, model_dir


def test_fer_predict_in_an_empty_folder_prints_an_emotion(venv, workdir):
    done = _run(venv, workdir, "fer-predict", "face.jpg")
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith("Emotion: ") and first.split(": ", 1)[1] in CLASS_NAMES, done.stdout


def test_python_api_in_the_core_install(venv, workdir):
    code = (
        "import json; from fer_keras import EmotionRecognizer\n"
        "result = EmotionRecognizer().analyze('face.jpg')\n"
        "print(json.dumps({'faces': len(result), 'label': result[0].label, 'p': result[0].probabilities}))"
    )
    done = _python(venv, workdir, code)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["faces"] == 1 and out["label"] in CLASS_NAMES
    assert list(out["p"]) == list(CLASS_NAMES) and abs(sum(out["p"].values()) - 1) < 1e-3


def test_a_training_command_names_its_extra_in_one_line(venv, workdir):
    done = _run(venv, workdir, "fer-report", "--no-model", "--out", "report.html")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: fer-report needs the [train] extra (No module named 'pandas'): pip install 'fer_keras[train]'"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_extra_answers_health_and_one_prediction(venv, dist, workdir):
    # Last in this file: it adds the [serve] extra to the core venv (which still has no TensorFlow).
    install(venv / "bin" / "python", [f"{dist[0]}[serve]"])
    port = _free_port()
    log_path = workdir / "fer-serve.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [str(venv / "bin" / "fer-serve"), "--runtime", "onnx", "--port", str(port)],
            cwd=workdir,
            env=clean_env(venv),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + TIMEOUT_S
        status = None
        while time.monotonic() < deadline and server.poll() is None and status != 200:
            try:
                status = httpx.get(f"{base}/health", timeout=5).status_code
            except httpx.TransportError:
                time.sleep(0.5)
        assert status == 200, f"no healthy /health (exit {server.poll()}):\n{log_path.read_text()[-2000:]}"
        with open(workdir / "face.jpg", "rb") as f:
            answer = httpx.post(f"{base}/api/predict", files={"file": ("face.jpg", f, "image/jpeg")}, timeout=60)
        assert answer.status_code == 200, answer.text
        faces = answer.json()["faces"]
        assert len(faces) == 1 and faces[0]["label"] in CLASS_NAMES
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert "No module named 'tensorflow'" in _python(venv, workdir, "import tensorflow").stderr
