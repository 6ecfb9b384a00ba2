"""Architecture spec loading and validation (fer_keras.model.spec): no Keras model is built here."""

from __future__ import annotations

import copy
import inspect
import json
import re
import subprocess
import sys

import pytest

from fer_keras.errors import FerError
from fer_keras.model.spec import (
    ACTIVATIONS,
    INITIALIZERS,
    LAYER_TYPES,
    ArchitectureSpec,
    check_paths,
    load_spec,
    spec_from_data,
    validate_spec_data,
)
from tests.conftest import ROOT

ARCHITECTURES = ROOT / "architectures"
SEEDS = ("model_1_concept", "model_2_best", "model_3_best_nodropout", "model_4_best_nodropout_nobatchn")

GOOD = {
    "name": "good",
    "description": "a small valid spec that each bad case breaks in one place",
    "layers": [
        {"type": "Conv2D", "filters": 8, "kernel_size": 3, "padding": "valid", "activation": "relu"},
        {"type": "BatchNormalization"},
        {"type": "MaxPooling2D", "pool_size": 2},
        {"type": "Dropout", "rate": 0.25},
        {"type": "Flatten"},
        {"type": "Dense", "units": 16, "activation": "relu", "kernel_regularizer": {"l2": 0.0001}},
        {"type": "Dense", "units": "num_classes", "activation": "softmax"},
    ],
}
DELETE = object()


def edit(*changes: tuple[tuple, object]):
    """A function turning GOOD into a bad spec: each change is (path, value), DELETE removes the key."""

    def apply(data):
        for path, value in changes:
            target = data
            for key in path[:-1]:
                target = target[key]
            if value is DELETE:
                del target[path[-1]]
            else:
                target[path[-1]] = value
        return data

    return apply


