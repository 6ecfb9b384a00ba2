"""Image sharpness per split: finds a split that is blurrier than the others.

A model trained on blurred images and used on sharp ones sees detail it never
learnt, so a split that was resized, re-encoded or filtered differently from the
others is a data defect worth finding before training. ``fer-data stats`` reports
the median sharpness of a sample of each split and warns when one is far below the
sharpest split; the fix is to obtain the original images of that split.

Sharpness is the variance of the 4-neighbour Laplacian of the image standardised to
zero mean and unit variance, so brightness and contrast do not change it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from fer_keras.data.images import load_images

# A split whose median sharpness is below this fraction of the sharpest split's is flagged.
BLUR_RATIO = 0.25
SAMPLE_SIZE = 500
ANALYSIS_SIZE = (48, 48)  # images are compared at one size, so resolution alone does not count


def laplacian_variance(images: np.ndarray) -> np.ndarray:
    """Sharpness of each ``(N, H, W[, 1])`` grayscale image (see the module docstring)."""
    x = np.asarray(images, dtype=np.float64).reshape(len(images), images.shape[1], images.shape[2])
    x = (x - x.mean(axis=(1, 2), keepdims=True)) / (x.std(axis=(1, 2), keepdims=True) + 1e-6)
    lap = x[:, 1:-1, :-2] + x[:, 1:-1, 2:] + x[:, :-2, 1:-1] + x[:, 2:, 1:-1] - 4 * x[:, 1:-1, 1:-1]
    return lap.reshape(len(x), -1).var(axis=1)


def split_sharpness(paths_by_split: dict[str, list[str]], sample: int = SAMPLE_SIZE, seed: int = 0) -> dict[str, Any]:
    """Median sharpness and file size of a random sample of each split, and the blurred splits.

    Args:
        paths_by_split: image paths per split.
        sample: images decoded per split (all when fewer).
        seed: the sampling seed, so reruns report the same numbers.

    Returns:
        ``{"splits": {split: {"sampled", "median_sharpness", "median_file_bytes"}},
        "blurred": [splits below BLUR_RATIO of the sharpest], "ratio": BLUR_RATIO}``.

    Example:
        >>> split_sharpness({"train": train_paths, "valid": valid_paths})["blurred"]  # doctest: +SKIP
        ['train']
    """
    rng = np.random.default_rng(seed)
    splits: dict[str, Any] = {}
    for split, paths in paths_by_split.items():
        if not paths:
            continue
        chosen = [paths[i] for i in sorted(rng.choice(len(paths), min(sample, len(paths)), replace=False))]
        images, ok, _ = load_images(chosen, ANALYSIS_SIZE, "grayscale")
        if not len(ok):
            continue
        splits[split] = {
            "sampled": len(ok),
            "median_sharpness": round(float(np.median(laplacian_variance(images))), 5),
            "median_file_bytes": int(np.median([os.path.getsize(chosen[i]) for i in ok])),
        }
    top = max((s["median_sharpness"] for s in splits.values()), default=0.0)
    blurred = [name for name, s in splits.items() if top > 0 and s["median_sharpness"] < BLUR_RATIO * top]
    return {"splits": splits, "blurred": blurred, "ratio": BLUR_RATIO}


def format_sharpness(result: dict[str, Any]) -> list[str]:
    """Lines for ``fer-data stats``: one summary, plus a warning per blurred split."""
    parts = [f"{name} {s['median_sharpness']:.3g}" for name, s in result["splits"].items()]
    lines = [f"sharpness (median Laplacian variance of {SAMPLE_SIZE} sampled images): " + ", ".join(parts)]
    top = max((s["median_sharpness"] for s in result["splits"].values()), default=0.0)
    for name in result["blurred"]:
        ratio = result["splits"][name]["median_sharpness"] / top
        lines.append(
            f"warning: {name} is much blurrier than the sharpest split ({ratio:.3f} of it); a model trained on it "
            "will not see at training time the detail it meets at inference: use the split's original images"
        )
    return lines
