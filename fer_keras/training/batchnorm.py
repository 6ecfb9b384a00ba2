"""BatchNormalization statistics during training: precise BN and synchronized BN.

``precise_bn`` (:func:`recalibrate_batchnorm`, :func:`precise_bn_class`) re-estimates the
moving statistics on un-augmented images before each validation; :func:`sync_batchnorm`
makes data-parallel replicas normalise with the statistics of the whole global batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def recalibrate_batchnorm(model, images: np.ndarray, batch_size: int = 128) -> int:
    """Re-estimate every BatchNormalization layer's moving statistics on ``images``.

    Training batches are augmented (resampled, so slightly blurred; brightness and
    contrast shifted) and the weights move fast early on, so the moving averages
    that inference uses drift away from the statistics of real, un-augmented
    inputs: validation accuracy then sits near chance while training accuracy
    rises. Averaging the batch statistics of a fixed sample of *un-augmented*
    training images ("precise BN") removes that train/inference mismatch. Only the
    statistics change; no trained weight does.

    Returns:
        The number of BatchNormalization layers updated.
    """
    import keras

    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not layers or not len(images):
        return 0
    saved = [layer.momentum for layer in layers]
    try:
        for k, start in enumerate(range(0, len(images), batch_size), 1):
            for layer in layers:
                layer.momentum = (k - 1) / k  # running mean of the batch statistics
            model(images[start : start + batch_size].astype(np.float32), training=True)
    finally:
        for layer, momentum in zip(layers, saved):
            layer.momentum = momentum
    return len(layers)


def precise_bn_class():
    import keras

    class PreciseBatchNorm(keras.callbacks.Callback):
        """Recalibrates BatchNormalization statistics right before each validation."""

        def __init__(self, images: np.ndarray):
            super().__init__()
            self.images = images

        def on_test_begin(self, logs=None):
            recalibrate_batchnorm(self.model, self.images)

    return PreciseBatchNorm


def sync_batchnorm(model: Any, strategy: Any | None) -> int:
    """Give every BatchNormalization layer the statistics of the global batch when mirrored.

    Without it each replica normalises its own slice of the batch, which is a different
    (noisier) model than the same global batch on one device. Outside a strategy the
    synchronized statistics are the local ones, so the saved model behaves the same anywhere.

    Returns:
        The number of layers switched (0 without a strategy).
    """
    if strategy is None or strategy.num_replicas_in_sync < 2:
        return 0
    import keras

    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in layers:
        layer.synchronized = True
    return len(layers)
