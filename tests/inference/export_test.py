"""fer-export: ONNX / TFLite / SavedModel exports of a tiny model, checked against Keras."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from fer_keras.cli.export import main
from fer_keras.constants import (
    CLASS_NAMES,
    COLOR_MODES,
    EXPORT_INPUT_NAME,
    EXPORT_OUTPUT_NAME,
    METADATA_FILE,
    MODEL_FILE,
    ONNX_FILE,
    SAVEDMODEL_DIR,
    TFLITE_FILE,
)
from fer_keras.errors import FerError
from fer_keras.inference import export

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _build_model_folder(out: Path, color_mode: str, seed: int = 0) -> Path:
    """The task's tiny CNN with random, fixed weights (BatchNorm statistics too), saved as a model folder."""
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((48, 48, COLOR_MODES[color_mode])),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.MaxPooling2D(),
            keras.layers.SeparableConv2D(8, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(len(CLASS_NAMES), activation="softmax"),
        ]
    )
    rng = np.random.default_rng(seed)
    bn = model.layers[2]
    # Non-trivial inference statistics, so the exports must really carry BatchNorm over.
    bn.set_weights([rng.uniform(0.5, 1.5, 8), rng.normal(0, 0.2, 8), rng.normal(0.1, 0.05, 8), rng.uniform(0.5, 2, 8)])
    out.mkdir(parents=True)
    model.save(out / MODEL_FILE)
    metadata = {
        "format_version": 1,
        "name": f"tiny_export_{color_mode}",
        "class_names": list(CLASS_NAMES),
        "input_size": [48, 48],
        "color_mode": color_mode,
    }
    (out / METADATA_FILE).write_text(json.dumps(metadata))
    return out


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("export_models")
    return {mode: _build_model_folder(root / mode, mode) for mode in COLOR_MODES}


_LOADED: dict[Path, object] = {}


def _keras_probabilities(model_dir: Path, pixels: np.ndarray) -> np.ndarray:
    import keras

    if model_dir not in _LOADED:
        _LOADED[model_dir] = keras.saving.load_model(model_dir / MODEL_FILE, compile=False)
    return np.asarray(_LOADED[model_dir].predict_on_batch(pixels.astype(np.float32)))


@pytest.mark.parametrize("color_mode", ["grayscale", "rgb"])
@pytest.mark.parametrize("fmt", ["onnx", "tflite", "savedmodel"])
def test_export_matches_keras(model_dirs, tmp_path, fmt, color_mode):
    model_dir = model_dirs[color_mode]
    out = tmp_path / export.OUTPUT_NAMES[fmt]
    result = export.export_model(model_dir, fmt, out)

    assert result.path == out and out.exists()
    assert result.max_abs_diff <= 1e-4
    assert result.top1_agreement == 32
    sidecar = json.loads(export.sidecar_path(out).read_text())
    assert sidecar["format"] == fmt and sidecar["file"] == out.name
    assert sidecar["opset"] == (export.DEFAULT_OPSET if fmt == "onnx" else None)
    assert sidecar["input"]["name"] == EXPORT_INPUT_NAME and sidecar["input"]["shape"] == [
        None,
        48,
        48,
        COLOR_MODES[color_mode],
    ]
    assert sidecar["parity"]["max_abs_diff"] == result.max_abs_diff and sidecar["parity"]["samples"] == 32
    assert sidecar["exported_at"]
    # No temporary names left beside the export.
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]

    # Independent check on other images and another batch size (dynamic batch).
    pixels = np.random.default_rng(7).integers(0, 256, (5, 48, 48, COLOR_MODES[color_mode])).astype(np.float32)
    got = export.load_export(out, fmt)(pixels)
    assert got.shape == (5, 7)
    np.testing.assert_allclose(got, _keras_probabilities(model_dir, pixels), atol=1e-4, rtol=0)


