"""One training run end to end on tiny generated data."""

import json
from dataclasses import replace

import numpy as np
import pytest

from fer_keras.constants import BEST_CHECKPOINT_FILE, FINAL_MODEL_FILE, LAST_CHECKPOINT_FILE, RUN_CONFIG_FILE
from fer_keras.errors import FerError
from fer_keras.training.config import resolve_config
from fer_keras.training.history import history_path, read_history
from fer_keras.training.train import learning_rate_at, train


def _config(tmp_path, spec, data, **extra):
    return resolve_config(
        {
            "arch": str(spec),
            "data": str(data),
            "epochs": 1,
            "batch_size": 16,
            "history_dir": str(tmp_path / "h"),
            "runs_dir": str(tmp_path / "r"),
            **extra,
        }  # fmt: skip
    )


def test_one_epoch_writes_history_checkpoints_and_a_model_that_predicts(tmp_path, tiny_spec, tiny_data):
    import keras

    config = _config(tmp_path, tiny_spec, tiny_data, optimizer="sgd", color_mode="grayscale")
    record = train(config, quiet=True)
    assert record["status"] == "done"
    saved = read_history(history_path(tmp_path / "h", "tiny_sgd_grayscale_16_augment"))
    assert saved["epochs_done"] == 1 and saved["status"] == "done"
    assert set(saved["history"]) >= {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_seconds"}
    assert len(saved["history"]["val_accuracy"]) == 1
    assert saved["class_names"] == ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    assert saved["config"]["learning_rate"] == 0.01 and saved["versions"]["keras"]
    folder = tmp_path / "r" / config.name
    for name in (BEST_CHECKPOINT_FILE, LAST_CHECKPOINT_FILE, FINAL_MODEL_FILE, RUN_CONFIG_FILE):
        assert (folder / name).exists(), name
    assert json.loads((folder / RUN_CONFIG_FILE).read_text())["optimizer"] == "sgd"
    model = keras.models.load_model(folder / FINAL_MODEL_FILE)
    probs = model.predict(np.full((2, 48, 48, 1), 128.0, np.float32), verbose=0)
    assert probs.shape == (2, 7) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    # Not a single temp file is left behind by the atomic writes.
    assert not [p for p in tmp_path.rglob("*.tmp")] and not [p for p in tmp_path.rglob(".*.keras")]


def test_epoch_lines_say_the_time_left_until_the_last(tmp_path, tiny_spec, tiny_data):
    lines = []
    config = _config(tmp_path, tiny_spec, tiny_data, epochs=2, augment=False)
    train(config, log=lines.append, progress=False)
    epochs = [line for line in lines if " epoch " in line]
    assert len(epochs) == 2, lines
    assert epochs[0].endswith(" min left)") and "epoch 1/2" in epochs[0]  # rounds up to ~1 min, never "~0 min"
    assert epochs[1].endswith("s)") and "left" not in epochs[1]


@pytest.mark.parametrize(
    ("name", "cls", "lr"), [("sgd", "SGD", 0.01), ("rmsprop", "RMSprop", 0.001), ("adam", "Adam", 0.001)]
)
def test_the_optimizer_named_is_the_optimizer_used(tmp_path, tiny_spec, tiny_data, name, cls, lr):
    # The reference project compiled adam whatever optimizer it named.
    import keras

    config = _config(tmp_path, tiny_spec, tiny_data, optimizer=name, augment=False)
    train(config, quiet=True)
    model = keras.models.load_model(tmp_path / "r" / config.name / LAST_CHECKPOINT_FILE)
    assert type(model.optimizer).__name__ == cls
    assert model.optimizer.get_config()["learning_rate"] == pytest.approx(lr)
    if name == "sgd":
        assert model.optimizer.get_config()["momentum"] == 0.9 and model.optimizer.get_config()["nesterov"]


def test_corrupt_image_is_skipped_and_reported(tmp_path, tiny_spec, tiny_data, capsys):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    bad = data / "train" / "happy" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    record = train(_config(tmp_path, tiny_spec, data), quiet=True)
    assert record["status"] == "done"
    err = capsys.readouterr().err
    assert err.count(str(bad)) == 1 and "skipped unreadable image" in err


def test_finished_run_is_not_retrained_and_changed_config_is_refused(tmp_path, tiny_spec, tiny_data):
    config = _config(tmp_path, tiny_spec, tiny_data, augment=False)
    first = train(config, quiet=True)
    again = train(config, quiet=True)
    assert again["started_at"] == first["started_at"]
    with pytest.raises(FerError, match="different config .*learning_rate: 0.001 vs 0.5"):
        train(replace(config, learning_rate=0.5), quiet=True)
    more = train(replace(config, epochs=2), quiet=True)  # more epochs: resumes from epoch 2
    assert more["epochs_done"] == 2 and len(more["history"]["loss"]) == 2


def test_missing_split_is_a_one_line_error(tmp_path, tiny_spec):
    (tmp_path / "d" / "train" / "happy").mkdir(parents=True)
    with pytest.raises(FerError) as info:
        train(_config(tmp_path, tiny_spec, tmp_path / "d"), quiet=True)
    assert "empty class folder" in str(info.value)


def test_cosine_schedule_with_warmup():
    values = {"arch": "a.json", "data": "d", "learning_rate": 1.0, "warmup_epochs": 2, "epochs": 12}
    config = resolve_config({**values, "lr_schedule": "cosine"})
    lrs = [learning_rate_at(config, e) for e in range(12)]
    assert lrs[0] == 0.5 and lrs[1] == 1.0 and lrs[2] == 1.0
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:])) and lrs[-1] < 0.05


