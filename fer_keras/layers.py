"""Keras layers that fer_keras adds to the Keras ones an architecture spec may use.

``InferenceBlur`` exists because FER2013's ``train`` split, as shipped in
``../shared/datasets/fer2013``, is low-pass filtered (median JPEG 786 bytes against
1,580 for ``valid``/``test``; the normalised Laplacian variance of its images is about
1/170 of theirs), while ``valid``, ``test`` and ordinary photos are sharp. A model
trained on it sees detail at inference that it never saw in training. Blurring
inference inputs the way the training images were blurred puts both on the same
footing: the shipped model scores 34% on ``valid`` fed sharp images and 55% with
sigma 3 px (at 48×48), the best of 1–5 (benchmarks/RESULTS.md). Training images pass through unchanged.

Importing this module registers the layers for ``keras.saving.load_model``; every
module that loads a saved model imports it.
"""

from __future__ import annotations

import math

import keras
import numpy as np

PACKAGE = "fer_keras"


def gaussian_kernel(sigma: float) -> np.ndarray:
    """The normalised 1-D Gaussian kernel of ``sigma`` pixels, truncated at 3 sigma."""
    radius = max(1, math.ceil(3 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-(x**2) / (2 * sigma**2))
    return (kernel / kernel.sum()).astype(np.float32)


@keras.saving.register_keras_serializable(package=PACKAGE)
class InferenceBlur(keras.layers.Layer):
    """Gaussian blur at inference only; the identity while training.

    Each channel is blurred separably with symmetric (mirror) padding, so a flat image
    stays flat up to its borders and the output has the input's shape.

    Args:
        sigma: the Gaussian's standard deviation in pixels of the layer's input; > 0.

    Example:
        >>> layer = InferenceBlur(sigma=3.0)  # doctest: +SKIP
        >>> layer(images, training=False)     # blurred  # doctest: +SKIP
    """

    def __init__(self, sigma: float, **kwargs):
        super().__init__(**kwargs)
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma > 0:
            raise ValueError(f"InferenceBlur: 'sigma' must be a number > 0; got {sigma!r}")
        self.sigma = float(sigma)

    def call(self, inputs, training=None):
        if training:
            return inputs
        kernel = gaussian_kernel(self.sigma)
        radius = len(kernel) // 2
        channels = inputs.shape[-1]
        padded = keras.ops.pad(inputs, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="symmetric")
        column = np.tile(kernel.reshape(-1, 1, 1, 1), (1, 1, channels, 1))
        row = np.tile(kernel.reshape(1, -1, 1, 1), (1, 1, channels, 1))
        out = keras.ops.depthwise_conv(padded, keras.ops.cast(column, inputs.dtype), padding="valid")
        return keras.ops.depthwise_conv(out, keras.ops.cast(row, inputs.dtype), padding="valid")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "sigma": self.sigma}


PROJECT_LAYERS = {"InferenceBlur": InferenceBlur}