# (id, GOOD → bad spec (a function) or the raw file text, the exact problems with {p} = the path as given).
BAD_SPECS = [
    (
        "unknown-type",
        edit((("layers", 2, "type"), "Conv2d")),
        ["{p}: layers[2]: unknown layer type 'Conv2d'; did you mean 'Conv2D'?"],
    ),
    (
        "unknown-type-no-close-match",
        edit((("layers", 4, "type"), "Transformer")),
        ["{p}: layers[4]: unknown layer type 'Transformer'; allowed: " + ", ".join(LAYER_TYPES)],
    ),
    (
        "typo-field",
        edit((("layers", 0, "filters"), DELETE), (("layers", 0, "filter"), 8)),
        [
            "{p}: layers[0] (Conv2D): unknown field 'filter'; did you mean 'filters'?",
            "{p}: layers[0] (Conv2D): missing required field 'filters'",
        ],
    ),
    (
        "wrong-type-units",
        edit((("layers", 5, "units"), "64")),
        ["""{p}: layers[5] (Dense): 'units' must be a positive integer or "num_classes"; got '64'"""],
    ),
    (
        "wrong-type-float-filters",
        edit((("layers", 0, "filters"), 8.0)),
        ["{p}: layers[0] (Conv2D): 'filters' must be a positive integer; got 8.0"],
    ),
    (
        "out-of-range-rate",
        edit((("layers", 3, "rate"), 1.5)),
        ["{p}: layers[3] (Dropout): 'rate' must be in [0, 1); got 1.5"],
    ),
    (
        "missing-field",
        edit((("layers", 0, "filters"), DELETE)),
        ["{p}: layers[0] (Conv2D): missing required field 'filters'"],
    ),
    (
        "bad-json",
        '{\n    "name": "x"\n    "layers": []\n}\n',
        ["{p}: invalid JSON at line 3, column 5: Expecting ',' delimiter"],
    ),
    (
        "nan-is-not-a-number",
        json.dumps(GOOD).replace("0.25", "NaN"),
        ["{p}: layers[3] (Dropout): 'rate' must be a number; got NaN"],
    ),
    ("empty-layers", edit((("layers",), [])), ["{p}: 'layers' must be a non-empty list; got []"]),
    (
        "layers-not-a-list",
        edit((("layers",), {"type": "Flatten"})),
        ["{p}: 'layers' must be a non-empty list; got {{'type': 'Flatten'}}"],
    ),
    (
        "layer-not-an-object",
        edit((("layers", 1), "BatchNormalization")),
        ["{p}: 'layers[1]' must be a JSON object; got 'BatchNormalization'"],
    ),
    ("missing-type", edit((("layers", 4, "type"), DELETE)), ["{p}: layers[4]: missing required field 'type'"]),
    (
        "unknown-top-level-key",
        edit((("descripton",), "typo")),
        ["{p}: unknown field 'descripton'; did you mean 'description'?"],
    ),
    ("missing-name", edit((("name",), DELETE)), ["{p}: missing required field 'name'"]),
    (
        "bad-name",
        edit((("name",), "my model")),
        [
            "{p}: 'name' must be a string of letters, digits, '_', '-' or '.' (starting with a letter or digit); got 'my model'"
        ],
    ),
    (
        "num-classes-misuse",
        edit((("layers", 0, "filters"), "num_classes")),
        [
            "{p}: layers[0] (Conv2D): 'filters' must be a positive integer; got 'num_classes'; "
            "\"num_classes\" is only allowed as Dense 'units'"
        ],
    ),
    (
        "num-classes-typo",
        edit((("layers", 6, "units"), "num_class")),
        [
            """{p}: layers[6] (Dense): 'units' must be a positive integer or "num_classes"; got 'num_class'; did you mean 'num_classes'?"""
        ],
    ),
    (
        "bad-kernel-size",
        edit((("layers", 0, "kernel_size"), [3, 0])),
        [
            "{p}: layers[0] (Conv2D): 'kernel_size' must be a positive integer or a list of 2 positive integers; got [3, 0]"
        ],
    ),
    (
        "bad-padding-choice",
        edit((("layers", 0, "padding"), "Same")),
        ["{p}: layers[0] (Conv2D): 'padding' must be one of 'valid', 'same'; got 'Same'; did you mean 'same'?"],
    ),
    (
        "activation-typo",
        edit((("layers", 0, "activation"), "rleu")),
        [
            "{p}: layers[0] (Conv2D): 'activation' must be a Keras activation name such as 'relu' "
            "(see `fer-spec types`); got 'rleu'; did you mean 'relu'?"
        ],
    ),
    (
        "bad-regularizer",
        edit((("layers", 5, "kernel_regularizer"), {"l3": 0.1})),
        [
            """{p}: layers[5] (Dense): 'kernel_regularizer' must be {{"l1": x}}, {{"l2": x}} or """
            """{{"l1": x, "l2": y}} with x, y >= 0; got {{'l3': 0.1}}"""
        ],
    ),
    (
        "bool-as-string",
        edit((("layers", 1, "center"), "false")),
        ["{p}: layers[1] (BatchNormalization): 'center' must be true or false; got 'false'"],
    ),
    (
        "builder-layer-in-spec",
        lambda d: {**d, "layers": [{"type": "Rescaling", "scale": 0.5}, *d["layers"]]},
        ["{p}: layers[0]: unknown layer type 'Rescaling'; the builder adds Rescaling(1/255) itself, remove this layer"],
    ),
    (
        "output-units-not-num-classes",
        edit((("layers", 6, "units"), 7)),
        ["""{p}: layers[6] (Dense): 'units' must be "num_classes" in the output layer; got 7"""],
    ),
    (
        "output-not-softmax",
        edit((("layers", 6, "activation"), DELETE)),
        [
            "{p}: layers[6] (Dense): 'activation' must be 'softmax' in the output layer "
            "(training expects probabilities); got None"
        ],
    ),
    (
        "output-not-dense",
        lambda d: {**d, "layers": d["layers"][:5]},
        [
            """{p}: layers[4] (Flatten): the output layer must be {{"type": "Dense", "units": "num_classes", "activation": "softmax"}}"""
        ],
    ),
    (
        "duplicate-layer-names",
        edit((("layers", 2, "name"), "x"), (("layers", 4, "name"), "x")),
        ["{p}: layers[4] (Flatten): layer name 'x' is already used by layers[2]"],
    ),
    (
        "reserved-layer-name",
        edit((("layers", 1, "name"), "rescale")),
        ["{p}: layers[1] (BatchNormalization): layer name 'rescale' is reserved for the builder's own layers"],
    ),
    (
        "duplicate-json-key",
        '{"name": "a", "name": "b", "layers": [{"type": "Dense", "units": "num_classes", "activation": "softmax"}]}',
        ["{p}: field 'name' appears more than once"],
    ),
    ("not-an-object", lambda d: [d], ["{p}: the file must contain a JSON object; got an array"]),
    (
        "many-problems-one-pass",
        edit((("nmae",), "x"), (("layers", 2, "type"), "MaxPool2D"), (("layers", 3, "rate"), 1.5)),
        [
            "{p}: unknown field 'nmae'; did you mean 'name'?",
            "{p}: layers[2]: unknown layer type 'MaxPool2D'; did you mean 'MaxPooling2D'?",
            "{p}: layers[3] (Dropout): 'rate' must be in [0, 1); got 1.5",
        ],
    ),
]


