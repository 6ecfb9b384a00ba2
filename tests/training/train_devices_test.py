"""--devices: one run data-parallel over 2 logical CPU devices follows the single-device loss path.

TensorFlow only splits a CPU into logical devices before it initialises them, so every run
here is a fresh ``fer-train`` process (which splits the CPU itself when asked for N > 1
devices without a GPU).

Why the tolerance is what it is: with the same global batch, mirrored training computes
the same update as one device (the batch is split, the gradients summed, BatchNorm
synchronized), so what remains is the float32 summation order of the all-reduce. The run
uses demo_small without its Dropout layer (masks are drawn per replica and cannot match)
and plain SGD at lr 1e-3 (Adam's per-weight normalisation turns rounding-level gradient
differences on near-zero gradients into full-size steps). Measured: the training loss of
the two epochs agrees within 2%; unsynchronized BatchNorm (each replica normalising its half
batch) or a per-replica loss scale move it by more.

Known gap: the validation loss of the 2-device run differed by 5-10% in the same
measurement (BatchNorm's moving statistics under the strategy: precise BN recalibration or
their cross-replica aggregation), so it is not asserted here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fer_keras.training.history import history_path
from tests.conftest import ROOT

LOSS_RTOL = 0.02


def _spec(tmp_path) -> str:
    """demo_small without its Dropout layer: dropout masks are drawn per replica, so they cannot match."""
    spec = json.loads((ROOT / "architectures" / "demo_small.json").read_text())
    spec["layers"] = [layer for layer in spec["layers"] if layer["type"] != "Dropout"]
    path = tmp_path / "demo_small_nodropout.json"
    path.write_text(json.dumps(spec))
    return str(path)


def _train(tmp_path, data, tag: str, *extra: str) -> dict:
    folder = tmp_path / tag
    command = [sys.executable, "-m", "fer_keras.cli.train", "--arch", _spec(tmp_path),
               "--data", str(data), "--epochs", "2", "--batch-size", "16", "--no-augment", "--seed", "7",
               "--optimizer", "sgd", "--learning-rate", "0.001", "--history", str(folder / "h"), "--runs-dir", str(folder / "r"), "--name", "run",
               *extra]  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "NO_ALBUMENTATIONS_UPDATE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(history_path(folder / "h", "run").read_text())
    record["stderr"] = done.stderr
    return record


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    """Demo data with 16 train images per class: 112 = 7 batches of 16, every batch split 8 + 8."""
    from fer_keras.data.demo import make_demo_dataset

    root = tmp_path_factory.mktemp("devices") / "data"
    make_demo_dataset(root, {"train": 16, "valid": 8, "test": 1}, seed=1)
    return root


def test_two_devices_follow_the_single_device_loss_path_and_resume(tmp_path, demo_data):
    one = _train(tmp_path, demo_data, "one")
    two = _train(tmp_path, demo_data, "two", "--devices", "2")
    assert one["status"] == two["status"] == "done"
    assert two["config"]["devices"] == 2 and "devices" not in one["config"]
    assert two["history"]["loss"] == pytest.approx(one["history"]["loss"], rel=LOSS_RTOL)
    assert two["history"]["lr"] == one["history"]["lr"]  # same global batch, same learning rate

    # Checkpoints and resume are unchanged: the 2-device run continues on 2 devices from last.keras.
    more = _train(tmp_path, demo_data, "two", "--devices", "2", "--epochs", "3")
    assert "resuming at epoch 3" in more["stderr"]
    assert more["status"] == "done" and more["epochs_done"] == 3
    assert more["history"]["loss"][:2] == two["history"]["loss"]


def test_devices_flag_is_validated_before_anything_runs(capsys):
    from fer_keras.cli.train import main

    assert main(["--arch", "a/m.json", "--data", "d", "--devices", "two", "--dry-run"]) == 1
    assert "'devices' must be a device count in [1, 1024] or 'all'; got 'two'" in capsys.readouterr().err
    assert main(["--arch", "a/m.json", "--data", "d", "--devices", "all", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["devices"] == "all"


def test_a_cpu_cannot_be_split_once_tensorflow_started():
    code = (
        "import tensorflow as tf\n"
        "from fer_keras.errors import FerError\n"
        "from fer_keras.training.devices import device_names\n"
        "assert len(device_names('all')) == 1\n"  # this initialises TensorFlow's devices
        "try:\n    device_names(2)\nexcept FerError as err:\n    print(err)\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("devices: 2 CPU devices asked, 1 available: TensorFlow had already started")
