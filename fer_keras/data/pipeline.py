"""In-memory tf.data pipelines over the folder layout, with on-the-fly augmentation.

Images are decoded once (PIL, thread pool) into one uint8 array per split: FER2013
in RGB is ~250 MB, so every epoch after the first read is a memory gather. The
pipeline shuffles *indices*, gathers a batch, casts to float32 and augments it in
tf.data worker threads, and prefetches so the training step never waits on data.
Corrupt files are skipped and reported once with their path; a class folder (or a
split) with no decodable image at all is an error naming it.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from fer_keras.data.folders import SplitFiles, scan_split
from fer_keras.data.images import load_images
from fer_keras.errors import FerError, problem
from fer_keras.validation import describe_bool, describe_float, shown, unknown_fields


@dataclass(frozen=True)
class AugmentConfig:
    """On-the-fly augmentation; the defaults are the reference project's recipe.

    ``rotation`` is the largest angle in degrees, ``shift`` and ``zoom`` fractions
    of the image size, ``shear`` the largest shear coefficient (x' = x + shear * y),
    ``brightness`` a shift of up to that fraction of 255, ``contrast`` a scaling of
    the deviation from the image mean by up to that fraction (0 disables each).

    The photometric fields model what differs between FER2013 crops and real photos
    (webcams, phones, news photos): ``blur`` is the probability that an image is
    softened by a random amount (a Gaussian of sigma 1 px blended in, as from focus
    or upscaling a small face), ``noise`` the largest standard deviation of added
    Gaussian sensor noise as a fraction of 255, ``gamma`` the largest change of the
    log-gamma (exposure curve), and ``erase`` the probability of random erasing (a
    rectangle of 2-25% of the image filled with noise, as an occluding hand or
    glasses; Zhong et al. 2020).
    """

    flip: bool = True
    rotation: float = 0.0
    shift: float = 0.0
    shear: float = 0.2
    zoom: float = 0.2
    brightness: float = 0.0
    contrast: float = 0.0
    blur: float = 0.0
    noise: float = 0.0
    gamma: float = 0.0
    erase: float = 0.0

    @classmethod
    def from_value(cls, value: Any, where: str = "augment") -> AugmentConfig | None:
        """``True`` → reference recipe, ``False``/``None`` → off, a dict → validated fields."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, AugmentConfig):
            return value
        if not isinstance(value, dict):
            raise FerError(problem(where, f"must be true, false or an object; got {shown(value)}"))
        fields = set(cls.__dataclass_fields__)
        problems = unknown_fields(where, value, fields)
        for key, val in value.items():
            if key == "flip":
                msg = describe_bool(key, val)
            elif key == "rotation":
                msg = describe_float(key, val, 0, 180)
            elif key in fields:
                msg = describe_float(key, val, 0, 1)
            else:
                continue
            if msg:
                problems.append(problem(where, msg))
        if problems:
            raise FerError(problems)
        return cls(**value)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoadedSplit:
    """One decoded split: ``images`` is ``(N, H, W, C)`` uint8, ``labels`` ``(N,)`` int32."""

    split: str
    images: np.ndarray
    labels: np.ndarray
    paths: list[str]
    class_names: tuple[str, ...]
    failures: list[tuple[str, str]]

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(self.class_names))


