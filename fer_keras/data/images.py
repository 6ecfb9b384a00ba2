"""Decoding image files of any size, mode and format to fixed-size uint8 arrays.

PIL does the decoding: it reads jpg, png, bmp, webp, gif and tiff in every mode
(L, RGB, RGBA, P, ...) and fails cleanly on truncated or corrupt files, which the
loaders skip and report instead of crashing a run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image, ImageOps

from fer_keras.constants import COLOR_MODES

# Refuse decompression bombs: far beyond any face photo, well below memory limits.
Image.MAX_IMAGE_PIXELS = 64_000_000


def to_mode(img: Image.Image, color_mode: str) -> Image.Image:
    """Convert a PIL image to ``rgb`` or ``grayscale``, compositing transparency on white."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    return img.convert("RGB" if color_mode == "rgb" else "L")


def to_array(img: Image.Image, size: tuple[int, int], color_mode: str) -> np.ndarray:
    """Resize (bilinear) and convert a PIL image to a ``(H, W, C)`` uint8 array."""
    img = to_mode(img, color_mode)
    height, width = size
    if img.size != (width, height):
        img = img.resize((width, height), Image.BILINEAR)
    arr = np.asarray(img, dtype=np.uint8)
    return arr.reshape(height, width, COLOR_MODES[color_mode])


def load_image(path: str | os.PathLike, size: tuple[int, int], color_mode: str) -> np.ndarray:
    """Read one image file as a ``(H, W, C)`` uint8 array (EXIF orientation applied).

    Raises:
        OSError, ValueError, Image.DecompressionBombError: unreadable file.
    """
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)
        return to_array(img, size, color_mode)


def load_images(
    paths: Sequence[str],
    size: tuple[int, int],
    color_mode: str,
    workers: int | None = None,
    progress=None,
) -> tuple[np.ndarray, list[int], list[tuple[str, str]]]:
    """Decode many files in a thread pool (PIL releases the GIL while decoding).

    Returns:
        ``(images, ok_indices, failures)``: a ``(N_ok, H, W, C)`` uint8 array, the
        indices into ``paths`` that decoded, and ``(path, reason)`` for the rest.
    """
    height, width = size
    channels = COLOR_MODES[color_mode]
    out = np.empty((len(paths), height, width, channels), dtype=np.uint8)
    ok = np.zeros(len(paths), dtype=bool)

    def work(i: int) -> None:
        out[i] = load_image(paths[i], size, color_mode)
        ok[i] = True

    failures = map_files(paths, work, workers, progress)
    ok_idx = np.flatnonzero(ok)
    return out[ok_idx], ok_idx.tolist(), failures


def map_files(
    paths: Sequence[str], work: Callable[[int], None], workers: int | None = None, progress=None
) -> list[tuple[str, str]]:
    """Run ``work(i)`` for every index of ``paths`` in a thread pool; return ``(path, reason)`` of the failures.

    PIL decoding and OpenCV's detectMultiScale release the GIL, so threads do scale.
    ``progress`` (tqdm-like) gets ``update(1)`` per file.
    """
    failures: list[tuple[str, str]] = []

    def guarded(i: int) -> None:
        try:
            work(i)
        except Exception as err:  # noqa: BLE001 - an unreadable file is skipped and reported
            failures.append((paths[i], f"{type(err).__name__}: {err}"))

    with ThreadPoolExecutor(max_workers=workers or min(8, (os.cpu_count() or 2) * 2)) as pool:
        for _ in pool.map(guarded, range(len(paths))):
            if progress is not None:
                progress.update(1)
    return sorted(failures)
