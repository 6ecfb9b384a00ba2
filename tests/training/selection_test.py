"""fer_keras.training.selection: what `fer-grid select --out` may replace, checked first, crash leftovers, and the
metadata it records (crop rule, TTA, metrics scored as inference runs the model)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fer_keras.cli.grid import main as grid_main
from fer_keras.constants import BEST_CHECKPOINT_FILE, CLASS_NAMES, METADATA_FILE, MODEL_FILE, ONNX_FILE
from fer_keras.errors import FerError
from fer_keras.model.crop import CropRule
from fer_keras.model.model_folder import is_model_folder, read_model_info
from fer_keras.training.selection import evaluate_split, export_best, train_counts
from tests.model_fixtures import shared_model_folder
from tests.training.grid_runner_test import _write_grid

RUN = "tiny_adam_grayscale_16_augment"


def _finished_run(tmp_path: Path, data: Path, spec: Path, checkpoint: bytes = b"not a model") -> Path:
    """A history folder with one finished run; by default its checkpoint is garbage, so any load fails loudly."""
    runs, history = tmp_path / "runs", tmp_path / "history"
    (runs / RUN).mkdir(parents=True)
    (runs / RUN / BEST_CHECKPOINT_FILE).write_bytes(checkpoint)
    config = {"runs_dir": str(runs), "history_dir": str(history), "image_size": [48, 48], "color_mode": "grayscale",
              "data": str(data), "arch": str(spec)}  # fmt: skip
    record = {"format_version": 1, "name": RUN, "status": "done", "config": config, "class_names": list(CLASS_NAMES),
              "history": {}, "best_epoch": 1, "best_val_accuracy": 0.5}  # fmt: skip
    history.mkdir()
    (history / f"{RUN}_history.json").write_text(json.dumps(record))
    return history


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def test_select_refuses_a_folder_of_the_users_before_loading_any_model(tmp_path, tiny_data, tiny_spec, capsys):
    history = _finished_run(tmp_path, tiny_data, tiny_spec)
    thesis = tmp_path / "scratch" / "v"
    thesis.mkdir(parents=True)
    (thesis / "t.txt").write_text("thesis")
    # The checkpoint is garbage: reaching the model loader would raise something other than this FerError.
    with pytest.raises(FerError, match=rf"{thesis}: exists and is not a model folder .*refusing to replace it"):
        export_best(history, thesis, evaluate_test=False)
    assert grid_main(["select", "--history", str(history), "--out", str(thesis), "--no-test", "-q"]) == 1
    assert "exists and is not a model folder" in _one_line_error(capsys)
    (tmp_path / "a_file").write_text("mine")
    with pytest.raises(FerError, match="a_file: exists and is a file; refusing to replace it"):
        export_best(history, tmp_path / "a_file", evaluate_test=False)
    assert (thesis / "t.txt").read_text() == "thesis" and (tmp_path / "a_file").read_text() == "mine"


@pytest.mark.parametrize(
    ("out", "folder"),
    [
        ("history", "the history folder"),
        ("history/model", "the history folder"),
        (".", "the history folder"),
        (f"runs/{RUN}", "the run folder"),
        (f"runs/{RUN}/export", "the run folder"),
    ],
)
def test_select_out_must_not_overlap_the_history_or_a_run_folder(tmp_path, tiny_data, tiny_spec, capsys, out, folder):
    history = _finished_run(tmp_path, tiny_data, tiny_spec)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(FerError, match=rf"the model folder must be outside {folder}"):
        export_best(history, tmp_path / out, evaluate_test=False)
    assert grid_main(["select", "--history", str(history), "--out", str(tmp_path / out), "--no-test", "-q"]) == 1
    assert f"must be outside {folder}" in _one_line_error(capsys)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_a_grid_refuses_its_best_model_folder_before_training(tmp_path, tiny_data, capsys):
    thesis = tmp_path / "best"  # the grid's best_model
    thesis.mkdir()
    (thesis / "t.txt").write_text("thesis")
    grid = _write_grid(tmp_path, tiny_data)
    assert grid_main([str(grid), "--dry-run", "-q"]) == 1
    assert f"{thesis}: exists and is not a model folder" in _one_line_error(capsys)
    assert grid_main([str(grid), "-q", "--out", str(tmp_path / "history")]) == 1
    assert "must be outside the history folder" in _one_line_error(capsys)
    assert not (tmp_path / "history").exists() and (thesis / "t.txt").read_text() == "thesis"
    assert grid_main([str(grid), "--dry-run", "-q", "--no-select"]) == 0  # no export, no check


def test_select_replaces_an_earlier_model_and_removes_its_own_leftovers_only(
    tmp_path, tmp_path_factory, tiny_data, tiny_spec
):
    model = shared_model_folder(tmp_path_factory, color_mode="grayscale")
    history = _finished_run(tmp_path, tiny_data, tiny_spec, (model / MODEL_FILE).read_bytes())
    out = tmp_path / "models" / "best"
    shutil.copytree(model, out)
    (out / ONNX_FILE).write_bytes(b"an export of the earlier model")
    # What a select killed mid-export leaves: a staging folder (partial files, an atomic-write temporary)
    # and the old model moved aside by a swap in the fixed name older versions used.
    staging = out.with_name(".best.k3j_x9qa")
    staging.mkdir()
    (staging / MODEL_FILE).write_bytes(b"half")
    (staging / f".{METADATA_FILE}.abcd1234.tmp").write_text("{")
    old = shutil.copytree(model, out.with_name(".best.old"))
    user = [out.with_name(".best.notes123"), out.with_name(".best.backup"), out.with_name("best.k3j_x9qa")]
    user[0].mkdir()
    (user[0] / "thesis.txt").write_text("mine")  # the staging pattern, but not model content
    for path in user[1:]:
        path.write_text("mine")
    meta = export_best(history, out, evaluate_test=False)
    assert meta["source_run"] == RUN and is_model_folder(out)
    assert not (out / ONNX_FILE).exists()  # replaced whole: exports of the earlier model go with it
    assert not staging.exists() and not old.exists()
    assert sorted(out.parent.iterdir()) == sorted([out, *user])
    # An empty folder may be replaced too.
    (tmp_path / "empty").mkdir()
    export_best(history, tmp_path / "empty", evaluate_test=False)
    assert is_model_folder(tmp_path / "empty")


def test_select_records_the_crop_rule_and_tta_and_scores_as_inference_runs(
    tmp_path, tmp_path_factory, tiny_data, tiny_spec
):
    from fer_keras.data.pipeline import load_split
    from fer_keras.inference.predictor import Predictor

    model = shared_model_folder(tmp_path_factory, color_mode="grayscale")
    history = _finished_run(tmp_path, tiny_data, tiny_spec, (model / MODEL_FILE).read_bytes())
    out = tmp_path / "best"
    args = ["select", "--history", str(history), "--out", str(out), "-q"]
    assert grid_main([*args, "--no-test"]) == 0
    meta = json.loads((out / METADATA_FILE).read_text())
    assert meta["crop"] == CropRule().to_dict() and meta["inference"] == {"tta": []}
    assert set(meta["valid_metrics"]) == {"accuracy", "loss", "n", "macro_f1", "per_class_recall"}
    assert meta["test_metrics"] is None

    assert grid_main([*args, "--tta", "flip"]) == 0
    info = read_model_info(out)
    assert info.tta == ("flip",) and info.crop == CropRule()
    # The recorded metrics are those of the model as inference runs it: with the flip.
    predictor = Predictor.load(out, runtime="keras")
    for split, recorded in (("valid", info.metadata["valid_metrics"]), ("test", info.metadata["test_metrics"])):
        data = load_split(tiny_data, split, (48, 48), "grayscale", CLASS_NAMES, quiet=True)
        accuracy = float((predictor.predict(data.images).argmax(axis=1) == data.labels).mean())
        assert recorded["accuracy"] == pytest.approx(accuracy) and recorded["n"] == len(data)


def test_select_validates_its_arguments_first(tmp_path, tiny_data, tiny_spec, capsys):
    history = _finished_run(tmp_path, tiny_data, tiny_spec)  # a garbage checkpoint: loading it would fail otherwise
    with pytest.raises(FerError, match="'tta' must be one of 'flip', 'shift'; got 'mirror'"):
        export_best(history, tmp_path / "best", tta=["mirror"])
    with pytest.raises(FerError, match="'tta' must be a list of flip, shift; got 'flip'"):
        export_best(history, tmp_path / "best", tta="flip")
    with pytest.raises(FerError, match="'crop' must be a CropRule"):
        export_best(history, tmp_path / "best", crop={"margin": 0.1})
    with pytest.raises(SystemExit):
        grid_main(["select", "--history", str(history), "--tta", "mirror"])
    assert "invalid choice: 'mirror'" in capsys.readouterr().err
    assert not (tmp_path / "best").exists()


def test_evaluate_split_scores_with_the_shared_metrics_and_tta(tmp_path_factory, tiny_data):
    import keras

    from fer_keras.data.pipeline import load_split
    from fer_keras.metrics import classification_metrics

    model = keras.saving.load_model(shared_model_folder(tmp_path_factory) / "model.keras", compile=False)
    valid = load_split(tiny_data, "valid", (48, 48), "grayscale", CLASS_NAMES, quiet=True)
    metrics, probs = evaluate_split(model, valid, batch_size=5)
    expected = np.asarray(model.predict_on_batch(valid.images.astype(np.float32)))
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    scores = classification_metrics(valid.labels, probs.argmax(axis=1), CLASS_NAMES)
    assert metrics["accuracy"] == scores["accuracy"] and metrics["macro_f1"] == scores["macro_f1"]
    assert metrics["per_class_recall"] == scores["per_class_recall"] and metrics["n"] == len(valid)
    assert list(metrics)[:3] == ["accuracy", "loss", "n"] and np.isfinite(metrics["loss"])
    _, flipped = evaluate_split(model, valid, tta=["flip"])
    mirror = np.asarray(model.predict_on_batch(valid.images[:, :, ::-1].astype(np.float32)))
    np.testing.assert_allclose(flipped, (expected + mirror) / 2, atol=1e-5)


def test_select_dry_run_names_the_run_and_checks_out_without_loading_a_model(tmp_path, tiny_data, tiny_spec, capsys):
    history = _finished_run(tmp_path, tiny_data, tiny_spec)  # a garbage checkpoint: loading it would fail
    out = tmp_path / "best"
    assert grid_main(["select", "--history", str(history), "--out", str(out), "--dry-run"]) == 0
    assert capsys.readouterr().out == f"would export {RUN} (best val_accuracy 0.5000) -> {out}\n"
    assert not out.exists()
    assert grid_main(["select", "--history", str(history), "--out", str(history), "--dry-run", "-q"]) == 1
    assert "must be outside the history folder" in _one_line_error(capsys)


def test_select_with_a_class_prior_records_the_bias_chosen_on_valid_and_scores_with_it(
    tmp_path, tmp_path_factory, tiny_data, tiny_spec, capsys
):
    from fer_keras.data.pipeline import load_split
    from fer_keras.inference.predictor import Predictor
    from fer_keras.model.class_prior import TAUS, class_bias_from_counts

    data = tmp_path / "data"  # unequal training counts, so the correction is not zero
    shutil.copytree(tiny_data, data)
    for image in sorted((data / "train" / "happy").iterdir())[2:]:
        image.unlink()
    model = shared_model_folder(tmp_path_factory, color_mode="grayscale")
    history = _finished_run(tmp_path, data, tiny_spec, (model / MODEL_FILE).read_bytes())
    out = tmp_path / "best"
    assert grid_main(["select", "--history", str(history), "--out", str(out), "-q", "--class-prior", "auto"]) == 0
    assert "class-prior tau" in capsys.readouterr().out
    info = read_model_info(out)
    record = info.metadata["class_prior"]
    assert [c["tau"] for c in record["candidates"]] == list(TAUS) and record["train_counts"]["happy"] == 2
    counts = [record["train_counts"][name] for name in CLASS_NAMES]
    assert (
        list(info.class_bias)
        == info.metadata["inference"]["class_bias"]
        == class_bias_from_counts(counts, record["tau"])
    )
    # The recorded metrics are those of the model as inference runs it: with the correction.
    predictor = Predictor.load(out, runtime="keras")
    for split, recorded in (("valid", info.metadata["valid_metrics"]), ("test", info.metadata["test_metrics"])):
        loaded = load_split(data, split, (48, 48), "grayscale", CLASS_NAMES, quiet=True)
        accuracy = float((predictor.predict(loaded.images).argmax(axis=1) == loaded.labels).mean())
        assert recorded["accuracy"] == pytest.approx(accuracy)
    chosen = next(c for c in record["candidates"] if c["tau"] == record["tau"])
    assert info.metadata["valid_metrics"]["accuracy"] == pytest.approx(chosen["accuracy"], abs=1e-4)


def test_select_refuses_a_bad_class_prior_before_loading_a_model(tmp_path, tiny_data, tiny_spec, capsys):
    history = _finished_run(tmp_path, tiny_data, tiny_spec)  # a garbage checkpoint: loading it would fail
    args = ["select", "--history", str(history), "--out", str(tmp_path / "best"), "--class-prior", "strong"]
    assert grid_main(args) == 1
    assert _one_line_error(capsys) == "error: '--class-prior' must be \"auto\" or a tau in [0, 1]; got 'strong'"
    with pytest.raises(FerError, match="'class_prior' must be"):
        export_best(history, tmp_path / "best", class_prior=3)
    assert not (tmp_path / "best").exists()


def test_train_counts_read_the_train_split_and_refuse_an_empty_class_folder(tmp_path, tiny_data):
    assert train_counts(str(tiny_data), ["angry", "happy"]) == [8, 8]
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    for image in (data / "train" / "disgust").iterdir():
        image.unlink()
    with pytest.raises(FerError, match=r"data/train/disgust: empty class folder"):
        train_counts(str(data), ["angry", "disgust"])