def load_split(
    root: str | os.PathLike,
    split: str,
    image_size: tuple[int, int],
    color_mode: str,
    class_names: tuple[str, ...] | None = None,
    quiet: bool = False,
) -> LoadedSplit:
    """Decode every image of ``root/split`` into memory, resized and colour-converted.

    A file that fails to decode is skipped with a warning naming it. A class folder
    (or the whole split) none of whose files decode is an error: training on a split
    that silently lacks a class would "succeed" with a model that can never predict it.

    Raises:
        FerError: a missing or empty split/class folder, or a class folder or split with
            no decodable image (one problem per folder, naming it and how many files failed).

    Example:
        >>> train = load_split("data/demo", "train", (48, 48), "grayscale")  # doctest: +SKIP
        >>> train.images.shape  # doctest: +SKIP
        (420, 48, 48, 1)
    """
    files = scan_split(root, split, class_names)
    bar = None
    if not quiet:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(files), desc=f"decode {split}", unit="img", leave=False, dynamic_ncols=True)
    try:
        images, ok, failures = load_images(files.paths, image_size, color_mode, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    problems = _unusable_folders(files, ok, failures)
    if problems:
        # The error names each folder and its count; thousands of per-file warnings would bury it.
        raise FerError(problems)
    for path, reason in failures:
        print(f"warning: skipped unreadable image {path} ({reason})", file=sys.stderr)
    labels = np.asarray(files.labels, dtype=np.int32)[ok]
    return LoadedSplit(split, images, labels, [files.paths[i] for i in ok], files.class_names, failures)


def _unusable_folders(files: SplitFiles, ok: list[int], failures: list[tuple[str, str]]) -> list[str]:
    """One problem per class folder with no decodable image, or one for the whole split if nothing decoded."""
    reasons = dict(failures)

    def message(folder: str, paths: list[str]) -> str:
        example = next((p for p in paths if p in reasons), paths[0])
        kind = reasons.get(example, "").split(":")[0] or "unreadable"
        return (
            f"{folder}: no usable image: all {len(paths)} image files failed to decode "
            f"(e.g. {os.path.basename(example)}: {kind})"
        )

    split_dir = os.path.join(files.root, files.split)
    if not ok:
        return [message(split_dir, list(files.paths))]
    decoded = np.bincount(np.asarray(files.labels, dtype=np.int64)[ok], minlength=len(files.class_names))
    problems = []
    for label, name in enumerate(files.class_names):
        if decoded[label] == 0:
            paths = [path for path, lab in zip(files.paths, files.labels) if lab == label]
            problems.append(message(os.path.join(split_dir, name), paths))
    return problems


def augment_batch(x, config: AugmentConfig):
    """Randomly augment a float32 ``(B, H, W, C)`` batch of pixels in [0, 255].

    All geometric changes (rotation, zoom, shear, shift) are composed into ONE
    affine map per image and resampled once. Chaining Keras's RandomRotation,
    RandomZoom, ... resamples (and so blurs) every training image once per layer,
    while validation images stay sharp: BatchNormalization then learns statistics
    of blurred images (first-layer variance ~25% lower on FER2013) and the model
    collapses to one class in inference mode early in training.
    """
    import tensorflow as tf

    shape = tf.shape(x)
    batch, height, width = shape[0], shape[1], shape[2]
    h, w = tf.cast(height, tf.float32), tf.cast(width, tf.float32)

    def uniform(limit):
        return tf.random.uniform([batch], -limit, limit)

    if config.flip:
        flip = tf.random.uniform([batch, 1, 1, 1]) < 0.5
        x = tf.where(flip, tf.reverse(x, axis=[2]), x)
    if config.rotation or config.zoom or config.shear or config.shift:
        theta = uniform(config.rotation * math.pi / 180.0)
        scale = 1.0 / (1.0 + uniform(config.zoom))
        shear = uniform(config.shear)
        tx, ty = uniform(config.shift) * w, uniform(config.shift) * h
        cos, sin = tf.cos(theta), tf.sin(theta)
        # Output->input map A = R(theta) @ Shear(shear) @ scale, about the image centre.
        a00, a01 = cos * scale, (cos * shear - sin) * scale
        a10, a11 = sin * scale, (sin * shear + cos) * scale
        cx, cy = (w - 1) / 2, (h - 1) / 2
        a2 = cx - a00 * cx - a01 * cy + tx
        b2 = cy - a10 * cx - a11 * cy + ty
        zeros = tf.zeros([batch])
        transforms = tf.stack([a00, a01, a2, a10, a11, b2, zeros, zeros], axis=1)
        x = tf.raw_ops.ImageProjectiveTransformV3(
            images=x,
            transforms=transforms,
            output_shape=tf.stack([height, width]),
            fill_value=0.0,
            interpolation="BILINEAR",
            fill_mode="NEAREST",
        )
    if config.brightness:
        x = x + tf.random.uniform([batch, 1, 1, 1], -config.brightness, config.brightness) * 255.0
    if config.contrast:
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        factor = tf.random.uniform([batch, 1, 1, 1], 1.0 - config.contrast, 1.0 + config.contrast)
        x = (x - mean) * factor + mean
    if config.gamma:
        x = tf.clip_by_value(x, 0.0, 255.0)
        log_gamma = tf.random.uniform([batch, 1, 1, 1], -config.gamma, config.gamma)
        x = 255.0 * tf.pow(x / 255.0, tf.exp(log_gamma))
    if config.blur:
        # One fixed 5x5 Gaussian (sigma 1) blended in by a random weight gives a
        # continuum of softness without a per-image kernel.
        taps = tf.exp(-0.5 * tf.square(tf.range(-2.0, 3.0)))
        taps = taps / tf.reduce_sum(taps)
        channels = x.shape[-1] or 1
        kernel = tf.tile(tf.reshape(taps[:, None] * taps[None, :], [5, 5, 1, 1]), [1, 1, channels, 1])
        blurred = tf.nn.depthwise_conv2d(
            tf.pad(x, [[0, 0], [2, 2], [2, 2], [0, 0]], mode="SYMMETRIC"), kernel, [1, 1, 1, 1], "VALID"
        )
        chosen = tf.cast(tf.random.uniform([batch, 1, 1, 1]) < config.blur, tf.float32)
        weight = chosen * tf.random.uniform([batch, 1, 1, 1], 0.3, 1.0)
        x = x + weight * (blurred - x)
    if config.noise:
        sigma = tf.random.uniform([batch, 1, 1, 1], 0.0, config.noise * 255.0)
        x = x + sigma * tf.random.normal(tf.shape(x))
    if config.erase:
        area = tf.random.uniform([batch], 0.02, 0.25) * h * w
        aspect = tf.exp(tf.random.uniform([batch], math.log(0.3), math.log(3.3)))
        eh = tf.minimum(tf.sqrt(area * aspect), h)
        ew = tf.minimum(tf.sqrt(area / aspect), w)
        y0 = tf.random.uniform([batch]) * (h - eh)
        x0 = tf.random.uniform([batch]) * (w - ew)
        rows = tf.range(h)[None, :]
        cols = tf.range(w)[None, :]
        in_rows = (rows >= y0[:, None]) & (rows < (y0 + eh)[:, None])
        in_cols = (cols >= x0[:, None]) & (cols < (x0 + ew)[:, None])
        chosen = tf.random.uniform([batch, 1, 1]) < config.erase
        mask = in_rows[:, :, None] & in_cols[:, None, :] & chosen
        fill = tf.random.uniform(tf.shape(x), 0.0, 255.0)
        x = tf.where(mask[..., None], fill, x)
    return tf.clip_by_value(x, 0.0, 255.0)


def make_dataset(
    data: LoadedSplit,
    batch_size: int,
    num_classes: int,
    training: bool = False,
    augment: AugmentConfig | None = None,
    seed: int = 0,
):
    """A batched ``tf.data.Dataset`` of ``(float32 pixels in [0, 255], one-hot labels)``.

    ``training`` shuffles every epoch and applies ``augment``; evaluation pipelines
    keep file order so predictions line up with ``data.paths``.
    """
    import tensorflow as tf

    images = tf.constant(data.images)
    labels = tf.one_hot(tf.constant(data.labels), num_classes)
    ds = tf.data.Dataset.range(len(data))
    if training:
        ds = ds.shuffle(len(data), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)

    def gather(idx):
        return tf.cast(tf.gather(images, idx), tf.float32), tf.gather(labels, idx)

    ds = ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE)
    if training and augment is not None:
        ds = ds.map(lambda x, y: (augment_batch(x, augment), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
