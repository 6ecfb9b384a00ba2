"""Generating the augmented images of a balanced build, in a pool of worker processes.

A task is ``(source image, destination, seed)``; :func:`augment_file` writes one image,
reproducible from its seed, under a temporary name then renamed, so a killed build
never leaves a half-written image under a final name. :func:`generate` runs the tasks
in chunks, in this process or in forked workers that each build the recipe's
albumentations pipeline once.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from fer_keras.data.recipe import Recipe
from fer_keras.errors import FerError

# Per-process pipeline: each worker builds it once (from the recipe) in its initializer.
_PIPELINE = None
_FORMAT = "png"


def _init_worker(augmentations: dict[str, Any], output_format: str) -> None:
    global _PIPELINE, _FORMAT
    import cv2

    from fer_keras.data.recipe import build_pipeline

    cv2.setNumThreads(1)  # one process per core already; OpenCV threads would oversubscribe
    _PIPELINE, _FORMAT = build_pipeline(augmentations), output_format


def _run_chunk(chunk: Sequence[tuple[str, str, int]]) -> int:
    for src, dst, seed in chunk:
        augment_file(_PIPELINE, src, dst, seed, _FORMAT)
    return len(chunk)


def augment_file(pipeline, src: str, dst: str, seed: int, output_format: str = "png") -> None:
    """Write one augmented copy of ``src`` to ``dst`` (atomically), reproducible from ``seed``.

    The image keeps its size and its colour mode (grayscale stays 1 channel).
    """
    import cv2
    import numpy as np
    from PIL import Image, ImageOps

    from fer_keras.data.images import to_mode
    from fer_keras.data.recipe import reseed

    try:
        with Image.open(src) as img:
            img = ImageOps.exif_transpose(img)
            gray = img.mode in ("1", "L", "LA", "I", "I;16", "F")
            image = np.asarray(to_mode(img, "grayscale" if gray else "rgb"))
    except Exception as err:  # noqa: BLE001 - any decode failure names the file
        raise FerError(f"{src}: cannot read image ({type(err).__name__}: {err})") from None
    reseed(pipeline, seed)
    result = pipeline(image=image)["image"]
    if result.ndim == 3 and result.shape[2] == 3:
        result = cv2.cvtColor(result, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if output_format == "jpg" else []
    ok, encoded = cv2.imencode(f".{output_format}", result, params)
    if not ok:
        raise FerError(f"{dst}: OpenCV could not encode the image as {output_format}")
    # Temp name + rename, so a killed build never leaves a half-written image under a
    # final name. No fsync: it would cost more than the image; a crash of the whole
    # machine is the one case where a resumed build may need its output folder removed.
    tmp = os.path.join(os.path.dirname(dst), f".{os.path.basename(dst)}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(np.asarray(encoded).tobytes())
    os.replace(tmp, dst)


def generate(
    tasks: list[tuple[str, str, int]], recipe: Recipe, workers: int, progress: Callable[..., Any] | None = None
) -> None:
    """Run every ``(src, dst, seed)`` task with :func:`augment_file` on ``workers`` processes (1: this one)."""
    if not tasks:
        return
    bar = progress(total=len(tasks), desc="augmenting", unit="img") if progress else None
    size = max(8, min(256, len(tasks) // (workers * 8) or 1))
    chunks = [tasks[i : i + size] for i in range(0, len(tasks), size)]
    try:
        if workers == 1:
            _init_worker(recipe.augmentations, recipe.output_format)
            for chunk in chunks:
                done = _run_chunk(chunk)
                if bar is not None:
                    bar.update(done)
            return
        # fork: workers start in ~50 ms with albumentations already imported, and callers
        # need no ``if __name__ == "__main__"`` guard; forkserver/spawn cost ~2 s of imports
        # per build. The workers only run PIL/OpenCV/albumentations code, never the
        # parent's threads (tqdm's monitor), so forking a threaded parent is safe here.
        sys.stdout.flush()  # a forked worker would otherwise write the parent's buffered output again
        sys.stderr.flush()
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_init_worker, initargs=(recipe.augmentations, recipe.output_format)
        ) as pool:
            futures = [pool.submit(_run_chunk, chunk) for chunk in chunks]
            try:
                for future in as_completed(futures):
                    done = future.result()
                    if bar is not None:
                        bar.update(done)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    finally:
        if bar is not None:
            bar.close()