def test_onnx_graph_has_named_io_dynamic_batch_and_metadata(model_dirs, tmp_path):
    import onnx
    import onnxruntime as ort

    out = tmp_path / ONNX_FILE
    export.export_model(model_dirs["rgb"], "onnx", out, opset=15)
    proto = onnx.load(str(out))
    assert {o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")} == {15}
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["class_names"]) == list(CLASS_NAMES) and props["color_mode"] == "rgb"

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (inp,), (outp,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.shape, inp.type) == (EXPORT_INPUT_NAME, ["batch", 48, 48, 3], "tensor(float)")
    assert (outp.name, outp.shape) == (EXPORT_OUTPUT_NAME, ["batch", 7])
    pixels = np.random.default_rng(3).uniform(0, 255, (5, 48, 48, 3)).astype(np.float32)
    probs = session.run([EXPORT_OUTPUT_NAME], {EXPORT_INPUT_NAME: pixels})[0]
    np.testing.assert_allclose(probs, _keras_probabilities(model_dirs["rgb"], pixels), atol=1e-4, rtol=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_onnx_float16_weights_halve_the_stored_weights_and_keep_parity(model_dirs, tmp_path, monkeypatch):
    import onnx
    from onnx import TensorProto

    from fer_keras.inference import export_formats

    monkeypatch.setattr(export_formats, "FLOAT16_MIN_SIZE", 64)  # the tiny model's tensors are small
    full, half = tmp_path / "full.onnx", tmp_path / "half.onnx"
    export.export_model(model_dirs["grayscale"], "onnx", full)
    result = export.export_model(model_dirs["grayscale"], "onnx", half, weights="float16")
    assert result.max_abs_diff <= export.DEFAULT_TOLERANCE and result.top1_agreement == 32
    assert result.plan.tolerance == export.DEFAULT_TOLERANCES["float16"] == 1e-3  # what float16 storage costs
    assert export.plan_export(model_dirs["grayscale"], "onnx", weights="float16", tolerance=1e-5).tolerance == 1e-5
    assert json.loads(export.sidecar_path(half).read_text())["weights"] == "float16"
    assert json.loads(export.sidecar_path(full).read_text())["weights"] == "float32"
    sizes = {
        name: {i.name: i.data_type for i in onnx.load(str(path)).graph.initializer}
        for name, path in (("full", full), ("half", half))
    }
    halved = [name for name, dtype in sizes["half"].items() if dtype == TensorProto.FLOAT16]
    assert halved and all(name.endswith("__float16") for name in halved)
    assert TensorProto.FLOAT16 not in sizes["full"].values()
    assert half.stat().st_size < full.stat().st_size
    pixels = np.random.default_rng(5).integers(0, 256, (4, 48, 48, 1)).astype(np.float32)
    np.testing.assert_allclose(
        export.load_export(half, "onnx")(pixels), export.load_export(full, "onnx")(pixels), atol=1e-3
    )
    with pytest.raises(FerError, match="'weights' 'float16' is for the onnx format only; got format 'tflite'"):
        export.plan_export(model_dirs["grayscale"], "tflite", weights="float16")
    with pytest.raises(FerError, match="'weights' must be one of 'float32', 'float16'; got 'int8'"):
        export.plan_export(model_dirs["grayscale"], "onnx", weights="int8")


def test_failed_parity_writes_nothing_and_keeps_the_old_export(model_dirs, tmp_path, monkeypatch):
    out = tmp_path / TFLITE_FILE
    out.write_bytes(b"earlier export")
    real_load = export.load_export

    def drifting(path, fmt):
        run = real_load(path, fmt)
        return lambda x: run(x) + 1e-3

    monkeypatch.setattr(export, "load_export", drifting)
    with pytest.raises(FerError, match=r"parity check failed: max abs difference of probabilities 0\.001 > tolerance"):
        export.export_model(model_dirs["grayscale"], "tflite", out)
    assert out.read_bytes() == b"earlier export"
    assert sorted(p.name for p in tmp_path.iterdir()) == [TFLITE_FILE]


def test_plan_validates_arguments_and_output_paths(model_dirs, tmp_path):
    model_dir = model_dirs["grayscale"]
    with pytest.raises(
        FerError, match=r"'format' must be one of 'onnx', 'tflite', 'savedmodel'; got 'onxx'; did you mean 'onnx'\?"
    ):
        export.plan_export(model_dir, "onxx")
    with pytest.raises(FerError, match=r"'tolerance' must be in \[0, inf\]; got -1"):
        export.plan_export(model_dir, "onnx", tolerance=-1)
    with pytest.raises(FerError, match=r"'opset' must be <= 18; got 21"):
        export.plan_export(model_dir, "onnx", opset=21)
    with pytest.raises(FerError, match="model folder not found"):
        export.plan_export(tmp_path / "nope", "onnx")
    keep = tmp_path / "precious"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    with pytest.raises(FerError, match="exists and is not a SavedModel; refusing to replace it"):
        export.plan_export(model_dir, "savedmodel", keep)
    # The default SavedModel folder inside the model folder is only replaced if it is a SavedModel too.
    theirs = tmp_path / "with_notes"
    (theirs / SAVEDMODEL_DIR).mkdir(parents=True)
    (theirs / SAVEDMODEL_DIR / "notes.txt").write_text("mine")
    for name in (METADATA_FILE, MODEL_FILE):
        (theirs / name).write_bytes((model_dir / name).read_bytes())
    with pytest.raises(FerError, match="saved_model: exists and is not a SavedModel; refusing to replace it"):
        export.plan_export(theirs, "savedmodel", num_samples=2)
    # An existing folder receives the default file name for file formats.
    assert export.plan_export(model_dir, "onnx", keep, num_samples=2).path == keep / ONNX_FILE
    assert export.plan_export(model_dir, "tflite").path == model_dir / TFLITE_FILE


@pytest.mark.parametrize("fmt", ["tflite", "savedmodel"])
def test_export_removes_its_own_stale_temporaries_only(model_dirs, tmp_path, fmt):
    """A killed export leaves temporaries beside its target; the next export to that target removes them."""
    out = tmp_path / export.OUTPUT_NAMES[fmt]
    if fmt == "savedmodel":
        stale = tmp_path / ".saved_model.k3j_x9qa"  # atomic_dir's staging folder, killed mid-write
        (stale / "variables").mkdir(parents=True)
        (stale / "saved_model.pb").write_bytes(b"half")
        user = tmp_path / ".saved_model.mystuff1"  # the same pattern, but not SavedModel content
        user.mkdir()
        (user / "thesis.txt").write_text("mine")
        keep = [user, tmp_path / ".saved_model.backup"]
        keep[1].mkdir()
    else:
        stale = tmp_path / f".{TFLITE_FILE}.k3j_x9qa.tflite"  # atomic_path's temporary file
        stale.write_bytes(b"half")
        keep = [tmp_path / f".{TFLITE_FILE}.backup.tflite", tmp_path / f"{TFLITE_FILE}.k3j_x9qa.tflite"]
        for path in keep:
            path.write_text("mine")
    sidecar_tmp = tmp_path / f".{out.name}.json.abcd1234.tmp"
    sidecar_tmp.write_text("{")
    export.export_model(model_dirs["grayscale"], fmt, out, num_samples=2)
    assert not stale.exists() and not sidecar_tmp.exists()
    assert sorted(tmp_path.iterdir()) == sorted([out, export.sidecar_path(out), *keep])


def test_samples_are_deterministic_and_folder_samples_spread_over_classes(tmp_path):
    from fer_keras.data.demo import make_demo_dataset

    a = export.synthetic_samples((48, 48), "rgb", 9)
    assert a.shape == (9, 48, 48, 3) and a.dtype == np.uint8
    assert np.array_equal(a, export.synthetic_samples((48, 48), "rgb", 9))
    make_demo_dataset(tmp_path / "demo", {"test": 3}, seed=2)
    pixels = export.folder_samples(tmp_path / "demo" / "test", (32, 40), "grayscale", 7)
    assert pixels.shape == (7, 32, 40, 1)
    # 21 files, 7 picks spread evenly: one per class folder, not all from 'angry'.
    assert len({p.tobytes() for p in pixels}) == 7
    with pytest.raises(FerError, match="samples folder not found"):
        export.folder_samples(tmp_path / "missing", (48, 48), "rgb")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FerError, match="no image files"):
        export.folder_samples(tmp_path / "empty", (48, 48), "rgb")


