"""The TensorFlow-free install: fer-predict, fer-eval, fer-serve and the Python API run the shipped ONNX model
in a process where TensorFlow, Keras and the training libraries cannot be imported at all."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.model_fixtures import REPO_ROOT, subprocess_env

SHIPPED = REPO_ROOT / "models" / "best_model"
# What the [train] extra brings; the core install has none of them.
BLOCKED = ("tensorflow", "keras", "albumentations", "pandas", "matplotlib", "seaborn", "sklearn")

SCRIPT = r"""
import importlib.abc, io, json, sys
from pathlib import Path

BLOCKED = set(sys.argv[1].split(","))
OUT = Path(sys.argv[2])

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None

sys.meta_path.insert(0, Block())

import fer_keras  # cheap: the API is imported on first access
assert not {"cv2", "onnxruntime", "PIL"} & set(sys.modules), sorted(sys.modules)

import numpy as np
from PIL import Image
from fer_keras.data.demo import draw_face

rng = np.random.default_rng(0)
photo = Image.new("RGB", (320, 240), (120, 140, 160))
photo.paste(draw_face("happy", rng, size=128, rgb=True), (96, 56))
photo.save(OUT / "face.png")
for i, emotion in enumerate(["happy", "sad"]):
    (OUT / "set" / emotion).mkdir(parents=True)
    draw_face(emotion, rng, size=96).save(OUT / "set" / emotion / f"{i}.png")

# fer-predict with every default: the shipped model, runtime auto.
from fer_keras.cli.predict import main as fer_predict
assert fer_predict([str(OUT / "face.png")]) == 0

# The Python API.
from fer_keras import EmotionRecognizer
recognizer = EmotionRecognizer()
result = recognizer.analyze(str(OUT / "face.png"))
assert recognizer.predictor.runtime == "onnx" and result[0].detected, result
print("api", result[0].label)

# fer-eval, whole images and with face detection.
from fer_keras.cli.eval import main as fer_eval
assert fer_eval(["--data", str(OUT / "set"), "--out", str(OUT / "eval"), "-q"]) == 0
assert fer_eval(["--data", str(OUT / "set"), "--out", str(OUT / "eval"), "--detect-faces", "-q"]) == 0
assert json.loads((OUT / "eval" / "set.json").read_text())["n"] == 2

# fer-serve --runtime onnx: the command, then the app it builds answering /health and a prediction.
from fer_keras.cli.serve import main as fer_serve
assert fer_serve(["--runtime", "onnx", "--dry-run"]) == 0
from fastapi.testclient import TestClient
from fer_keras.serve.app import create_app
with TestClient(create_app(runtime="onnx")) as client:
    assert client.get("/health").json()["model"]["runtime"] == "onnx"
    answer = client.post("/api/predict", files={"file": ("face.png", (OUT / "face.png").read_bytes(), "image/png")})
    assert answer.status_code == 200 and answer.json()["faces"][0]["detected"], answer.text

loaded = sorted({m.split(".")[0] for m in sys.modules} & BLOCKED)
assert not loaded, loaded
print("ok")
"""


@pytest.mark.skipif(not (SHIPPED / "model.onnx").is_file(), reason="the shipped model has no model.onnx")
def test_cli_and_api_run_the_onnx_model_without_tensorflow_or_training_libraries(tmp_path):
    env = subprocess_env()
    env.pop("FER_KERAS_MODEL", None)  # the shipped default
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, ",".join(BLOCKED), str(tmp_path)],
        cwd=tmp_path,  # not the repository: the default model is found wherever the command runs
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("Emotion: ") and proc.stdout.rstrip().endswith("ok"), proc.stdout
