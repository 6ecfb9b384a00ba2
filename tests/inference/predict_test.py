"""Decoding inputs, batch prediction over files, CSV/JSON/annotation and the fer-predict CLI."""

from __future__ import annotations

import csv
import io
import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from fer_keras.cli.predict import main
from fer_keras.constants import CLASS_NAMES
from fer_keras.inference.faces import Box
from fer_keras.inference.inputs import UnreadableImage, open_image
from fer_keras.inference.predict import annotate, classify, collect_files, csv_columns, predict_files
from fer_keras.inference.predictor import Predictor
from fer_keras.inference.recognizer import EmotionRecognizer, FaceResult
from tests.model_fixtures import (
    DRAWN,
    DRAWN_CLI,
    REPO_ROOT,
    face_photo,
    jpeg_bytes,
    shared_model_folder,
    subprocess_env,
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return shared_model_folder(tmp_path_factory, onnx=True)


@pytest.fixture(scope="module")
def predictor(model_dir):
    return Predictor.load(model_dir, runtime="onnx")


@pytest.fixture
def photos(tmp_path):
    """A folder with a 1-face photo, a 3-face photo in a subfolder, a face-less image and a non-image."""
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    face_photo(("happy",)).save(root / "one.jpg")
    face_photo(("happy", "sad", "surprise")).save(root / "sub" / "three.png")
    Image.new("L", (60, 40), 128).save(root / "blank.png")
    (root / "notes.txt").write_text("not an image")
    return root


def png_header(width: int, height: int) -> bytes:
    """A valid PNG whose header claims ``width`` x ``height`` (a decompression-bomb shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")
    )


# --- open_image -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason", "text"),
    [
        (b"", "empty", "upload: empty file (0 bytes)"),
        (b"hello, not an image", "unsupported", "not an image in a supported format"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n", "unsupported", "not an image in a supported format"),
        (jpeg_bytes(face_photo())[:3000], "corrupt", "cannot decode the image"),
        (png_header(9000, 8000), "too_large", "image is 9000x8000 = 72000000 pixels; the limit is 64000000"),
        (png_header(100_000, 100_000), "too_large", "exceeds limit"),
    ],
    ids=["empty", "text", "eps", "truncated", "bomb", "huge-bomb"],
)
def test_open_image_rejects_bad_input_with_a_reason(data, reason, text):
    with pytest.raises(UnreadableImage) as err:
        open_image(data)
    assert err.value.reason == reason
    assert text in str(err.value) and "\n" not in str(err.value)


def test_open_image_applies_exif_orientation():
    img = Image.new("RGB", (80, 40), (255, 0, 0))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", exif=exif.tobytes())
    assert open_image(buffer.getvalue()).size == (40, 80)


def test_open_image_reads_paths_and_reports_missing_files(tmp_path):
    face_photo().save(tmp_path / "a.png")
    assert open_image(tmp_path / "a.png").size == (640, 480)
    with pytest.raises(UnreadableImage, match="file not found"):
        open_image(tmp_path / "missing.png")


# --- classify / predict_files ------------------------------------------------------------


def test_classify_returns_one_result_per_face(predictor):
    images = [face_photo(("happy", "sad", "surprise")), Image.new("L", (50, 50))]
    [three, blank] = classify(predictor, images, detector=DRAWN)
    assert len(three) == 3 and all(f.detected for f in three)
    assert [f.box.area for f in three] == sorted((f.box.area for f in three), reverse=True)
    for face in three + blank:
        assert list(face.probabilities) == list(CLASS_NAMES)
        assert face.label == max(face.probabilities, key=face.probabilities.get)
        assert abs(sum(face.probabilities.values()) - 1) < 1e-4
    assert blank == [FaceResult(Box(0, 0, 50, 50), False, blank[0].label, blank[0].probabilities)]


def test_no_detect_classifies_the_whole_image(predictor):
    [[face]] = classify(predictor, [face_photo(("happy", "sad"))], detect=False)
    assert face.box == Box(0, 0, 640, 480) and not face.detected


def test_collect_files_recurses_and_filters(photos, tmp_path):
    files, missing = collect_files([photos, photos / "one.jpg", tmp_path / "nope"])
    names = [name for _, name in files]
    assert names == ["blank.png", "one.jpg", "sub/three.png", "one.jpg"]
    assert missing == [(str(tmp_path / "nope"), "not found")]


def test_predict_files_in_small_batches_skips_unreadable_files(predictor, photos):
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    files, _ = collect_files([photos])
    results, failures = predict_files(EmotionRecognizer.from_predictor(predictor, detector=DRAWN), files, batch_size=2)
    assert [len(r.faces) for r in results] == [1, 1, 3]
    assert [r.source.rsplit("/", 1)[-1] for r in results] == ["blank.png", "one.jpg", "three.png"]
    assert len(failures) == 1 and failures[0][0].endswith("broken.jpg")


def test_annotate_draws_a_box_in_the_label_colour():
    img = Image.new("RGB", (200, 200), (255, 255, 255))
    face = FaceResult(Box(50, 60, 80, 80), True, "happy", dict.fromkeys(CLASS_NAMES, 0.0) | {"happy": 1.0})
    out = np.asarray(annotate(img, [face]))
    assert tuple(out[100, 50]) == (0x2C, 0xA0, 0x2C)  # left edge of the box, PALETTE["happy"]
    assert tuple(out[100, 100]) == (255, 255, 255)  # inside the box: untouched


# --- the fer-predict CLI -----------------------------------------------------------------


def test_cli_single_image_prints_the_emotion(model_dir, photos, capsys):
    assert main([str(photos / "one.jpg"), "--model", str(model_dir), "--runtime", "onnx"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Emotion: ") and out[0].split(": ")[1] in CLASS_NAMES
    assert out[1].startswith("(face at x=")
    assert [line.split()[0] for line in out[2:9]] == list(CLASS_NAMES)


def test_cli_csv_has_one_row_per_face(model_dir, photos, tmp_path, capsys):
    out = tmp_path / "results.csv"
    code = main([str(photos), "--model", str(model_dir), "--runtime", "onnx", "--out", str(out), "-q", *DRAWN_CLI])
    assert code == 0
    err = capsys.readouterr().err
    assert err.count("notes.txt") == 0  # not an image extension: never considered
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == csv_columns(CLASS_NAMES)
    by_file = {}
    for row in rows:
        by_file.setdefault(row["file"].rsplit("/", 1)[-1], []).append(row)
    assert {k: len(v) for k, v in by_file.items()} == {"blank.png": 1, "one.jpg": 1, "three.png": 3}
    blank = by_file["blank.png"][0]
    assert blank["detected"] == "no" and [blank[k] for k in "xywh"] == ["0", "0", "60", "40"]
    assert all(r["detected"] == "yes" for r in by_file["three.png"])
    assert [r["face"] for r in by_file["three.png"]] == ["1", "2", "3"]
    for row in rows:
        probs = {c: float(row[c]) for c in CLASS_NAMES}
        assert row["emotion"] == max(probs, key=probs.get)


def test_cli_json_output_and_unreadable_files(model_dir, photos, tmp_path, capsys):
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    code = main([str(photos), "--model", str(model_dir), "--runtime", "onnx", "--json", "-q", *DRAWN_CLI])
    assert code == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["model"]["name"] == "tiny_test_model" and report["model"]["runtime"] == "onnx"
    assert [len(f["faces"]) for f in report["files"]] == [1, 1, 3]
    face = report["files"][2]["faces"][0]
    assert set(face) == {"box", "detected", "label", "probabilities"} and face["detected"] is True
    assert [s["file"].rsplit("/", 1)[-1] for s in report["skipped"]] == ["broken.png"]
    # Reported once, on stderr, naming the file.
    assert captured.err.count("broken.png") == 1 and "warning:" in captured.err


def test_cli_no_detect(model_dir, photos, tmp_path):
    out = tmp_path / "r.json"
    assert (
        main([str(photos), "--model", str(model_dir), "--runtime", "onnx", "--no-detect", "--out", str(out), "-q"]) == 0
    )
    report = json.loads(out.read_text())
    assert [len(f["faces"]) for f in report["files"]] == [1, 1, 1]
    assert all(not f["faces"][0]["detected"] for f in report["files"])


def test_cli_annotate_writes_marked_copies(model_dir, photos, tmp_path):
    out_dir = tmp_path / "annotated"
    code = main([str(photos), "--model", str(model_dir), "--runtime", "onnx", "--annotate", str(out_dir), "-q"])
    assert code == 0
    written = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file())
    assert written == ["blank.png", "one.jpg", "sub/three.png"]
    original = np.asarray(Image.open(photos / "sub" / "three.png").convert("RGB"), dtype=np.int16)
    marked = np.asarray(Image.open(out_dir / "sub" / "three.png"), dtype=np.int16)
    assert marked.shape == original.shape and np.abs(marked - original).max() > 100


def test_cli_missing_model_is_one_line_error(photos, tmp_path, capsys):
    code = main([str(photos / "one.jpg"), "--model", str(tmp_path / "no_model")])
    err = capsys.readouterr().err
    assert code == 1
    assert (
        err
        == f"error: {tmp_path / 'no_model'}: model folder not found (train and export a model first, or pass --model DIR)\n"
    )


def test_cli_nothing_readable_is_an_error(model_dir, tmp_path, capsys):
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    assert main([str(tmp_path / "bad.jpg"), "--model", str(model_dir), "--runtime", "onnx"]) == 1
    err = capsys.readouterr().err
    assert "bad.jpg: not an image" in err and err.strip().endswith("could be read")
    assert main([str(tmp_path / "empty_dir_that_is_missing"), "--model", str(model_dir)]) == 1


def test_cli_dry_run_checks_the_model_but_classifies_nothing(model_dir, photos, capsys):
    assert main([str(photos), "--model", str(model_dir), "--dry-run"]) == 0
    assert "would classify 3 image file(s) with tiny_test_model" in capsys.readouterr().out


def test_cli_onnx_runtime_never_imports_tensorflow(model_dir, photos, tmp_path):
    out = tmp_path / "r.csv"
    code = (
        "import sys\n"
        "from fer_keras.cli.predict import main\n"
        f"rc = main([{str(photos)!r}, '--model', {str(model_dir)!r}, '--runtime', 'onnx', '--out', {str(out)!r}, '-q',"
        f" *{DRAWN_CLI!r}])\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
        "print('rc', rc, 'imported:', bad[:5])\n"
        "sys.exit(rc or (1 if bad else 0))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(out.read_text().splitlines()) == 1 + 5  # header + 5 faces


def test_cli_runs_as_a_module(model_dir, photos):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fer_keras.cli.predict",
            str(photos / "one.jpg"),
            "--model",
            str(model_dir),
            "--runtime",
            "onnx",
        ],
        cwd=REPO_ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Emotion: ")


def test_inference_applies_the_crop_rule_recorded_in_the_metadata(model_dir, tmp_path):
    """What fer-predict, fer-serve and fer-eval feed the model is the crop the metadata names."""
    import shutil

    from fer_keras.constants import METADATA_FILE
    from fer_keras.inference.faces import crop_faces, find_faces
    from fer_keras.inference.labelled_eval import evaluate, load_eval_set
    from fer_keras.model.crop import CropRule

    folder = shutil.copytree(model_dir, tmp_path / "model")
    meta = json.loads((folder / METADATA_FILE).read_text())
    meta["crop"] = {"margin": 0.35, "square": True, "fill": "edge"}
    (folder / METADATA_FILE).write_text(json.dumps(meta))
    predictor = Predictor.load(folder, runtime="onnx")
    assert predictor.info.crop == CropRule(margin=0.35, square=True, fill="edge")

    seen = []
    original = predictor.predict_images
    predictor.predict_images = lambda images: seen.extend(images) or original(images)
    photo = face_photo(("happy",))
    classify(predictor, [photo])
    [expected] = crop_faces(photo, find_faces(photo), CropRule(margin=0.35))
    assert len(seen) == 1 and seen[0].size == expected.size
    assert np.array_equal(np.asarray(seen[0]), np.asarray(expected))
    # fer-eval runs the same Predictor, so it crops by the same rule.
    (tmp_path / "set" / "happy").mkdir(parents=True)
    photo.save(tmp_path / "set" / "happy" / "a.png")
    faces = evaluate(predictor, load_eval_set(tmp_path / "set", detect_faces=True))["faces"]
    assert faces["detected"] == 1 and faces["crop"] == predictor.info.crop.to_dict()


def test_cli_default_model_is_the_shipped_default_and_detector_is_threaded(model_dir, photos, monkeypatch, capsys):
    monkeypatch.setenv("FER_KERAS_MODEL", str(model_dir))  # fer_keras.model.shipped: the env var wins
    assert main([str(photos / "one.jpg"), "--dry-run"]) == 0
    assert "with tiny_test_model (onnx)" in capsys.readouterr().out  # runtime auto: the folder has model.onnx
    assert main([str(photos / "one.jpg"), "--detector", "haar", "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == {"name": "tiny_test_model", "version": report["model"]["version"], "runtime": "onnx"}
    assert report["files"][0]["faces"][0]["detected"] is True
    with pytest.raises(SystemExit):
        main([str(photos / "one.jpg"), "--detector", "nope"])