def _raise_on_constant(name):
    raise AssertionError(f"bare {name} in a JSON artifact")


def _nan_from_epoch_2(monkeypatch):
    """Make the learning rate NaN from epoch 2 on: the weights turn NaN, then the loss does."""
    from fer_keras.training import train as train_module

    monkeypatch.setattr(train_module, "learning_rate_at", lambda config, epoch: 0.01 if epoch == 0 else float("nan"))


def test_nan_loss_stops_the_run_as_failed_naming_the_epoch(tmp_path, tiny_spec, tiny_data, monkeypatch):
    import keras

    _nan_from_epoch_2(monkeypatch)
    config = _config(tmp_path, tiny_spec, tiny_data, optimizer="sgd", epochs=4, lr_schedule="cosine", augment=False)
    with pytest.raises(FerError) as info:
        train(config, quiet=True)
    [message] = info.value.problems
    assert message.startswith(f"{config.name}: ") and "loss became nan at epoch 2" in message
    path = history_path(tmp_path / "h", config.name)
    saved = json.loads(path.read_text(), parse_constant=_raise_on_constant)
    assert saved["status"] == "failed" and saved["error"] == message and saved["finished_at"]
    # Epoch 2 never finished: the history and last.keras stay at epoch 1, so nothing NaN is kept.
    assert saved["epochs_done"] == 1 and all(len(values) == 1 for values in saved["history"].values())
    folder = tmp_path / "r" / config.name
    assert not (folder / FINAL_MODEL_FILE).exists()
    last = keras.models.load_model(folder / LAST_CHECKPOINT_FILE)
    assert all(np.isfinite(w).all() for w in last.get_weights())
    for artifact in folder.glob("*.json"):
        json.loads(artifact.read_text(), parse_constant=_raise_on_constant)


def test_fer_train_exits_1_with_one_error_line_on_nan_loss(tmp_path, tiny_spec, tiny_data, monkeypatch, capsys):
    from fer_keras.cli.train import main

    _nan_from_epoch_2(monkeypatch)
    argv = ["--arch", str(tiny_spec), "--data", str(tiny_data), "--optimizer", "sgd", "--epochs", "3"]
    argv += ["--batch-size", "16", "--lr-schedule", "cosine", "--no-augment", "--name", "nan_run", "-q"]
    argv += ["--history", str(tmp_path / "h"), "--runs-dir", str(tmp_path / "r")]
    assert main(argv) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: nan_run: loss became nan at epoch 2"), captured.err
    assert read_history(history_path(tmp_path / "h", "nan_run"))["status"] == "failed"


def test_class_with_only_corrupt_files_fails_before_any_epoch(tmp_path, tiny_spec, tiny_data):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    folder = data / "train" / "disgust"
    files = list(folder.iterdir())
    for path in files:
        path.write_bytes(b"garbage, not an image")
    config = _config(tmp_path, tiny_spec, data)
    with pytest.raises(FerError) as info:
        train(config, quiet=True)
    [message] = info.value.problems
    assert message.startswith(f"{folder}: ") and f"all {len(files)} image files failed to decode" in message
    assert not history_path(tmp_path / "h", config.name).exists() and not (tmp_path / "r").exists()