def test_cli_exports_with_default_output_and_prints_the_difference(model_dirs, tmp_path, capsys):
    import shutil

    model_dir = shutil.copytree(model_dirs["grayscale"], tmp_path / "best_model")
    assert main(["--model", str(model_dir), "--format", "savedmodel", "--dry-run"]) == 0
    assert "would export" in capsys.readouterr().out and not (model_dir / SAVEDMODEL_DIR).exists()

    from fer_keras.data.demo import make_demo_dataset

    make_demo_dataset(tmp_path / "demo", {"test": 2}, seed=3)
    argv = [
        "--model",
        str(model_dir),
        "--format",
        "savedmodel",
        "-q",
        "--samples",
        str(tmp_path / "demo"),
        "--num-samples",
        "10",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"exported savedmodel: {model_dir / SAVEDMODEL_DIR}" in out
    assert "parity on 10 samples from" in out and "max abs diff of probabilities" in out
    assert (model_dir / SAVEDMODEL_DIR / "saved_model.pb").is_file()
    assert json.loads((model_dir / "saved_model.json").read_text())["parity"]["source"] == str(tmp_path / "demo")
    # Exporting again replaces the earlier SavedModel.
    assert main(["--model", str(model_dir), "--format", "savedmodel", "-q", "--num-samples", "4"]) == 0
    assert "parity on 4 samples" in capsys.readouterr().out
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(
        [METADATA_FILE, MODEL_FILE, SAVEDMODEL_DIR, "saved_model.json"]
    )


def test_cli_missing_model_folder_is_one_line_error(tmp_path, capsys):
    assert main(["--model", str(tmp_path / "nope"), "--format", "onnx"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "model folder not found" in err


def test_cli_unknown_format_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--format", "pb"])
    assert exc.value.code == 2
    assert "invalid choice: 'pb'" in capsys.readouterr().err
