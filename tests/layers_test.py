"""fer_keras.layers: InferenceBlur blurs only at inference and survives save/load."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from fer_keras.builder import build_model
from fer_keras.errors import FerError
from fer_keras.spec import spec_from_data

keras = pytest.importorskip("keras")
from fer_keras.layers import InferenceBlur, gaussian_kernel  # noqa: E402


def _images(channels: int = 1) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (2, 32, 32, channels)).astype("float32")


def test_kernel_is_a_normalised_gaussian():
    kernel = gaussian_kernel(3.0)
    assert len(kernel) == 19 and kernel.sum() == pytest.approx(1.0) and kernel.argmax() == 9
    assert np.allclose(kernel, kernel[::-1])


def test_identity_while_training_and_a_gaussian_blur_at_inference():
    x = _images(3)
    layer = InferenceBlur(sigma=2.0)
    assert np.array_equal(np.asarray(layer(x, training=True)), x)
    blurred = np.asarray(layer(x, training=False))
    assert blurred.shape == x.shape
    for c in range(3):
        reference = ndimage.gaussian_filter(x[1, ..., c].astype(np.float64), 2.0, mode="reflect", truncate=3.0)
        assert np.abs(blurred[1, ..., c] - reference).max() < 1e-3
    flat = np.full((1, 32, 32, 1), 77.0, dtype="float32")
    assert np.allclose(np.asarray(layer(flat, training=False)), 77.0, atol=1e-3)


@pytest.mark.parametrize("sigma", [0, -1.5, "3", True, None])
def test_rejects_a_bad_sigma(sigma):
    with pytest.raises(ValueError, match="'sigma' must be a number > 0"):
        InferenceBlur(sigma=sigma)


def test_spec_validates_sigma_and_the_built_model_round_trips(tmp_path):
    layers = [
        {"type": "InferenceBlur", "sigma": 1.5},
        {"type": "Flatten"},
        {"type": "Dense", "units": "num_classes", "activation": "softmax"},
    ]
    with pytest.raises(FerError, match=r"layers\[0\] \(InferenceBlur\): 'sigma' must be a number > 0; got 0"):
        spec_from_data({"name": "t", "layers": [{"type": "InferenceBlur", "sigma": 0}, *layers[1:]]})
    model = build_model(spec_from_data({"name": "t", "layers": layers}), (32, 32, 1), 7)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    x = _images()
    assert np.abs(model.predict(x, verbose=0) - loaded.predict(x, verbose=0)).max() == 0.0
    assert loaded.layers[1].get_config()["sigma"] == 1.5
