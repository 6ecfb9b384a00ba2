"""--tensorboard and --mlflow: a real run mirrored to TensorBoard event files and a real MLflow tracking server.

The server is a real ``mlflow server`` (SQLite backend, local artifact root) started once for
this module on 127.0.0.1 and a free port, and stopped by its PID afterwards; the test reads
back what the run logged with ``MlflowClient``, and the event files with TensorFlow's reader.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from fer_keras.errors import FerError
from fer_keras.training.config import resolve_config
from fer_keras.training.tracking import DEFAULT_EXPERIMENT, flat_params

SERVER_START_TIMEOUT_S = 600  # mlflow's server takes ~5 s idle; a loaded 2-core machine can make that minutes


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """The URI of a real MLflow tracking server, started for this module."""
    pytest.importorskip("mlflow")
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
               "--default-artifact-root", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1"]  # fmt: skip
    log = open(root / "server.log", "wb")  # noqa: SIM115 - closed below, after the server stops
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield uri
    finally:
        # The server's own session: gunicorn/uvicorn workers go with it, nothing else does.
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def _interrupt_after_first_epoch():
    import keras

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                raise KeyboardInterrupt

    return Interrupt()


def _summaries(folder: Path) -> tuple[dict[str, dict[int, float]], dict[str, str]]:
    """The event files of ``folder``: scalars (tag → {step: value}) and every tag → its plugin."""
    import tensorflow as tf

    scalars: dict[str, dict[int, float]] = {}
    plugins: dict[str, str] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for raw in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(raw.numpy())
            for value in event.summary.value:
                plugins[value.tag] = value.metadata.plugin_data.plugin_name
                if plugins[value.tag] == "scalars":
                    scalars.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor))
    return scalars, plugins


def test_a_resumed_run_is_one_mlflow_run_and_tensorboard_has_every_epoch(tmp_path, tiny_spec, tiny_data, mlflow_server):
    from mlflow.tracking import MlflowClient

    from fer_keras.training.history import read_history
    from fer_keras.training.train import train

    config = resolve_config(
        {
            "arch": str(tiny_spec),
            "data": str(tiny_data),
            "epochs": 2,
            "batch_size": 16,
            "augment": False,
            "lr_schedule": "cosine",
            "precise_bn": 0,
            "history_dir": str(tmp_path / "h"),
            "runs_dir": str(tmp_path / "r"),
            "tensorboard": str(tmp_path / "tb"),
            "mlflow": mlflow_server,
            "grid": "tracking-test",
        }  # fmt: skip
    )
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C after epoch 1: the MLflow run ends KILLED
        train(config, quiet=True, extra_callbacks=[_interrupt_after_first_epoch()])
    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("tracking-test")
    (first,) = client.search_runs([experiment.experiment_id])
    assert first.info.status == "KILLED"

    record = train(config, quiet=True)  # resumes at epoch 2, and so does its MLflow run
    assert record["status"] == "done" and record["epochs_done"] == 2
    history = read_history(config.history_file)
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_id == first.info.run_id and run.info.status == "FINISHED"
    assert run.info.run_name == config.name
    assert run.data.tags["run"] == config.name and run.data.tags["grid"] == "tracking-test"
    assert run.data.params == flat_params(config.to_dict())
    assert run.data.params["mlflow"] == mlflow_server and run.data.params["lr_schedule"] == "cosine"
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        logged = client.get_metric_history(run.info.run_id, key)
        assert [m.step for m in sorted(logged, key=lambda m: m.step)] == [1, 2], key
        assert [m.value for m in sorted(logged, key=lambda m: m.step)] == pytest.approx(history["history"][key])
    assert history["history"]["lr"] == pytest.approx([1e-3, 5e-4])  # the cosine schedule's two epochs
    assert run.data.metrics["best_val_accuracy"] == pytest.approx(history["best_val_accuracy"])
    artifacts = {a.path for folder in ("history", "model") for a in client.list_artifacts(run.info.run_id, folder)}
    assert artifacts == {f"history/{config.history_file.name}", "model/best.keras"}
    local = client.download_artifacts(run.info.run_id, f"history/{config.history_file.name}", str(tmp_path / "dl"))
    assert json.loads(Path(local).read_text()) == history  # the history JSON, as the run ended

    board = tmp_path / "tb" / config.name
    (train_scalars, train_tags), (valid_scalars, _) = _summaries(board / "train"), _summaries(board / "validation")
    # Keras counts epochs from 0; the resumed part appended epoch 1 to the same folder.
    assert train_scalars["epoch_learning_rate"] == pytest.approx({0: 1e-3, 1: 5e-4})
    assert [train_scalars["epoch_loss"][e] for e in (0, 1)] == pytest.approx(history["history"]["loss"], rel=1e-5)
    assert [valid_scalars["epoch_accuracy"][e] for e in (0, 1)] == pytest.approx(history["history"]["val_accuracy"])
    assert train_tags["keras"] == "graph_keras_model"  # the model's graph (Keras's conceptual graph)


def test_without_the_flags_neither_tracker_is_imported():
    code = (
        "import sys; import fer_keras.training.train, fer_keras.cli.train, fer_keras.cli.grid; "
        "assert 'mlflow' not in sys.modules and 'tensorflow' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_a_missing_mlflow_is_one_line_naming_the_extra():
    code = (
        "import sys; sys.modules['mlflow'] = None\n"  # what an environment without mlflow looks like to import
        "from fer_keras.errors import FerError\n"
        "from fer_keras.training.tracking import import_mlflow\n"
        "try:\n    import_mlflow()\nexcept FerError as err:\n    print(err)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, timeout=120, capture_output=True, text=True).stdout
    assert out.count("\n") == 1 and "fer_keras[track]" in out, out


def test_default_experiment_for_a_single_run():
    config = resolve_config({"arch": "a/m.json", "data": "d", "mlflow": "http://127.0.0.1:1"})
    assert config.grid is None and DEFAULT_EXPERIMENT == "fer_keras"
    with pytest.raises(FerError, match="'mlflow' must be a non-empty path"):
        resolve_config({"arch": "a/m.json", "data": "d", "mlflow": ""})