def _write(tmp_path, make) -> str:
    path = tmp_path / "x.json"
    text = make if isinstance(make, str) else json.dumps(make(copy.deepcopy(GOOD)), indent=2)
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(("make", "expected"), [case[1:] for case in BAD_SPECS], ids=[case[0] for case in BAD_SPECS])
def test_bad_spec_reports_exact_problems(tmp_path, make, expected):
    path = _write(tmp_path, make)
    with pytest.raises(FerError) as info:
        load_spec(path)
    assert info.value.problems == [line.format(p=path) for line in expected]
    assert str(info.value) == "\n".join(info.value.problems)


def test_good_spec_loads_with_path_as_given_and_stable_hash(tmp_path):
    path = _write(tmp_path, lambda d: d)
    spec = load_spec(path)
    assert isinstance(spec, ArchitectureSpec)
    assert (spec.name, spec.description, spec.path, len(spec.layers)) == ("good", GOOD["description"], path, 7)
    assert spec.layers[5] == GOOD["layers"][5] and type(spec.layers[5]) is dict
    assert spec.to_dict() == GOOD
    assert spec_from_data(spec.to_dict()).sha256 == spec.sha256
    # Key order and whitespace don't change the identity of a spec; a value does.
    reordered = tmp_path / "y.json"
    reordered.write_text(json.dumps(dict(reversed(list(GOOD.items())))), encoding="utf-8")
    assert load_spec(reordered).sha256 == spec.sha256
    assert load_spec(_write(tmp_path, edit((("layers", 3, "rate"), 0.3)))).sha256 != spec.sha256
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]


def test_in_memory_specs_use_the_source_label():
    assert validate_spec_data(GOOD, "inline") == []
    assert validate_spec_data({"layers": [{"type": "Flatten"}]}, "inline")[0] == "inline: missing required field 'name'"
    assert spec_from_data(GOOD, "inline").path == "inline"
    with pytest.raises(FerError, match=r"^<spec>: missing required field 'layers'$"):
        spec_from_data({"name": "x"})


def test_unreadable_files_and_folders(tmp_path):
    with pytest.raises(FerError, match=r"nope\.json: no such file$"):
        load_spec(tmp_path / "nope.json")
    with pytest.raises(FerError, match=r"is a folder; expected a \.json spec file$"):
        load_spec(tmp_path)
    latin = tmp_path / "latin.json"
    latin.write_bytes('{"name": "caf\xe9"}'.encode("latin-1"))
    with pytest.raises(FerError, match=r"latin\.json: is not UTF-8 text$"):
        load_spec(latin)


