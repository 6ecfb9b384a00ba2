"""Data-parallel training of one run on several devices (``--devices N|all``).

:func:`distribution` turns a config's ``devices`` into a ``tf.distribute.MirroredStrategy``
(or ``None``: TensorFlow's default device, as before). The run's ``batch_size`` stays the
*global* batch: each step splits it across the devices, averages the gradients and applies
one update, so the learning rate that suits a batch size on one device suits it on N.
BatchNormalization layers are switched to synchronized statistics (:func:`sync_batchnorm`):
each replica normalises with the statistics of the whole global batch, as a single device
would, so a run computes the same function on any number of devices and may resume on a
different number (``devices`` is not part of a run's identity).

GPUs are used when any is visible. Without one, ``--devices N`` (N > 1) splits the CPU into N
logical devices; TensorFlow only allows that before it initialises its devices, so it
happens first thing in a process that trains.
"""

from __future__ import annotations

import contextlib
from typing import Any

from fer_keras.errors import FerError
from fer_keras.training.config import ALL_DEVICES, TrainConfig


def configure_cpu_devices(count: int) -> None:
    """Split the (first) physical CPU into ``count`` logical devices, unless that is done already.

    Raises:
        FerError: TensorFlow already initialised its devices with fewer CPU devices.
    """
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    current = tf.config.get_logical_device_configuration(cpus[0])
    if current is not None and len(current) >= count:
        return
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as err:  # "Virtual devices cannot be modified after being initialized"
        have = len(tf.config.list_logical_devices("CPU"))
        raise FerError(
            f"devices: {count} CPU devices asked, {have} available: TensorFlow had already started in this "
            "process (start a new process, e.g. run fer-train, to split the CPU)"
        ) from err


def device_names(devices: str | int) -> list[str]:
    """The logical devices a run trains on: the first ``devices`` GPUs (else CPUs), or all of them.

    Raises:
        FerError: more devices asked than there are.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and devices != ALL_DEVICES and int(devices) > 1:
        configure_cpu_devices(int(devices))
    pool = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    if devices == ALL_DEVICES:
        return [d.name for d in pool]
    if int(devices) > len(pool):
        kind = "GPU" if gpus else "CPU"
        raise FerError(f"devices: {devices} asked; only {len(pool)} {kind} device(s) visible")
    return [d.name for d in pool[: int(devices)]]


def distribution(config: TrainConfig) -> Any | None:
    """A ``MirroredStrategy`` over the config's devices; ``None`` for one device (nothing to mirror).

    Call it before anything else initialises TensorFlow's devices (see the module docstring).
    """
    if config.devices is None:
        return None
    names = device_names(config.devices)
    if len(names) < 2:
        return None
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        # NCCL (the default all-reduce) is for GPUs; logical CPU devices reduce through one of them.
        return tf.distribute.MirroredStrategy(names, cross_device_ops=tf.distribute.ReductionToOneDevice())
    return tf.distribute.MirroredStrategy(names)


def strategy_scope(strategy: Any | None):
    """``strategy.scope()``, or a no-op context for ``None``: build, compile and load models inside it."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()
