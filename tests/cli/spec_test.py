"""`fer-spec show | check | types` (fer_keras.cli.spec)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from fer_keras.cli.spec import main
from fer_keras.errors import FerError
from fer_keras.model.spec import LAYER_TYPES
from tests.conftest import ROOT, TINY_SPEC

BAD = {
    "name": "bad",
    "layers": [
        {"type": "Conv2D", "filter": 8, "kernel_size": 3},
        {"type": "Dropout", "rate": 1.5},
        {"type": "Dense", "units": "num_classes", "activation": "softmax"},
    ],
}
BAD_PROBLEMS = [
    "layers[0] (Conv2D): unknown field 'filter'; did you mean 'filters'?",
    "layers[0] (Conv2D): missing required field 'filters'",
    "layers[1] (Dropout): 'rate' must be in [0, 1); got 1.5",
]


def _rows(out: str) -> dict[str, list[str]]:
    """The layer rows of `show` output, by layer name: [#, type, output shape, params]."""
    rows = {}
    for line in out.splitlines():
        match = re.fullmatch(r"(\S+)\s+(\S+)\s+(\S+)\s+(\(.*?\))\s+([\d,]+)", line)
        if match:
            rows[match[2]] = [match[1], match[3], match[4], match[5]]
    return rows


def test_show_model_2_best(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["show", "architectures/model_2_best.json"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "model_2_best  (architectures/model_2_best.json)"
    assert lines[1] == "input 48x48x3 (rgb), 7 classes, float32 pixels in [0, 255]"
    assert lines[2].split() == ["#", "layer", "type", "output", "shape", "params"]
    rows = _rows(out)
    assert len(rows) == 24  # Rescaling + 23 spec layers
    assert rows["rescale"] == ["-", "Rescaling", "(None, 48, 48, 3)", "0"]
    assert rows["conv2d"] == ["0", "Conv2D", "(None, 46, 46, 32)", "896"]
    assert rows["max_pooling2d_2"] == ["16", "MaxPooling2D", "(None, 5, 5, 256)", "0"]
    assert rows["flatten"] == ["18", "Flatten", "(None, 6400)", "0"]
    assert rows["dense"] == ["19", "Dense", "(None, 2048)", "13,109,248"]
    assert rows["dense_1"] == ["22", "Dense", "(None, 7)", "14,343"]
    assert "total params: 14,261,319 (54.4 MiB as float32)" in lines
    assert "trainable params: 14,255,495" in lines
    assert "non-trainable params: 5,824" in lines


def test_show_options_change_input_and_classes(tmp_path, capsys):
    spec = tmp_path / "tiny.json"
    spec.write_text(json.dumps(TINY_SPEC), encoding="utf-8")
    argv = ["show", str(spec), "--input-size", "64", "32", "--color-mode", "grayscale", "--num-classes", "5"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "input 64x32x1 (grayscale), 5 classes" in out
    rows = _rows(out)
    assert rows["conv2d"] == ["0", "Conv2D", "(None, 64, 32, 8)", "80"]
    assert rows["dense"] == ["4", "Dense", "(None, 5)", "85"]


def test_show_reports_spec_and_shape_problems(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(BAD), encoding="utf-8")
    assert main(["show", str(bad)]) == 1
    assert capsys.readouterr().err.splitlines() == [f"error: {bad}: {p}" for p in BAD_PROBLEMS]
    spec = tmp_path / "tiny.json"
    spec.write_text(json.dumps(TINY_SPEC), encoding="utf-8")
    assert main(["show", str(spec), "--input-size", "1", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {spec}: layers[1] (MaxPooling2D): Computed output size would be zero or negative")
    assert len(err.splitlines()) == 1
    assert main(["show", str(spec), "--num-classes", "0"]) == 1
    assert capsys.readouterr().err == "error: '--num-classes' must be >= 1; got 0\n"


def test_check_architectures_folder(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["check", "architectures/"]) == 0
    captured = capsys.readouterr()
    assert (
        "ok  architectures/model_2_best.json  (estimated 14,261,319 parameters, 3.6 MiB of activations per image "
        "at 48x48x3, 7 classes)"
    ) in captured.out.splitlines()
    assert len(captured.out.splitlines()) == len(list((ROOT / "architectures").glob("*.json")))
    assert re.fullmatch(r"(\d+) checked: \1 ok, 0 with problems\n", captured.err)


def test_check_bad_file_one_line_per_problem_without_tensorflow(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(BAD), encoding="utf-8")
    good = tmp_path / "tiny.json"
    good.write_text(json.dumps(TINY_SPEC), encoding="utf-8")
    code = (
        "import sys; from fer_keras.cli.spec import main; code = main(sys.argv[1:]); "
        "print('tensorflow' in sys.modules or 'keras' in sys.modules); sys.exit(code)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "check", str(good), str(bad)], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [
        f"ok  {good}  (estimated 1,511 parameters, 0.2 MiB of activations per image at 48x48x3, 7 classes)",
        "False",
    ]
    assert proc.stderr.splitlines() == [f"error: {bad}: {p}" for p in BAD_PROBLEMS] + [
        "2 checked: 1 ok, 1 with problems"
    ]


def test_module_entry_point_and_debug_flag(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "fer_keras.cli.spec", "check", str(bad)], cwd=ROOT, capture_output=True, text=True
    )
    assert (proc.returncode, proc.stdout) == (1, "")
    assert (
        proc.stderr
        == f"error: {bad}: invalid JSON at line 1, column 2: Expecting property name enclosed in double quotes\n"
    )
    with pytest.raises(FerError):
        main(["show", str(bad), "--debug"])


def test_types_lists_the_allowlist(capsys):
    assert main(["types"]) == 0
    out = capsys.readouterr().out
    for kind in LAYER_TYPES:
        assert re.search(rf"^{kind}\s", out, re.MULTILINE), kind
    assert "Dropout                 rate*, seed, name" in out
    assert main(["types", "Dropout"]) == 0
    out = capsys.readouterr().out
    assert "  rate                    required  in [0, 1)" in out
    assert main(["types", "Conv2d"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: fer-spec types: 'type' must be one of 'Conv2D', ")
    assert err.endswith("got 'Conv2d'; did you mean 'Conv2D'?\n")


def _no_tensorflow_run(*argv: str) -> subprocess.CompletedProcess:
    code = (
        "import sys; from fer_keras.cli.spec import main; code = main(sys.argv[1:]); "
        "print('tensorflow' in sys.modules or 'keras' in sys.modules); sys.exit(code)"
    )
    return subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_check_refuses_runaway_specs_that_used_to_pass(tmp_path):
    """issue 16: filters 10**12 and a 13 MB spec passed `check`; `show` then ran out of memory."""
    huge_filters = tmp_path / "filters.json"
    huge_filters.write_text(
        json.dumps({**TINY_SPEC, "layers": [{**TINY_SPEC["layers"][0], "filters": 10**12}, *TINY_SPEC["layers"][1:]]})
    )
    many_layers = tmp_path / "layers.json"
    many_layers.write_text('{"name": "many", "layers": [' + '{"type": "Flatten"},' * 700_000 + "{}]}")
    proc = _no_tensorflow_run("check", str(huge_filters), str(many_layers))
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == ["False"]
    size = many_layers.stat().st_size
    assert proc.stderr.splitlines() == [
        f"error: {huge_filters}: layers[0] (Conv2D): filters: got 1,000,000,000,000; limit 65,536",
        f"error: {many_layers}: file size: got {size:,} bytes; limit 1,048,576 bytes",
        "2 checked: 0 ok, 2 with problems",
    ]


def test_show_refuses_an_input_too_large_for_memory_before_importing_tensorflow(tmp_path):
    spec = tmp_path / "tiny.json"
    spec.write_text(json.dumps(TINY_SPEC), encoding="utf-8")
    proc = _no_tensorflow_run("show", str(spec), "--input-size", "100000", "100000")
    assert (proc.returncode, proc.stdout) == (1, "False\n")
    [line] = proc.stderr.splitlines()
    assert line.startswith(
        f"error: {spec}: estimated activation memory per image: got 560,000,000,000 bytes by layers[0] (Conv2D); "
    )
    assert line.endswith("limit 1,073,741,824 bytes (float32) (input 100000x100000x3, 7 classes)")
    proc = _no_tensorflow_run("show", str(spec), "--num-classes", "1000000000")
    assert (proc.returncode, proc.stderr) == (1, "error: --num-classes: got 1,000,000,000; limit 1,000\n")
