"""Spec → Keras model (fer_keras.model.builder): the seed architectures and build-time errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fer_keras.errors import FerError
from fer_keras.model.builder import build_model, layer_names, layer_table, param_counts
from fer_keras.model.spec import load_spec, spec_from_data
from tests.conftest import ROOT

ARCHITECTURES = ROOT / "architectures"

# name → (rgb params, grayscale params) at 48x48; rgb are the reference project's counts.
# Grayscale drops 2 of the 3 input channels of the first 3x3x32 convolution: 2 * 9 * 32 = 576 weights.
SEED_PARAMS = {
    "model_1_concept": (4_708_615, 4_708_039),
    "model_2_best": (14_261_319, 14_260_743),
    "model_3_best_nodropout": (14_261_319, 14_260_743),
    "model_4_best_nodropout_nobatchn": (14_249_671, 14_249_095),
}

TINY = {
    "name": "tiny",
    "layers": [
        {"type": "Conv2D", "filters": 4, "kernel_size": [3, 3], "padding": "valid", "activation": "relu"},
        {"type": "BatchNormalization", "name": "bn"},
        {"type": "Conv2D", "filters": 4, "kernel_size": 3, "padding": "same", "kernel_regularizer": {"l2": 0.01}},
        {"type": "MaxPooling2D", "pool_size": 2},
        {"type": "GlobalAveragePooling2D"},
        {"type": "Dense", "units": "num_classes", "activation": "softmax", "bias_regularizer": {"l1": 0.1, "l2": 0.2}},
    ],
}


def _spec_file(tmp_path, data) -> str:
    path = tmp_path / "x.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("color_mode", ["rgb", "grayscale"])
@pytest.mark.parametrize("name", sorted(SEED_PARAMS))
def test_seed_architectures_build_with_the_reference_parameter_counts(name, color_mode):
    channels = 3 if color_mode == "rgb" else 1
    model = build_model(load_spec(ARCHITECTURES / f"{name}.json"), (48, 48, channels), 7)
    total, trainable, frozen = param_counts(model)
    assert total == model.count_params() == SEED_PARAMS[name][color_mode == "grayscale"]
    # BatchNormalization's moving mean and variance are the only frozen weights.
    bn_channels = sum(layer.gamma.shape[0] for layer in model.layers if type(layer).__name__ == "BatchNormalization")
    assert frozen == 2 * bn_channels and trainable == total - frozen
    assert model.name == name
    assert model.input_shape == (None, 48, 48, channels) and model.output_shape == (None, 7)
    assert [layer.name for layer in model.layers[:2]] == ["rescale", "conv2d"]
    assert model.layers[0].scale == pytest.approx(1 / 255)


def test_tiny_spec_resolves_classes_regularizers_and_deterministic_names(tmp_path):
    import keras

    path = _spec_file(tmp_path, TINY)
    first = build_model(path, (12, 10, 1), num_classes=3, name="custom")
    again = build_model(load_spec(path), (12, 10, 1), num_classes=3)
    expected = ["rescale", "conv2d", "bn", "conv2d_1", "max_pooling2d", "global_average_pooling2d", "dense"]
    assert [layer.name for layer in first.layers] == [layer.name for layer in again.layers] == expected
    assert layer_names(load_spec(path)) == expected[1:]
    assert (first.name, again.name) == ("custom", "tiny")
    assert first.output_shape == (None, 3)
    conv, dense = first.layers[3], first.layers[-1]
    assert isinstance(conv.kernel_regularizer, keras.regularizers.L1L2)
    assert (conv.kernel_regularizer.l1, conv.kernel_regularizer.l2) == pytest.approx((0.0, 0.01))
    assert (dense.bias_regularizer.l1, dense.bias_regularizer.l2) == pytest.approx((0.1, 0.2))
    assert first.layers[1].kernel_size == (3, 3)
    assert layer_table(first)[:3] == [
        ("rescale", "Rescaling", (None, 12, 10, 1), 0),
        ("conv2d", "Conv2D", (None, 10, 8, 4), 3 * 3 * 1 * 4 + 4),
        ("bn", "BatchNormalization", (None, 10, 8, 4), 16),
    ]
    assert param_counts(first) == (first.count_params(), first.count_params() - 8, 8)
    # Raw pixels in, class probabilities out.
    probs = first.predict(np.full((2, 12, 10, 1), 255, np.float32), verbose=0)
    assert probs.shape == (2, 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_saved_model_round_trips(tmp_path):
    import keras

    model = build_model(_spec_file(tmp_path, TINY), (8, 8, 3), 7)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5)


def test_output_float32_under_mixed_precision(tmp_path):
    import keras

    previous = keras.config.dtype_policy().name
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = build_model(_spec_file(tmp_path, TINY), (8, 8, 1), 7, output_float32=True)
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.layers[1].compute_dtype == "bfloat16"
    assert model.layers[-1].compute_dtype == "float32"
    assert model.predict(np.zeros((1, 8, 8, 1), np.float32), verbose=0).dtype == np.float32


def test_shape_error_names_the_file_and_layer(tmp_path):
    # 48x48 → conv valid 46 → 6 poolings: 23, 11, 5, 2, 1, then nothing left to pool.
    layers = [{"type": "Conv2D", "filters": 2, "kernel_size": 3, "padding": "valid"}]
    layers += [{"type": "MaxPooling2D", "pool_size": 2}] * 6
    layers += [{"type": "Flatten"}, {"type": "Dense", "units": "num_classes", "activation": "softmax"}]
    path = _spec_file(tmp_path, {"name": "deep", "layers": layers})
    with pytest.raises(FerError) as info:
        build_model(path, (48, 48, 1), 7)
    (message,) = info.value.problems
    assert message.startswith(f"{path}: layers[6] (MaxPooling2D): Computed output size would be zero or negative")
    assert message.endswith("(input shape (None, 1, 1, 2))")
    assert "\n" not in message and "\x1b" not in message


def test_too_small_input_and_impossible_layers(tmp_path):
    path = _spec_file(tmp_path, TINY)
    with pytest.raises(FerError, match=r"x\.json: layers\[0\] \(Conv2D\): Computed output size would be zero"):
        build_model(path, (2, 2, 1), 7)
    grouped = {
        "name": "g",
        "layers": [{"type": "Conv2D", "filters": 4, "kernel_size": 1, "groups": 3}, *TINY["layers"][4:]],
    }
    with pytest.raises(FerError, match=r"^g: layers\[0\] \(Conv2D\): The number of filters must be evenly divisible"):
        build_model(spec_from_data(grouped), (8, 8, 3), 7)
    axis = {"name": "a", "layers": [{"type": "BatchNormalization", "axis": 7}, *TINY["layers"][4:]]}
    with pytest.raises(FerError, match=r"^a: layers\[0\] \(BatchNormalization\): .*input shape \(None, 8, 8, 3\)"):
        build_model(spec_from_data(axis), (8, 8, 3), 7)


def test_output_must_be_one_probability_per_class(tmp_path):
    no_flatten = {"name": "nf", "layers": [TINY["layers"][0], TINY["layers"][-1]]}
    with pytest.raises(FerError) as info:
        build_model(spec_from_data(no_flatten, "nf.json"), (8, 8, 1), 7)
    assert info.value.problems == [
        "nf.json: the model's output shape must be (None, 7) (one probability per class); got (None, 6, 6, 7); "
        'end with Flatten or GlobalAveragePooling2D, then Dense "num_classes"'
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"input_shape": (48, 48)},
            "'input_shape' must be 3 positive integers (height, width, channels); got (48, 48)",
        ),
        (
            {"input_shape": (48, 0, 1)},
            "'input_shape' must be 3 positive integers (height, width, channels); got (48, 0, 1)",
        ),
        ({"num_classes": 0}, "'num_classes' must be >= 1; got 0"),
        ({"output_float32": "yes"}, "'output_float32' must be true or false; got 'yes'"),
        ({"name": ""}, "'name' must be a non-empty string or None; got ''"),
    ],
)
def test_bad_arguments_are_reported_before_keras(tmp_path, kwargs, message):
    with pytest.raises(FerError) as info:
        build_model(spec_from_data(TINY), **kwargs)
    assert info.value.problems == [f"build_model: {message}"]