def test_check_paths_expands_folders_and_keeps_order(tmp_path):
    (tmp_path / "specs").mkdir()
    (tmp_path / "empty").mkdir()
    good = tmp_path / "specs" / "a.json"
    bad = tmp_path / "specs" / "b.json"
    good.write_text(json.dumps(GOOD), encoding="utf-8")
    bad.write_text("[]", encoding="utf-8")
    (tmp_path / "specs" / "notes.txt").write_text("not a spec", encoding="utf-8")
    results = check_paths([tmp_path / "specs", tmp_path / "empty", tmp_path / "gone.json"])
    assert results == {
        str(good): [],
        str(bad): [f"{bad}: the file must contain a JSON object; got an array"],
        str(tmp_path / "empty"): [f"{tmp_path / 'empty'}: folder has no *.json files"],
        str(tmp_path / "gone.json"): [f"{tmp_path / 'gone.json'}: no such file"],
    }


def test_every_shipped_architecture_is_valid():
    results = check_paths([ARCHITECTURES])
    assert {f: p for f, p in results.items() if p} == {}
    assert set(SEEDS) <= {load_spec(f).name for f in results}


def test_seed_architectures_match_the_reference_layers():
    def layers(name):
        return load_spec(ARCHITECTURES / f"{name}.json").layers

    m2 = layers("model_2_best")
    kinds = [layer["type"] for layer in m2]
    assert kinds.count("Conv2D") == 6 and kinds.count("BatchNormalization") == 7 and kinds.count("Dropout") == 4
    assert [layer for layer in layers("model_3_best_nodropout")] == [x for x in m2 if x["type"] != "Dropout"]
    no_bn = [x for x in m2 if x["type"] not in ("Dropout", "BatchNormalization")]
    assert list(layers("model_4_best_nodropout_nobatchn")) == no_bn
    for name in SEEDS:
        convs = [layer for layer in layers(name) if layer["type"] == "Conv2D"]
        assert [c["padding"] for c in convs] == ["valid"] + ["same"] * (len(convs) - 1)
        assert all(c["kernel_size"] == 3 and c["activation"] == "relu" for c in convs)
        assert layers(name)[-1] == {"type": "Dense", "units": "num_classes", "activation": "softmax"}
    m1 = [(x["type"], x.get("filters", x.get("units"))) for x in layers("model_1_concept")]
    assert m1 == [
        ("Conv2D", 32), ("MaxPooling2D", None), ("Conv2D", 64), ("Conv2D", 64), ("MaxPooling2D", None),
        ("Conv2D", 128), ("Conv2D", 128), ("MaxPooling2D", None), ("Conv2D", 256), ("Conv2D", 256),
        ("Flatten", None), ("Dense", 512), ("Dense", 512), ("BatchNormalization", None), ("Dense", "num_classes"),
    ]  # fmt: skip


def test_loader_does_not_import_tensorflow_or_keras():
    code = (
        "import sys; from fer_keras.model.spec import check_paths; check_paths(['architectures']); "
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_allowlist_matches_real_keras_signatures():
    import keras

    base = set(inspect.signature(keras.layers.Layer.__init__).parameters)
    for kind, layer_type in LAYER_TYPES.items():
        layer_class = getattr(keras.layers, kind)
        params = inspect.signature(layer_class.__init__).parameters
        takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        for field in layer_type.fields:
            assert field in params or (takes_kwargs and field in base), f"{kind} does not accept {field!r}"
        assert set(layer_type.required) <= set(layer_type.fields)
    for name in ACTIVATIONS:
        assert callable(keras.activations.get(name)), name
    for name in INITIALIZERS:
        assert keras.initializers.get(name) is not None, name


# --- runaway input: size limits, and files that used to escape as other exceptions (issue 16) ---


def _problems(tmp_path, data=None, text=None) -> list[str]:
    path = tmp_path / "x.json"
    path.write_text(text if text is not None else json.dumps(data), encoding="utf-8")
    with pytest.raises(FerError) as info:
        load_spec(path)
    return [line.replace(str(path), "{p}") for line in info.value.problems]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ((0, "filters", 10**12), "{p}: layers[0] (Conv2D): filters: got 1,000,000,000,000; limit 65,536"),
        ((0, "kernel_size", [3, 5000]), "{p}: layers[0] (Conv2D): kernel_size: got [3, 5000]; limit 1,024"),
        ((0, "strides", 2000), "{p}: layers[0] (Conv2D): strides: got 2,000; limit 1,024"),
        ((2, "pool_size", 10**9), "{p}: layers[2] (MaxPooling2D): pool_size: got 1,000,000,000; limit 1,024"),
        ((5, "units", 70000), "{p}: layers[5] (Dense): units: got 70,000; limit 65,536"),
        ((3, "seed", 2**40), "{p}: layers[3] (Dropout): seed: got 1,099,511,627,776; limit 4,294,967,295"),
        ((3, "rate", float("inf")), "{p}: layers[3] (Dropout): 'rate' must be a number; got Infinity"),
        ((3, "rate", True), "{p}: layers[3] (Dropout): 'rate' must be a number; got True"),
        ((1, "epsilon", 10**400), "{p}: layers[1] (BatchNormalization): 'epsilon' must be a number > 0; got 1000"),
        ((1, "axis", [1, 2, 3, 1]), "{p}: layers[1] (BatchNormalization): 'axis' must be a non-zero integer (-1"),
    ],
)
def test_layer_field_limits(tmp_path, change, expected):
    index, key, value = change
    data = copy.deepcopy(GOOD)
    data["layers"][index][key] = value
    [line] = _problems(tmp_path, data)
    assert line.startswith(expected)
    assert "\n" not in line and len(line) < 400


def test_spec_size_limits_refuse_before_any_work(tmp_path):
    # 1,001 layers: the count is checked before any layer.
    data = {"name": "deep", "layers": [{"type": "Flatten"}] * 1000 + [GOOD["layers"][-1]]}
    assert _problems(tmp_path, data) == ["{p}: layers: got 1,001; limit 1,000"]
    # A 13 MB spec of 700,000 layers is refused from its size, without being read.
    path = tmp_path / "huge.json"
    path.write_text('{"name": "huge", "layers": [' + '{"type": "Flatten"},' * 700_000 + "{}]}", encoding="utf-8")
    size = path.stat().st_size
    with pytest.raises(FerError) as info:
        load_spec(path)
    assert info.value.problems == [f"{path}: file size: got {size:,} bytes; limit 1,048,576 bytes"]


def test_estimated_parameters_and_activation_memory_are_limited(tmp_path):
    head = GOOD["layers"][-1]
    big_dense = {"name": "big", "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 65536}, head]}
    assert _problems(tmp_path, big_dense) == [
        "{p}: estimated parameters: got 453,050,368 by layers[1] (Dense); limit 200,000,000 (input 48x48x3, 7 classes)"
    ]
    padded = [{"type": "ZeroPadding2D", "padding": 1000}, {"type": "Conv2D", "filters": 64, "kernel_size": 1}]
    wide = {"name": "wide", "layers": [*padded, {"type": "GlobalAveragePooling2D"}, head]}
    [line] = _problems(tmp_path, wide)
    assert line.startswith("{p}: estimated activation memory per image: got 1,")
    assert line.endswith("bytes by layers[1] (Conv2D); limit 1,073,741,824 bytes (float32) (input 48x48x3, 7 classes)")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[" * 10_000 + "]" * 10_000, "{p}: nesting depth: got 10,000; limit 64"),
        ('{"name": "x", "layers": ' + "[" * 100 + "]" * 100 + "}", "{p}: nesting depth: got 101; limit 64"),
        (
            '{"name": "x",\n "layers": [{"type": "Dense", "units": ' + "9" * 5000 + "}]}",
            "{p}: line 2, column 40: integer: got 5,000 digits; limit 4,300 digits",
        ),
        ('{"name": "x", "layers": [{"type": "Dropout", "rate": 1e999}]}', None),
    ],
    ids=["10000-levels", "101-levels", "5000-digits", "1e999"],
)
def test_pathological_json_is_one_line_naming_the_file(tmp_path, text, expected):
    problems = _problems(tmp_path, text=text)
    if expected:
        assert problems == [expected]
    else:
        assert "{p}: layers[0] (Dropout): 'rate' must be a finite number; got inf" in problems


def test_binary_and_oversized_files(tmp_path):
    path = tmp_path / "bin.json"
    path.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(FerError, match=rf"^{re.escape(str(path))}: is not UTF-8 text$"):
        load_spec(path)


# A spec of every layer type and option the estimate models, to compare with Keras.
EVERY_LAYER = {
    "name": "every_layer",
    "layers": [
        {"type": "LayerNormalization", "axis": [1, 2, 3], "center": False, "scale": False},
        {"type": "ZeroPadding2D", "padding": [1, 2]},
        {"type": "Conv2D", "filters": 12, "kernel_size": [3, 5], "strides": 2, "groups": 3, "use_bias": False},
        {"type": "BatchNormalization", "center": False},
        {"type": "SeparableConv2D", "filters": 10, "kernel_size": 3, "depth_multiplier": 2, "padding": "same"},
        {"type": "DepthwiseConv2D", "kernel_size": 3, "dilation_rate": 2, "depth_multiplier": 3},
        {"type": "GroupNormalization", "groups": 5},
        {"type": "SpatialDropout2D", "rate": 0.1},
        {"type": "GaussianDropout", "rate": 0.1},
        {"type": "GaussianNoise", "stddev": 0.1},
        {"type": "ReLU", "max_value": 6},
        {"type": "LeakyReLU"},
        {"type": "ELU"},
        {"type": "Softmax"},
        {"type": "Activation", "activation": "gelu"},
        {"type": "AveragePooling2D", "pool_size": 3, "strides": 2, "padding": "same"},
        {"type": "MaxPooling2D", "pool_size": [2, 1]},
        {"type": "LayerNormalization", "scale": False},
        {"type": "GlobalMaxPooling2D", "keepdims": True},
        {"type": "GlobalAveragePooling2D", "keepdims": True},
        {"type": "Dense", "units": 9},
        {"type": "Flatten"},
        {"type": "BatchNormalization", "axis": 1, "scale": False},
        {"type": "Dense", "units": 5, "use_bias": False},
        {"type": "Dropout", "rate": 0.1},
        {"type": "Dense", "units": "num_classes", "activation": "softmax"},
    ],
}


def test_the_estimate_covers_every_layer_type():
    assert {layer["type"] for layer in EVERY_LAYER["layers"]} == set(LAYER_TYPES)


@pytest.mark.parametrize(
    "name", sorted(p.stem for p in ARCHITECTURES.glob("*.json")) + ["every_layer"], ids=lambda name: name
)
def test_estimate_equals_keras_parameter_counts_and_shapes(name):
    """The TensorFlow-free estimate is exact: same parameters and output shape per layer as Keras."""
    from fer_keras.model.builder import build_model, layer_table
    from fer_keras.model.spec import spec_estimate

    spec = spec_from_data(EVERY_LAYER) if name == "every_layer" else load_spec(ARCHITECTURES / f"{name}.json")
    sizes = [((48, 48, 3), 7), ((40, 56, 3), 4)] + ([] if name == "every_layer" else [((48, 48, 1), 7)])
    for shape, classes in sizes:  # every_layer's grouped Conv2D needs 3 channels
        model = build_model(spec, shape, classes)
        estimate = spec_estimate(spec, shape, classes)
        rows = layer_table(model)[1:]  # row 0 is the builder's Rescaling
        assert [row[2][1:] for row in rows] == list(estimate.shapes)
        assert [row[3] for row in rows] == list(estimate.params)
        assert estimate.total_params == model.count_params()
        assert estimate.problems == ()
